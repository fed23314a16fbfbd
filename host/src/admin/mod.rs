//! The admin HTTP API: subscriptions, automations, events and plugins, plus
//! the OpenAPI document of every route at `/openapi.json`.
//!
//! Every `/admin` route needs `X-Admin-Key` equal to `ADMIN_API_KEY`
//! (checked by [`crate::dispatcher::admin::require_admin`], shared with the
//! delivery routes); while that setting is unset they answer 403.

mod automations;
mod events;
pub mod openapi;
mod plugins;
mod request;
mod subscriptions;

use std::path::PathBuf;

use axum::Router;
use axum::routing::{get, post};

use crate::api::AppState;
use crate::mailer::Templates;

pub use events::{EventView, ReplayOutcome, replay_event};
pub use subscriptions::{SubscriptionView, field_problems, name_taken, rotate};

/// What the admin routes need beyond the rest of `AppState`.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// Email templates, checked when an automation with an email action is saved.
    pub templates: Templates,
    /// `METRICS_TOKEN`: when set, `/metrics` needs it as a bearer token.
    pub metrics_token: Option<String>,
}

impl AdminSettings {
    pub fn new(templates_dir: PathBuf, metrics_token: Option<String>) -> Self {
        Self { templates: Templates::new(templates_dir), metrics_token }
    }
}

impl Default for AdminSettings {
    /// Templates from `./templates`, the `TEMPLATES_DIR` default, and an open `/metrics`.
    fn default() -> Self {
        Self::new(PathBuf::from("templates"), None)
    }
}

/// The admin routes and `/openapi.json`, to merge into the app's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/admin/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route(
            "/admin/subscriptions/{id}",
            get(subscriptions::show).patch(subscriptions::update).delete(subscriptions::delete),
        )
        .route("/admin/subscriptions/{id}/rotate-secret", post(subscriptions::rotate_secret))
        .route("/admin/automations", get(automations::list).post(automations::create))
        .route(
            "/admin/automations/{id}",
            get(automations::show).patch(automations::update).delete(automations::delete),
        )
        .route("/admin/automations/{id}/activate", post(automations::activate))
        .route("/admin/automations/{id}/deactivate", post(automations::deactivate))
        .route("/admin/automations/{id}/preview", post(automations::preview))
        .route("/admin/events", get(events::list))
        .route("/admin/events/{id}", get(events::show))
        .route("/admin/events/{id}/replay", post(events::replay))
        .route("/admin/plugins", get(plugins::list))
        .route("/admin/plugins/reload", post(plugins::reload))
}
