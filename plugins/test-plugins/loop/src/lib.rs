//! Runs forever, so the host's CPU deadline must stop it.

wit_bindgen::generate!({ path: "../../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "loop".into(), version: "0.1.0".into(), kind: PluginKind::Action, action_types: vec!["loop".into()] }
    }

    fn validate(_action: String, _config: String) -> Result<(), PluginError> {
        Ok(())
    }

    #[allow(clippy::empty_loop)]
    fn run(_event: Event, _action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
}

export!(Plugin);
