//! Example action `task-request`: creates a task in an outside task system
//! through a webhook subscription.
//!
//! The action `{"type": "task", "endpoint_ref": "Tarefas", "title": "Ligar para {{payload.name}}"}`
//! returns two effects: deliver the triggering event to the subscription
//! whose `destination_name` is `endpoint_ref`, and store a `task.requested`
//! event whose payload contains the resolved title, so automations and CRMs can
//! follow the task. `{{payload.a.b}}` placeholders in `title` read the
//! triggering event's payload. The config may set `source` (default `task-request`).

use serde_json::{Map, Value, json};

/// The `action.type` this plugin handles.
pub const ACTION_TYPE: &str = "task";

/// The name of the event the action stores.
pub const TASK_EVENT: &str = "task.requested";

/// A rejected action or config: a stable code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// A valid action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskAction {
    pub endpoint_ref: String,
    /// The title with its placeholders not yet resolved.
    pub title: String,
}

/// The effects `run` requests from the host.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEffects {
    /// The subscription the triggering event is delivered to.
    pub endpoint_ref: String,
    /// The `task.requested` payload, a JSON object as text.
    pub task_payload: String,
    pub source: String,
    pub idempotency_key: String,
}

/// Checks an action's fields.
pub fn validate(action: &str) -> Result<TaskAction, Rejection> {
    let action = parse_object("the action", action, "invalid_action")?;
    if action.get("type").and_then(Value::as_str) != Some(ACTION_TYPE) {
        return Err(invalid(format!("`type` must be \"{ACTION_TYPE}\"")));
    }
    let endpoint_ref = required_string(&action, "endpoint_ref", "the destination_name of a webhook subscription, for example \"Tarefas\"")?;
    let title = required_string(&action, "title", "the task title, for example \"Ligar para {{payload.name}}\"")?;
    placeholders(&title)?;
    Ok(TaskAction { endpoint_ref, title })
}

/// Computes the effects of `action` for the event `event_id` of `event_name` with `payload`.
pub fn run(event_id: &str, event_name: &str, payload: &str, action: &str, config: &str) -> Result<TaskEffects, Rejection> {
    let action = validate(action)?;
    let payload = parse_object("the event payload", payload, "invalid_event")?;
    let config = parse_object("the config", config, "invalid_config")?;
    let source = match config.get("source") {
        None => "task-request".to_owned(),
        Some(Value::String(source)) if !source.trim().is_empty() => source.trim().to_owned(),
        Some(other) => return Err(Rejection { code: "invalid_config", message: format!("config `source` must be a non-empty string, got {other}") }),
    };

    let title = resolve(&action.title, &payload)?;
    let task_payload = json!({
        "title": title,
        "endpoint_ref": action.endpoint_ref,
        "from_event": event_id,
        "from_event_name": event_name,
    });
    Ok(TaskEffects {
        idempotency_key: format!("task:{event_id}:{}", action.endpoint_ref),
        endpoint_ref: action.endpoint_ref,
        task_payload: task_payload.to_string(),
        source,
    })
}

/// Replaces each `{{payload.path}}` in `template` with that payload value.
fn resolve(template: &str, payload: &Map<String, Value>) -> Result<String, Rejection> {
    let mut resolved = String::new();
    let mut rest = template;
    for path in placeholders(template)? {
        let (before, after) = rest.split_once("{{").expect("placeholders found an opening");
        resolved.push_str(before);
        rest = after.split_once("}}").expect("placeholders found a closing").1;

        let mut value = payload.get(path.split('.').next().unwrap_or_default());
        for key in path.split('.').skip(1) {
            value = value.and_then(|value| value.get(key));
        }
        match value {
            Some(Value::String(text)) => resolved.push_str(text),
            Some(Value::Null) | None => {
                return Err(Rejection { code: "missing_value", message: format!("`{{{{payload.{path}}}}}` in `title` has no value in the event payload") });
            }
            Some(other) => resolved.push_str(&other.to_string()),
        }
    }
    resolved.push_str(rest);
    Ok(resolved)
}

/// The payload paths of a title's placeholders, or why one is invalid.
fn placeholders(template: &str) -> Result<Vec<String>, Rejection> {
    let mut paths = Vec::new();
    let mut rest = template;
    while let Some((_, after)) = rest.split_once("{{") {
        let Some((inside, after)) = after.split_once("}}") else {
            return Err(invalid("`title` has a `{{` without a closing `}}`".to_owned()));
        };
        let Some(path) = inside.trim().strip_prefix("payload.").filter(|path| !path.is_empty()) else {
            return Err(invalid(format!("`{{{{{inside}}}}}` in `title` must be a payload path such as `{{{{payload.name}}}}`")));
        };
        paths.push(path.to_owned());
        rest = after;
    }
    Ok(paths)
}

