//! [`DeliveryStore`] on SQLite. Claims run inside `BEGIN IMMEDIATE`, which
//! takes the database's single write lock, so two workers sharing the file
//! never claim the same row.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::deliveries::{
    Attempt, ClaimedDelivery, DeliveryEvent, DeliveryFilter, DeliveryStore, DeliverySubscription,
    DeliverySummary, FinishedAttempt, RequeueFilter, RequeueOutcome, to_stored_precision,
};
use super::time::{from_text, to_text};
use super::{Delivery, DeliveryStatus, SqliteStore};
use crate::signals::Signals;

const SUMMARY_COLUMNS: &str = "d.id, d.subscription_id, d.event_id, d.status, d.attempt, d.last_error,
       d.next_attempt_at, d.created_at, s.destination_name as subscription_name, e.event_name";

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<ClaimedDelivery>> {
        let lease_until = to_stored_precision(lease_until);
        let (_turn, mut tx) = self.begin_write().await?;

        let rows = sqlx::query(
            "select d.id, d.attempt,
                    e.id as event_id, e.event_name, e.user_id, e.occurred_at, e.source, e.payload,
                    s.id as subscription_id, s.destination_name, s.endpoint_url, s.secret, s.enabled
             from grito_webhook_deliveries d
             left join grito_events e on e.id = d.event_id
             left join grito_webhook_subscriptions s on s.id = d.subscription_id
             where d.status = 'PENDING' and (d.next_attempt_at is null or d.next_attempt_at <= ?1)
             order by d.next_attempt_at, d.created_at
             limit ?2",
        )
        .bind(to_text(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let claimed = rows
            .iter()
            .map(|row| claimed_from_row(row, lease_until))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let lease_text = to_text(lease_until);
        for delivery in &claimed {
            sqlx::query("update grito_webhook_deliveries set next_attempt_at = ?1 where id = ?2")
                .bind(&lease_text)
                .bind(delivery.id.to_string())
                .execute(&mut *tx)
                .await?;
        }

        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_attempts(&self, finished: Vec<FinishedAttempt>) -> anyhow::Result<Vec<bool>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let mut recorded = Vec::with_capacity(finished.len());
        for FinishedAttempt { delivery_id, lease_until, outcome } in &finished {
            let updated = sqlx::query(
                "update grito_webhook_deliveries
                 set status = ?3, attempt = ?4, last_error = ?5, next_attempt_at = ?6
                 where id = ?1 and status = 'PENDING' and next_attempt_at = ?2",
            )
            .bind(delivery_id.to_string())
            .bind(to_text(to_stored_precision(*lease_until)))
            .bind(outcome.status.as_str())
            .bind(outcome.attempt)
            .bind(&outcome.last_error)
            .bind(outcome.next_attempt_at.map(to_text))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            recorded.push(updated > 0);
            let Some(log) = outcome.log.as_ref().filter(|_| updated > 0) else {
                continue;
            };

            sqlx::query(
                "insert into grito_webhook_attempts
                   (id, delivery_id, attempt, started_at, duration_ms, response_status, response_body, error)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(delivery_id.to_string())
            .bind(log.attempt)
            .bind(to_text(log.started_at))
            .bind(log.duration_ms)
            .bind(log.response_status)
            .bind(&log.response_body)
            .bind(&log.error)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> anyhow::Result<Vec<DeliverySummary>> {
        let rows = sqlx::query(&format!(
            "select {SUMMARY_COLUMNS}
             from grito_webhook_deliveries d
             left join grito_webhook_subscriptions s on s.id = d.subscription_id
             left join grito_events e on e.id = d.event_id
             where (?1 is null or d.status = ?1)
               and (?2 is null or s.destination_name = ?2)
               and (?3 is null or d.created_at >= ?3)
             order by d.created_at desc, d.id desc
             limit ?4"
        ))
        .bind(filter.status.map(DeliveryStatus::as_str))
        .bind(&filter.subscription)
        .bind(filter.since.map(to_text))
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn get_delivery(&self, id: Uuid) -> anyhow::Result<Option<DeliverySummary>> {
        let row = sqlx::query(&format!(
            "select {SUMMARY_COLUMNS}
             from grito_webhook_deliveries d
             left join grito_webhook_subscriptions s on s.id = d.subscription_id
             left join grito_events e on e.id = d.event_id
             where d.id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(summary_from_row).transpose()
    }

    async fn list_attempts(&self, delivery_id: Uuid) -> anyhow::Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "select delivery_id, attempt, started_at, duration_ms, response_status, response_body, error
             from grito_webhook_attempts where delivery_id = ?1 order by started_at, id",
        )
        .bind(delivery_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Attempt {
                    delivery_id: parse_uuid(row.try_get("delivery_id")?)?,
                    attempt: row.try_get("attempt")?,
                    started_at: from_text(row.try_get("started_at")?)?,
                    duration_ms: row.try_get("duration_ms")?,
                    response_status: row.try_get("response_status")?,
                    response_body: row.try_get("response_body")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }

    async fn requeue_delivery(&self, id: Uuid) -> anyhow::Result<RequeueOutcome> {
        let (_turn, mut tx) = self.begin_write().await?;

        let status: Option<String> = sqlx::query_scalar("select status from grito_webhook_deliveries where id = ?1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(status) = status else {
            return Ok(RequeueOutcome::NotFound);
        };
        let status = DeliveryStatus::parse(&status)?;
        if status != DeliveryStatus::Fail {
            return Ok(RequeueOutcome::NotFailed(status));
        }

        sqlx::query(
            "update grito_webhook_deliveries set status = 'PENDING', attempt = 0, next_attempt_at = null
             where id = ?1",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RequeueOutcome::Requeued)
    }

    async fn requeue_failed(&self, filter: &RequeueFilter) -> anyhow::Result<Vec<Uuid>> {
        let (_turn, mut tx) = self.begin_write().await?;

        let ids: Vec<String> = sqlx::query_scalar(
            "update grito_webhook_deliveries
             set status = 'PENDING', attempt = 0, next_attempt_at = null
             where status = 'FAIL'
               and (?1 is null or exists (
                     select 1 from grito_webhook_subscriptions s
                     where s.id = grito_webhook_deliveries.subscription_id and s.destination_name = ?1))
               and (?2 is null or created_at >= ?2)
             returning id",
        )
        .bind(&filter.subscription)
        .bind(filter.since.map(to_text))
        .fetch_all(&mut *tx)
        .await?;

        tx.commit().await?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }

    fn spawn_delivery_listener(&self, _signals: Arc<Signals>) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}

fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("invalid UUID `{text}` in the SQLite database"))
}

fn optional_uuid(row: &SqliteRow, column: &str) -> anyhow::Result<Option<Uuid>> {
    row.try_get::<Option<String>, _>(column)?.as_deref().map(parse_uuid).transpose()
}

fn optional_time(row: &SqliteRow, column: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(column)?.as_deref().map(from_text).transpose()
}

fn claimed_from_row(row: &SqliteRow, lease_until: DateTime<Utc>) -> anyhow::Result<ClaimedDelivery> {
    let event = match optional_uuid(row, "event_id")? {
        None => None,
        Some(id) => {
            let payload: String = row.try_get("payload")?;
            Some(DeliveryEvent {
                id,
                event_name: row.try_get("event_name")?,
                user_id: parse_uuid(row.try_get("user_id")?)?,
                occurred_at: from_text(row.try_get("occurred_at")?)?,
                source: row.try_get("source")?,
                payload: serde_json::from_str(&payload).context("invalid JSON in grito_events.payload")?,
            })
        }
    };
    let subscription = match optional_uuid(row, "subscription_id")? {
        None => None,
        Some(id) => Some(DeliverySubscription {
            id,
            destination_name: row.try_get("destination_name")?,
            endpoint_url: row.try_get("endpoint_url")?,
            secret: row.try_get("secret")?,
            enabled: row.try_get("enabled")?,
        }),
    };
    Ok(ClaimedDelivery {
        id: parse_uuid(row.try_get("id")?)?,
        attempt: row.try_get("attempt")?,
        lease_until,
        event,
        subscription,
    })
}

fn summary_from_row(row: &SqliteRow) -> anyhow::Result<DeliverySummary> {
    Ok(DeliverySummary {
        delivery: Delivery {
            id: parse_uuid(row.try_get("id")?)?,
            subscription_id: optional_uuid(row, "subscription_id")?,
            event_id: optional_uuid(row, "event_id")?,
            status: DeliveryStatus::parse(row.try_get("status")?)?,
            attempt: row.try_get("attempt")?,
            last_error: row.try_get("last_error")?,
            next_attempt_at: optional_time(row, "next_attempt_at")?,
            created_at: optional_time(row, "created_at")?,
        },
        subscription_name: row.try_get("subscription_name")?,
        event_name: row.try_get("event_name")?,
    })
}
