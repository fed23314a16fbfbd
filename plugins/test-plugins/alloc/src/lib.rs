//! Allocates without end, so the host's memory cap must stop it.

wit_bindgen::generate!({ path: "../../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "alloc".into(), version: "0.1.0".into(), kind: PluginKind::Action, action_types: vec!["alloc".into()] }
    }

    fn validate(_action: String, _config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn run(_event: Event, _action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            blocks.push(std::hint::black_box(vec![1u8; 1024 * 1024]));
        }
    }
}

export!(Plugin);
