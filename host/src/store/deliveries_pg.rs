//! [`DeliveryStore`] on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED`,
//! and wake-ups across nodes with `LISTEN`/`NOTIFY`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use uuid::Uuid;

use super::deliveries::{
    Attempt, ClaimedDelivery, DeliveryEvent, DeliveryFilter, DeliveryStore, DeliverySubscription,
    DeliverySummary, FinishedAttempt, RequeueFilter, RequeueOutcome, to_stored_precision,
};
use super::{Delivery, DeliveryStatus, PgStore};
use crate::signals::Signals;

/// The `NOTIFY` channel that announces new or reprocessed deliveries. It
/// includes a hash of the current schema, so databases split by schema (as
/// the tests do) do not wake each other, and it stays under PostgreSQL's
/// 63-byte identifier limit for any schema name.
const CHANNEL_SQL: &str = "select 'grito_deliveries_' || left(md5(current_schema()), 12)";

/// Sends the delivery notification; run it inside the transaction that queues
/// deliveries, so listeners wake only after the commit.
pub(crate) const NOTIFY_DELIVERIES_SQL: &str =
    "select pg_notify('grito_deliveries_' || left(md5(current_schema()), 12), '')";

/// Wait before reconnecting after the listener failed.
const LISTENER_RETRY: Duration = Duration::from_secs(5);

const SUMMARY_COLUMNS: &str = "d.id, d.subscription_id, d.event_id, d.status, d.attempt, d.last_error,
       d.next_attempt_at, d.created_at, s.destination_name as subscription_name, e.event_name";

#[async_trait]
impl DeliveryStore for PgStore {
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<ClaimedDelivery>> {
        let lease_until = to_stored_precision(lease_until);
        let rows = sqlx::query(
            "with due as (
               select id from grito_webhook_deliveries
               where status = 'PENDING' and (next_attempt_at is null or next_attempt_at <= $1)
               order by next_attempt_at nulls first, created_at
               limit $2
               for update skip locked
             ), claimed as (
               update grito_webhook_deliveries d set next_attempt_at = $3
               from due where d.id = due.id
               returning d.id, d.attempt, d.event_id, d.subscription_id
             )
             select c.id, c.attempt,
                    e.id as event_id, e.event_name, e.user_id, e.occurred_at, e.source, e.payload,
                    s.id as subscription_id, s.destination_name, s.endpoint_url, s.secret, s.enabled
             from claimed c
             left join grito_events e on e.id = c.event_id
             left join grito_webhook_subscriptions s on s.id = c.subscription_id",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(lease_until)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|row| claimed_from_row(row, lease_until)).collect()
    }

