//! The WIT export of the `normalizer` world.

wit_bindgen::generate!({ path: "../../wit", world: "normalizer" });

use grito::plugin::host::{self, LogLevel};
use grito::plugin::types::{ExternalIdentity, PluginKind};

struct Intelbras;

/// The host imports behind the `crate::Host` trait.
struct WitHost;

impl crate::Host for WitHost {
    fn log(&mut self, level: crate::Level, message: &str) {
        let level = match level {
            crate::Level::Debug => LogLevel::Debug,
            crate::Level::Warn => LogLevel::Warn,
        };
        host::log(level, message);
    }

    fn lookup_identity(&mut self, source: &str, external_id: &str) -> Option<String> {
        host::lookup_identity(&ExternalIdentity { source: source.to_owned(), external_id: external_id.to_owned() })
    }
}

impl Guest for Intelbras {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: crate::PLUGIN_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Normalizer,
            action_types: Vec::new(),
        }
    }

    fn normalize(request: HttpRequest, config: String) -> Result<Vec<EventDraft>, PluginError> {
        let inbound = crate::Request { query: &request.query, headers: &request.headers, body: &request.body };
        let drafts = crate::normalize(&inbound, &config, &mut WitHost)
            .map_err(|error| PluginError { code: error.code.to_owned(), message: error.message })?;
        Ok(drafts.into_iter().map(to_wit).collect())
    }
}

fn to_wit(draft: crate::Draft) -> EventDraft {
    EventDraft {
        event_name: draft.event_name.to_owned(),
        user_id: draft.user_id,
        identity: draft.external_id.map(|external_id| ExternalIdentity { source: crate::SOURCE.to_owned(), external_id }),
        source: crate::SOURCE.to_owned(),
        occurred_at: Some(draft.occurred_at),
        payload: serde_json::Value::Object(draft.payload).to_string(),
        idempotency_key: Some(draft.idempotency_key),
    }
}

export!(Intelbras);
