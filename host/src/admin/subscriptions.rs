//! `/admin/subscriptions`: list, show, create, update, rotate the secret,
//! delete. The signing secret appears only in the create and rotate
//! responses.
//!
//! Deleting a subscription that deliveries reference answers 409 unless
//! `?force=true`, which deletes those deliveries and their attempts with it
//! in one transaction. Disabling (`PATCH {"enabled": false}`) keeps the history.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::openapi::ErrorBody;
use super::request::{invalid_fields, json_body, parse_id, parse_query, store_error};
use crate::api::{ApiError, AppState};
use crate::dispatcher::admin::require_admin;
use crate::store::{NewSubscription, Store, Subscription, SubscriptionChanges, SubscriptionDeletion};

/// A webhook subscription, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: Uuid,
    pub destination_name: String,
    pub endpoint_url: String,
    pub enabled: bool,
    pub event_filter: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

impl From<Subscription> for SubscriptionView {
    fn from(subscription: Subscription) -> Self {
        Self {
            id: subscription.id,
            destination_name: subscription.destination_name,
            endpoint_url: subscription.endpoint_url,
            enabled: subscription.enabled,
            event_filter: subscription.event_filter,
            created_at: subscription.created_at,
        }
    }
}

/// A subscription with its signing secret, returned once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// HMAC-SHA256 key of `X-Grito-Signature`; not shown again.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub destination_name: String,
    /// An http or https URL.
    pub endpoint_url: String,
    /// Event names to deliver; at least one.
    pub event_filter: Vec<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Signing secret; a random one is generated when omitted.
    pub secret: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    pub destination_name: Option<String>,
    pub endpoint_url: Option<String>,
    pub enabled: Option<bool>,
    pub event_filter: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Also delete the subscription's deliveries and their attempts.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: Uuid,
    /// Deliveries deleted with it.
    pub deleted_deliveries: u64,
}

