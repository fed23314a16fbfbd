//! The Wasm plugin host as the engine's `Plugins`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Effect, PluginFailure, Plugins};
use crate::plugins::{PluginError, PluginHost};
use crate::store::Event;

fn failure(error: PluginError) -> PluginFailure {
    PluginFailure(error.to_string())
}

#[async_trait]
impl Plugins for PluginHost {
    async fn evaluate_condition(&self, event: &Event, condition: &str, now: DateTime<Utc>) -> Result<bool, PluginFailure> {
        PluginHost::evaluate_condition(self, event, condition, now).await.map_err(failure)
    }

    async fn check_condition(&self, condition: &str) -> Result<(), PluginFailure> {
        PluginHost::check_condition(self, condition).await.map_err(failure)
    }

    async fn run_action(&self, event: &Event, action: &serde_json::Value, now: DateTime<Utc>) -> Result<Vec<Effect>, PluginFailure> {
        PluginHost::run_action(self, event, action, now).await.map_err(failure)
    }

    async fn validate_action(&self, action: &serde_json::Value) -> Result<(), PluginFailure> {
        PluginHost::validate_action(self, action).await.map_err(failure)
    }
}
