//! The embedded SQLite backend: one file, no server, the default.
//!
//! SQLite allows one writer at a time. Write transactions start with
//! `BEGIN IMMEDIATE`, so they take the write lock up front and wait for it
//! (busy timeout) instead of failing when a reader upgrades to a writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, Sqlite, Transaction};
use uuid::Uuid;

use super::time::{from_text, to_text};
use super::{
    Automation, Delivery, DeliveryStatus, Event, InsertedEvent, NewAutomation, NewEvent, NewSubscription,
    QueueStats, SeedOutcome, Store, Subscription,
};

/// A writer's turn; see [`SqliteStore::begin_write`].
pub(crate) type WriteTurn = tokio::sync::OwnedMutexGuard<()>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// Write transactions of this process take turns here, in arrival order.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its parent folder.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the data folder {}", parent.display()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        // No ping before each acquire: each is a round trip to the
        // connection's worker thread, and a local file does not drop
        // connections the way a server can.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
        Ok(Self { pool, path: path.to_owned(), writer: Arc::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction once this process's earlier writers are
    /// done. Keep the returned turn until the transaction ends. SQLite's own
    /// wait for its write lock sleeps and retries, so under a steady stream
    /// of requests a worker could lose every retry for the whole busy
    /// timeout. The queue serves writers first come, first served.
    /// Writers in other processes still meet the busy timeout.
    pub(crate) async fn begin_write(&self) -> anyhow::Result<(WriteTurn, Transaction<'static, Sqlite>)> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((turn, tx))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("SQLite migration failed")?;
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_event(&self, event: NewEvent) -> anyhow::Result<InsertedEvent> {
        let (_turn, mut tx) = self.begin_write().await?;
        let inserted = super::runs_sqlite::insert_event(&mut tx, &event, Utc::now()).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn get_event(&self, id: Uuid) -> anyhow::Result<Option<Event>> {
        let row = sqlx::query(
            "select id, event_name, user_id, source, occurred_at, payload, idempotency_key, processed_at
             from grito_events where id = ?1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| event_from_row(&row)).transpose()
    }

    async fn create_subscription(&self, subscription: NewSubscription) -> anyhow::Result<Subscription> {
        let row = sqlx::query(
            "insert into grito_webhook_subscriptions
               (id, destination_name, endpoint_url, secret, enabled, event_filter, created_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             returning id, destination_name, endpoint_url, secret, enabled, event_filter, created_at",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&subscription.destination_name)
        .bind(&subscription.endpoint_url)
        .bind(&subscription.secret)
        .bind(subscription.enabled)
        .bind(serde_json::to_string(&subscription.event_filter)?)
        .bind(to_text(Utc::now()))
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
        let updated = sqlx::query("update grito_webhook_subscriptions set enabled = ?2 where id = ?1")
            .bind(id.to_string())
            .bind(enabled)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn create_automation(&self, automation: NewAutomation) -> anyhow::Result<Automation> {
        let row = sqlx::query(
            "insert into grito_automations (id, name, is_active, match_event, condition_sql, action, created_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             returning id, name, is_active, match_event, condition_sql, action, created_at",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&automation.name)
        .bind(automation.is_active)
        .bind(&automation.match_event)
        .bind(&automation.condition_sql)
        .bind(serde_json::to_string(&automation.action)?)
        .bind(to_text(Utc::now()))
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
             from grito_webhook_deliveries where event_id = ?1 order by created_at, id",
        )
        .bind(event_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn queue_stats(&self) -> anyhow::Result<QueueStats> {
        let row = sqlx::query(
            "select
               (select count(*) from grito_webhook_deliveries where status = 'PENDING') as pending,
               (select min(created_at) from grito_webhook_deliveries where status = 'PENDING') as oldest,
               (select count(*) from grito_events where processed_at is null) as unprocessed",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<String> = row.try_get("oldest")?;
        let oldest_pending_age_seconds = oldest
            .map(|text| from_text(&text))
            .transpose()?
            .map(|oldest| (Utc::now() - oldest).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
        Ok(QueueStats {
            pending_deliveries: row.try_get("pending")?,
            oldest_pending_age_seconds,
            unprocessed_events: row.try_get("unprocessed")?,
        })
    }

    async fn seed(&self, subscription: NewSubscription, automation: NewAutomation) -> anyhow::Result<SeedOutcome> {
        // BEGIN IMMEDIATE serializes writers, so the existence checks below
        // cannot race with another seed.
        let (_turn, mut tx) = self.begin_write().await?;
        let now = to_text(Utc::now());

        let subscription_created = sqlx::query(
            "insert into grito_webhook_subscriptions
               (id, destination_name, endpoint_url, secret, enabled, event_filter, created_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             on conflict (destination_name) do nothing",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&subscription.destination_name)
        .bind(&subscription.endpoint_url)
        .bind(&subscription.secret)
        .bind(subscription.enabled)
        .bind(serde_json::to_string(&subscription.event_filter)?)
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;

        let automation_created = sqlx::query(
            "insert into grito_automations (id, name, is_active, match_event, condition_sql, action, created_at)
             select ?1, ?2, ?3, ?4, ?5, ?6, ?7
             where not exists (select 1 from grito_automations where name = ?2)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&automation.name)
        .bind(automation.is_active)
        .bind(&automation.match_event)
        .bind(&automation.condition_sql)
        .bind(serde_json::to_string(&automation.action)?)
        .bind(&now)
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

fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("invalid UUID `{text}` in the SQLite database"))
}

fn optional_uuid(row: &SqliteRow, column: &str) -> anyhow::Result<Option<Uuid>> {
    row.try_get::<Option<String>, _>(column)?.as_deref().map(parse_uuid).transpose()
}

fn optional_time(row: &SqliteRow, column: &str) -> anyhow::Result<Option<chrono::DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(column)?.as_deref().map(from_text).transpose()
}

fn json_column(row: &SqliteRow, column: &str) -> anyhow::Result<serde_json::Value> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).with_context(|| format!("invalid JSON in column {column}"))
}

pub(super) fn event_from_row(row: &SqliteRow) -> anyhow::Result<Event> {
    Ok(Event {
        id: parse_uuid(row.try_get("id")?)?,
        event_name: row.try_get("event_name")?,
        user_id: parse_uuid(row.try_get("user_id")?)?,
        source: row.try_get("source")?,
        occurred_at: from_text(row.try_get("occurred_at")?)?,
        payload: json_column(row, "payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        processed_at: optional_time(row, "processed_at")?,
    })
}

pub(super) fn subscription_from_row(row: &SqliteRow) -> anyhow::Result<Subscription> {
    Ok(Subscription {
        id: parse_uuid(row.try_get("id")?)?,
        destination_name: row.try_get("destination_name")?,
        endpoint_url: row.try_get("endpoint_url")?,
        secret: row.try_get("secret")?,
        enabled: row.try_get("enabled")?,
        event_filter: serde_json::from_value(json_column(row, "event_filter")?)?,
        created_at: optional_time(row, "created_at")?,
    })
}

pub(super) fn automation_from_row(row: &SqliteRow) -> anyhow::Result<Automation> {
    Ok(Automation {
        id: parse_uuid(row.try_get("id")?)?,
        name: row.try_get("name")?,
        is_active: row.try_get("is_active")?,
        match_event: row.try_get("match_event")?,
        condition_sql: row.try_get("condition_sql")?,
        action: json_column(row, "action")?,
        created_at: optional_time(row, "created_at")?,
    })
}

fn delivery_from_row(row: &SqliteRow) -> anyhow::Result<Delivery> {
    Ok(Delivery {
        id: parse_uuid(row.try_get("id")?)?,
        subscription_id: optional_uuid(row, "subscription_id")?,
        event_id: optional_uuid(row, "event_id")?,
        status: DeliveryStatus::parse(row.try_get("status")?)?,
        attempt: row.try_get("attempt")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: optional_time(row, "next_attempt_at")?,
        created_at: optional_time(row, "created_at")?,
    })
}
