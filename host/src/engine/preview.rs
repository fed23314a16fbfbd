//! Automation preview: what an automation would do for an event, with its
//! condition and action really run but nothing written or sent. Plugins are
//! pure, so the only reads are the automation and the subscriptions that
//! webhook effects name.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Effect, Plugins, decide, describe_effect};
use crate::ingest;
use crate::mailer::Templates;
use crate::store::{Automation, Event, PlannedEffect, RunStatus, Store};

/// The outcome of a preview, printed as JSON by `grito automations preview`.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub automation_id: Uuid,
    pub automation_name: String,
    pub event: Event,
    /// False when the automation is inactive or its `match_event` is not the
    /// event's name: the engine would not run it, though the preview did.
    pub would_run: bool,
    pub status: RunStatus,
    pub condition_result: Option<bool>,
    /// Each effect with what carrying it out would mean (rendered email,
    /// target subscription, validated event).
    pub effects: Vec<Value>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Builds an event from a `POST /events` body for a preview. A missing
/// `user_id` gets a random one; the event id is random and `occurred_at`
/// defaults to `now`. The rest is validated as `POST /events` does.
pub fn preview_event(body: &Value, now: DateTime<Utc>) -> anyhow::Result<Event> {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut()
        && matches!(object.get("user_id"), None | Some(Value::Null))
    {
        object.insert("user_id".to_owned(), json!(Uuid::new_v4()));
    }
    let event = ingest::parse_event(&body).map_err(|error| anyhow::anyhow!("invalid event: {}", error.message_en))?;
    Ok(Event {
        id: Uuid::now_v7(),
        event_name: event.event_name,
        user_id: event.user_id,
        source: event.source,
        occurred_at: event.occurred_at.unwrap_or(now),
        payload: Value::Object(event.payload),
        idempotency_key: event.idempotency_key,
        processed_at: None,
    })
}

/// Runs `automation`'s condition and action for `event` and describes the
/// effects, without writing or sending anything. Returns an error only when
/// the database cannot be read.
pub async fn preview(
    store: &dyn Store,
    plugins: &dyn Plugins,
    templates: &Templates,
    automation: &Automation,
    event: Event,
    now: DateTime<Utc>,
) -> anyhow::Result<Preview> {
    let decision = decide(plugins, templates, automation, &event, now).await;
    let mut preview = Preview {
        automation_id: automation.id,
        automation_name: automation.name.clone(),
        would_run: automation.is_active && automation.match_event == event.event_name,
        status: decision.status,
        condition_result: decision.condition_result,
        effects: Vec::new(),
        error: decision.error,
        duration_ms: decision.duration_ms,
        event,
    };
    if decision.status != RunStatus::Succeeded {
        preview.effects = decision.effects.iter().map(describe_effect).collect();
        return Ok(preview);
    }

    for (effect, planned) in decision.effects.iter().zip(&decision.planned) {
        let (description, error) = describe_planned(store, effect, planned).await?;
        preview.effects.push(description);
        if let Some(error) = error {
            preview.status = RunStatus::Failed;
            preview.error.get_or_insert(error);
        }
    }
    Ok(preview)
}

/// Describes an effect as the engine would carry it out, with the reason
/// the store would reject it, if any.
async fn describe_planned(store: &dyn Store, effect: &Effect, planned: &PlannedEffect) -> anyhow::Result<(Value, Option<String>)> {
    let mut description = describe_effect(effect);
    let mut error = None;
    match planned {
        PlannedEffect::Email(email) => {
            description["subject"] = json!(email.subject);
            description["body_text"] = json!(email.body_text);
            description["body_html"] = json!(email.body_html);
        }
        PlannedEffect::Webhook { endpoint_ref } => match store.find_subscription_by_destination(endpoint_ref).await? {
            Some(subscription) if subscription.enabled => {
                description["subscription_id"] = json!(subscription.id);
                description["endpoint_url"] = json!(subscription.endpoint_url);
            }
            Some(_) => error = Some(crate::store::runs::disabled_endpoint_message(endpoint_ref)),
            None => error = Some(crate::store::runs::unknown_endpoint_message(endpoint_ref)),
        },
        PlannedEffect::Event(event) => {
            description["user_id"] = json!(event.user_id);
            description["occurred_at"] = json!(event.occurred_at);
        }
    }
    if let Some(message) = &error {
        description["error"] = json!(message);
    }
    Ok((description, error))
}
