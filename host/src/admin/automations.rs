//! `/admin/automations`: list, show, create, update, activate, deactivate,
//! delete, and preview against an event. Creating or changing the condition
//! or action runs the engine's `validate_automation` (the condition parses,
//! a loaded plugin accepts the action, an email template exists).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::ErrorBody;
use super::plugins::plugin_host;
use super::request::{invalid_fields, json_body, parse_id, store_error};
use crate::api::{ApiError, AppState};
use crate::dispatcher::admin::require_admin;
use crate::engine::{preview_event, validate_automation};
use crate::store::{Automation, AutomationChanges, NewAutomation};

/// An automation as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationView {
    pub id: Uuid,
    pub name: String,
    pub is_active: bool,
    pub match_event: String,
    pub condition_sql: Option<String>,
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
    pub created_at: Option<DateTime<Utc>>,
}

impl From<Automation> for AutomationView {
    fn from(automation: Automation) -> Self {
        Self {
            id: automation.id,
            name: automation.name,
            is_active: automation.is_active,
            match_event: automation.match_event,
            condition_sql: automation.condition_sql,
            action: automation.action,
            created_at: automation.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAutomation {
    pub name: String,
    /// Event name that triggers it.
    pub match_event: String,
    pub condition_sql: Option<String>,
    /// The action, with a string `type` that a loaded plugin handles.
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
    #[serde(default = "active_by_default")]
    pub is_active: bool,
}

fn active_by_default() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAutomation {
    pub name: Option<String>,
    pub match_event: Option<String>,
    /// An empty string clears the condition.
    pub condition_sql: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub action: Option<serde_json::Value>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A `POST /events` body; a missing `user_id` is made up.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: Uuid,
}

#[utoipa::path(get, operation_id = "list_automations", path = "/admin/automations", tag = "admin",
    responses((status = 200, body = [AutomationView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<AutomationView>>, ApiError> {
    require_admin(&state, &headers)?;
    let automations = state.store.list_automations().await.map_err(store_error)?;
    Ok(Json(automations.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, operation_id = "show_automation", path = "/admin/automations/{id}", tag = "admin",
    params(("id" = String, Path, description = "Automation id (UUID)")),
    responses((status = 200, body = AutomationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn show(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<AutomationView>, ApiError> {
    require_admin(&state, &headers)?;
    Ok(Json(load(&state, &id).await?.into()))
}

#[utoipa::path(post, operation_id = "create_automation", path = "/admin/automations", tag = "admin", request_body = CreateAutomation,
    responses((status = 201, body = AutomationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AutomationView>), ApiError> {
    require_admin(&state, &headers)?;
    let request: CreateAutomation = json_body(&state, &headers, body).await?;
    let automation = NewAutomation {
        name: request.name,
        is_active: request.is_active,
        match_event: request.match_event,
        condition_sql: request.condition_sql.filter(|text| !text.trim().is_empty()),
        action: request.action,
    };
    validate(&state, &automation).await?;

    let automation = state.store.create_automation(automation).await.map_err(store_error)?;
    tracing::info!(automation_id = %automation.id, name = automation.name, "automation created through the admin API");
    Ok((StatusCode::CREATED, Json(automation.into())))
}

#[utoipa::path(patch, operation_id = "update_automation", path = "/admin/automations/{id}", tag = "admin", request_body = UpdateAutomation,
    params(("id" = String, Path, description = "Automation id (UUID)")),
    responses((status = 200, body = AutomationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<AutomationView>, ApiError> {
    require_admin(&state, &headers)?;
    let current = load(&state, &id).await?;
    let request: UpdateAutomation = json_body(&state, &headers, body).await?;

    let condition = request.condition_sql.map(|text| Some(text).filter(|text| !text.trim().is_empty()));
    let merged = NewAutomation {
        name: request.name.clone().unwrap_or(current.name),
        is_active: request.is_active.unwrap_or(current.is_active),
        match_event: request.match_event.clone().unwrap_or(current.match_event),
        condition_sql: condition.clone().unwrap_or(current.condition_sql),
        action: request.action.clone().unwrap_or(current.action),
    };
    validate(&state, &merged).await?;

    let changes = AutomationChanges {
        name: request.name,
        is_active: request.is_active,
        match_event: request.match_event,
        condition_sql: condition,
        action: request.action,
    };
    let Some(automation) = state.store.update_automation(current.id, changes).await.map_err(store_error)? else {
        return Err(not_found());
    };
    tracing::info!(automation_id = %automation.id, is_active = automation.is_active, "automation updated through the admin API");
    Ok(Json(automation.into()))
}

#[utoipa::path(post, operation_id = "activate_automation", path = "/admin/automations/{id}/activate", tag = "admin",
    params(("id" = String, Path, description = "Automation id (UUID)")),
    responses((status = 200, body = AutomationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn activate(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<AutomationView>, ApiError> {
    set_active(state, headers, id, true).await
}

#[utoipa::path(post, operation_id = "deactivate_automation", path = "/admin/automations/{id}/deactivate", tag = "admin",
    params(("id" = String, Path, description = "Automation id (UUID)")),
    responses((status = 200, body = AutomationView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn deactivate(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<AutomationView>, ApiError> {
    set_active(state, headers, id, false).await
}

async fn set_active(state: AppState, headers: HeaderMap, id: String, active: bool) -> Result<Json<AutomationView>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "automation")?;
    let changes = AutomationChanges { is_active: Some(active), ..Default::default() };
    let Some(automation) = state.store.update_automation(id, changes).await.map_err(store_error)? else {
        return Err(not_found());
    };
    tracing::info!(automation_id = %id, is_active = active, "automation activation changed through the admin API");
    Ok(Json(automation.into()))
}

#[utoipa::path(delete, operation_id = "delete_automation", path = "/admin/automations/{id}", tag = "admin",
    params(("id" = String, Path, description = "Automation id (UUID)")),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn delete(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Deleted>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "automation")?;
    if !state.store.delete_automation(id).await.map_err(store_error)? {
        return Err(not_found());
    }
    tracing::info!(automation_id = %id, "automation deleted through the admin API");
    Ok(Json(Deleted { id }))
}

#[utoipa::path(post, operation_id = "preview_automation", path = "/admin/automations/{id}/preview", tag = "admin", request_body = PreviewRequest,
    params(("id" = String, Path, description = "Automation id (UUID)")),
    responses((status = 200, description = "What the automation would do; nothing is written or sent", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &headers)?;
    let automation = load(&state, &id).await?;
    let request: PreviewRequest = json_body(&state, &headers, body).await?;
    let now = Utc::now();
    let event = preview_event(&request.event, now).map_err(|error| invalid_fields(vec![("event".into(), format!("{error:#}"))]))?;

    let host = plugin_host(&state)?;
    let preview = crate::engine::preview(state.store.as_ref(), host, &state.admin.templates, &automation, event, now)
        .await
        .map_err(store_error)?;
    serde_json::to_value(preview).map(Json).map_err(|error| ApiError::internal(&error.into()))
}

async fn load(state: &AppState, id: &str) -> Result<Automation, ApiError> {
    let id = parse_id(id, "automation")?;
    state.store.get_automation(id).await.map_err(store_error)?.ok_or_else(not_found)
}

async fn validate(state: &AppState, automation: &NewAutomation) -> Result<(), ApiError> {
    let host = plugin_host(state)?;
    validate_automation(host, &state.admin.templates, automation).await.map_err(|invalid| {
        invalid_fields(invalid.problems.into_iter().map(|problem| (problem.field.to_owned(), problem.message)).collect())
    })
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "automation not found", "automação não encontrada")
}
