//! The HTTP interface. [`app`] builds the router apart from `main`, so tests
//! drive it in process exactly as the server does.

mod error;
mod events;
mod health;
mod ingest;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use error::{ApiError, prefers_portuguese};

use crate::signals::Signals;
use crate::store::Store;

/// Everything a request handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub signals: Arc<Signals>,
    pub events_api_key: Arc<str>,
    pub max_body_bytes: usize,
    /// `None` when `ADMIN_API_KEY` is unset: the admin routes then return 403.
    pub admin_api_key: Option<Arc<str>>,
    /// `POST /webhooks/stripe` settings; without secrets that route returns 503.
    pub stripe: Arc<crate::stripe::StripeWebhook>,
    /// `POST /ingest/{plugin}`: the plugin host and `INGEST_*` settings; without a plugin host that route returns 404.
    pub normalizers: crate::normalizers::Normalizers,
    /// Email templates for automation checks and `METRICS_TOKEN`, for the admin routes and `/metrics`.
    pub admin: crate::admin::AdminSettings,
}

/// Builds the router with every route and layer.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/events", post(events::post_event))
        .route("/health", get(health::health))
        .route("/webhooks/stripe", post(crate::stripe::post_webhook))
        .route("/ingest/{plugin}", post(ingest::post_ingest))
        .route("/ingest/{plugin}/{*rest}", post(ingest::post_ingest_path))
        .merge(crate::inbound::admin::routes())
        .merge(crate::dispatcher::admin::routes())
        .merge(crate::admin::routes())
        .route("/metrics", get(crate::metrics::serve))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(error::localize))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("route", "rota")
}

/// Checks `header` against `expected` in constant time. Both sides are hashed
/// first, so the comparison does not reveal the key's length either.
pub fn check_key(headers: &HeaderMap, header: &str, expected: &str) -> Result<(), ApiError> {
    let given = headers.get(header).map(|value| value.as_bytes()).unwrap_or_default();
    let matches: bool = Sha256::digest(given).ct_eq(&Sha256::digest(expected.as_bytes())).into();
    if given.is_empty() || !matches {
        return Err(ApiError::unauthorized(header));
    }
    Ok(())
}

/// Requires `Content-Type: application/json` (parameters such as charset allowed).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        return Ok(());
    }
    let shown = if content_type.is_empty() { "none" } else { content_type };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("Content-Type must be application/json, got {shown}"),
        format!("Content-Type deve ser application/json, recebido {shown}"),
    )
    .with_fields(["Content-Type"]))
}

/// Reads the whole body, rejecting it with 413 beyond `limit` bytes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
            format!("o corpo da requisição tem mais de {limit} bytes"),
        )
        .with_fields(["body"])
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit as u64) {
        // Reading the rest lets the client finish its upload and read the 413;
        // closing at once makes many clients report a broken pipe instead.
        if length <= DISCARD_MAX_BYTES {
            discard(body).await;
        }
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let over_limit = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if over_limit {
            too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the request body could not be read",
                "não foi possível ler o corpo da requisição",
            )
            .with_fields(["body"])
        }
    })
}

/// Largest oversized body that is read and thrown away before answering 413.
const DISCARD_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and drops a body, for at most two seconds.
async fn discard(mut body: Body) {
    use http_body_util::BodyExt;

    let drain = async {
        while let Some(Ok(_)) = body.frame().await {}
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
}

/// Parses a body as JSON, pointing at the line and column of a syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let (line, column) = (error.line(), error.column());
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON (line {line}, column {column})"),
            format!("o corpo não é um JSON válido (linha {line}, coluna {column})"),
        )
        .with_fields(["body"])
    })
}
