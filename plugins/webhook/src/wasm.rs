//! The WIT export of the `action` world.

wit_bindgen::generate!({ path: "../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Webhook;

fn to_plugin_error(error: crate::ActionError) -> PluginError {
    PluginError { code: error.code.to_owned(), message: error.message }
}

impl Guest for Webhook {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "webhook".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Action,
            action_types: vec![crate::ACTION_TYPE.to_owned()],
        }
    }

    fn validate(action: String, _config: String) -> Result<(), PluginError> {
        crate::endpoint_ref(&action).map(|_| ()).map_err(to_plugin_error)
    }

    fn run(_event: Event, action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        let endpoint_ref = crate::endpoint_ref(&action).map_err(to_plugin_error)?;
        Ok(vec![Effect::DeliverWebhook(endpoint_ref)])
    }
}

export!(Webhook);
