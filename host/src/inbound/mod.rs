//! Inbound events whose user comes from an identity map: storing a draft
//! once its user is known, parking it while the user is unknown, and
//! publishing parked drafts when their mapping arrives. Stripe uses it, and
//! any other source that names users by its own ids can.
//!
//! Publishing goes through [`crate::ingest::accept`] with the draft's
//! idempotency key, then marks the parked row. A crash between the two steps
//! is harmless: the next attempt finds the stored event by its key.

pub mod admin;
pub mod cli;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ingest;
use crate::signals::Signals;
use crate::store::{
    EventDraft, IdentityChange, InsertedEvent, NewEvent, NewParked, ParkedEvent, Store,
};

/// The identity an inbound event names its user by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The identity map's `source`, for example `stripe`.
    pub source: String,
    /// `None` when the inbound event carries no id to look up.
    pub external_id: Option<String>,
}

/// The fate of one draft: stored or parked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DraftOutcome {
    /// Stored as event `id` (or found stored already, when `dedup`).
    Stored {
        event_name: String,
        id: Uuid,
        user_id: Uuid,
        dedup: bool,
    },
    /// Parked as row `parked_id` until its user is known.
    Parked {
        event_name: String,
        parked_id: Uuid,
        reason: String,
    },
}

/// A parked row that became an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub parked_id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    /// True when the event had been stored before (a crash between storing
    /// and marking, or the same draft arriving again after its mapping).
    pub dedup: bool,
}

/// Stores `draft` for `user` when given, else for the user mapped to
/// `identity`; parks it when neither is known.
pub async fn store_or_park(
    store: &dyn Store,
    signals: &Signals,
    draft: EventDraft,
    user: Option<Uuid>,
    identity: &ExternalIdentity,
) -> anyhow::Result<DraftOutcome> {
    let mapped = match (&user, &identity.external_id) {
        (None, Some(external_id)) => store.lookup_identity(&identity.source, external_id).await?,
        _ => None,
    };
    if let Some(user_id) = user.or(mapped) {
        let event_name = draft.event_name.clone();
        let inserted = ingest::accept(store, signals, new_event(&draft, user_id)?).await?;
        return Ok(DraftOutcome::Stored {
            event_name,
            id: inserted.id,
            user_id,
            dedup: inserted.dedup,
        });
    }

    let reason = match &identity.external_id {
        Some(external_id) => format!(
            "no user is mapped to {} id {external_id} yet",
            identity.source
        ),
        None => format!("the event names no user id and no {} id", identity.source),
    };
    let event_name = draft.event_name.clone();
    let parked = store
        .park_event(NewParked {
            source: draft.source.clone(),
            identity_source: identity.source.clone(),
            external_id: identity.external_id.clone(),
            draft,
            reason: reason.clone(),
        })
        .await?;
    tracing::info!(
        parked_id = %parked.id,
        event_name,
        identity_source = identity.source,
        external_id = identity.external_id.as_deref().unwrap_or_default(),
        created = parked.created,
        "inbound event parked"
    );

    // The mapping may have been written between the look-up and the park;
    // publishing now keeps the row from waiting for a mapping that exists.
    if let Some(external_id) = &identity.external_id {
        publish_waiting(store, signals, &identity.source, external_id, Utc::now()).await?;
    }
    Ok(DraftOutcome::Parked {
        event_name,
        parked_id: parked.id,
        reason,
    })
}

/// Maps `external_id` of `source` to `user_id`, then publishes the rows
/// waiting on it. With `replace` false an existing mapping to another user
/// is kept (and logged); the waiting rows then go to that user.
pub async fn set_identity(
    store: &dyn Store,
    signals: &Signals,
    source: &str,
    external_id: &str,
    user_id: Uuid,
    replace: bool,
) -> anyhow::Result<(IdentityChange, Vec<Published>)> {
    let change = store
        .set_identity(source, external_id, user_id, replace)
        .await?;
    match change {
        IdentityChange::Created | IdentityChange::Replaced { .. } => {
            tracing::info!(source, external_id, %user_id, "identity mapped");
        }
        IdentityChange::Unchanged => {}
        IdentityChange::Kept { existing } => {
            tracing::warn!(
                source,
                external_id,
                %user_id,
                existing_user_id = %existing,
                "identity conflict: kept the existing mapping"
            );
        }
    }

    let published = publish_waiting(store, signals, source, external_id, Utc::now()).await?;
    Ok((change, published))
}

/// Publishes every unpublished row waiting on `external_id` of `source`,
/// for the user it is mapped to now; nothing when it is not mapped.
pub async fn publish_waiting(
    store: &dyn Store,
    signals: &Signals,
    source: &str,
    external_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Published>> {
    let Some(user_id) = store.lookup_identity(source, external_id).await? else {
        return Ok(Vec::new());
    };

    let mut published = Vec::new();
    for parked in store.parked_waiting_on(source, external_id).await? {
        published.push(publish(store, signals, &parked, user_id, now).await?);
    }
    Ok(published)
}

/// Stores a parked row's draft for `user_id` and marks the row published.
pub async fn publish(
    store: &dyn Store,
    signals: &Signals,
    parked: &ParkedEvent,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Published> {
    let inserted: InsertedEvent =
        ingest::accept(store, signals, new_event(&parked.draft, user_id)?).await?;

    let marked = store
        .mark_parked_published(parked.id, inserted.id, now)
        .await?;
    tracing::info!(
        parked_id = %parked.id,
        event_id = %inserted.id,
        %user_id,
        event_name = parked.draft.event_name,
        marked,
        "parked event published"
    );
    Ok(Published {
        parked_id: parked.id,
        event_id: inserted.id,
        user_id,
        dedup: inserted.dedup,
    })
}

/// Builds the event through `POST /events`' own validation, so a translated
/// draft is held to exactly the rules an app's event is.
pub fn new_event(draft: &EventDraft, user_id: Uuid) -> anyhow::Result<NewEvent> {
    let body: Value = json!({
        "event_name": draft.event_name,
        "user_id": user_id,
        "source": draft.source,
        "occurred_at": draft.occurred_at.to_rfc3339(),
        "payload": draft.payload,
        "idempotency_key": draft.idempotency_key,
    });
    ingest::parse_event(&body).map_err(|error| {
        anyhow::anyhow!(
            "the {} draft with key {} is not a valid event: {} ({})",
            draft.event_name,
            draft.idempotency_key,
            error.message_en,
            error.code
        )
    })
}
