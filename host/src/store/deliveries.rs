//! Storage for the webhook dispatcher: claiming due deliveries under a lease,
//! recording attempts, listing deliveries and reprocessing the dead letter.
//!
//! A claim pushes `next_attempt_at` forward to the lease's end. That value is
//! also the claim's token: finishing an attempt updates the row only while
//! `next_attempt_at` still equals it, so a worker whose lease ran out (and
//! whose delivery another worker claimed) cannot overwrite the newer state.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Delivery, DeliveryStatus};
use crate::signals::Signals;

/// A delivery claimed by one worker, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    /// Attempts made before this claim.
    pub attempt: i32,
    /// The lease's end, as written to `next_attempt_at`; pass it back to
    /// [`DeliveryStore::finish_attempt`].
    pub lease_until: DateTime<Utc>,
    /// `None` when the delivery names no event or the event is gone.
    pub event: Option<DeliveryEvent>,
    /// `None` when the delivery names no subscription or it was deleted.
    pub subscription: Option<DeliverySubscription>,
}

/// The event fields that make up a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryEvent {
    pub id: Uuid,
    pub event_name: String,
    pub user_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub source: String,
    pub payload: serde_json::Value,
}

/// The subscription fields the dispatcher needs.
#[derive(Clone, PartialEq)]
pub struct DeliverySubscription {
    pub id: Uuid,
    pub destination_name: String,
    pub endpoint_url: String,
    pub secret: String,
    pub enabled: bool,
}

impl std::fmt::Debug for DeliverySubscription {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DeliverySubscription")
            .field("id", &self.id)
            .field("destination_name", &self.destination_name)
            .field("endpoint_url", &self.endpoint_url)
            .field("secret", &"***")
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// A delivery's state after an attempt, or after the dispatcher gave up on
/// it without sending (disabled subscription, missing event).
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    pub status: DeliveryStatus,
    /// New value of the `attempt` column.
    pub attempt: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The row for `grito_webhook_attempts`; `None` when nothing was sent.
    pub log: Option<NewAttempt>,
}

/// One HTTP attempt, as recorded in `grito_webhook_attempts`.
/// A delivery's outcome, to write under the lease it was claimed with.
#[derive(Debug, Clone)]
pub struct FinishedAttempt {
    pub delivery_id: Uuid,
    pub lease_until: DateTime<Utc>,
    pub outcome: DeliveryOutcome,
}

#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// This attempt's number, starting at 1.
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub response_status: Option<i32>,
    /// The start of the response body, at most a few KB.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A row of `grito_webhook_attempts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A delivery with the names an operator recognizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliverySummary {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// `None` when the subscription was deleted.
    pub subscription_name: Option<String>,
    /// `None` when the event is gone.
    pub event_name: Option<String>,
}

/// Which deliveries to list. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    /// The subscription's `destination_name`.
    pub subscription: Option<String>,
    /// Only deliveries created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Maximum number of rows; the newest come first.
    pub limit: u32,
}

/// Which `FAIL` deliveries to put back in the queue. Empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequeueFilter {
    /// The subscription's `destination_name`.
    pub subscription: Option<String>,
    /// Only deliveries created at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// The result of reprocessing one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueOutcome {
    /// The delivery is `PENDING` again, due at once, with `attempt` reset to 0.
    Requeued,
    /// Only `FAIL` deliveries can be reprocessed; this one has another status.
    NotFailed(DeliveryStatus),
    NotFound,
}

/// Rounds a time to whole microseconds, the precision both backends store,
/// so a lease read back compares equal to the one written.
pub fn to_stored_precision(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Claims up to `limit` `PENDING` deliveries due at `now` (`next_attempt_at`
    /// null or not after `now`), oldest due first, and sets their
    /// `next_attempt_at` to `lease_until`. Two workers never claim the same
    /// row while its lease runs.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<ClaimedDelivery>>;

    /// Writes each outcome (and its attempt row) if its delivery is still
    /// `PENDING` under the lease it was claimed with, all in one transaction.
    /// Returns, in order, whether each was written: false when the lease
    /// was lost, and then nothing of that outcome is written.
    async fn finish_attempts(&self, finished: Vec<FinishedAttempt>) -> anyhow::Result<Vec<bool>>;

    /// [`DeliveryStore::finish_attempts`] for one delivery.
    async fn finish_attempt(
        &self,
        delivery_id: Uuid,
        lease_until: DateTime<Utc>,
        outcome: DeliveryOutcome,
    ) -> anyhow::Result<bool> {
        let recorded = self.finish_attempts(vec![FinishedAttempt { delivery_id, lease_until, outcome }]).await?;
        Ok(recorded.first().copied().unwrap_or(false))
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> anyhow::Result<Vec<DeliverySummary>>;

    async fn get_delivery(&self, id: Uuid) -> anyhow::Result<Option<DeliverySummary>>;

    /// The attempts of one delivery, oldest first.
    async fn list_attempts(&self, delivery_id: Uuid) -> anyhow::Result<Vec<Attempt>>;

    /// Puts one `FAIL` delivery back to `PENDING`, due at once, with `attempt`
    /// reset to 0. On PostgreSQL, other nodes are notified.
    async fn requeue_delivery(&self, id: Uuid) -> anyhow::Result<RequeueOutcome>;

    /// Puts every `FAIL` delivery matching `filter` back to `PENDING`, like
    /// [`DeliveryStore::requeue_delivery`], and returns their ids.
    async fn requeue_failed(&self, filter: &RequeueFilter) -> anyhow::Result<Vec<Uuid>>;

    /// Starts a task that wakes `signals.deliveries` when another process
    /// queues deliveries (PostgreSQL `LISTEN`). `None` on backends that
    /// cannot notify across processes; their workers rely on the sweep.
    fn spawn_delivery_listener(&self, signals: Arc<Signals>) -> Option<tokio::task::JoinHandle<()>>;
}
