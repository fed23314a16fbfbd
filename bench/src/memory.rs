//! Plugin-call memory: this process's RSS before and after a long loop of
//! Wasm condition + action calls through one `PluginHost`.

use std::time::Instant;

use grito::plugins::PluginHost;

use crate::fixtures;
use crate::grito_process::rss_mib_of;
use crate::plugin_cost::wasm_condition_and_action;

#[derive(Debug, Clone, Copy)]
pub struct MemoryRun {
    pub calls: usize,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub seconds: f64,
}

/// Warms up with 1,000 calls, then makes `calls` condition + action pairs (2 plugin calls each).
pub async fn run_once(host: &PluginHost, calls: usize) -> anyhow::Result<MemoryRun> {
    let event = fixtures::stored_event();
    let action = fixtures::email_action();
    for _ in 0..1_000 {
        wasm_condition_and_action(host, &event, &action).await?;
    }
    let rss_before_mib = rss_mib_of("/proc/self/status")?;

    let started = Instant::now();
    for _ in 0..calls.div_ceil(2) {
        wasm_condition_and_action(host, &event, &action).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rss_after_mib = rss_mib_of("/proc/self/status")?;
    Ok(MemoryRun { calls, rss_before_mib, rss_after_mib, seconds })
}
