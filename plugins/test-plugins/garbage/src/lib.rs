//! Returns an emit-event effect whose payload is not JSON.

wit_bindgen::generate!({ path: "../../../wit", world: "action" });

use grito::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo { name: "garbage".into(), version: "0.1.0".into(), kind: PluginKind::Action, action_types: vec!["garbage".into()] }
    }

    fn validate(_action: String, _config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn run(_event: Event, _action: String, _config: String) -> Result<Vec<Effect>, PluginError> {
        Ok(vec![Effect::EmitEvent(grito::plugin::types::EventDraft {
            event_name: "garbage.emitted".into(),
            user_id: Some("not-a-uuid".into()),
            identity: None,
            source: "garbage".into(),
            occurred_at: None,
            payload: "{this is not json".into(),
            idempotency_key: None,
        })])
    }
}

export!(Plugin);
