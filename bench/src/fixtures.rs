//! The event, condition and action every measurement uses: the
//! organization's welcome automation (`payload->>'plan' is null`, email
//! `welcome_01` to `{{payload.email}}`) and one webhook subscription.

use std::sync::Arc;

use grito::store::{NewAutomation, NewSubscription, Store};

pub const EVENT_NAME: &str = "user.signed_up";
pub const CONDITION: &str = "payload->>'plan' is null";
pub const EVENTS_API_KEY: &str = "bench-events-key";
pub const ADMIN_API_KEY: &str = "bench-admin-key";
pub const SUBSCRIPTION_SECRET: &str = "bench-signing-secret";

/// The email action of the welcome automation.
pub fn email_action() -> serde_json::Value {
    serde_json::json!({
        "type": "email",
        "template_id": "welcome_01",
        "to": "{{payload.email}}",
        "variables": {"nome": "{{payload.name}}"}
    })
}

pub fn payload() -> serde_json::Value {
    serde_json::json!({"email": "maria@email.com", "name": "Maria Souza", "bairro": "Centro", "plan": null})
}

pub fn payload_map() -> serde_json::Map<String, serde_json::Value> {
    payload().as_object().cloned().unwrap_or_default()
}

/// The `POST /events` body, without an idempotency key so every request stores a new event.
pub fn event_body() -> String {
    serde_json::json!({
        "event_name": EVENT_NAME,
        "user_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "source": "app",
        "payload": payload()
    })
    .to_string()
}

/// A stored event as the engine hands it to plugins.
pub fn stored_event() -> grito::store::Event {
    grito::store::Event {
        id: uuid::Uuid::now_v7(),
        event_name: EVENT_NAME.to_owned(),
        user_id: uuid::Uuid::parse_str("0f8fad5b-d9cb-469f-a165-70867728950e").expect("valid uuid"),
        source: "app".to_owned(),
        occurred_at: chrono::Utc::now(),
        payload: payload(),
        idempotency_key: None,
        processed_at: None,
    }
}

/// Creates one subscription to `endpoint_url` for `user.signed_up` and the welcome automation.
pub async fn create_subscription_and_automation(store: &Arc<dyn Store>, endpoint_url: &str) -> anyhow::Result<()> {
    store
        .create_subscription(NewSubscription {
            destination_name: "Bench receiver".to_owned(),
            endpoint_url: endpoint_url.to_owned(),
            secret: SUBSCRIPTION_SECRET.to_owned(),
            enabled: true,
            event_filter: vec![EVENT_NAME.to_owned()],
        })
        .await?;
    store
        .create_automation(NewAutomation {
            name: "Boas-vindas".to_owned(),
            is_active: true,
            match_event: EVENT_NAME.to_owned(),
            condition_sql: Some(CONDITION.to_owned()),
            action: email_action(),
        })
        .await?;
    Ok(())
}

/// Opens and migrates the store behind `url`.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    grito::store::connect(&grito::store::DatabaseUrl::parse(url)?).await
}
