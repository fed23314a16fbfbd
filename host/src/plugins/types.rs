//! The host-side values plugins produce and consume: effects, event drafts,
//! inbound requests, and what the host reports about each plugin.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Something an action asks the host to do, already checked by the host.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Queue an email in the outbox.
    SendEmail { template_id: String, to: String, variables: Vec<(String, String)> },
    /// Deliver the current event to the subscription with this `destination_name`.
    DeliverWebhook { endpoint_ref: String },
    /// Store a new event.
    EmitEvent(EventDraft),
}

/// An event a plugin asks the host to store, parsed and checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDraft {
    pub event_name: String,
    pub user_id: Option<Uuid>,
    /// `(source, external id)` to resolve when `user_id` is none.
    pub identity: Option<(String, String)>,
    pub source: String,
    /// `None` means the time the host stores it.
    pub occurred_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Map<String, serde_json::Value>,
    pub idempotency_key: Option<String>,
}

/// An inbound HTTP request for a normalizer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundRequest {
    pub method: String,
    /// Path after `/ingest/{plugin}`, starting with `/`.
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The three plugin kinds, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    Condition,
    Action,
    Normalizer,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Condition => "condition",
            Self::Action => "action",
            Self::Normalizer => "normalizer",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What a plugin reports about itself through `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub action_types: Vec<String>,
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginOrigin {
    /// Embedded in the `grito` binary.
    BuiltIn,
    /// A `.wasm` file in `PLUGINS_DIR`.
    File,
}

/// One row of `grito plugins list`: a loaded plugin or a file that failed to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginStatus {
    /// The `.wasm` file, or `builtin:NAME` for an embedded plugin.
    pub file: String,
    pub origin: PluginOrigin,
    /// `loaded`, `failed`, or `overridden` (a built-in replaced by a file of the same name).
    pub state: &'static str,
    /// Known once `describe` succeeded.
    pub info: Option<PluginInfo>,
    /// Why the file failed to load (with `state = failed`), or why the newest
    /// version of a file was rejected while an older version keeps serving.
    pub error: Option<String>,
    /// The config file handed to the plugin, when there is one.
    pub config_file: Option<PathBuf>,
}
