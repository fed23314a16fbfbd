//! The Wasm runtime: one engine, one linker, and a fresh sandboxed store per call.
//!
//! Each call gets a new `Store` and instance, because a trap can leave an
//! instance in a broken state. The store carries the call's limits: a memory
//! cap enforced by a `ResourceLimiter`, and a CPU deadline enforced by epoch
//! interruption, ticked by one background thread. WASI is linked because
//! `wasm32-wasip2` plugins import it, but the context grants nothing: no
//! directories, environment, arguments or sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::IdentityLookup;
use super::bindings::{self, LogLevel, types::ExternalIdentity};
use super::error::PluginError;
use super::output::CappedOutput;

/// How often the epoch ticker advances the engine's epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of a plugin's stdout (and, apart, stderr) kept per call for the log.
const OUTPUT_CAP_BYTES: usize = 16 * 1024;

/// Longest `log` message kept from a plugin, in bytes.
const LOG_MESSAGE_CAP_BYTES: usize = 4 * 1024;

/// `log` calls a plugin may make per call before the rest are dropped.
const LOG_LINES_PER_CALL: u32 = 200;

/// The shared engine and linker, and the per-call limits.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<CallState>,
    pub memory_limit: usize,
    pub timeout: Duration,
    /// `pooling` or `on-demand`.
    pub allocator: &'static str,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine (pooling allocator when the machine allows it), the
    /// linker with WASI and the `host` interface, and starts the epoch ticker.
    pub fn new(memory_limit: usize, timeout: Duration) -> anyhow::Result<Self> {
        let (engine, allocator) = build_engine(memory_limit)?;
        let linker = build_linker(&engine)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        start_epoch_ticker(engine.weak(), stop_ticker.clone())?;

        Ok(Self { engine, linker, memory_limit, timeout, allocator, stop_ticker })
    }

    /// A fresh store for one call of plugin `plugin`, with the limits applied.
    pub fn store(&self, plugin: &str, now: DateTime<Utc>, identities: Arc<dyn IdentityLookup>) -> Store<CallState> {
        let stdout = CappedOutput::new(OUTPUT_CAP_BYTES);
        let stderr = CappedOutput::new(OUTPUT_CAP_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = CallState {
            plugin: plugin.to_owned(),
            now,
            identities,
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { limit: self.memory_limit, exceeded: false },
            stdout,
            stderr,
            log_lines: 0,
        };

        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(deadline_ticks(self.timeout));
        store.epoch_deadline_trap();
        store
    }

    /// Turns a wasmtime error from instantiating or calling into a `PluginError`.
    pub fn classify(&self, store: &Store<CallState>, error: wasmtime::Error) -> PluginError {
        let plugin = store.data().plugin.clone();
        if store.data().limiter.exceeded {
            return PluginError::MemoryLimit { plugin, limit_bytes: self.memory_limit };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginError::Timeout { plugin, timeout: self.timeout },
            trap => {
                let stderr = store.data().stderr.peek();
                PluginError::Trap { plugin, reason: trap_reason(trap.copied(), &error, &stderr) }
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The data of one call's store.
pub struct CallState {
    pub plugin: String,
    now: DateTime<Utc>,
    identities: Arc<dyn IdentityLookup>,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stdout: CappedOutput,
    stderr: CappedOutput,
    log_lines: u32,
}

impl CallState {
    /// Writes what the plugin printed to the host log at debug level.
    pub fn flush_output(&self) {
        for (stream, output) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let (text, discarded) = output.take();
            if text.is_empty() && discarded == 0 {
                continue;
            }
            tracing::debug!(plugin = %self.plugin, stream, discarded_bytes = discarded, output = %text.trim_end(), "plugin output");
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::types::Host for CallState {}

impl bindings::host_interface::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log_lines += 1;
        if self.log_lines > LOG_LINES_PER_CALL {
            if self.log_lines == LOG_LINES_PER_CALL + 1 {
                tracing::warn!(plugin = %self.plugin, limit = LOG_LINES_PER_CALL, "plugin log lines past the per-call limit are dropped");
            }
            return;
        }
        let message = truncate(&message, LOG_MESSAGE_CAP_BYTES);
        let plugin = self.plugin.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn now(&mut self) -> i64 {
        self.now.timestamp_micros()
    }

    fn lookup_identity(&mut self, identity: ExternalIdentity) -> Option<String> {
        self.identities.lookup(&identity.source, &identity.external_id).map(|user| user.to_string())
    }
}

/// Caps linear memory growth and records that the cap was hit, so the
/// failure that follows (a trap or an allocation error) is reported as such.
struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.limit);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Memory and table bytes per pool slot that stay mapped between calls.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

fn build_engine(memory_limit: usize) -> anyhow::Result<(Engine, &'static str)> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(256)
        .total_core_instances(512)
        .total_memories(256)
        .total_tables(512)
        .max_memory_size(memory_limit)
        // A fresh instance per call frees its memory after every call.
        // Resetting only the pages the call dirtied (PAGEMAP_SCAN, Linux 6.7
        // and later) with memset avoids an madvise per call, and with it the
        // TLB flush on the other cores. Older kernels fall back to madvise.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        // Whatever still needs an madvise is done in batches.
        .decommit_batch_size(16);
    match Engine::new(base_config().allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))) {
        Ok(engine) => {
            tracing::info!(allocator = "pooling", "plugin engine ready");
            Ok((engine, "pooling"))
        }
        Err(error) => {
            tracing::warn!(error = %error, allocator = "on-demand", "pooling allocator unavailable; plugin engine uses on-demand allocation");
            let engine = Engine::new(&base_config()).map_err(anyhow::Error::from)?;
            Ok((engine, "on-demand"))
        }
    }
}

/// The engine settings; they are part of the compiled-code cache key through
/// `Engine::precompile_compatibility_hash`.
fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}

fn build_linker(engine: &Engine) -> anyhow::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::condition::Condition::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)?;
    Ok(linker)
}

fn start_epoch_ticker(engine: wasmtime::EngineWeak, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    })?;
    Ok(())
}

/// Epoch ticks for `timeout`, rounded up, at least one.
fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_micros();
    (timeout.as_micros().div_ceil(tick) as u64).max(1)
}

/// The trap, plus the guest's panic message when its stderr holds one.
fn trap_reason(trap: Option<Trap>, error: &wasmtime::Error, stderr: &str) -> String {
    let what = match trap {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    let panic = stderr.lines().skip_while(|line| !line.contains("panicked at")).take(2).collect::<Vec<_>>().join(" ");
    if panic.is_empty() { what } else { format!("{what} ({})", truncate(panic.trim(), 500)) }
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(Duration::from_millis(100)), 20);
        assert_eq!(deadline_ticks(Duration::from_millis(101)), 21);
        assert_eq!(deadline_ticks(Duration::from_micros(1)), 1);
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("ação", 2), "a");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
