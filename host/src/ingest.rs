//! The one persistence path for new events: validation, idempotent insert
//! with fan-out to subscriptions, the accepted-event log line, and the
//! wake-up of the workers. `POST /events`, Stripe, normalizers and the daily
//! job all store events through here.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::ApiError;
use crate::signals::Signals;
use crate::store::{InsertedEvent, NewEvent, Store};

/// Longest accepted `event_name` and `source`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest accepted `idempotency_key`, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 500;

const REQUIRED: [&str; 4] = ["event_name", "user_id", "source", "payload"];

/// Validates a `POST /events` body. Every missing required field is named at
/// once; otherwise the first invalid field is reported.
pub fn parse_event(body: &Value) -> Result<NewEvent, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(invalid(
            "body",
            format!("the body must be a JSON object, got {}", type_name(body)),
            format!("o corpo deve ser um objeto JSON, recebido {}", type_name_pt(body)),
        ));
    };

    // The brief treats null and empty strings like absent fields.
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|field| match object.get(*field) {
            None | Some(Value::Null) => true,
            Some(Value::String(text)) => text.trim().is_empty(),
            Some(_) => false,
        })
        .collect();
    if !missing.is_empty() {
        let list = missing.join(", ");
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "missing_fields",
            format!("missing required fields: {list}"),
            format!("campos obrigatórios ausentes: {list}"),
        )
        .with_fields(missing));
    }

    let event_name = name_field(object, "event_name")?;
    let source = name_field(object, "source")?;
    let user_id = user_id_field(object)?;
    let payload = match &object["payload"] {
        Value::Object(payload) => payload.clone(),
        other => {
            return Err(invalid(
                "payload",
                format!("payload must be a JSON object, got {}", type_name(other)),
                format!("payload deve ser um objeto JSON, recebido {}", type_name_pt(other)),
            ));
        }
    };
    if contains_nul(&object["payload"]) {
        return Err(nul_character("payload"));
    }
    let occurred_at = occurred_at_field(object)?;
    let idempotency_key = idempotency_key_field(object)?;

    Ok(NewEvent { event_name, user_id, source, occurred_at, payload, idempotency_key })
}

/// Stores a validated event, logs it and wakes the workers. The caller may
/// answer the client once this returns: the event and its deliveries are
/// committed.
pub async fn accept(store: &dyn Store, signals: &Signals, event: NewEvent) -> anyhow::Result<InsertedEvent> {
    let event_name = event.event_name.clone();
    let source = event.source.clone();
    let inserted = store.insert_event(event).await?;
    crate::metrics::record_event(&source, &event_name, inserted.dedup);

    tracing::info!(
        event_id = %inserted.id,
        event_name,
        source,
        dedup = inserted.dedup,
        deliveries = inserted.deliveries,
        "event accepted"
    );
    if !inserted.dedup {
        signals.events.notify_one();
    }
    if inserted.deliveries > 0 {
        signals.deliveries.notify_one();
    }
    Ok(inserted)
}

fn name_field(object: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    let Value::String(text) = &object[field] else {
        return Err(wrong_type(field, "a string", "um texto", &object[field]));
    };
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            field,
            format!("{field} is longer than {MAX_NAME_CHARS} characters"),
            format!("{field} tem mais de {MAX_NAME_CHARS} caracteres"),
        ));
    }
    if text.chars().any(char::is_control) || text.trim() != text {
        return Err(invalid(
            field,
            format!("{field} must not contain control characters or surrounding spaces"),
            format!("{field} não pode conter caracteres de controle nem espaços nas pontas"),
        ));
    }
    Ok(text.clone())
}

fn user_id_field(object: &Map<String, Value>) -> Result<Uuid, ApiError> {
    let Value::String(text) = &object["user_id"] else {
        return Err(wrong_type("user_id", "a UUID string", "um UUID em texto", &object["user_id"]));
    };
    Uuid::parse_str(text).map_err(|_| {
        invalid(
            "user_id",
            format!("user_id must be a UUID such as 2f1c7a4e-8d1b-4c5e-9a7f-0b6d3e2c1a90, got `{}`", shorten(text)),
            format!("user_id deve ser um UUID como 2f1c7a4e-8d1b-4c5e-9a7f-0b6d3e2c1a90, recebido `{}`", shorten(text)),
        )
    })
}

fn occurred_at_field(object: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match object.get("occurred_at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|_| {
                invalid(
                    "occurred_at",
                    format!("occurred_at must be an RFC 3339 timestamp such as 2025-09-25T14:30:00-03:00, got `{}`", shorten(text)),
                    format!("occurred_at deve ser um horário RFC 3339 como 2025-09-25T14:30:00-03:00, recebido `{}`", shorten(text)),
                )
            }),
        Some(other) => Err(wrong_type("occurred_at", "an RFC 3339 string", "um texto RFC 3339", other)),
    }
}

