//! The OpenAPI 3.1 document served at `/openapi.json`, generated with
//! `utoipa` from the admin handlers' annotations. Routes owned by other
//! modules (`/events`, `/health`, `/webhooks/stripe`, `/ingest/{plugin}`,
//! `/metrics`, `/admin/deliveries`) are described here by annotated
//! signatures that are never called, so their handlers stay as they are.

#![allow(dead_code)]

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{automations, events, plugins, subscriptions};

/// The error body of every route: a stable code and a message in English,
/// or in Brazilian Portuguese when `Accept-Language` prefers `pt`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, for example `invalid_fields`.
    pub error: String,
    pub message: String,
    /// The request fields the error is about.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Grito", description = "Event store, Wasm automations and signed webhooks"),
    paths(
        post_events, health, stripe_webhook, ingest, metrics,
        list_deliveries, show_delivery, retry_delivery, retry_failed_deliveries,
        subscriptions::list, subscriptions::show, subscriptions::create, subscriptions::update,
        subscriptions::rotate_secret, subscriptions::delete,
        automations::list, automations::show, automations::create, automations::update,
        automations::activate, automations::deactivate, automations::delete, automations::preview,
        events::list, events::show, events::replay,
        plugins::list, plugins::reload,
    ),
    components(schemas(ErrorBody, EventAccepted)),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("admin_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Admin-Key"))));
        components.add_security_scheme("events_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
    }
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventAccepted {
    pub ok: bool,
    pub id: uuid::Uuid,
    /// Present and true when the idempotency key was seen before; `id` is the first event's.
    pub dedup: Option<bool>,
}

/// A `POST /events` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewEventBody {
    pub event_name: String,
    pub user_id: uuid::Uuid,
    pub source: String,
    /// RFC 3339; the time of insertion when omitted.
    pub occurred_at: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
}

#[utoipa::path(post, path = "/events", tag = "events", request_body = NewEventBody,
    responses((status = 200, body = EventAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("events_key" = [])))]
fn post_events() {}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Database reachable; queue figures", body = Object),
        (status = 503, description = "Database unreachable", body = Object)))]
fn health() {}

#[utoipa::path(post, path = "/webhooks/stripe", tag = "events",
    request_body(content = Object, description = "A Stripe event, signed in Stripe-Signature"),
    params(("Stripe-Signature" = String, Header, description = "t=…,v1=… as Stripe sends it")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, description = "STRIPE_WEBHOOK_SECRET is not set", body = ErrorBody)))]
fn stripe_webhook() {}

#[utoipa::path(post, path = "/ingest/{plugin}", tag = "events",
    params(("plugin" = String, Path, description = "Name of a loaded normalizer plugin")),
    request_body(content = Object, description = "The device's or service's own body, read by the normalizer"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, description = "The plugin failed", body = ErrorBody)))]
fn ingest() {}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody)))]
fn metrics() {}

#[utoipa::path(get, path = "/admin/deliveries", tag = "admin",
    params(("status" = Option<String>, Query, description = "PENDING, OK or FAIL"),
        ("subscription" = Option<String>, Query, description = "destination_name"),
        ("since" = Option<String>, Query, description = "RFC 3339 time"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = [Object]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("admin_key" = [])))]
fn list_deliveries() {}

#[utoipa::path(get, path = "/admin/deliveries/{id}", tag = "admin",
    params(("id" = String, Path, description = "Delivery id (UUID)")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
fn show_delivery() {}

#[utoipa::path(post, path = "/admin/deliveries/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "Delivery id (UUID)")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin_key" = [])))]
fn retry_delivery() {}

#[utoipa::path(post, path = "/admin/deliveries/retry", tag = "admin",
    request_body(content = Object, description = "{\"subscription\": NAME, \"since\": RFC 3339 time}, both optional"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)),
    security(("admin_key" = [])))]
fn retry_failed_deliveries() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut ids: Vec<String> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|operation| operation["operationId"].as_str().map(str::to_owned))
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "OpenAPI requires unique operationIds: {ids:?}");
    }
}
