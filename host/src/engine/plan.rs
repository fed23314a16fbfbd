//! Deciding one run: the automation's condition, then its action, then the
//! action's effects made ready for the store (emails rendered, emitted
//! events validated). Nothing here writes; the engine and the preview share it.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Effect, EventDraft, Plugins};
use crate::ingest;
use crate::mailer::Templates;
use crate::store::{Automation, Event, NewEvent, PlannedEffect, RunStatus};

/// The decision for one (automation, event), before it is written.
#[derive(Debug, Clone)]
pub struct Decision {
    pub status: RunStatus,
    /// `None` when the automation has no condition or the condition failed.
    pub condition_result: Option<bool>,
    /// What the action returned, as the plugin said it.
    pub effects: Vec<Effect>,
    /// The same effects ready for the store (empty unless `Succeeded`).
    pub planned: Vec<PlannedEffect>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Runs the condition and the action of `automation` for `event` and
/// prepares the effects. Plugin and template failures become a `Failed`
/// decision with the reason; nothing here returns an internal error.
pub async fn decide(
    plugins: &dyn Plugins,
    templates: &Templates,
    automation: &Automation,
    event: &Event,
    now: DateTime<Utc>,
) -> Decision {
    let started = Instant::now();
    let mut decision = Decision {
        status: RunStatus::Succeeded,
        condition_result: None,
        effects: Vec::new(),
        planned: Vec::new(),
        error: None,
        duration_ms: 0,
    };

    if let Some(condition) = automation.condition_sql.as_deref().filter(|text| !text.trim().is_empty()) {
        match plugins.evaluate_condition(event, condition, now).await {
            Ok(result) => decision.condition_result = Some(result),
            Err(error) => return finish(fail(decision, format!("condition failed: {error}")), started),
        }
        if decision.condition_result == Some(false) {
            decision.status = RunStatus::Skipped;
            return finish(decision, started);
        }
    }

    match plugins.run_action(event, &automation.action, now).await {
        Ok(effects) => decision.effects = effects,
        Err(error) => return finish(fail(decision, format!("action failed: {error}")), started),
    }

    for effect in &decision.effects {
        match plan_effect(templates, effect, now) {
            Ok(planned) => decision.planned.push(planned),
            Err(message) => return finish(fail(decision, message), started),
        }
    }
    finish(decision, started)
}

/// One effect as the plugin returned it, for logs, run records and previews.
pub fn describe_effect(effect: &Effect) -> Value {
    match effect {
        Effect::SendEmail { template_id, to, variables } => json!({
            "type": "send_email",
            "template_id": template_id,
            "to": to,
            "variables": variables.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect::<serde_json::Map<_, _>>(),
        }),
        Effect::DeliverWebhook { endpoint_ref } => json!({"type": "deliver_webhook", "endpoint_ref": endpoint_ref}),
        Effect::EmitEvent(draft) => json!({
            "type": "emit_event",
            "event_name": draft.event_name,
            "user_id": draft.user_id,
            "identity": draft.identity.as_ref().map(|(source, external_id)| json!({"source": source, "external_id": external_id})),
            "source": draft.source,
            "occurred_at": draft.occurred_at,
            "payload": draft.payload,
            "idempotency_key": draft.idempotency_key,
        }),
    }
}

fn plan_effect(templates: &Templates, effect: &Effect, now: DateTime<Utc>) -> Result<PlannedEffect, String> {
    match effect {
        Effect::SendEmail { template_id, to, variables } => templates
            .render(template_id, to, variables)
            .map(PlannedEffect::Email)
            .map_err(|error| format!("email effect failed: {error}")),
        Effect::DeliverWebhook { endpoint_ref } => Ok(PlannedEffect::Webhook { endpoint_ref: endpoint_ref.clone() }),
        Effect::EmitEvent(draft) => draft_to_event(draft, now).map(PlannedEffect::Event),
    }
}

/// Validates an emitted event with the same rules as `POST /events`.
fn draft_to_event(draft: &EventDraft, now: DateTime<Utc>) -> Result<NewEvent, String> {
    let user_id = match (draft.user_id, &draft.identity) {
        (Some(user_id), _) => user_id,
        (None, Some((source, _))) => {
            return Err(format!(
                "emit_event effect failed: the draft `{}` names a {source} identity instead of a user_id, \
                 and identity resolution not available in the automation engine",
                draft.event_name
            ));
        }
        (None, None) => return Err(format!("emit_event effect failed: the draft `{}` has no user_id", draft.event_name)),
    };
    let body = json!({
        "event_name": draft.event_name,
        "user_id": user_id,
        "source": draft.source,
        "occurred_at": draft.occurred_at.unwrap_or(now),
        "payload": draft.payload,
        "idempotency_key": draft.idempotency_key,
    });
    ingest::parse_event(&body).map_err(|error| format!("emit_event effect failed: invalid event draft: {}", error.message_en))
}

fn fail(mut decision: Decision, message: String) -> Decision {
    decision.status = RunStatus::Failed;
    decision.planned.clear();
    decision.error = Some(message);
    decision
}

fn finish(mut decision: Decision, started: Instant) -> Decision {
    decision.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    decision
}
