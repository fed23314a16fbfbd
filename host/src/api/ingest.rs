//! `POST /ingest/{plugin}` and `POST /ingest/{plugin}/{token}/…`: a request
//! from an outside system (for example an access-control terminal), turned
//! into events by the normalizer plugin of that name.
//!
//! Checks run in order: the plugin exists (404), the token or `X-Api-Key`
//! (401), the body size (413), the plugin call (422 for an error the plugin
//! returns, 502 `plugin_failed` for a crash, timeout or invalid draft), then
//! storage. A repeated push returns 200 with `dedup: true`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde::Serialize;

use super::{ApiError, AppState, check_key, read_body};
use crate::normalizers::{self, IngestOutcome, StoredEvent};
use crate::plugins::PluginError;

#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub ok: bool,
    pub events: Vec<StoredEvent>,
    pub parked: u32,
    pub ignored: u32,
}

/// `POST /ingest/{plugin}`.
pub async fn post_ingest(
    state: State<AppState>,
    Path(plugin): Path<String>,
    query: RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest(state, plugin, String::new(), query, method, headers, body).await
}

/// `POST /ingest/{plugin}/{*rest}`: the first segment of `rest` may be the token.
pub async fn post_ingest_path(
    state: State<AppState>,
    Path((plugin, rest)): Path<(String, String)>,
    query: RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest(state, plugin, rest, query, method, headers, body).await
}

async fn ingest(
    State(state): State<AppState>,
    plugin: String,
    rest: String,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let query = query.unwrap_or_default();
    let normalizers = &state.normalizers;
    let Some(plugins) = normalizers.normalizer(&plugin) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no normalizer plugin named `{plugin}` is loaded"),
            format!("nenhum plugin normalizador chamado `{plugin}` está carregado"),
        ));
    };

    let token = authenticate(&state, &plugin, &query, &rest, &headers)?;
    let bytes = read_body(&headers, body, normalizers.settings.max_body_bytes).await?;
    let matched = token.as_ref().map(|(place, matched)| (*place, matched));
    let request = normalizers::plugin_request(method.as_str(), &rest, &query, &headers, bytes.to_vec(), matched);

    let drafts = plugins.normalize(&plugin, request).await.map_err(|error| plugin_error(&plugin, &error))?;
    let (checked, ignored) = normalizers::check_drafts(&plugin, drafts).map_err(|error| {
        tracing::warn!(plugin, error = %error, "ingest request rejected: invalid draft");
        plugin_failed(&plugin, &error.to_string())
    })?;
    let outcome: IngestOutcome = normalizers::store_drafts(state.store.as_ref(), &state.signals, checked, ignored)
        .await
        .map_err(|error| ApiError::from_store(&error))?;

    if outcome.events.is_empty() && outcome.parked == 0 {
        // Heartbeats and pushes without a usable event: frequent, so kept out of the info log.
        tracing::debug!(plugin, ignored = outcome.ignored, "ingest request handled, no events");
    } else {
        tracing::info!(plugin, events = outcome.events.len(), parked = outcome.parked, ignored = outcome.ignored, "ingest request handled");
    }
    Ok(Json(IngestResponse { ok: true, events: outcome.events, parked: outcome.parked, ignored: outcome.ignored }))
}

/// Accepts a valid `X-Api-Key` (`EVENTS_API_KEY`), else a token of `plugin`
/// from `INGEST_TOKENS` in the query or the path.
fn authenticate(
    state: &AppState,
    plugin: &str,
    query: &str,
    rest: &str,
    headers: &HeaderMap,
) -> Result<Option<(normalizers::TokenPlace, normalizers::TokenMatch)>, ApiError> {
    if headers.contains_key("x-api-key") && check_key(headers, "X-Api-Key", &state.events_api_key).is_ok() {
        // With the API key no token is expected, so the whole path and query go to the plugin.
        return Ok(None);
    }

    let tokens = &state.normalizers.settings.tokens;
    let found = normalizers::find_token(query, rest);
    if let Some((given, place)) = &found
        && let Some(matched) = tokens.check(plugin, given)
    {
        return Ok(Some((*place, matched)));
    }

    tracing::warn!(plugin, token_given = found.is_some(), "ingest request rejected: missing or invalid token");
    let hint_en = if tokens.has_tokens(plugin) { "" } else { " (INGEST_TOKENS lists no token for this plugin)" };
    let hint_pt = if tokens.has_tokens(plugin) { "" } else { " (INGEST_TOKENS não tem token para este plugin)" };
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        format!("missing or invalid ingest token for `{plugin}`: pass ?token=… or /ingest/{plugin}/TOKEN, or an X-Api-Key header{hint_en}"),
        format!("token de ingestão ausente ou inválido para `{plugin}`: use ?token=… ou /ingest/{plugin}/TOKEN, ou o cabeçalho X-Api-Key{hint_pt}"),
    ))
}

/// 404 for a plugin unloaded since the check, 422 for an error the plugin
/// returned on purpose, 502 `plugin_failed` for everything else.
fn plugin_error(plugin: &str, error: &PluginError) -> ApiError {
    match error {
        PluginError::NotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no normalizer plugin named `{plugin}` is loaded"),
            format!("nenhum plugin normalizador chamado `{plugin}` está carregado"),
        ),
        PluginError::Guest { code, message, .. } => {
            tracing::warn!(plugin, code, message, "ingest request rejected by the plugin");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_error",
                format!("plugin `{plugin}` rejected the request ({code}): {message}"),
                format!("o plugin `{plugin}` rejeitou a requisição ({code}): {message}"),
            )
        }
        other => plugin_failed(plugin, &other.to_string()),
    }
}

fn plugin_failed(plugin: &str, reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "plugin_failed",
        format!("plugin `{plugin}` failed: {reason}"),
        format!("o plugin `{plugin}` falhou: {reason}"),
    )
}
