//! `{{…}}` placeholders in text, resolved from an event.

use std::fmt;

use crate::EventFields;

/// Text split into literal parts and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// The placeholder's path, split at `.`; the first segment is the root.
    Placeholder(Vec<String>),
}

/// Why a template did not parse or did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Unclosed,
    Empty,
    UnknownRoot(String),
    Missing { placeholder: String, missing: String },
    NotText { placeholder: String, found: &'static str },
}

impl TemplateError {
    /// The stable code a failed run reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unclosed | Self::Empty | Self::UnknownRoot(_) => "invalid_action",
            Self::Missing { .. } => "missing_value",
            Self::NotText { .. } => "not_text",
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unclosed => write!(formatter, "a `{{{{` has no matching `}}}}`"),
            Self::Empty => write!(formatter, "a placeholder `{{{{}}}}` is empty"),
            Self::UnknownRoot(path) => write!(
                formatter,
                "unknown placeholder `{{{{{path}}}}}`: use payload.<path>, event_name, user_id, source, occurred_at or id"
            ),
            Self::Missing { placeholder, missing } => {
                write!(formatter, "`{{{{{placeholder}}}}}` has no value in this event (`{missing}` is missing)")
            }
            Self::NotText { placeholder, found } => {
                write!(formatter, "`{{{{{placeholder}}}}}` is {found} in this event, not text, a number or a boolean")
            }
        }
    }
}

const ROOTS: &[&str] = &["payload", "event_name", "user_id", "source", "occurred_at", "id"];

impl Template {
    /// Splits `text` into literals and `{{path}}` placeholders (spaces inside the braces are ignored).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
            let path = after[..end].trim();
            if path.is_empty() {
                return Err(TemplateError::Empty);
            }
            let segments: Vec<String> = path.split('.').map(|segment| segment.trim().to_owned()).collect();
            let root_ok = ROOTS.contains(&segments[0].as_str()) && (segments[0] == "payload" || segments.len() == 1);
            if !root_ok || segments.iter().any(String::is_empty) {
                return Err(TemplateError::UnknownRoot(path.to_owned()));
            }
            parts.push(Part::Placeholder(segments));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// True when the text has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|part| matches!(part, Part::Literal(_)))
    }

    /// Returns the text with every placeholder replaced by the event's value.
    pub fn render(&self, event: &EventFields<'_>, payload: &serde_json::Value) -> Result<String, TemplateError> {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => text.push_str(literal),
                Part::Placeholder(segments) => text.push_str(&resolve(segments, event, payload)?),
            }
        }
        Ok(text)
    }
}

fn resolve(segments: &[String], event: &EventFields<'_>, payload: &serde_json::Value) -> Result<String, TemplateError> {
    let placeholder = segments.join(".");
    let field = match segments[0].as_str() {
        "event_name" => Some(event.event_name),
        "user_id" => Some(event.user_id),
        "source" => Some(event.source),
        "occurred_at" => Some(event.occurred_at),
        "id" => Some(event.id),
        _ => None,
    };
    if let Some(value) = field {
        return Ok(value.to_owned());
    }

    let mut current = payload;
    for (depth, segment) in segments.iter().enumerate().skip(1) {
        let next = match current {
            serde_json::Value::Object(object) => object.get(segment),
            serde_json::Value::Array(items) => segment.parse::<usize>().ok().and_then(|index| items.get(index)),
            _ => None,
        };
        current = next.ok_or_else(|| TemplateError::Missing { placeholder: placeholder.clone(), missing: segments[..=depth].join(".") })?;
    }

    match current {
        serde_json::Value::String(text) => Ok(text.clone()),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Bool(flag) => Ok(flag.to_string()),
        serde_json::Value::Null => Err(TemplateError::NotText { placeholder, found: "null" }),
        serde_json::Value::Array(_) => Err(TemplateError::NotText { placeholder, found: "an array" }),
        serde_json::Value::Object(_) => Err(TemplateError::NotText { placeholder, found: "an object" }),
    }
}
