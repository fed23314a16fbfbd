//! Example normalizer `form-post`: a form posted to `/ingest/form-post` as
//! `application/x-www-form-urlencoded` becomes one event.
//!
//! `user_id=…&event=form.submitted&nome=Maria&turma=A` becomes the draft
//! `form.submitted` for that user with the payload `{"nome": "Maria", "turma": "A"}`.
//! Every other field is a string in the payload; a field given twice is
//! rejected, because one of its values would be lost. The config may set
//! `source` (default `form-post`).

use serde_json::{Map, Value};

/// The content type the plugin accepts.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// A rejected request or config: a stable code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// The event a form post turns into.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub event_name: String,
    pub user_id: String,
    pub source: String,
    /// A JSON object of strings, as text.
    pub payload: String,
}

/// Turns one form post into a draft. `content_type` is the request's `content-type` header.
pub fn normalize(method: &str, content_type: Option<&str>, body: &[u8], config: &str) -> Result<Draft, Rejection> {
    if method != "POST" {
        return Err(invalid(format!("method {method} is not accepted; post the form")));
    }
    let media_type = content_type.and_then(|value| value.split(';').next()).map(str::trim).unwrap_or_default();
    if !media_type.eq_ignore_ascii_case(FORM_CONTENT_TYPE) {
        return Err(invalid(format!("content-type `{media_type}` is not accepted; send {FORM_CONTENT_TYPE}")));
    }

    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        if fields.insert(name.to_string(), Value::String(value.trim().to_owned())).is_some() {
            return Err(invalid(format!("field `{name}` is given twice")));
        }
    }
    let user_id = take(&mut fields, "user_id")?;
    let event_name = take(&mut fields, "event")?;

    Ok(Draft { event_name, user_id, source: source(config)?, payload: Value::Object(fields).to_string() })
}

fn take(fields: &mut Map<String, Value>, name: &str) -> Result<String, Rejection> {
    match fields.remove(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value),
        _ => Err(invalid(format!("field `{name}` is missing or empty"))),
    }
}

fn source(config: &str) -> Result<String, Rejection> {
    let invalid_config = |message: String| Rejection { code: "invalid_config", message };
    let config: Map<String, Value> = serde_json::from_str(config).map_err(|error| invalid_config(format!("the config is not a JSON object: {error}")))?;
    match config.get("source") {
        None => Ok("form-post".to_owned()),
        Some(Value::String(source)) if !source.trim().is_empty() => Ok(source.trim().to_owned()),
        Some(other) => Err(invalid_config(format!("config `source` must be a non-empty string, got {other}"))),
    }
}

fn invalid(message: String) -> Rejection {
    Rejection { code: "invalid_request", message }
}

// The export glue wit-bindgen generates takes one argument per record field.
#[cfg(target_arch = "wasm32")]
#[allow(clippy::too_many_arguments)]
mod wasm {
    wit_bindgen::generate!({ path: "../../../wit", world: "normalizer" });

    use grito::plugin::types::PluginKind;

    struct FormPost;

    impl Guest for FormPost {
        fn describe() -> PluginInfo {
            PluginInfo { name: "form-post".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned(), kind: PluginKind::Normalizer, action_types: Vec::new() }
        }

        fn normalize(request: HttpRequest, config: String) -> Result<Vec<EventDraft>, PluginError> {
            let content_type = request.headers.iter().find(|(name, _)| name == "content-type").map(|(_, value)| value.as_str());
            let draft = crate::normalize(&request.method, content_type, &request.body, &config)
                .map_err(|rejection| PluginError { code: rejection.code.to_owned(), message: rejection.message })?;
            Ok(vec![EventDraft {
                event_name: draft.event_name,
                user_id: Some(draft.user_id),
                identity: None,
                source: draft.source,
                occurred_at: None,
                payload: draft.payload,
                idempotency_key: None,
            }])
        }
    }

    export!(FormPost);
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "7f1d4c1e-2b0a-4c5e-9a43-1c2d3e4f5a6b";

    #[test]
    fn form_becomes_one_draft() {
        let body = format!("user_id={USER}&event=form.submitted&nome=Maria+da+Silva&cidade=S%C3%A3o+Paulo");

        let draft = normalize("POST", Some("application/x-www-form-urlencoded; charset=utf-8"), body.as_bytes(), "{}").unwrap();

        assert_eq!(draft.event_name, "form.submitted");
        assert_eq!(draft.user_id, USER);
        assert_eq!(draft.source, "form-post");
        let payload: Value = serde_json::from_str(&draft.payload).unwrap();
        assert_eq!(payload, serde_json::json!({"nome": "Maria da Silva", "cidade": "São Paulo"}));
    }

    #[test]
    fn json_content_type_is_rejected() {
        let rejection = normalize("POST", Some("application/json"), b"{}", "{}").unwrap_err();
        assert!(rejection.message.contains("application/x-www-form-urlencoded"), "{}", rejection.message);
    }

    #[test]
    fn repeated_or_missing_fields_are_named() {
        let repeated = normalize("POST", Some(FORM_CONTENT_TYPE), b"user_id=a&user_id=b&event=x", "{}").unwrap_err();
        assert!(repeated.message.contains("`user_id` is given twice"), "{}", repeated.message);
        let missing = normalize("POST", Some(FORM_CONTENT_TYPE), b"user_id=a", "{}").unwrap_err();
        assert!(missing.message.contains("`event` is missing"), "{}", missing.message);
    }
}
