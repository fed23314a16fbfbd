//! The WIT export of the `condition` world.

wit_bindgen::generate!({ path: "../../wit", world: "condition" });

use grito::plugin::host;
use grito::plugin::types::PluginKind;

struct ConditionSql;

fn to_plugin_error(e: crate::Error) -> PluginError {
    PluginError { code: e.code().to_string(), message: e.to_string() }
}

impl Guest for ConditionSql {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "condition-sql".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kind: PluginKind::Condition,
            action_types: Vec::new(),
        }
    }

    fn check(condition: String, _config: String) -> Result<(), PluginError> {
        crate::check(&condition, host::now()).map_err(to_plugin_error)
    }

    fn evaluate(event: Event, condition: String, _config: String) -> Result<bool, PluginError> {
        let event = crate::Event {
            event_name: &event.event_name,
            user_id: &event.user_id,
            source: &event.source,
            occurred_at: &event.occurred_at,
            payload: &event.payload,
        };
        crate::evaluate(&event, &condition, host::now()).map_err(to_plugin_error)
    }
}

export!(ConditionSql);
