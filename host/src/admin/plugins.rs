//! `/admin/plugins`: the loaded and failed plugins, and a reload of
//! `PLUGINS_DIR`, through the plugin host the server runs.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::ErrorBody;
use crate::api::{ApiError, AppState};
use crate::dispatcher::admin::require_admin;
use crate::plugins::PluginHost;

/// One plugin file or built-in, loaded or failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    /// The `.wasm` file, or `builtin:NAME`.
    pub file: String,
    /// `built_in` or `file`.
    pub origin: String,
    /// `loaded`, `failed` or `overridden`.
    pub state: String,
    pub name: Option<String>,
    pub version: Option<String>,
    /// `condition`, `action` or `normalizer`.
    pub kind: Option<String>,
    /// Why loading failed, or why a newer version of the file was rejected.
    pub error: Option<String>,
}

#[utoipa::path(get, operation_id = "list_plugins", path = "/admin/plugins", tag = "admin",
    responses((status = 200, body = [PluginView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<PluginView>>, ApiError> {
    require_admin(&state, &headers)?;
    let host = plugin_host(&state)?;
    Ok(Json(views(host)))
}

#[utoipa::path(post, operation_id = "reload_plugins", path = "/admin/plugins/reload", tag = "admin",
    responses((status = 200, body = [PluginView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<PluginView>>, ApiError> {
    require_admin(&state, &headers)?;
    let host = plugin_host(&state)?;
    host.reload().await.map_err(|error| ApiError::internal(&error))?;
    tracing::info!("plugins reloaded through the admin API");
    Ok(Json(views(host)))
}

/// The server's plugin host; 503 in a process that runs without one.
pub fn plugin_host(state: &AppState) -> Result<&PluginHost, ApiError> {
    state.normalizers.plugins.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "plugins_unavailable",
            "this process runs without a plugin host",
            "este processo roda sem o host de plugins",
        )
    })
}

fn views(host: &PluginHost) -> Vec<PluginView> {
    host.list()
        .into_iter()
        .map(|status| {
            let origin = serde_json::to_value(&status.origin).ok().and_then(|value| value.as_str().map(str::to_owned));
            PluginView {
                file: status.file,
                origin: origin.unwrap_or_default(),
                state: status.state.to_owned(),
                name: status.info.as_ref().map(|info| info.name.clone()),
                version: status.info.as_ref().map(|info| info.version.clone()),
                kind: status.info.as_ref().map(|info| info.kind.as_str().to_owned()),
                error: status.error,
            }
        })
        .collect()
}
