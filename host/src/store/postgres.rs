//! The PostgreSQL backend, for production and for several nodes sharing one
//! database.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};
use uuid::Uuid;

use super::{
    Automation, Delivery, DeliveryStatus, Event, InsertedEvent, NewAutomation, NewEvent, NewSubscription,
    QueueStats, SeedOutcome, Store, Subscription,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    events: super::event_writer_pg::EventWriter,
}

impl PgStore {
    /// Connects to `url`. The pool connects lazily, so a database that is down
    /// at start shows up in `/health` and in the first query's error.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .context("invalid PostgreSQL DATABASE_URL")?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        // No ping before each acquire: it doubled the round trips of every
        // query. A connection that broke while idle fails its next query
        // instead, so that request gets 503, and the connection is dropped from the pool.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Ok(Self { events: super::event_writer_pg::EventWriter::new(pool.clone()), pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("PostgreSQL migration failed")?;
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_event(&self, event: NewEvent) -> anyhow::Result<InsertedEvent> {
        self.events.insert(event).await
    }

    async fn get_event(&self, id: Uuid) -> anyhow::Result<Option<Event>> {
        let row = sqlx::query(
            "select id, event_name, user_id, source, occurred_at, payload, idempotency_key, processed_at
             from grito_events where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| event_from_row(&row)).transpose()
    }

    async fn create_subscription(&self, subscription: NewSubscription) -> anyhow::Result<Subscription> {
        let row = sqlx::query(
            "insert into grito_webhook_subscriptions (id, destination_name, endpoint_url, secret, enabled, event_filter)
             values ($1, $2, $3, $4, $5, $6)
             returning id, destination_name, endpoint_url, secret, enabled, event_filter, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(&subscription.destination_name)
        .bind(&subscription.endpoint_url)
        .bind(&subscription.secret)
        .bind(subscription.enabled)
        .bind(&subscription.event_filter)
        .fetch_one(&self.pool)
        .await?;
        subscription_from_row(&row)
    }

    async fn list_subscriptions(&self) -> anyhow::Result<Vec<Subscription>> {
        let rows = sqlx::query(
            "select id, destination_name, endpoint_url, secret, enabled, event_filter, created_at
             from grito_webhook_subscriptions order by created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    async fn set_subscription_enabled(&self, id: Uuid, enabled: bool) -> anyhow::Result<bool> {
        let updated = sqlx::query("update grito_webhook_subscriptions set enabled = $2 where id = $1")
            .bind(id)
            .bind(enabled)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn create_automation(&self, automation: NewAutomation) -> anyhow::Result<Automation> {
        let row = sqlx::query(
            "insert into grito_automations (id, name, is_active, match_event, condition_sql, action)
             values ($1, $2, $3, $4, $5, $6)
             returning id, name, is_active, match_event, condition_sql, action, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(&automation.name)
        .bind(automation.is_active)
        .bind(&automation.match_event)
        .bind(&automation.condition_sql)
        .bind(&automation.action)
        .fetch_one(&self.pool)
        .await?;
        automation_from_row(&row)
    }

    async fn list_automations(&self) -> anyhow::Result<Vec<Automation>> {
        let rows = sqlx::query(
            "select id, name, is_active, match_event, condition_sql, action, created_at
             from grito_automations order by created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(automation_from_row).collect()
    }

    async fn list_deliveries_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "select id, subscription_id, event_id, status, attempt, last_error, next_attempt_at, created_at
             from grito_webhook_deliveries where event_id = $1 order by created_at, id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn queue_stats(&self) -> anyhow::Result<QueueStats> {
        let row = sqlx::query(
            "select
               (select count(*) from grito_webhook_deliveries where status = 'PENDING') as pending,
               (select extract(epoch from now() - min(created_at))::float8
                  from grito_webhook_deliveries where status = 'PENDING') as oldest_age,
               (select count(*) from grito_events where processed_at is null) as unprocessed",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            pending_deliveries: row.try_get("pending")?,
            oldest_pending_age_seconds: row.try_get("oldest_age")?,
            unprocessed_events: row.try_get("unprocessed")?,
        })
    }

    async fn seed(&self, subscription: NewSubscription, automation: NewAutomation) -> anyhow::Result<SeedOutcome> {
        let mut tx = self.pool.begin().await?;

        let subscription_created = sqlx::query(
            "insert into grito_webhook_subscriptions (id, destination_name, endpoint_url, secret, enabled, event_filter)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (destination_name) do nothing",
        )
        .bind(Uuid::now_v7())
        .bind(&subscription.destination_name)
        .bind(&subscription.endpoint_url)
        .bind(&subscription.secret)
        .bind(subscription.enabled)
        .bind(&subscription.event_filter)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;

        // Automations have no unique name, so a transaction-scoped advisory
        // lock keeps two concurrent seeds from both inserting.
        sqlx::query("select pg_advisory_xact_lock(hashtext('grito_seed_automation'))")
            .execute(&mut *tx)
            .await?;
        let automation_created = sqlx::query(
            "insert into grito_automations (id, name, is_active, match_event, condition_sql, action)
             select $1, $2, $3, $4, $5, $6
             where not exists (select 1 from grito_automations where name = $2)",
        )
        .bind(Uuid::now_v7())
        .bind(&automation.name)
        .bind(automation.is_active)
        .bind(&automation.match_event)
        .bind(&automation.condition_sql)
        .bind(&automation.action)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;

        tx.commit().await?;
        Ok(SeedOutcome { subscription_created, automation_created })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

pub(super) fn event_from_row(row: &PgRow) -> anyhow::Result<Event> {
    Ok(Event {
        id: row.try_get("id")?,
        event_name: row.try_get("event_name")?,
        user_id: row.try_get("user_id")?,
        source: row.try_get("source")?,
        occurred_at: row.try_get("occurred_at")?,
        payload: row.try_get("payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        processed_at: row.try_get("processed_at")?,
    })
}

pub(super) fn subscription_from_row(row: &PgRow) -> anyhow::Result<Subscription> {
    Ok(Subscription {
        id: row.try_get("id")?,
        destination_name: row.try_get("destination_name")?,
        endpoint_url: row.try_get("endpoint_url")?,
        secret: row.try_get("secret")?,
        enabled: row.try_get("enabled")?,
        event_filter: row.try_get("event_filter")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn automation_from_row(row: &PgRow) -> anyhow::Result<Automation> {
    Ok(Automation {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_active: row.try_get("is_active")?,
        match_event: row.try_get("match_event")?,
        condition_sql: row.try_get("condition_sql")?,
        action: row.try_get("action")?,
        created_at: row.try_get("created_at")?,
    })
}

fn delivery_from_row(row: &PgRow) -> anyhow::Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id")?,
        subscription_id: row.try_get("subscription_id")?,
        event_id: row.try_get("event_id")?,
        status: DeliveryStatus::parse(row.try_get("status")?)?,
        attempt: row.try_get("attempt")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
    })
}
