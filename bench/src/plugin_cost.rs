//! Per-call cost of the welcome automation's condition and action: through
//! Wasm (`PluginHost`, a fresh instance per call) and as the same logic in
//! native Rust (`grito-condition-sql` and `grito-email` as plain crates).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use grito::plugins::{NoIdentities, PluginHost, PluginSettings};

use crate::fixtures;

/// Opens a plugin host with only the built-in plugins, caching compiled code under `data_dir`.
pub async fn open_host(data_dir: &Path) -> anyhow::Result<PluginHost> {
    let plugins_dir = data_dir.join("plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    let settings = PluginSettings {
        dir: plugins_dir,
        cache_dir: data_dir.join("plugin-cache"),
        memory_limit: PluginSettings::DEFAULT_MEMORY_LIMIT,
        timeout: PluginSettings::DEFAULT_TIMEOUT,
    };
    PluginHost::open(settings, Arc::new(NoIdentities)).await
}

/// One Wasm condition call and one Wasm action call, as the engine makes them for a matching event.
pub async fn wasm_condition_and_action(host: &PluginHost, event: &grito::store::Event, action: &serde_json::Value) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let matched = host.evaluate_condition(event, fixtures::CONDITION, now).await?;
    anyhow::ensure!(matched, "the condition did not match the bench event");
    let effects = host.run_action(event, action, now).await?;
    anyhow::ensure!(effects.len() == 1, "the email action returned {} effects", effects.len());
    Ok(())
}

/// The same condition and email rendering in native Rust, parsed afresh as the plugins do per call.
pub fn native_condition_and_action(event: &grito::store::Event, action_text: &str) -> anyhow::Result<()> {
    let now_micros = chrono::Utc::now().timestamp_micros();
    let (id, user_id, occurred_at, payload) =
        (event.id.to_string(), event.user_id.to_string(), event.occurred_at.to_rfc3339(), event.payload.to_string());
    let condition_event = grito_condition_sql::Event {
        event_name: &event.event_name,
        user_id: &user_id,
        source: &event.source,
        occurred_at: &occurred_at,
        payload: &payload,
    };
    let matched = grito_condition_sql::evaluate(&condition_event, fixtures::CONDITION, now_micros).map_err(|error| anyhow::anyhow!("{error:?}"))?;
    anyhow::ensure!(matched, "the condition did not match the bench event");

    let email_event = grito_email::EventFields {
        id: &id,
        event_name: &event.event_name,
        user_id: &user_id,
        source: &event.source,
        occurred_at: &occurred_at,
        payload: &payload,
    };
    let action = grito_email::parse_action(action_text).map_err(|error| anyhow::anyhow!("{error:?}"))?;
    let email = grito_email::render(&action, &email_event).map_err(|error| anyhow::anyhow!("{error:?}"))?;
    anyhow::ensure!(email.to == "maria@email.com", "the email went to {}", email.to);
    Ok(())
}

/// Per-call cost in microseconds of both paths, each the mean over `calls` calls.
#[derive(Debug, Clone, Copy)]
pub struct PluginCostRun {
    pub wasm_us: f64,
    pub native_us: f64,
}

pub async fn run_once(host: &PluginHost, calls: usize) -> anyhow::Result<PluginCostRun> {
    let event = fixtures::stored_event();
    let action = fixtures::email_action();
    let action_text = action.to_string();

    let started = Instant::now();
    for _ in 0..calls {
        wasm_condition_and_action(host, &event, &action).await?;
    }
    let wasm_us = started.elapsed().as_secs_f64() * 1e6 / calls as f64;

    let started = Instant::now();
    for _ in 0..calls {
        native_condition_and_action(&event, &action_text)?;
    }
    let native_us = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
    Ok(PluginCostRun { wasm_us, native_us })
}
