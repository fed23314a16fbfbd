//! `OutboxStore` on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PgStore;
use super::outbox::{EmailStatus, OutboxEmail, OutboxStore};

const COLUMNS: &str = "id, event_id, automation_id, run_id, template_id, \"to\", subject, body_text, body_html, \
                       status, attempts, next_attempt_at, last_error, created_at, sent_at";

#[async_trait]
impl OutboxStore for PgStore {
    async fn claim_emails(&self, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<OutboxEmail>> {
        let lease_until = now + chrono::Duration::from_std(lease)?;
        // One statement: the inner select locks due rows, skipping those
        // another mailer holds, and the update pushes them past the lease.
        let rows = sqlx::query(&format!(
            "update grito_email_outbox set next_attempt_at = $3
             where id in (
               select id from grito_email_outbox
               where status = 'PENDING' and next_attempt_at <= $1
               order by next_attempt_at, id
               limit $2
               for update skip locked)
             returning {COLUMNS}"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .bind(lease_until)
        .fetch_all(self.pool())
        .await?;
        let mut emails: Vec<OutboxEmail> = rows.iter().map(email_from_row).collect::<anyhow::Result<_>>()?;
        emails.sort_by_key(|email| (email.created_at, email.id));
        Ok(emails)
    }

    async fn mark_email_sent(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let updated = sqlx::query(
            "update grito_email_outbox
             set status = 'SENT', attempts = attempts + 1, sent_at = $2, last_error = null
             where id = $1 and status = 'PENDING'",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn record_email_failure(
        &self,
        id: Uuid,
        attempts: i32,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> anyhow::Result<()> {
        let status = if next_attempt_at.is_some() { EmailStatus::Pending } else { EmailStatus::Fail };
        sqlx::query(
            "update grito_email_outbox
             set status = $2, attempts = $3, next_attempt_at = coalesce($4, next_attempt_at), last_error = $5
             where id = $1 and status = 'PENDING'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn get_email(&self, id: Uuid) -> anyhow::Result<Option<OutboxEmail>> {
        let row = sqlx::query(&format!("select {COLUMNS} from grito_email_outbox where id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(email_from_row).transpose()
    }

    async fn list_emails_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<OutboxEmail>> {
        let rows = sqlx::query(&format!(
            "select {COLUMNS} from grito_email_outbox where event_id = $1 order by created_at, id"
        ))
        .bind(event_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(email_from_row).collect()
    }

    async fn pending_emails(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("select count(*) from grito_email_outbox where status = 'PENDING'")
            .fetch_one(self.pool())
            .await?)
    }
}

fn email_from_row(row: &PgRow) -> anyhow::Result<OutboxEmail> {
    Ok(OutboxEmail {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        automation_id: row.try_get("automation_id")?,
        run_id: row.try_get("run_id")?,
        template_id: row.try_get("template_id")?,
        to: row.try_get("to")?,
        subject: row.try_get("subject")?,
        body_text: row.try_get("body_text")?,
        body_html: row.try_get("body_html")?,
        status: EmailStatus::parse(row.try_get("status")?)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
    })
}
