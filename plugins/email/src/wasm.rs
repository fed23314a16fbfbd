//! The WIT export of the `action` world.

wit_bindgen::generate!({ path: "../../wit", world: "action" });

use grito::plugin::types::{Email, PluginKind};

struct EmailPlugin;

fn to_plugin_error(error: crate::ActionError) -> PluginError {
    PluginError { code: error.code.to_owned(), message: error.message }
}

impl Guest for EmailPlugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "email".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Action,
            action_types: vec![crate::ACTION_TYPE.to_owned()],
        }
    }

    fn validate(action: String, _config: String) -> Result<(), PluginError> {
        crate::parse_action(&action).map(|_| ()).map_err(to_plugin_error)
    }

    fn run(event: Event, action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        let action = crate::parse_action(&action).map_err(to_plugin_error)?;
        let fields = crate::EventFields {
            id: &event.id,
            event_name: &event.event_name,
            user_id: &event.user_id,
            source: &event.source,
            occurred_at: &event.occurred_at,
            payload: &event.payload,
        };
        let email = crate::render(&action, &fields).map_err(to_plugin_error)?;
        Ok(vec![Effect::SendEmail(Email { template_id: email.template_id, to: email.to, variables: email.variables })])
    }
}

export!(EmailPlugin);
