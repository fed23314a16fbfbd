//! A second version of the webhook plugin: prefixes endpoint_ref with the config's `prefix` (default `v2:`).

wit_bindgen::generate!({ path: "../../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "webhook".into(), version: "2.0.0-test".into(), kind: PluginKind::Action, action_types: vec!["webhook".into()] }
    }

    fn validate(_action: String, _config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn run(_event: Event, action: String, config: String) -> Result<Vec<Effect>, PluginError> {
        let action: serde_json::Value = serde_json::from_str(&action).unwrap_or_default();
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        let prefix = config["prefix"].as_str().unwrap_or("v2:");
        let endpoint = action["endpoint_ref"].as_str().unwrap_or_default();
        Ok(vec![Effect::DeliverWebhook(format!("{prefix}{endpoint}"))])
    }
}

export!(Plugin);
