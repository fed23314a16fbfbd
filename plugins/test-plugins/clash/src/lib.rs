//! Named mailer, claims the email action type that the built-in email plugin handles.

wit_bindgen::generate!({ path: "../../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "mailer".into(), version: "0.1.0".into(), kind: PluginKind::Action, action_types: vec!["email".into()] }
    }

    fn validate(_action: String, _config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn run(_event: Event, _action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        Ok(Vec::new())
    }
}

export!(Plugin);
