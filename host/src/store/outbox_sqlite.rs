//! `OutboxStore` on SQLite. The claim runs under `BEGIN IMMEDIATE`, so two
//! mailers on one file take turns and never lease the same row.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::SqliteStore;
use super::outbox::{EmailStatus, OutboxEmail, OutboxStore};
use super::runs_sqlite::{optional_time, optional_uuid, parse_uuid};
use super::time::{from_text, to_text};

const COLUMNS: &str = "id, event_id, automation_id, run_id, template_id, \"to\", subject, body_text, body_html, \
                       status, attempts, next_attempt_at, last_error, created_at, sent_at";

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn claim_emails(&self, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<OutboxEmail>> {
        let lease_until = to_text(now + chrono::Duration::from_std(lease)?);
        let (_turn, mut tx) = self.begin_write().await?;

        let rows = sqlx::query(&format!(
            "select {COLUMNS} from grito_email_outbox
             where status = 'PENDING' and next_attempt_at <= ?1
             order by next_attempt_at, id
             limit ?2"
        ))
        .bind(to_text(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut emails: Vec<OutboxEmail> = rows.iter().map(email_from_row).collect::<anyhow::Result<_>>()?;

        for email in &mut emails {
            sqlx::query("update grito_email_outbox set next_attempt_at = ?2 where id = ?1")
                .bind(email.id.to_string())
                .bind(&lease_until)
                .execute(&mut *tx)
                .await?;
            email.next_attempt_at = from_text(&lease_until)?;
        }

        tx.commit().await?;
        Ok(emails)
    }

    async fn mark_email_sent(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let updated = sqlx::query(
            "update grito_email_outbox
             set status = 'SENT', attempts = attempts + 1, sent_at = ?2, last_error = null
             where id = ?1 and status = 'PENDING'",
        )
        .bind(id.to_string())
        .bind(to_text(now))
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
             set status = ?2, attempts = ?3, next_attempt_at = coalesce(?4, next_attempt_at), last_error = ?5
             where id = ?1 and status = 'PENDING'",
        )
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(attempts)
        .bind(next_attempt_at.map(to_text))
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn get_email(&self, id: Uuid) -> anyhow::Result<Option<OutboxEmail>> {
        let row = sqlx::query(&format!("select {COLUMNS} from grito_email_outbox where id = ?1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(email_from_row).transpose()
    }

    async fn list_emails_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<OutboxEmail>> {
        let rows = sqlx::query(&format!(
            "select {COLUMNS} from grito_email_outbox where event_id = ?1 order by created_at, id"
        ))
        .bind(event_id.to_string())
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

fn email_from_row(row: &SqliteRow) -> anyhow::Result<OutboxEmail> {
    Ok(OutboxEmail {
        id: parse_uuid(row.try_get("id")?)?,
        event_id: optional_uuid(row, "event_id")?,
        automation_id: optional_uuid(row, "automation_id")?,
        run_id: optional_uuid(row, "run_id")?,
        template_id: row.try_get("template_id")?,
        to: row.try_get("to")?,
        subject: row.try_get("subject")?,
        body_text: row.try_get("body_text")?,
        body_html: row.try_get("body_html")?,
        status: EmailStatus::parse(row.try_get("status")?)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: from_text(row.try_get("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        created_at: from_text(row.try_get("created_at")?)?,
        sent_at: optional_time(row, "sent_at")?,
    })
}
