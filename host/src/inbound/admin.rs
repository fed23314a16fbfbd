//! The admin HTTP API for parked inbound events, behind `X-Admin-Key` like
//! the other admin routes.
//!
//! - `GET /admin/inbound/parked?all=true&limit=100`

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::api::{ApiError, AppState};
use crate::dispatcher::admin::require_admin;
use crate::store::ParkedEvent;

/// Most rows one list request returns.
const MAX_LIST_LIMIT: u32 = 1000;

/// Builds the parked-event routes, to merge into the app's router.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/inbound/parked", get(list))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Include published rows too.
    #[serde(default)]
    all: bool,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<ParkedEvent>>, ApiError> {
    require_admin(&state, &headers)?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIST_LIMIT);
    let parked = state
        .store
        .list_parked(query.all, limit)
        .await
        .map_err(|error| ApiError::from_store(&error))?;
    Ok(Json(parked))
}