    async fn finish_attempts(&self, finished: Vec<FinishedAttempt>) -> anyhow::Result<Vec<bool>> {
        let mut rows = OutcomeRows::default();
        for finished in &finished {
            rows.push(finished);
        }

        // One statement: the guarded updates, then the attempt rows of the
        // deliveries actually updated. It commits on its own.
        let updated: Vec<Uuid> = sqlx::query_scalar(
            "with outcome as (
               select * from unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::int4[], $5::text[], $6::timestamptz[])
                 as o(delivery_id, lease_until, status, attempt, last_error, next_attempt_at)
             ), updated as (
               update grito_webhook_deliveries d
               set status = o.status, attempt = o.attempt, last_error = o.last_error, next_attempt_at = o.next_attempt_at
               from outcome o
               where d.id = o.delivery_id and d.status = 'PENDING' and d.next_attempt_at = o.lease_until
               returning d.id
             ), logged as (
               insert into grito_webhook_attempts
                 (id, delivery_id, attempt, started_at, duration_ms, response_status, response_body, error)
               select l.id, l.delivery_id, l.attempt, l.started_at, l.duration_ms, l.response_status, l.response_body, l.error
               from unnest($7::uuid[], $8::uuid[], $9::int4[], $10::timestamptz[], $11::int8[], $12::int4[], $13::text[], $14::text[])
                 as l(id, delivery_id, attempt, started_at, duration_ms, response_status, response_body, error)
               where l.delivery_id in (select id from updated)
             )
             select id from updated",
        )
        .bind(&rows.delivery_ids)
        .bind(&rows.leases)
        .bind(&rows.statuses)
        .bind(&rows.attempts)
        .bind(&rows.last_errors)
        .bind(&rows.next_attempts)
        .bind(&rows.log_ids)
        .bind(&rows.log_deliveries)
        .bind(&rows.log_attempts)
        .bind(&rows.log_started)
        .bind(&rows.log_durations)
        .bind(&rows.log_statuses)
        .bind(&rows.log_bodies)
        .bind(&rows.log_errors)
        .fetch_all(self.pool())
        .await?;

        Ok(finished.iter().map(|finished| updated.contains(&finished.delivery_id)).collect())
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> anyhow::Result<Vec<DeliverySummary>> {
        let rows = sqlx::query(&format!(
            "select {SUMMARY_COLUMNS}
             from grito_webhook_deliveries d
             left join grito_webhook_subscriptions s on s.id = d.subscription_id
             left join grito_events e on e.id = d.event_id
             where ($1::text is null or d.status = $1)
               and ($2::text is null or s.destination_name = $2)
               and ($3::timestamptz is null or d.created_at >= $3)
             order by d.created_at desc, d.id desc
             limit $4"
        ))
        .bind(filter.status.map(DeliveryStatus::as_str))
        .bind(&filter.subscription)
        .bind(filter.since)
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
             where d.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(summary_from_row).transpose()
    }

    async fn list_attempts(&self, delivery_id: Uuid) -> anyhow::Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "select delivery_id, attempt, started_at, duration_ms, response_status, response_body, error
             from grito_webhook_attempts where delivery_id = $1 order by started_at, id",
        )
        .bind(delivery_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Attempt {
                    delivery_id: row.try_get("delivery_id")?,
                    attempt: row.try_get("attempt")?,
                    started_at: row.try_get("started_at")?,
                    duration_ms: row.try_get("duration_ms")?,
                    response_status: row.try_get("response_status")?,
                    response_body: row.try_get("response_body")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }

    async fn requeue_delivery(&self, id: Uuid) -> anyhow::Result<RequeueOutcome> {
        let mut tx = self.pool().begin().await?;

        let status: Option<String> =
            sqlx::query_scalar("select status from grito_webhook_deliveries where id = $1 for update")
                .bind(id)
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
             where id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(NOTIFY_DELIVERIES_SQL).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(RequeueOutcome::Requeued)
    }

    async fn requeue_failed(&self, filter: &RequeueFilter) -> anyhow::Result<Vec<Uuid>> {
        let mut tx = self.pool().begin().await?;

        let ids: Vec<Uuid> = sqlx::query_scalar(
            "update grito_webhook_deliveries d
             set status = 'PENDING', attempt = 0, next_attempt_at = null
             where d.status = 'FAIL'
               and ($1::text is null or exists (
                     select 1 from grito_webhook_subscriptions s
                     where s.id = d.subscription_id and s.destination_name = $1))
               and ($2::timestamptz is null or d.created_at >= $2)
             returning d.id",
        )
        .bind(&filter.subscription)
        .bind(filter.since)
        .fetch_all(&mut *tx)
        .await?;
        if !ids.is_empty() {
            sqlx::query(NOTIFY_DELIVERIES_SQL).execute(&mut *tx).await?;
        }

        tx.commit().await?;
        Ok(ids)
    }

    fn spawn_delivery_listener(&self, signals: Arc<Signals>) -> Option<tokio::task::JoinHandle<()>> {
        let pool = self.pool().clone();
        Some(tokio::spawn(async move {
            loop {
                if let Err(error) = listen(&pool, &signals).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_seconds = LISTENER_RETRY.as_secs(),
                        "delivery listener failed; the periodic sweep still finds new deliveries"
                    );
                }
                tokio::time::sleep(LISTENER_RETRY).await;
            }
        }))
    }
}