#[utoipa::path(get, operation_id = "list_subscriptions", path = "/admin/subscriptions", tag = "admin",
    responses((status = 200, body = [SubscriptionView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    require_admin(&state, &headers)?;
    let subscriptions = state.store.list_subscriptions().await.map_err(store_error)?;
    Ok(Json(subscriptions.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, operation_id = "show_subscription", path = "/admin/subscriptions/{id}", tag = "admin",
    params(("id" = String, Path, description = "Subscription id (UUID)")),
    responses((status = 200, body = SubscriptionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn show(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<SubscriptionView>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "subscription")?;
    match state.store.get_subscription(id).await.map_err(store_error)? {
        Some(subscription) => Ok(Json(subscription.into())),
        None => Err(not_found()),
    }
}

#[utoipa::path(post, operation_id = "create_subscription", path = "/admin/subscriptions", tag = "admin", request_body = CreateSubscription,
    responses((status = 201, body = SubscriptionWithSecret), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SubscriptionWithSecret>), ApiError> {
    require_admin(&state, &headers)?;
    let request: CreateSubscription = json_body(&state, &headers, body).await?;

    let problems = field_problems(
        Some(&request.destination_name),
        Some(&request.endpoint_url),
        Some(&request.event_filter),
        request.secret.as_deref(),
    );
    if !problems.is_empty() {
        return Err(invalid_fields(problems));
    }
    ensure_name_free(&state, &request.destination_name, None).await?;

    let secret = request.secret.unwrap_or_else(crate::seed::random_secret);
    let subscription = state
        .store
        .create_subscription(NewSubscription {
            destination_name: request.destination_name,
            endpoint_url: request.endpoint_url,
            secret: secret.clone(),
            enabled: request.enabled,
            event_filter: request.event_filter,
        })
        .await
        .map_err(store_error)?;
    tracing::info!(subscription_id = %subscription.id, destination = subscription.destination_name, "subscription created through the admin API");
    Ok((StatusCode::CREATED, Json(SubscriptionWithSecret { subscription: subscription.into(), secret })))
}

#[utoipa::path(patch, operation_id = "update_subscription", path = "/admin/subscriptions/{id}", tag = "admin", request_body = UpdateSubscription,
    params(("id" = String, Path, description = "Subscription id (UUID)")),
    responses((status = 200, body = SubscriptionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<SubscriptionView>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "subscription")?;
    let request: UpdateSubscription = json_body(&state, &headers, body).await?;

    let problems =
        field_problems(request.destination_name.as_deref(), request.endpoint_url.as_deref(), request.event_filter.as_deref(), None);
    if !problems.is_empty() {
        return Err(invalid_fields(problems));
    }
    if let Some(name) = &request.destination_name {
        ensure_name_free(&state, name, Some(id)).await?;
    }

    let changes = SubscriptionChanges {
        destination_name: request.destination_name,
        endpoint_url: request.endpoint_url,
        enabled: request.enabled,
        event_filter: request.event_filter,
    };
    let Some(subscription) = state.store.update_subscription(id, changes).await.map_err(store_error)? else {
        return Err(not_found());
    };
    tracing::info!(subscription_id = %id, enabled = subscription.enabled, "subscription updated through the admin API");
    Ok(Json(subscription.into()))
}

#[utoipa::path(post, operation_id = "rotate_secret_subscription", path = "/admin/subscriptions/{id}/rotate-secret", tag = "admin",
    params(("id" = String, Path, description = "Subscription id (UUID)")),
    responses((status = 200, body = SubscriptionWithSecret), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionWithSecret>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "subscription")?;
    let Some((subscription, secret)) = rotate(state.store.as_ref(), id).await.map_err(store_error)? else {
        return Err(not_found());
    };
    tracing::info!(subscription_id = %id, "subscription secret rotated through the admin API");
    Ok(Json(SubscriptionWithSecret { subscription: subscription.into(), secret }))
}

#[utoipa::path(delete, operation_id = "delete_subscription", path = "/admin/subscriptions/{id}", tag = "admin",
    params(("id" = String, Path, description = "Subscription id (UUID)"), DeleteQuery),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Deleted>, ApiError> {
    require_admin(&state, &headers)?;
    let id = parse_id(&id, "subscription")?;
    let query: DeleteQuery = parse_query(&uri)?;
    match state.store.delete_subscription(id, query.force).await.map_err(store_error)? {
        SubscriptionDeletion::Deleted { deliveries } => {
            tracing::info!(subscription_id = %id, deleted_deliveries = deliveries, "subscription deleted through the admin API");
            Ok(Json(Deleted { id, deleted_deliveries: deliveries }))
        }
        SubscriptionDeletion::HasDeliveries(count) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "the subscription has {count} deliveries; disable it with PATCH {{\"enabled\": false}} to keep them, \
                 or repeat with ?force=true to delete them too"
            ),
            format!(
                "a assinatura tem {count} entregas; desative-a com PATCH {{\"enabled\": false}} para mantê-las, \
                 ou repita com ?force=true para apagá-las também"
            ),
        )),
        SubscriptionDeletion::NotFound => Err(not_found()),
    }
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "subscription not found", "assinatura não encontrada")
}

/// The problems of the given subscription fields, as (field, message)
/// pairs; `None` skips a field. The admin API and `grito subscriptions`
/// both check through here.
pub fn field_problems(
    name: Option<&str>,
    endpoint: Option<&str>,
    filter: Option<&[String]>,
    secret: Option<&str>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if let Some(name) = name {
        check_name(&mut problems, name);
    }
    if let Some(endpoint) = endpoint {
        check_endpoint(&mut problems, endpoint);
    }
    if let Some(filter) = filter {
        check_filter(&mut problems, filter);
    }
    if let Some(secret) = secret {
        check_secret(&mut problems, secret);
    }
    problems
}

/// True when a subscription other than `own_id` already has `name`.
pub async fn name_taken(store: &dyn Store, name: &str, own_id: Option<Uuid>) -> anyhow::Result<bool> {
    let existing = store.find_subscription_by_destination(name).await?;
    Ok(existing.is_some_and(|other| Some(other.id) != own_id))
}

/// Gives the subscription a new random secret and returns it with the
/// subscription; `None` when the subscription does not exist.
pub async fn rotate(store: &dyn Store, id: Uuid) -> anyhow::Result<Option<(Subscription, String)>> {
    let secret = crate::seed::random_secret();
    if !store.set_subscription_secret(id, &secret).await? {
        return Ok(None);
    }
    Ok(store.get_subscription(id).await?.map(|subscription| (subscription, secret)))
}

async fn ensure_name_free(state: &AppState, name: &str, own_id: Option<Uuid>) -> Result<(), ApiError> {
    match name_taken(state.store.as_ref(), name, own_id).await.map_err(store_error)? {
        true => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a subscription named `{name}` already exists"),
            format!("já existe uma assinatura chamada `{name}`"),
        )
        .with_fields(["destination_name"])),
        false => Ok(()),
    }
}

fn check_name(problems: &mut Vec<(String, String)>, name: &str) {
    if name.trim().is_empty() {
        problems.push(("destination_name".into(), "must not be empty".into()));
    } else if name.chars().count() > crate::ingest::MAX_NAME_CHARS || name.trim() != name || name.chars().any(char::is_control) {
        problems.push((
            "destination_name".into(),
            format!("must be at most {} characters, without control characters or surrounding spaces", crate::ingest::MAX_NAME_CHARS),
        ));
    }
}

/// Accepts absolute http and https URLs with a host.
pub fn check_endpoint(problems: &mut Vec<(String, String)>, endpoint: &str) {
    match url::Url::parse(endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            problems.push(("endpoint_url".into(), format!("must use http or https, got `{}`", url.scheme())));
        }
        Ok(_) => problems.push(("endpoint_url".into(), "must name a host".into())),
        Err(error) => problems.push(("endpoint_url".into(), format!("is not a URL: {error}"))),
    }
}

fn check_filter(problems: &mut Vec<(String, String)>, filter: &[String]) {
    if filter.is_empty() {
        problems.push(("event_filter".into(), "must list at least one event name".into()));
    }
    if filter.iter().any(|name| name.trim().is_empty() || name.trim() != name || name.chars().any(char::is_control)) {
        problems.push(("event_filter".into(), "event names must be non-empty, without control characters or surrounding spaces".into()));
    }
}

fn check_secret(problems: &mut Vec<(String, String)>, secret: &str) {
    if secret.len() < 16 {
        problems.push(("secret".into(), "must be at least 16 characters".into()));
    }
}
