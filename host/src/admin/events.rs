//! `/admin/events`: list with filters and a cursor, show with runs and
//! deliveries, and replay.
//!
//! Replay re-delivers only: it queues a delivery for each enabled matching
//! subscription that has none for the event (one added after the event, or
//! re-enabled), and puts the event's `FAIL` deliveries back to `PENDING`.
//! It does not re-run automations, because each (automation, event) pair
//! runs at most once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::openapi::ErrorBody;
use super::request::{parse_id, parse_query, store_error};
use crate::api::{ApiError, AppState};
use crate::dispatcher::admin::require_admin;
use crate::store::{DeliveryStatus, Event, EventCursor, EventQuery, RequeueOutcome, Store};

/// Default and maximum page sizes of the event list.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// A stored event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub event_name: String,
    pub user_id: Uuid,
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl From<Event> for EventView {
    fn from(event: Event) -> Self {
        Self {
            id: event.id,
            event_name: event.event_name,
            user_id: event.user_id,
            source: event.source,
            occurred_at: event.occurred_at,
            payload: event.payload,
            idempotency_key: event.idempotency_key,
            processed_at: event.processed_at,
        }
    }
}

/// One page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An event with its automation runs and webhook deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<serde_json::Value>,
}

/// What a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOutcome {
    pub event_id: Uuid,
    /// Deliveries created for subscriptions that had none for this event.
    pub created: Vec<Uuid>,
    /// `FAIL` deliveries put back to `PENDING`.
    pub requeued: Vec<Uuid>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Exact event name.
    pub name: Option<String>,
    /// User id (UUID).
    pub user: Option<String>,
    /// Exact source.
    pub source: Option<String>,
    /// Only events with occurred_at at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only events with occurred_at before this RFC 3339 time.
    pub until: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "list_events", path = "/admin/events", tag = "admin", params(ListQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Json<EventPage>, ApiError> {
    require_admin(&state, &headers)?;
    let params: ListQuery = parse_query(&uri)?;
    let query = EventQuery {
        event_name: params.name,
        user_id: params.user.as_deref().map(|text| parse_field_uuid(text, "user")).transpose()?,
        source: params.source,
        since: params.since.as_deref().map(|text| parse_time(text, "since")).transpose()?,
        until: params.until.as_deref().map(|text| parse_time(text, "until")).transpose()?,
        after: params.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };

    let events = state.store.list_events(&query).await.map_err(store_error)?;
    let next_cursor = match events.last() {
        Some(last) if events.len() == query.limit as usize => Some(encode_cursor(&EventCursor { occurred_at: last.occurred_at, id: last.id })),
        _ => None,
    };
    Ok(Json(EventPage { events: events.into_iter().map(Into::into).collect(), next_cursor }))
}

#[utoipa::path(get, operation_id = "show_event", path = "/admin/events/{id}", tag = "admin",
    params(("id" = String, Path, description = "Event id (UUID)")),
    responses((status = 200, body = EventDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn show(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<EventDetail>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "event")?;
    let Some(event) = state.store.get_event(id).await.map_err(store_error)? else {
        return Err(not_found());
    };
    let runs = state.store.list_runs_for_event(id).await.map_err(store_error)?;
    let deliveries = state.store.list_deliveries_for_event(id).await.map_err(store_error)?;
    let to_json = |value: serde_json::Result<serde_json::Value>| value.map_err(|error| ApiError::internal(&error.into()));
    Ok(Json(EventDetail {
        event: event.into(),
        runs: runs.iter().map(|run| to_json(serde_json::to_value(run))).collect::<Result<_, _>>()?,
        deliveries: deliveries.iter().map(|delivery| to_json(serde_json::to_value(delivery))).collect::<Result<_, _>>()?,
    }))
}

#[utoipa::path(post, operation_id = "replay_event", path = "/admin/events/{id}/replay", tag = "admin",
    params(("id" = String, Path, description = "Event id (UUID)")),
    responses((status = 200, body = ReplayOutcome), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn replay(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<ReplayOutcome>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "event")?;
    let Some(outcome) = replay_event(state.store.as_ref(), id).await.map_err(store_error)? else {
        return Err(not_found());
    };

    if !outcome.created.is_empty() || !outcome.requeued.is_empty() {
        state.signals.deliveries.notify_one();
    }
    tracing::info!(event_id = %id, created = outcome.created.len(), requeued = outcome.requeued.len(), "event replayed through the admin API");
    Ok(Json(outcome))
}

/// Replays an event as the module documentation describes; `None` when
/// the event does not exist. Waking the dispatcher is the caller's part.
pub async fn replay_event(store: &dyn Store, id: Uuid) -> anyhow::Result<Option<ReplayOutcome>> {
    if store.get_event(id).await?.is_none() {
        return Ok(None);
    }

    let created = store.create_missing_deliveries(id).await?;
    let mut requeued = Vec::new();
    for delivery in store.list_deliveries_for_event(id).await? {
        if delivery.status == DeliveryStatus::Fail && store.requeue_delivery(delivery.id).await? == RequeueOutcome::Requeued {
            requeued.push(delivery.id);
        }
    }
    Ok(Some(ReplayOutcome { event_id: id, created, requeued }))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "event not found", "evento não encontrado")
}

fn parse_field_uuid(text: &str, field: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{field} `{text}` is not a UUID"),
            format!("{field} `{text}` não é um UUID"),
        )
        .with_fields([field])
    })
}

fn parse_time(text: &str, field: &'static str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{field} `{text}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"),
            format!("{field} `{text}` não é uma data RFC 3339 como 2026-01-31T12:00:00Z"),
        )
        .with_fields([field])
    })
}

/// Encodes a cursor as URL-safe base64 of `<RFC 3339 time>|<id>`.
pub fn encode_cursor(cursor: &EventCursor) -> String {
    let text = format!("{}|{}", cursor.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), cursor.id);
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(text: &str) -> Result<EventCursor, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "cursor is not a next_cursor returned by this API",
            "cursor não é um next_cursor devolvido por esta API",
        )
        .with_fields(["cursor"])
    };
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (time, id) = decoded.split_once('|').ok_or_else(invalid)?;
    let occurred_at = DateTime::parse_from_rfc3339(time).map_err(|_| invalid())?.with_timezone(&Utc);
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(EventCursor { occurred_at, id })
}
