//! A stand-in for the Wasm plugin host in engine tests: a few conditions
//! and action types with fixed behaviour, and a count of calls.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grito::engine::{Effect, EventDraft, PluginFailure, Plugins};
use grito::store::Event;
use serde_json::Value;

/// Conditions: `true`, `false`, `fail` (a plugin error), and
/// `payload->>'plan' is null`. Action types: `email` (the brief's email
/// action, `{{payload.x}}` resolved), `webhook`, `email_then_webhook`,
/// `emit`, `emit_identity` and `trap`; any other type has no plugin.
#[derive(Default)]
pub struct FakePlugins {
    pub action_calls: AtomicUsize,
    pub condition_calls: AtomicUsize,
}

impl FakePlugins {
    pub fn action_calls(&self) -> usize {
        self.action_calls.load(Ordering::SeqCst)
    }
}

fn resolve(event: &Event, text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.strip_prefix("{{payload.").and_then(|rest| rest.strip_suffix("}}")) {
        Some(field) => event.payload.get(field.trim()).and_then(Value::as_str).unwrap_or_default().to_owned(),
        None => text.to_owned(),
    }
}

fn email_effect(event: &Event, action: &Value) -> Effect {
    let variables = action["variables"]
        .as_object()
        .map(|variables| {
            variables.iter().map(|(name, value)| (name.clone(), resolve(event, value.as_str().unwrap_or_default()))).collect()
        })
        .unwrap_or_default();
    Effect::SendEmail {
        template_id: action["template_id"].as_str().unwrap_or_default().to_owned(),
        to: resolve(event, action["to"].as_str().unwrap_or_default()),
        variables,
    }
}

const KNOWN_TYPES: [&str; 6] = ["email", "webhook", "email_then_webhook", "emit", "emit_identity", "trap"];

#[async_trait]
impl Plugins for FakePlugins {
    async fn evaluate_condition(&self, event: &Event, condition: &str, _now: DateTime<Utc>) -> Result<bool, PluginFailure> {
        self.condition_calls.fetch_add(1, Ordering::SeqCst);
        match condition.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            "payload->>'plan' is null" => Ok(event.payload.get("plan").is_none_or(Value::is_null)),
            other => Err(PluginFailure(format!("condition-sql: cannot evaluate `{other}`"))),
        }
    }

    async fn check_condition(&self, condition: &str) -> Result<(), PluginFailure> {
        match condition.trim() {
            "true" | "false" | "fail" | "payload->>'plan' is null" => Ok(()),
            other => Err(PluginFailure(format!("condition-sql: syntax error at `{other}`"))),
        }
    }

    async fn run_action(&self, event: &Event, action: &Value, _now: DateTime<Utc>) -> Result<Vec<Effect>, PluginFailure> {
        self.action_calls.fetch_add(1, Ordering::SeqCst);
        let endpoint = || Effect::DeliverWebhook { endpoint_ref: action["endpoint_ref"].as_str().unwrap_or_default().to_owned() };
        match action["type"].as_str().unwrap_or_default() {
            "email" => Ok(vec![email_effect(event, action)]),
            "webhook" => Ok(vec![endpoint()]),
            "email_then_webhook" => Ok(vec![email_effect(event, action), endpoint()]),
            "emit" => Ok(vec![Effect::EmitEvent(EventDraft {
                event_name: action["event_name"].as_str().unwrap_or_default().to_owned(),
                user_id: Some(event.user_id),
                identity: None,
                source: "automation".to_owned(),
                occurred_at: None,
                payload: serde_json::Map::from_iter([("from".to_owned(), Value::String(event.id.to_string()))]),
                idempotency_key: Some(format!("emit:{}", event.id)),
            })]),
            "emit_identity" => Ok(vec![Effect::EmitEvent(EventDraft {
                event_name: "plan.subscribed".to_owned(),
                user_id: None,
                identity: Some(("stripe".to_owned(), "cus_123".to_owned())),
                source: "automation".to_owned(),
                occurred_at: None,
                payload: serde_json::Map::new(),
                idempotency_key: None,
            })]),
            "trap" => Err(PluginFailure("plugin trap: wasm `unreachable` instruction executed".to_owned())),
            other => Err(PluginFailure(format!("no loaded plugin handles action type `{other}`"))),
        }
    }

    async fn validate_action(&self, action: &Value) -> Result<(), PluginFailure> {
        let action_type = action["type"].as_str().unwrap_or_default();
        if !KNOWN_TYPES.contains(&action_type) {
            return Err(PluginFailure(format!("no loaded plugin handles action type `{action_type}`")));
        }
        if action_type == "email" && action["template_id"].as_str().is_none() {
            return Err(PluginFailure("email action needs a template_id".to_owned()));
        }
        Ok(())
    }
}