fn required_string(object: &Map<String, Value>, field: &str, meaning: &str) -> Result<String, Rejection> {
    match object.get(field) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Some(Value::String(_)) => Err(invalid(format!("`{field}` is empty: set it to {meaning}"))),
        Some(other) => Err(invalid(format!("`{field}` must be a string, got {other}"))),
        None => Err(invalid(format!("`{field}` is missing: set it to {meaning}"))),
    }
}

fn parse_object(what: &str, text: &str, code: &'static str) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(Rejection { code, message: format!("{what} must be a JSON object") }),
        Err(error) => Err(Rejection { code, message: format!("{what} is not valid JSON: {error}") }),
    }
}

fn invalid(message: String) -> Rejection {
    Rejection { code: "invalid_action", message }
}

// The export glue wit-bindgen generates takes one argument per record field.
#[cfg(target_arch = "wasm32")]
#[allow(clippy::too_many_arguments)]
mod wasm {
    wit_bindgen::generate!({ path: "../../../wit", world: "action" });

    use grito::plugin::types::{EventDraft, PluginKind};

    struct TaskRequest;

    fn to_plugin_error(rejection: crate::Rejection) -> PluginError {
        PluginError { code: rejection.code.to_owned(), message: rejection.message }
    }

    impl Guest for TaskRequest {
        fn describe() -> PluginInfo {
            PluginInfo {
                name: "task-request".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                kind: PluginKind::Action,
                action_types: vec![crate::ACTION_TYPE.to_owned()],
            }
        }

        fn validate(action: String, _config: String) -> Result<(), PluginError> {
            crate::validate(&action).map(|_| ()).map_err(to_plugin_error)
        }

        fn run(event: Event, action: String, config: String) -> Result<Vec<Effect>, PluginError> {
            let effects = crate::run(&event.id, &event.event_name, &event.payload, &action, &config).map_err(to_plugin_error)?;
            Ok(vec![
                Effect::DeliverWebhook(effects.endpoint_ref),
                Effect::EmitEvent(EventDraft {
                    event_name: crate::TASK_EVENT.to_owned(),
                    user_id: Some(event.user_id),
                    identity: None,
                    source: effects.source,
                    occurred_at: None,
                    payload: effects.task_payload,
                    idempotency_key: Some(effects.idempotency_key),
                }),
            ])
        }
    }

    export!(TaskRequest);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTION: &str = r#"{"type":"task","endpoint_ref":"Tarefas","title":"Ligar para {{payload.name}} em {{payload.address.city}}"}"#;

    #[test]
    fn title_placeholders_are_resolved() {
        let effects = run("e1", "user.signed_up", r#"{"name":"Maria","address":{"city":"Recife"}}"#, ACTION, "{}").unwrap();

        assert_eq!(effects.endpoint_ref, "Tarefas");
        let payload: Value = serde_json::from_str(&effects.task_payload).unwrap();
        assert_eq!(payload["title"], "Ligar para Maria em Recife");
        assert_eq!(payload["from_event"], "e1");
        assert_eq!(effects.source, "task-request");
    }

    #[test]
    fn missing_payload_value_is_named() {
        let rejection = run("e1", "user.signed_up", r#"{"name":"Maria"}"#, ACTION, "{}").unwrap_err();
        assert_eq!(rejection.code, "missing_value");
        assert!(rejection.message.contains("payload.address.city"), "{}", rejection.message);
    }

    #[test]
    fn missing_fields_are_named() {
        assert!(validate(r#"{"type":"task","title":"x"}"#).unwrap_err().message.contains("`endpoint_ref` is missing"));
        assert!(validate(r#"{"type":"task","endpoint_ref":"Tarefas"}"#).unwrap_err().message.contains("`title` is missing"));
    }

    #[test]
    fn bad_placeholder_is_rejected() {
        let rejection = validate(r#"{"type":"task","endpoint_ref":"Tarefas","title":"Oi {{name}}"}"#).unwrap_err();
        assert!(rejection.message.contains("payload path"), "{}", rejection.message);
        let rejection = validate(r#"{"type":"task","endpoint_ref":"Tarefas","title":"Oi {{payload.name"}"#).unwrap_err();
        assert!(rejection.message.contains("without a closing"), "{}", rejection.message);
    }
}
