//! Why a plugin call failed.
//!
//! A guest that returns `plugin-error` on purpose (`Guest`) is kept apart
//! from a call the host had to stop (trap, deadline, memory cap) and from a
//! result the host could not accept.

use std::time::Duration;

/// A failed plugin call. Every message names the plugin and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// No loaded plugin has this name.
    #[error("no plugin named `{plugin}` is loaded")]
    NotFound { plugin: String },

    /// The action JSON has no string `type`.
    #[error("the action has no `type` string, so no plugin can run it")]
    MissingActionType,

    /// No loaded action plugin handles this `action.type`.
    #[error("no loaded plugin handles action type `{action_type}`")]
    NoPluginForAction { action_type: String },

    /// The plugin returned `plugin-error` on purpose.
    #[error("plugin `{plugin}` returned error `{code}`: {message}")]
    Guest { plugin: String, code: String, message: String },

    /// The call ran past the CPU deadline and was interrupted.
    #[error("plugin `{plugin}` exceeded its {} ms CPU deadline", timeout.as_millis())]
    Timeout { plugin: String, timeout: Duration },

    /// The plugin tried to grow its memory past the cap.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { plugin: String, limit_bytes: usize },

    /// The plugin trapped (panic, `unreachable`, out-of-bounds access, …).
    #[error("plugin `{plugin}` crashed: {reason}")]
    Trap { plugin: String, reason: String },

    /// The plugin's result was decoded but breaks the host's rules.
    #[error("plugin `{plugin}` returned an invalid result: {reason}")]
    InvalidResult { plugin: String, reason: String },

    /// The plugin could not be instantiated or lacks an export of its world.
    #[error("plugin `{plugin}` cannot be called: {reason}")]
    Unavailable { plugin: String, reason: String },

    /// The host failed around the call (for example a worker thread panicked).
    #[error("plugin `{plugin}` call failed inside the host: {reason}")]
    Internal { plugin: String, reason: String },
}

impl PluginError {
    /// The stable machine-readable code of this error, for API responses and run records.
    pub fn code(&self) -> &str {
        match self {
            Self::NotFound { .. } => "plugin_not_found",
            Self::MissingActionType => "missing_action_type",
            Self::NoPluginForAction { .. } => "no_plugin_for_action",
            Self::Guest { code, .. } => code,
            Self::Timeout { .. } => "plugin_timeout",
            Self::MemoryLimit { .. } => "plugin_memory_limit",
            Self::Trap { .. } => "plugin_trap",
            Self::InvalidResult { .. } => "plugin_invalid_result",
            Self::Unavailable { .. } => "plugin_unavailable",
            Self::Internal { .. } => "plugin_internal_error",
        }
    }

    /// True when the guest returned this error on purpose (not a trap or a host check).
    pub fn is_guest_error(&self) -> bool {
        matches!(self, Self::Guest { .. })
    }
}
