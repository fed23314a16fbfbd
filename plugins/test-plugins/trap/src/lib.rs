//! Panics in run, so the call traps.

wit_bindgen::generate!({ path: "../../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "trap".into(), version: "0.1.0".into(), kind: PluginKind::Action, action_types: vec!["trap".into()] }
    }

    fn validate(_action: String, _config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn run(_event: Event, _action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        panic!("boom: the trap test plugin always panics");
    }
}

export!(Plugin);