/// Listens on the delivery channel and wakes the dispatcher on each
/// notification, and after each reconnection (notifications sent while the
/// connection was down are lost, so the dispatcher then sweeps).
async fn listen(pool: &PgPool, signals: &Signals) -> anyhow::Result<()> {
    let channel: String = sqlx::query_scalar(CHANNEL_SQL).fetch_one(pool).await?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(&channel).await?;
    tracing::info!(channel, "listening for deliveries queued by other processes");

    loop {
        match listener.try_recv().await? {
            Some(_) => signals.deliveries.notify_one(),
            None => {
                tracing::info!(channel, "delivery listener reconnecting");
                signals.deliveries.notify_one();
            }
        }
    }
}

fn claimed_from_row(row: &PgRow, lease_until: DateTime<Utc>) -> anyhow::Result<ClaimedDelivery> {
    let event = match row.try_get::<Option<Uuid>, _>("event_id")? {
        None => None,
        Some(id) => Some(DeliveryEvent {
            id,
            event_name: row.try_get("event_name")?,
            user_id: row.try_get("user_id")?,
            occurred_at: row.try_get("occurred_at")?,
            source: row.try_get("source")?,
            payload: row.try_get("payload")?,
        }),
    };
    let subscription = match row.try_get::<Option<Uuid>, _>("subscription_id")? {
        None => None,
        Some(id) => Some(DeliverySubscription {
            id,
            destination_name: row.try_get("destination_name")?,
            endpoint_url: row.try_get("endpoint_url")?,
            secret: row.try_get("secret")?,
            enabled: row.try_get("enabled")?,
        }),
    };
    Ok(ClaimedDelivery { id: row.try_get("id")?, attempt: row.try_get("attempt")?, lease_until, event, subscription })
}

fn summary_from_row(row: &PgRow) -> anyhow::Result<DeliverySummary> {
    Ok(DeliverySummary {
        delivery: Delivery {
            id: row.try_get("id")?,
            subscription_id: row.try_get("subscription_id")?,
            event_id: row.try_get("event_id")?,
            status: DeliveryStatus::parse(row.try_get("status")?)?,
            attempt: row.try_get("attempt")?,
            last_error: row.try_get("last_error")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            created_at: row.try_get("created_at")?,
        },
        subscription_name: row.try_get("subscription_name")?,
        event_name: row.try_get("event_name")?,
    })
}

/// Outcomes and attempt rows, column by column, for `unnest`.
#[derive(Default)]
struct OutcomeRows {
    delivery_ids: Vec<Uuid>,
    leases: Vec<DateTime<Utc>>,
    statuses: Vec<&'static str>,
    attempts: Vec<i32>,
    last_errors: Vec<Option<String>>,
    next_attempts: Vec<Option<DateTime<Utc>>>,

    log_ids: Vec<Uuid>,
    log_deliveries: Vec<Uuid>,
    log_attempts: Vec<i32>,
    log_started: Vec<DateTime<Utc>>,
    log_durations: Vec<i64>,
    log_statuses: Vec<Option<i32>>,
    log_bodies: Vec<Option<String>>,
    log_errors: Vec<Option<String>>,
}

impl OutcomeRows {
    fn push(&mut self, finished: &FinishedAttempt) {
        let outcome = &finished.outcome;
        self.delivery_ids.push(finished.delivery_id);
        self.leases.push(to_stored_precision(finished.lease_until));
        self.statuses.push(outcome.status.as_str());
        self.attempts.push(outcome.attempt);
        self.last_errors.push(outcome.last_error.clone());
        self.next_attempts.push(outcome.next_attempt_at);

        if let Some(log) = &outcome.log {
            self.log_ids.push(Uuid::now_v7());
            self.log_deliveries.push(finished.delivery_id);
            self.log_attempts.push(log.attempt);
            self.log_started.push(log.started_at);
            self.log_durations.push(log.duration_ms);
            self.log_statuses.push(log.response_status);
            self.log_bodies.push(log.response_body.clone());
            self.log_errors.push(log.error.clone());
        }
    }
}
