//! Checks an automation when it is saved (CLI, admin API) and when the
//! engine loads it: the action's type has a plugin that accepts the action,
//! the condition parses, and an email action's template exists.

use std::fmt;

use serde::Serialize;

use super::Plugins;
use crate::ingest::MAX_NAME_CHARS;
use crate::mailer::Templates;
use crate::store::{Automation, NewAutomation};

/// One problem with an automation, naming the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

/// Every problem found in an automation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct InvalidAutomation {
    pub problems: Vec<Problem>,
}

impl fmt::Display for InvalidAutomation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.problems.iter().map(|problem| format!("{}: {}", problem.field, problem.message)).collect();
        write!(formatter, "{}", lines.join("; "))
    }
}

/// Checks an automation before it is stored. All problems are reported at once.
pub async fn validate_automation(
    plugins: &dyn Plugins,
    templates: &Templates,
    automation: &NewAutomation,
) -> Result<(), InvalidAutomation> {
    let mut problems = Vec::new();
    check_name(&mut problems, "name", &automation.name);
    check_name(&mut problems, "match_event", &automation.match_event);
    check_rules(&mut problems, plugins, templates, automation.condition_sql.as_deref(), &automation.action).await;
    if problems.is_empty() { Ok(()) } else { Err(InvalidAutomation { problems }) }
}

/// Checks a stored automation's condition and action.
pub(crate) async fn validate_loaded(
    plugins: &dyn Plugins,
    templates: &Templates,
    automation: &Automation,
) -> Result<(), InvalidAutomation> {
    let mut problems = Vec::new();
    check_rules(&mut problems, plugins, templates, automation.condition_sql.as_deref(), &automation.action).await;
    if problems.is_empty() { Ok(()) } else { Err(InvalidAutomation { problems }) }
}

fn check_name(problems: &mut Vec<Problem>, field: &'static str, value: &str) {
    if value.trim().is_empty() {
        problems.push(Problem { field, message: format!("{field} is missing") });
    } else if value.chars().count() > MAX_NAME_CHARS {
        problems.push(Problem { field, message: format!("{field} is longer than {MAX_NAME_CHARS} characters") });
    } else if value.trim() != value || value.chars().any(char::is_control) {
        problems.push(Problem { field, message: format!("{field} must not contain control characters or surrounding spaces") });
    }
}

async fn check_rules(
    problems: &mut Vec<Problem>,
    plugins: &dyn Plugins,
    templates: &Templates,
    condition: Option<&str>,
    action: &serde_json::Value,
) {
    if let Some(condition) = condition.filter(|text| !text.trim().is_empty())
        && let Err(error) = plugins.check_condition(condition).await
    {
        problems.push(Problem { field: "condition_sql", message: format!("invalid condition: {error}") });
    }

    let Some(action_type) = action.get("type").and_then(serde_json::Value::as_str) else {
        problems.push(Problem {
            field: "action",
            message: "action must be a JSON object with a string `type`, for example {\"type\":\"email\",\"template_id\":\"welcome_01\",…}".to_owned(),
        });
        return;
    };
    if let Err(error) = plugins.validate_action(action).await {
        problems.push(Problem { field: "action", message: format!("invalid {action_type} action: {error}") });
        return;
    }

    if action_type == "email"
        && let Some(template_id) = action.get("template_id").and_then(serde_json::Value::as_str)
        && let Err(error) = templates.check_exists(template_id)
    {
        problems.push(Problem { field: "action", message: error.to_string() });
    }
}
