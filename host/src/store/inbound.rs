//! Storage for inbound sources: the identity map (external id → user) and
//! parked events, the drafts that wait for an identity to be mapped.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One row of `grito_identities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub source: String,
    pub external_id: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`InboundStore::set_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityChange {
    Created,
    /// The mapping already pointed at this user.
    Unchanged,
    /// The mapping pointed at `previous` and now points at the new user.
    Replaced {
        previous: Uuid,
    },
    /// The mapping points at `existing` and was kept, because the caller
    /// asked not to replace it.
    Kept {
        existing: Uuid,
    },
}

/// An event as it will be stored once its user is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDraft {
    pub event_name: String,
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Map<String, serde_json::Value>,
    pub idempotency_key: String,
}

/// A draft to park until `external_id` of `identity_source` is mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct NewParked {
    /// The inbound source that sent it, for example `stripe`.
    pub source: String,
    pub identity_source: String,
    /// `None` when the inbound event named no external id at all; such a row
    /// is published only by hand.
    pub external_id: Option<String>,
    pub draft: EventDraft,
    pub reason: String,
}

/// One row of `grito_inbound_parked`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedEvent {
    pub id: Uuid,
    pub source: String,
    pub identity_source: String,
    pub external_id: Option<String>,
    pub draft: EventDraft,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub published_event_id: Option<Uuid>,
}

/// The result of parking a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkOutcome {
    pub id: Uuid,
    /// False when a row with the draft's idempotency key already existed;
    /// `id` is then that row's id and nothing was written.
    pub created: bool,
}

#[async_trait]
pub trait InboundStore: Send + Sync {
    /// Returns the user mapped to `external_id` of `source`, if any.
    async fn lookup_identity(
        &self,
        source: &str,
        external_id: &str,
    ) -> anyhow::Result<Option<Uuid>>;

    async fn get_identity(
        &self,
        source: &str,
        external_id: &str,
    ) -> anyhow::Result<Option<Identity>>;

    /// Maps `external_id` of `source` to `user_id`. An existing mapping to
    /// another user is replaced only when `replace` is true.
    async fn set_identity(
        &self,
        source: &str,
        external_id: &str,
        user_id: Uuid,
        replace: bool,
    ) -> anyhow::Result<IdentityChange>;

    /// Removes a mapping; false when there was none.
    async fn delete_identity(&self, source: &str, external_id: &str) -> anyhow::Result<bool>;

    /// Parks a draft once per idempotency key.
    async fn park_event(&self, parked: NewParked) -> anyhow::Result<ParkOutcome>;

    async fn get_parked(&self, id: Uuid) -> anyhow::Result<Option<ParkedEvent>>;

    /// Lists parked rows, oldest first; published ones only when asked.
    async fn list_parked(
        &self,
        include_published: bool,
        limit: u32,
    ) -> anyhow::Result<Vec<ParkedEvent>>;

    /// Unpublished rows waiting on `external_id` of `identity_source`, oldest first.
    async fn parked_waiting_on(
        &self,
        identity_source: &str,
        external_id: &str,
    ) -> anyhow::Result<Vec<ParkedEvent>>;

    /// Records that parked row `id` became event `event_id`; false when the
    /// row does not exist or was already published.
    async fn mark_parked_published(
        &self,
        id: Uuid,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
}
