//! The `email` action:
//! `{"type": "email", "template_id": "welcome_01", "to": "{{payload.email}}",
//! "variables": {"nome": "{{payload.name}}"}}` queues one email.
//!
//! `to` and every variable may hold `{{…}}` placeholders, resolved from the
//! event: `{{payload.a.b}}` (a path into the payload; a number selects an
//! array item), `{{event_name}}`, `{{user_id}}`, `{{source}}`,
//! `{{occurred_at}}` and `{{id}}`. A missing path, a null, an object or an
//! array where text is needed, or a `to` that is not one valid email address
//! fails the run with an error naming the field and the placeholder.

#[cfg(target_arch = "wasm32")]
mod wasm;
mod template;

use email_address::{EmailAddress, Options};

pub use template::{Template, TemplateError};

/// The `action.type` this plugin handles.
pub const ACTION_TYPE: &str = "email";

/// A rejected action or a failed run: a stable code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    pub code: &'static str,
    pub message: String,
}

impl ActionError {
    fn invalid(message: String) -> Self {
        Self { code: "invalid_action", message }
    }
}

/// The event fields placeholders can read.
#[derive(Debug, Clone)]
pub struct EventFields<'a> {
    pub id: &'a str,
    pub event_name: &'a str,
    pub user_id: &'a str,
    pub source: &'a str,
    pub occurred_at: &'a str,
    /// The payload as JSON text.
    pub payload: &'a str,
}

/// A parsed, checked email action.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailAction {
    pub template_id: String,
    pub to: Template,
    pub variables: Vec<(String, Template)>,
}

/// The email to queue, with every placeholder resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub template_id: String,
    pub to: String,
    pub variables: Vec<(String, String)>,
}

/// Parses and checks an action; a `to` without placeholders must already be a valid address.
pub fn parse_action(action: &str) -> Result<EmailAction, ActionError> {
    let value: serde_json::Value =
        serde_json::from_str(action).map_err(|error| ActionError::invalid(format!("the action is not valid JSON: {error}")))?;
    let object = value.as_object().ok_or_else(|| ActionError::invalid("the action must be a JSON object".to_owned()))?;

    match object.get("type") {
        Some(serde_json::Value::String(kind)) if kind == ACTION_TYPE => {}
        _ => return Err(ActionError::invalid(format!("`type` must be \"{ACTION_TYPE}\""))),
    }
    let template_id = required_string(object, "template_id")?;
    check_template_id(&template_id)?;
    let to_text = required_string(object, "to")?;
    let to = Template::parse(&to_text).map_err(|error| ActionError::invalid(format!("`to`: {error}")))?;
    if to.is_literal() {
        check_address(&to_text).map_err(|reason| ActionError::invalid(format!("`to` is not a valid email address: {reason}")))?;
    }
    let variables = parse_variables(object.get("variables"))?;

    Ok(EmailAction { template_id, to, variables })
}

/// Resolves the action's placeholders from `event` and returns the email to queue.
pub fn render(action: &EmailAction, event: &EventFields<'_>) -> Result<Email, ActionError> {
    let payload: serde_json::Value = serde_json::from_str(event.payload).map_err(|error| ActionError {
        code: "invalid_event",
        message: format!("the event payload is not valid JSON: {error}"),
    })?;
    let resolve = |field: &str, template: &Template| {
        template.render(event, &payload).map_err(|error| ActionError { code: error.code(), message: format!("`{field}`: {error}") })
    };

    let to = resolve("to", &action.to)?;
    let to = to.trim().to_owned();
    check_address(&to).map_err(|reason| ActionError {
        code: "invalid_email",
        message: format!("`to` resolved to `{to}`, which is not a valid email address: {reason}"),
    })?;

    let mut variables = Vec::with_capacity(action.variables.len());
    for (name, template) in &action.variables {
        variables.push((name.clone(), resolve(&format!("variables.{name}"), template)?));
    }
    Ok(Email { template_id: action.template_id.clone(), to, variables })
}

fn required_string(object: &serde_json::Map<String, serde_json::Value>, field: &str) -> Result<String, ActionError> {
    match object.get(field) {
        None | Some(serde_json::Value::Null) => Err(ActionError::invalid(format!("`{field}` is missing"))),
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => Err(ActionError::invalid(format!("`{field}` is empty"))),
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(ActionError::invalid(format!("`{field}` must be a string, got {other}"))),
    }
}

/// Template ids name a file in the host's templates folder, so they are
/// kept to letters, digits, `_`, `-` and `.`, and never start with `.`.
fn check_template_id(template_id: &str) -> Result<(), ActionError> {
    let allowed = template_id.chars().all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.'));
    if !allowed || template_id.starts_with('.') || template_id.len() > 100 {
        return Err(ActionError::invalid(format!(
            "`template_id` `{template_id}` is invalid: use up to 100 letters, digits, `_`, `-` or `.`, for example \"welcome_01\""
        )));
    }
    Ok(())
}

fn parse_variables(value: Option<&serde_json::Value>) -> Result<Vec<(String, Template)>, ActionError> {
    let object = match value {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Object(object)) => object,
        Some(other) => return Err(ActionError::invalid(format!("`variables` must be an object of texts, got {other}"))),
    };
    let mut variables = Vec::with_capacity(object.len());
    for (name, value) in object {
        if name.trim().is_empty() {
            return Err(ActionError::invalid("`variables` has an empty name".to_owned()));
        }
        let text = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            other => return Err(ActionError::invalid(format!("`variables.{name}` must be text, a number or a boolean, got {other}"))),
        };
        let template = Template::parse(&text).map_err(|error| ActionError::invalid(format!("`variables.{name}`: {error}")))?;
        variables.push((name.clone(), template));
    }
    Ok(variables)
}

/// One plain address (`name@example.org`): no display name, a domain with at least two labels.
fn check_address(address: &str) -> Result<(), String> {
    let options = Options::default().with_required_tld().without_domain_literal().without_display_text();
    EmailAddress::parse_with_options(address, options).map(|_| ()).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests;
