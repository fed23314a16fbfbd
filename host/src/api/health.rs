//! `GET /health`: database reachability and queue figures.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// How long the database may take to answer before health reports it down.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = state.store.backend();
    let stats = tokio::time::timeout(DATABASE_TIMEOUT, state.store.queue_stats()).await;
    match stats {
        Ok(Ok(queue)) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": {"backend": backend, "status": "ok"}, "queue": queue})),
        ),
        Ok(Err(error)) => down(backend, format!("{error:#}")),
        Err(_) => down(backend, format!("the database did not answer within {} s", DATABASE_TIMEOUT.as_secs())),
    }
}

fn down(backend: &str, reason: String) -> (StatusCode, Json<Value>) {
    tracing::warn!(backend, reason, "health check failed: database unreachable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "unavailable",
            "database": {"backend": backend, "status": "unreachable", "reason": reason}
        })),
    )
}
