//! Example condition `bairro-condition`: true when the event's
//! `payload.bairro` is one of the neighbourhoods listed in the config.
//!
//! The condition text names a list of the config; empty text means
//! `bairros`. With the config file `bairro-condition.toml`
//!
//! ```toml
//! bairros = ["Boa Viagem", "Casa Amarela"]
//! zona_norte = ["Casa Amarela", "Água Fria"]
//! ```
//!
//! the condition `zona_norte` is true for `{"bairro": "água fria"}`.
//! Names are compared after trimming and lowercasing; a payload without
//! `bairro` makes the condition false.

use serde_json::{Map, Value};

/// The config list used when the condition text is empty.
pub const DEFAULT_LIST: &str = "bairros";

/// A rejected condition or config: a stable code and a message naming the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// Returns the neighbourhoods of the list the condition names, normalized.
pub fn check(condition: &str, config: &str) -> Result<Vec<String>, Rejection> {
    let list = match condition.trim() {
        "" => DEFAULT_LIST,
        name => name,
    };
    let config = parse_object("the config", config, "invalid_config")?;
    let not_a_list = || Rejection {
        code: "invalid_config",
        message: format!("config `{list}` must be a list of neighbourhood names, for example {list} = [\"Boa Viagem\"]"),
    };
    match config.get(list) {
        Some(Value::Array(items)) => items.iter().map(|item| item.as_str().map(normalize).ok_or_else(not_a_list)).collect(),
        Some(_) => Err(not_a_list()),
        None => Err(Rejection {
            code: "invalid_condition",
            message: format!("`{list}` is not a list in this plugin's config; add {list} = [...] to bairro-condition.toml"),
        }),
    }
}

/// True when `payload.bairro` is in the list the condition names.
pub fn evaluate(payload: &str, condition: &str, config: &str) -> Result<bool, Rejection> {
    let allowed = check(condition, config)?;
    let payload = parse_object("the event payload", payload, "invalid_event")?;
    Ok(match payload.get("bairro") {
        Some(Value::String(bairro)) => allowed.contains(&normalize(bairro)),
        _ => false,
    })
}

fn normalize(name: &str) -> String {
    name.trim().to_lowercase()
}

fn parse_object(what: &str, text: &str, code: &'static str) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(Rejection { code, message: format!("{what} must be a JSON object") }),
        Err(error) => Err(Rejection { code, message: format!("{what} is not valid JSON: {error}") }),
    }
}

// The export glue wit-bindgen generates takes one argument per record field.
#[cfg(target_arch = "wasm32")]
#[allow(clippy::too_many_arguments)]
mod wasm {
    wit_bindgen::generate!({ path: "../../../wit", world: "condition" });

    use grito::plugin::types::PluginKind;

    struct BairroCondition;

    fn to_plugin_error(rejection: crate::Rejection) -> PluginError {
        PluginError { code: rejection.code.to_owned(), message: rejection.message }
    }

    impl Guest for BairroCondition {
        fn describe() -> PluginInfo {
            PluginInfo { name: "bairro-condition".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned(), kind: PluginKind::Condition, action_types: Vec::new() }
        }

        fn check(condition: String, config: String) -> Result<(), PluginError> {
            crate::check(&condition, &config).map(|_| ()).map_err(to_plugin_error)
        }

        fn evaluate(event: Event, condition: String, config: String) -> Result<bool, PluginError> {
            crate::evaluate(&event.payload, &condition, &config).map_err(to_plugin_error)
        }
    }

    export!(BairroCondition);
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"bairros":["Boa Viagem","Casa Amarela"],"zona_norte":["Casa Amarela","Água Fria"]}"#;

    #[test]
    fn listed_bairro_is_true() {
        assert_eq!(evaluate(r#"{"bairro":" boa viagem "}"#, "", CONFIG), Ok(true));
        assert_eq!(evaluate(r#"{"bairro":"ÁGUA FRIA"}"#, "zona_norte", CONFIG), Ok(true));
    }

    #[test]
    fn other_or_missing_bairro_is_false() {
        assert_eq!(evaluate(r#"{"bairro":"Pina"}"#, "bairros", CONFIG), Ok(false));
        assert_eq!(evaluate(r#"{"cidade":"Recife"}"#, "bairros", CONFIG), Ok(false));
        assert_eq!(evaluate(r#"{"bairro":42}"#, "bairros", CONFIG), Ok(false));
    }

    #[test]
    fn unknown_list_is_named() {
        let rejection = check("zona_sul", CONFIG).unwrap_err();
        assert_eq!(rejection.code, "invalid_condition");
        assert!(rejection.message.contains("`zona_sul`"), "{}", rejection.message);
    }

    #[test]
    fn list_of_non_strings_is_invalid_config() {
        assert_eq!(check("", r#"{"bairros":[1,2]}"#).unwrap_err().code, "invalid_config");
    }
}
