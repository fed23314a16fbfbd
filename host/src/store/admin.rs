//! Storage the admin API and the operator CLI need beyond the engine's and
//! the dispatcher's: subscription and automation edits, and event listing
//! with filters and a cursor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Automation, Event, Subscription};

/// Changes to a subscription; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChanges {
    pub destination_name: Option<String>,
    pub endpoint_url: Option<String>,
    pub enabled: Option<bool>,
    pub event_filter: Option<Vec<String>>,
}

/// The result of deleting a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionDeletion {
    /// Deleted, with this many of its deliveries (and their attempts).
    Deleted { deliveries: u64 },
    /// Not deleted because deliveries reference it and `force` was false.
    HasDeliveries(u64),
    NotFound,
}

/// Changes to an automation; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct AutomationChanges {
    pub name: Option<String>,
    pub is_active: Option<bool>,
    pub match_event: Option<String>,
    /// `Some(None)` clears the condition.
    pub condition_sql: Option<Option<String>>,
    pub action: Option<serde_json::Value>,
}

/// The position after the last event of a page, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub occurred_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Filters for listing events, newest first. Every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_name: Option<String>,
    pub user_id: Option<Uuid>,
    pub source: Option<String>,
    /// Events with `occurred_at >= since`.
    pub since: Option<DateTime<Utc>>,
    /// Events with `occurred_at < until`.
    pub until: Option<DateTime<Utc>>,
    /// Events strictly after this position in (occurred_at, id) descending order.
    pub after: Option<EventCursor>,
    pub limit: u32,
}

/// The subscription edits and event queries of the admin API and the CLI.
#[async_trait]
pub trait AdminStore {
    async fn get_subscription(&self, id: Uuid) -> anyhow::Result<Option<Subscription>>;

    /// Applies `changes`; `None` when the subscription does not exist.
    async fn update_subscription(&self, id: Uuid, changes: SubscriptionChanges) -> anyhow::Result<Option<Subscription>>;

    /// Replaces the signing secret; false when the subscription does not exist.
    async fn set_subscription_secret(&self, id: Uuid, secret: &str) -> anyhow::Result<bool>;

    /// Deletes a subscription. With deliveries referencing it, deletes them
    /// too (attempts cascade) when `force`, in one transaction; otherwise
    /// deletes nothing.
    async fn delete_subscription(&self, id: Uuid, force: bool) -> anyhow::Result<SubscriptionDeletion>;

    async fn get_automation(&self, id: Uuid) -> anyhow::Result<Option<Automation>>;

    /// Applies `changes`; `None` when the automation does not exist.
    async fn update_automation(&self, id: Uuid, changes: AutomationChanges) -> anyhow::Result<Option<Automation>>;

    /// Deletes an automation and its runs; false when it does not exist.
    async fn delete_automation(&self, id: Uuid) -> anyhow::Result<bool>;

    /// Events matching `query`, newest first (by occurred_at, then id).
    async fn list_events(&self, query: &EventQuery) -> anyhow::Result<Vec<Event>>;

    /// Queues a `PENDING` delivery for every enabled subscription whose
    /// filter names the event and that has no delivery for it yet. Returns
    /// the new delivery ids.
    async fn create_missing_deliveries(&self, event_id: Uuid) -> anyhow::Result<Vec<Uuid>>;
}
