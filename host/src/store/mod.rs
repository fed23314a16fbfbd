//! Durable state: one `Store` interface, one implementation per backend.
//!
//! SQLite is the embedded default and PostgreSQL the production backend. Both
//! keep the brief's four tables with the same names and columns, and the same
//! integration tests run against both.

pub mod activity;
pub mod admin;
mod admin_pg;
mod admin_sqlite;
mod deliveries;
mod deliveries_pg;
mod deliveries_sqlite;
mod event_writer_pg;
pub mod inbound;
mod inbound_pg;
mod inbound_sqlite;
pub mod outbox;
mod outbox_pg;
mod outbox_sqlite;
mod postgres;
mod sqlite;
pub mod runs;
mod runs_pg;
mod runs_sqlite;
pub mod time;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use activity::{ActivityFilter, ActivityStore, LastActivity};
pub use admin::{AdminStore, AutomationChanges, EventCursor, EventQuery, SubscriptionChanges, SubscriptionDeletion};
pub use deliveries::{
    Attempt, ClaimedDelivery, DeliveryEvent, DeliveryFilter, DeliveryOutcome, DeliveryStore, DeliverySubscription,
    DeliverySummary, FinishedAttempt, NewAttempt, RequeueFilter, RequeueOutcome,
};
pub use inbound::{EventDraft, Identity, IdentityChange, InboundStore, NewParked, ParkOutcome, ParkedEvent};
pub use outbox::{EmailStatus, NewEmail, OutboxEmail, OutboxStore};
pub use postgres::PgStore;
pub use runs::{AutomationRun, CommitOutcome, EventRuns, PlannedEffect, PlannedRun, RunStatus, RunStore};
pub use sqlite::SqliteStore;

/// Database location, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

impl DatabaseUrl {
    /// Parses `postgres://…`, `postgresql://…` or `sqlite://PATH` (also `sqlite:PATH`).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            anyhow::ensure!(!path.is_empty(), "DATABASE_URL `{url}` names no SQLite file");
            return Ok(Self::Sqlite(path.into()));
        }
        anyhow::bail!(
            "DATABASE_URL must start with postgres://, postgresql:// or sqlite://, got `{}`",
            redact_url(url)
        )
    }

    /// Returns the URL with any password replaced, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(url) => redact_url(url),
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Opens the backend named by `url` and runs its migrations.
pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match url {
        DatabaseUrl::Postgres(url) => Arc::new(PgStore::connect(url).await?),
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
    };
    store.migrate().await?;
    Ok(store)
}

/// A validated event, ready to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_name: String,
    pub user_id: Uuid,
    pub source: String,
    /// `None` stores the time of insertion.
    pub occurred_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Map<String, serde_json::Value>,
    pub idempotency_key: Option<String>,
}

/// The result of storing an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertedEvent {
    pub id: Uuid,
    /// True when an event with the same idempotency key already existed; `id`
    /// is then that first event's id and nothing new was written.
    pub dedup: bool,
    /// Deliveries queued in the same transaction (zero when `dedup`).
    pub deliveries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: Uuid,
    pub event_name: String,
    pub user_id: Uuid,
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub destination_name: String,
    pub endpoint_url: String,
    pub secret: String,
    pub enabled: bool,
    pub event_filter: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub id: Uuid,
    pub destination_name: String,
    pub endpoint_url: String,
    #[serde(skip)]
    pub secret: String,
    pub enabled: bool,
    pub event_filter: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewAutomation {
    pub name: String,
    pub is_active: bool,
    pub match_event: String,
    pub condition_sql: Option<String>,
    pub action: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Automation {
    pub id: Uuid,
    pub name: String,
    pub is_active: bool,
    pub match_event: String,
    pub condition_sql: Option<String>,
    pub action: serde_json::Value,
    pub created_at: Option<DateTime<Utc>>,
}

/// Delivery states, spelled as the brief's `status` column stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeliveryStatus {
    #[serde(rename = "PENDING")]
    Pending,
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "FAIL")]
    Fail,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Ok => "OK",
            Self::Fail => "FAIL",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "PENDING" => Ok(Self::Pending),
            "OK" => Ok(Self::Ok),
            "FAIL" => Ok(Self::Fail),
            other => anyhow::bail!("unknown delivery status `{other}` in grito_webhook_deliveries"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub status: DeliveryStatus,
    pub attempt: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Queue figures for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueueStats {
    pub pending_deliveries: i64,
    /// Age in seconds of the oldest `PENDING` delivery, if any.
    pub oldest_pending_age_seconds: Option<f64>,
    pub unprocessed_events: i64,
}

/// What `grito seed` wrote: false where the row already existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOutcome {
    pub subscription_created: bool,
    pub automation_created: bool,
}

/// The storage interface. Every method behaves the same on both backends.
#[async_trait]
pub trait Store: ActivityStore + AdminStore + DeliveryStore + RunStore + OutboxStore + InboundStore + Send + Sync + 'static {
    /// Backend name for logs and health: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> anyhow::Result<()>;

    /// Checks that the database answers.
    async fn ping(&self) -> anyhow::Result<()>;

    /// Stores an event and, in the same transaction, one `PENDING` delivery
    /// per enabled subscription whose `event_filter` contains its name.
    /// A repeated idempotency key stores nothing and returns the first id,
    /// also under concurrent duplicates.
    async fn insert_event(&self, event: NewEvent) -> anyhow::Result<InsertedEvent>;

    async fn get_event(&self, id: Uuid) -> anyhow::Result<Option<Event>>;

    async fn create_subscription(&self, subscription: NewSubscription) -> anyhow::Result<Subscription>;

    async fn list_subscriptions(&self) -> anyhow::Result<Vec<Subscription>>;

    /// Enables or disables a subscription; false when it does not exist.
    async fn set_subscription_enabled(&self, id: Uuid, enabled: bool) -> anyhow::Result<bool>;

    async fn create_automation(&self, automation: NewAutomation) -> anyhow::Result<Automation>;

    async fn list_automations(&self) -> anyhow::Result<Vec<Automation>>;

    async fn list_deliveries_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<Delivery>>;

    async fn queue_stats(&self) -> anyhow::Result<QueueStats>;

    /// Writes the brief's seed rows unless rows with their names exist.
    async fn seed(
        &self,
        subscription: NewSubscription,
        automation: NewAutomation,
    ) -> anyhow::Result<SeedOutcome>;

    /// Closes the connection pool; later calls fail.
    async fn close(&self);
}
