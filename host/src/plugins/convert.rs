//! Conversions between host values and the WIT types, with the host-side
//! checks a plugin's result must pass.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::bindings::types as wit;
use super::types::{Effect, EventDraft, InboundRequest};
use crate::store::Event;

/// Longest text field accepted from a plugin result, in bytes.
const MAX_FIELD_BYTES: usize = 64 * 1024;

pub fn event_to_wit(event: &Event) -> wit::Event {
    wit::Event {
        id: event.id.to_string(),
        event_name: event.event_name.clone(),
        user_id: event.user_id.to_string(),
        source: event.source.clone(),
        occurred_at: event.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        payload: event.payload.to_string(),
    }
}

pub fn request_to_wit(request: InboundRequest) -> wit::HttpRequest {
    wit::HttpRequest {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect(),
        body: request.body,
    }
}

/// Checks and converts an effect; the error says what is wrong with it.
pub fn effect_from_wit(effect: wit::Effect) -> Result<Effect, String> {
    match effect {
        wit::Effect::SendEmail(email) => {
            non_empty("send-email template-id", &email.template_id)?;
            non_empty("send-email to", &email.to)?;
            for (name, value) in &email.variables {
                non_empty("send-email variable name", name)?;
                bounded(&format!("send-email variable `{name}`"), value)?;
            }
            Ok(Effect::SendEmail { template_id: email.template_id, to: email.to, variables: email.variables })
        }
        wit::Effect::DeliverWebhook(endpoint_ref) => {
            non_empty("deliver-webhook endpoint", &endpoint_ref)?;
            Ok(Effect::DeliverWebhook { endpoint_ref })
        }
        wit::Effect::EmitEvent(draft) => Ok(Effect::EmitEvent(draft_from_wit(draft)?)),
    }
}

/// Checks and converts an event draft; the error names the field.
pub fn draft_from_wit(draft: wit::EventDraft) -> Result<EventDraft, String> {
    non_empty("event-draft event-name", &draft.event_name)?;
    non_empty("event-draft source", &draft.source)?;

    let user_id = match draft.user_id {
        Some(text) => Some(Uuid::parse_str(&text).map_err(|_| format!("event-draft user-id `{text}` is not a UUID"))?),
        None => None,
    };
    let identity = match draft.identity {
        Some(identity) => {
            non_empty("event-draft identity source", &identity.source)?;
            non_empty("event-draft identity external-id", &identity.external_id)?;
            Some((identity.source, identity.external_id))
        }
        None => None,
    };
    if user_id.is_none() && identity.is_none() {
        return Err(format!("event-draft `{}` has neither a user-id nor an identity", draft.event_name));
    }
    let occurred_at = match draft.occurred_at {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|_| format!("event-draft occurred-at `{text}` is not an RFC 3339 timestamp"))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let payload = match serde_json::from_str::<serde_json::Value>(&draft.payload) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err("event-draft payload is JSON but not an object".to_owned()),
        Err(error) => return Err(format!("event-draft payload is not valid JSON: {error}")),
    };
    if let Some(key) = &draft.idempotency_key {
        non_empty("event-draft idempotency-key", key)?;
    }

    Ok(EventDraft {
        event_name: draft.event_name,
        user_id,
        identity,
        source: draft.source,
        occurred_at,
        payload,
        idempotency_key: draft.idempotency_key,
    })
}

fn non_empty(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    bounded(field, value)
}

fn bounded(field: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_FIELD_BYTES {
        return Err(format!("{field} is longer than {MAX_FIELD_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> wit::EventDraft {
        wit::EventDraft {
            event_name: "event.checked_in".into(),
            user_id: Some("7f1d4c1e-2b0a-4c5e-9a43-1c2d3e4f5a6b".into()),
            identity: None,
            source: "intelbras".into(),
            occurred_at: Some("2026-12-04T10:00:00Z".into()),
            payload: r#"{"turma":"A"}"#.into(),
            idempotency_key: None,
        }
    }

    #[test]
    fn draft_with_valid_fields_converts() {
        let converted = draft_from_wit(draft()).unwrap();
        assert_eq!(converted.payload["turma"], "A");
        assert!(converted.occurred_at.is_some());
    }

    #[test]
    fn draft_with_bad_fields_names_them() {
        let mut bad = draft();
        bad.user_id = Some("nobody".into());
        assert!(draft_from_wit(bad).unwrap_err().contains("user-id"));

        let mut bad = draft();
        bad.payload = "[1]".into();
        assert!(draft_from_wit(bad).unwrap_err().contains("not an object"));

        let mut bad = draft();
        bad.occurred_at = Some("yesterday".into());
        assert!(draft_from_wit(bad).unwrap_err().contains("occurred-at"));

        let mut bad = draft();
        bad.user_id = None;
        assert!(draft_from_wit(bad).unwrap_err().contains("neither"));
    }

    #[test]
    fn empty_email_recipient_is_rejected() {
        let effect = wit::Effect::SendEmail(wit::Email { template_id: "welcome_01".into(), to: " ".into(), variables: vec![] });
        assert!(effect_from_wit(effect).unwrap_err().contains("send-email to"));
    }
}
