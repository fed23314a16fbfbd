//! `POST /events`: the app's way in.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use uuid::Uuid;

use super::{ApiError, AppState, check_key, parse_json, read_body, require_json};
use crate::ingest;

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub ok: bool,
    pub id: Uuid,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dedup: bool,
}

/// Validates and stores one event. Checks run in order: key, content type,
/// size, JSON syntax, fields; nothing is written unless all pass.
pub async fn post_event(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Accepted>, ApiError> {
    check_key(&headers, "X-Api-Key", &state.events_api_key)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let event = ingest::parse_event(&parse_json(&bytes)?)?;

    let inserted = ingest::accept(state.store.as_ref(), &state.signals, event)
        .await
        .map_err(|error| ApiError::from_store(&error))?;
    Ok(Json(Accepted { ok: true, id: inserted.id, dedup: inserted.dedup }))
}
