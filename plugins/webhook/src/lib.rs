//! The `webhook` action: `{"type": "webhook", "endpoint_ref": "CRM-Doadores"}`
//! asks the host to deliver the current event to the webhook subscription
//! whose `destination_name` is `endpoint_ref`. The host signs and retries.

#[cfg(target_arch = "wasm32")]
mod wasm;

/// The `action.type` this plugin handles.
pub const ACTION_TYPE: &str = "webhook";

/// A rejected action: a stable code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    pub code: &'static str,
    pub message: String,
}

/// Returns the subscription name the action delivers to, or why the action is invalid.
pub fn endpoint_ref(action: &str) -> Result<String, ActionError> {
    let invalid = |message: String| ActionError { code: "invalid_action", message };
    let value: serde_json::Value = serde_json::from_str(action).map_err(|error| invalid(format!("the action is not valid JSON: {error}")))?;
    let object = value.as_object().ok_or_else(|| invalid("the action must be a JSON object".to_owned()))?;

    match object.get("type") {
        Some(serde_json::Value::String(kind)) if kind == ACTION_TYPE => {}
        _ => return Err(invalid(format!("`type` must be \"{ACTION_TYPE}\""))),
    }
    match object.get("endpoint_ref") {
        None | Some(serde_json::Value::Null) => Err(invalid(
            "`endpoint_ref` is missing: set it to the destination_name of a webhook subscription, for example \"CRM-Doadores\"".to_owned(),
        )),
        Some(serde_json::Value::String(name)) if name.trim().is_empty() => {
            Err(invalid("`endpoint_ref` is empty: set it to the destination_name of a webhook subscription".to_owned()))
        }
        Some(serde_json::Value::String(name)) => Ok(name.trim().to_owned()),
        Some(other) => Err(invalid(format!("`endpoint_ref` must be a string (a subscription's destination_name), got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ref_is_returned_trimmed() {
        assert_eq!(endpoint_ref(r#"{"type":"webhook","endpoint_ref":" CRM-Doadores "}"#).unwrap(), "CRM-Doadores");
    }

    #[test]
    fn missing_endpoint_ref_is_rejected() {
        let error = endpoint_ref(r#"{"type":"webhook"}"#).unwrap_err();
        assert_eq!(error.code, "invalid_action");
        assert!(error.message.contains("`endpoint_ref` is missing"), "{}", error.message);
    }

    #[test]
    fn empty_endpoint_ref_is_rejected() {
        let error = endpoint_ref(r#"{"type":"webhook","endpoint_ref":"  "}"#).unwrap_err();
        assert!(error.message.contains("`endpoint_ref` is empty"), "{}", error.message);
    }

    #[test]
    fn non_string_endpoint_ref_is_rejected() {
        let error = endpoint_ref(r#"{"type":"webhook","endpoint_ref":42}"#).unwrap_err();
        assert!(error.message.contains("must be a string"), "{}", error.message);
    }

    #[test]
    fn wrong_type_or_shape_is_rejected() {
        assert!(endpoint_ref(r#"{"type":"email","endpoint_ref":"x"}"#).unwrap_err().message.contains("`type`"));
        assert!(endpoint_ref("[]").unwrap_err().message.contains("JSON object"));
        assert!(endpoint_ref("{").unwrap_err().message.contains("not valid JSON"));
    }
}
