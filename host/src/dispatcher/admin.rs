//! The admin HTTP API for deliveries: list, show with attempts, and
//! reprocess the dead letter. Every route needs `X-Admin-Key` equal to
//! `ADMIN_API_KEY`; while that setting is unset the routes respond 403, so the
//! admin API is never open.
//!
//! - `GET  /admin/deliveries?status=FAIL&subscription=NAME&limit=50`
//! - `GET  /admin/deliveries/{id}`
//! - `POST /admin/deliveries/{id}/retry`
//! - `POST /admin/deliveries/retry` with `{"subscription": NAME, "since": RFC3339}` (both optional)

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::api::{ApiError, AppState, check_key, parse_json, read_body};
use crate::store::{Attempt, DeliveryFilter, DeliveryStatus, DeliverySummary, RequeueFilter, RequeueOutcome};

/// The header that carries `ADMIN_API_KEY`.
pub const ADMIN_KEY_HEADER: &str = "X-Admin-Key";
/// Most deliveries one list request returns.
const MAX_LIST_LIMIT: u32 = 1000;

/// The delivery routes, to merge into the app's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/deliveries", get(list))
        .route("/admin/deliveries/retry", post(retry_failed))
        .route("/admin/deliveries/{id}", get(show))
        .route("/admin/deliveries/{id}/retry", post(retry_one))
}

/// Checks `X-Admin-Key` in constant time; 403 while `ADMIN_API_KEY` is unset.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.admin_api_key.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is disabled because ADMIN_API_KEY is not set; set it to a long random secret \
             and send it in X-Admin-Key",
            "a API de administração está desativada porque ADMIN_API_KEY não está definida; defina uma \
             chave longa e aleatória e envie-a em X-Admin-Key",
        ));
    };
    check_key(headers, ADMIN_KEY_HEADER, expected)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    subscription: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<DeliverySummary>>, ApiError> {
    require_admin(&state, &headers)?;
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let filter = DeliveryFilter {
        status,
        subscription: query.subscription,
        since: query.since,
        limit: query.limit.unwrap_or(100).clamp(1, MAX_LIST_LIMIT),
    };
    let deliveries = state.store.list_deliveries(&filter).await.map_err(|error| ApiError::internal(&error))?;
    Ok(Json(deliveries))
}

#[derive(Debug, Serialize)]
struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliverySummary,
    attempts: Vec<Attempt>,
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id)?;
    let internal = |error: anyhow::Error| ApiError::internal(&error);
    let Some(delivery) = state.store.get_delivery(id).await.map_err(internal)? else {
        return Err(ApiError::not_found("delivery", "entrega"));
    };
    let attempts = state.store.list_attempts(id).await.map_err(internal)?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}

async fn retry_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id)?;
    match state.store.requeue_delivery(id).await.map_err(|error| ApiError::internal(&error))? {
        RequeueOutcome::Requeued => {
            state.signals.deliveries.notify_one();
            tracing::info!(delivery_id = %id, status = "PENDING", "delivery reprocessed through the admin API");
            Ok(Json(json!({"ok": true, "id": id, "status": "PENDING"})))
        }
        RequeueOutcome::NotFailed(status) => Err(not_failed(status)),
        RequeueOutcome::NotFound => Err(ApiError::not_found("delivery", "entrega")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFilter {
    subscription: Option<String>,
    since: Option<DateTime<Utc>>,
}

async fn retry_failed(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let filter = if bytes.iter().all(u8::is_ascii_whitespace) {
        RetryFilter::default()
    } else {
        crate::api::require_json(&headers)?;
        serde_json::from_value::<RetryFilter>(parse_json(&bytes)?).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_filter",
                format!("invalid retry filter: {error}; expected {{\"subscription\": NAME, \"since\": RFC 3339 time}}"),
                format!("filtro inválido: {error}; esperado {{\"subscription\": NOME, \"since\": data RFC 3339}}"),
            )
            .with_fields(["body"])
        })?
    };

    let filter = RequeueFilter { subscription: filter.subscription, since: filter.since };
    let ids = state.store.requeue_failed(&filter).await.map_err(|error| ApiError::internal(&error))?;
    if !ids.is_empty() {
        state.signals.deliveries.notify_one();
    }
    tracing::info!(
        requeued = ids.len(),
        subscription = filter.subscription.as_deref(),
        since = filter.since.map(|since| since.to_rfc3339()),
        "failed deliveries reprocessed through the admin API"
    );
    Ok(Json(json!({"ok": true, "requeued": ids.len(), "ids": ids})))
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("`{text}` is not a delivery id (a UUID)"),
            format!("`{text}` não é um id de entrega (um UUID)"),
        )
        .with_fields(["id"])
    })
}

fn parse_status(text: &str) -> Result<DeliveryStatus, ApiError> {
    DeliveryStatus::parse(&text.to_ascii_uppercase()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_status",
            format!("invalid status `{text}`: expected PENDING, OK or FAIL"),
            format!("status inválido `{text}`: esperado PENDING, OK ou FAIL"),
        )
        .with_fields(["status"])
    })
}

fn not_failed(status: DeliveryStatus) -> ApiError {
    let status = status.as_str();
    ApiError::new(
        StatusCode::CONFLICT,
        "delivery_not_failed",
        format!("only FAIL deliveries can be reprocessed; this one is {status}"),
        format!("só entregas FAIL podem ser reprocessadas; esta está {status}"),
    )
}
