//! Storage for the automation engine: leases on unprocessed events, and the
//! one transaction that writes an event's runs, their effects and the
//! event's `processed_at`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::outbox::NewEmail;
use super::{Automation, Event, InsertedEvent, NewEvent, Subscription};

/// The outcome of one automation on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The condition was false, so the action did not run.
    Skipped,
    /// The action ran and its effects were written.
    Succeeded,
    /// The condition, the action or one of its effects failed; nothing of
    /// the run but this record was written.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "skipped" => Ok(Self::Skipped),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => anyhow::bail!("unknown run status `{other}` in grito_automation_runs"),
        }
    }
}

/// An effect the engine has prepared (email rendered, event validated) and
/// the store carries out inside the run's transaction.
#[derive(Debug, Clone)]
pub enum PlannedEffect {
    /// A row in the email outbox.
    Email(NewEmail),
    /// A `PENDING` delivery of the run's event to the subscription whose
    /// `destination_name` is `endpoint_ref`.
    Webhook { endpoint_ref: String },
    /// A new event, stored like one from `POST /events`.
    Event(NewEvent),
}

/// A run as the engine decided it, before it is written.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub id: Uuid,
    pub automation_id: Uuid,
    pub status: RunStatus,
    pub condition_result: Option<bool>,
    /// Carried out only when `status` is `Succeeded`.
    pub effects: Vec<PlannedEffect>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl PlannedRun {
    /// Returns a failed copy of this run with `error`, keeping the condition result if there was one.
    pub fn failed(&self, error: String) -> Self {
        Self {
            status: RunStatus::Failed,
            effects: Vec::new(),
            error: Some(error),
            ..self.clone()
        }
    }
}

/// One claimed event and the runs the engine decided for it.
#[derive(Debug, Clone)]
pub struct EventRuns {
    pub event_id: Uuid,
    pub runs: Vec<PlannedRun>,
}

/// A run as written, with what its effects produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationRun {
    pub id: Uuid,
    pub automation_id: Uuid,
    pub event_id: Uuid,
    pub status: RunStatus,
    pub condition_result: Option<bool>,
    /// JSON array describing each effect carried out, with the ids it created.
    pub effects: Option<Value>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: DateTime<Utc>,
}

/// The rows `commit_runs` wrote.
#[derive(Debug, Clone, Default)]
pub struct CommitOutcome {
    /// False when another worker had already processed the event: nothing was written.
    pub committed: bool,
    /// The runs written, in the order given. A run whose effect was rejected
    /// is here as `Failed` with the reason.
    pub runs: Vec<AutomationRun>,
    /// Automations that already had a run for this event, so were not run again.
    pub already_recorded: Vec<Uuid>,
    pub emails: u64,
    /// Deliveries created by webhook effects and by emitted events' fan-out.
    pub deliveries: u64,
    /// Events stored by `EmitEvent` effects, with their name and source.
    pub emitted: Vec<(String, String, InsertedEvent)>,
}

/// A reason the store refuses an effect, which fails its run (and only its run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectRejected(pub String);

/// Describes a webhook effect's result for the run's `effects` column.
pub(crate) fn webhook_effect_json(endpoint_ref: &str, subscription_id: Uuid, delivery_id: Option<Uuid>) -> Value {
    json!({
        "type": "deliver_webhook",
        "endpoint_ref": endpoint_ref,
        "subscription_id": subscription_id,
        // null when the subscription already had a delivery for this event
        "delivery_id": delivery_id,
    })
}

pub(crate) fn email_effect_json(outbox_id: Uuid, email: &NewEmail) -> Value {
    json!({
        "type": "send_email",
        "outbox_id": outbox_id,
        "template_id": email.template_id,
        "to": email.to,
    })
}

pub(crate) fn event_effect_json(event: &NewEvent, inserted: &InsertedEvent) -> Value {
    json!({
        "type": "emit_event",
        "event_id": inserted.id,
        "event_name": event.event_name,
        "dedup": inserted.dedup,
    })
}

/// Formats the error of a run whose webhook effect names no subscription.
pub fn unknown_endpoint_message(endpoint_ref: &str) -> String {
    format!(
        "webhook action failed: no subscription has destination_name `{endpoint_ref}`; \
         create it or fix the action's endpoint_ref"
    )
}

pub fn disabled_endpoint_message(endpoint_ref: &str) -> String {
    format!("webhook action failed: subscription `{endpoint_ref}` is disabled; enable it or fix the action's endpoint_ref")
}

/// Storage for the automation engine. Same behaviour on both backends.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Leases up to `limit` unprocessed events whose lease is free or has
    /// expired at `now`, oldest first, until `now + lease`. On PostgreSQL the
    /// claim skips rows another worker is claiming at the same moment.
    async fn claim_events(&self, worker: &str, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<Event>>;

    /// Drops the lease on an event so the next sweep retries it at once.
    async fn release_event(&self, event_id: Uuid) -> anyhow::Result<()>;

    /// Writes the runs of a batch of events in one transaction, and returns
    /// one outcome per event in the batch's order. For each event still
    /// unprocessed it writes each run that has no record yet with its
    /// effects (an effect the store rejects fails its run and writes nothing
    /// else of it), sets `processed_at` to `now` and drops the lease. An
    /// event another worker already processed gets an outcome with
    /// `committed` false. A database error rolls the whole batch back.
    async fn commit_batch(&self, batch: Vec<EventRuns>, now: DateTime<Utc>) -> anyhow::Result<Vec<CommitOutcome>>;

    /// [`RunStore::commit_batch`] for a single event.
    async fn commit_runs(&self, event_id: Uuid, runs: Vec<PlannedRun>, now: DateTime<Utc>) -> anyhow::Result<CommitOutcome> {
        let mut outcomes = self.commit_batch(vec![EventRuns { event_id, runs }], now).await?;
        outcomes.pop().ok_or_else(|| anyhow::anyhow!("commit_batch returned no outcome for event {event_id}"))
    }

    async fn list_runs_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<AutomationRun>>;

    /// Finds the subscription named `destination_name`.
    async fn find_subscription_by_destination(&self, destination_name: &str) -> anyhow::Result<Option<Subscription>>;

    /// Finds the automation with this id, or else the one with this name
    /// (the oldest when several share it).
    async fn find_automation(&self, id_or_name: &str) -> anyhow::Result<Option<Automation>>;
}