fn idempotency_key_field(object: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match object.get("idempotency_key") {
        None | Some(Value::Null) => Ok(None),
        // The brief stores `idempotency_key || null`, so an empty key means none.
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) if text.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS => Err(invalid(
            "idempotency_key",
            format!("idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
            format!("idempotency_key tem mais de {MAX_IDEMPOTENCY_KEY_CHARS} caracteres"),
        )),
        Some(Value::String(text)) if text.contains('\0') => Err(nul_character("idempotency_key")),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type("idempotency_key", "a string", "um texto", other)),
    }
}

/// Returns true when a string or object key anywhere in `value` contains
/// U+0000. PostgreSQL cannot store that character in text or jsonb, so an
/// event containing it is rejected on both backends alike.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || contains_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn nul_character(field: &str) -> ApiError {
    invalid(
        field,
        format!("{field} must not contain the NUL character (\\u0000)"),
        format!("{field} não pode conter o caractere NUL (\\u0000)"),
    )
}

fn invalid(field: &str, message_en: String, message_pt: String) -> ApiError {
    ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_field", message_en, message_pt).with_fields([field])
}

fn wrong_type(field: &str, expected_en: &str, expected_pt: &str, got: &Value) -> ApiError {
    invalid(
        field,
        format!("{field} must be {expected_en}, got {}", type_name(got)),
        format!("{field} deve ser {expected_pt}, recebido {}", type_name_pt(got)),
    )
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_name_pt(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "um booleano",
        Value::Number(_) => "um número",
        Value::String(_) => "um texto",
        Value::Array(_) => "uma lista",
        Value::Object(_) => "um objeto",
    }
}

/// Cuts a client value to a length that is safe to echo in an error.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "event_name": "user.signed_up",
            "user_id": "2f1c7a4e-8d1b-4c5e-9a7f-0b6d3e2c1a90",
            "source": "app",
            "payload": {"name": "Maria Souza"}
        })
    }

    #[test]
    fn valid_event_parses_with_defaults() {
        let event = parse_event(&valid()).unwrap();
        assert_eq!(event.event_name, "user.signed_up");
        assert_eq!(event.occurred_at, None);
        assert_eq!(event.idempotency_key, None);
    }

    #[test]
    fn every_missing_field_is_named() {
        let error = parse_event(&json!({"source": "", "payload": null})).unwrap_err();
        assert_eq!(error.code, "missing_fields");
        assert_eq!(error.fields, ["event_name", "user_id", "source", "payload"]);
        assert!(error.message_en.contains("event_name, user_id, source, payload"), "{}", error.message_en);
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (field, value) in [
            ("event_name", json!(5)),
            ("user_id", json!("not-a-uuid")),
            ("user_id", json!(12)),
            ("source", json!(["app"])),
            ("payload", json!([1, 2])),
            ("payload", json!("text")),
            ("occurred_at", json!("yesterday")),
            ("occurred_at", json!(1700000000)),
            ("idempotency_key", json!(7)),
        ] {
            let mut body = valid();
            body[field] = value.clone();
            let error = parse_event(&body).unwrap_err();
            assert_eq!(error.code, "invalid_field", "{field} = {value}");
            assert_eq!(error.fields, [field], "{field} = {value}");
            assert!(error.message_en.contains(field), "{}", error.message_en);
        }
    }

    #[test]
    fn nul_characters_are_refused_with_the_field() {
        for (field, value) in [
            ("payload", json!({"name": "Maria\u{0}"})),
            ("payload", json!({"tags": [{"a\u{0}b": 1}]})),
            ("idempotency_key", json!("key\u{0}")),
        ] {
            let mut body = valid();
            body[field] = value.clone();
            let error = parse_event(&body).unwrap_err();
            assert_eq!(error.code, "invalid_field", "{field} = {value}");
            assert_eq!(error.fields, [field], "{field} = {value}");
            assert!(error.message_en.contains("\\u0000"), "{}", error.message_en);
        }
    }

    #[test]
    fn occurred_at_keeps_its_instant() {
        let mut body = valid();
        body["occurred_at"] = json!("2025-09-25T14:30:00-03:00");
        let event = parse_event(&body).unwrap();
        assert_eq!(event.occurred_at.unwrap().to_rfc3339(), "2025-09-25T17:30:00+00:00");
    }

    #[test]
    fn empty_idempotency_key_means_none() {
        let mut body = valid();
        body["idempotency_key"] = json!("");
        assert_eq!(parse_event(&body).unwrap().idempotency_key, None);
    }
}
