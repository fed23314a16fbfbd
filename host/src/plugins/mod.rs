//! The Wasm plugin host: loads plugin components (built-in and from
//! `PLUGINS_DIR`), keeps them current as files change, and runs conditions,
//! actions and normalizers in a fresh sandbox per call.
//!
//! Routing: `evaluate_condition`/`check_condition` go to the plugin named
//! `condition-sql`, `run_action`/`validate_action` to the plugin whose
//! `describe` lists the action's `type`, and `normalize` to a plugin by name.
//!
//! Each plugin receives a configuration string: the JSON text of the file
//! `NAME.json` beside `NAME.wasm`, or `NAME.toml` converted to JSON text, or
//! `{}` when there is neither. Built-ins read `PLUGINS_DIR/<plugin name>.json`
//! or `.toml` the same way.

mod bindings;
mod builtin;
pub mod cli;
mod cache;
mod config_file;
mod convert;
mod error;
mod loader;
mod new;
mod output;
mod registry;
mod runtime;
mod settings;
mod types;
mod watcher;
pub mod wit_package;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

pub use cache::CacheCounts;
pub use error::PluginError;
pub use settings::PluginSettings;
pub use types::{Effect, EventDraft, InboundRequest, PluginInfo, PluginKind, PluginOrigin, PluginStatus};

use bindings::types as wit;
use cache::CacheStats;
use loader::{Linked, LoadedPlugin};
use registry::{Registry, Routes};
use runtime::Runtime;

/// The plugin that evaluates automations' `condition_sql`.
pub const CONDITION_PLUGIN: &str = "condition-sql";

/// Maps an outside identity (`stripe`, `cus_123`) to a Grito user. Called
/// from inside plugin calls, on a blocking thread, so it must not block long.
pub trait IdentityLookup: Send + Sync {
    fn lookup(&self, source: &str, external_id: &str) -> Option<uuid::Uuid>;
}

/// An `IdentityLookup` that knows nobody, until the identity map is wired in.
pub struct NoIdentities;

impl IdentityLookup for NoIdentities {
    fn lookup(&self, _source: &str, _external_id: &str) -> Option<uuid::Uuid> {
        None
    }
}

/// The loaded plugins and the runtime that calls them. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    settings: PluginSettings,
    identities: Arc<dyn IdentityLookup>,
    cache_stats: CacheStats,
    registry: Mutex<Registry>,
    routes: RwLock<Arc<Routes>>,
    /// Serializes folder scans (the watcher's, `reload`'s).
    scanner: tokio::sync::Mutex<watcher::Scanner>,
}

impl PluginHost {
    /// Loads the built-ins and every `*.wasm` in `settings.dir`, then starts
    /// watching the folder. A plugin that fails to load is logged and listed;
    /// only a runtime that cannot start is an error.
    pub async fn start(settings: PluginSettings, identities: Arc<dyn IdentityLookup>) -> anyhow::Result<Self> {
        let host = Self::open(settings, identities).await?;
        watcher::spawn(Arc::downgrade(&host.inner))?;
        Ok(host)
    }

    /// Loads like `start` but does not watch the folder (for one-shot commands).
    pub async fn open(settings: PluginSettings, identities: Arc<dyn IdentityLookup>) -> anyhow::Result<Self> {
        let runtime = {
            let (memory_limit, timeout) = (settings.memory_limit, settings.timeout);
            tokio::task::spawn_blocking(move || Runtime::new(memory_limit, timeout)).await??
        };
        let scanner = watcher::Scanner::new(settings.dir.clone());
        let inner = Arc::new(Inner {
            runtime,
            settings,
            identities,
            cache_stats: CacheStats::default(),
            registry: Mutex::new(Registry::default()),
            routes: RwLock::new(Arc::new(Routes::default())),
            scanner: tokio::sync::Mutex::new(scanner),
        });
        let host = Self { inner };

        host.load_builtins().await;
        host.reload().await?;
        release_compiler_memory();
        Ok(host)
    }

    /// Rereads the plugins folder now and loads every file that changed,
    /// without waiting for it to look finished.
    pub async fn reload(&self) -> anyhow::Result<()> {
        watcher::scan(&self.inner, true).await;
        Ok(())
    }

    /// Every built-in and every file of the folder, loaded or failed.
    pub fn list(&self) -> Vec<PluginStatus> {
        self.inner.registry().statuses()
    }

    /// How often compiled code came from the disk cache, and how often it was compiled.
    pub fn cache_counts(&self) -> CacheCounts {
        self.inner.cache_stats.counts()
    }

    /// `pooling` or `on-demand`: the instance allocator the engine uses.
    pub fn allocator(&self) -> &'static str {
        self.inner.runtime.allocator
    }

    /// Loads one file with the checks a folder file goes through, without
    /// registering it; returns what the plugin says about itself.
    pub async fn check_file(&self, path: &Path) -> anyhow::Result<PluginInfo> {
        let plugin = watcher::load_file(&self.inner, path.to_path_buf()).await?;
        Ok(plugin.info.clone())
    }

    /// Evaluates `condition` against `event` with the `condition-sql` plugin.
    pub async fn evaluate_condition(&self, event: &crate::store::Event, condition: &str, now: DateTime<Utc>) -> Result<bool, PluginError> {
        self.evaluate_condition_with(CONDITION_PLUGIN, event, condition, now).await
    }

    /// Evaluates `condition` against `event` with the condition plugin named
    /// `plugin`. Automations use `evaluate_condition`; this serves tests and
    /// tools that call another condition plugin.
    pub async fn evaluate_condition_with(&self, plugin: &str, event: &crate::store::Event, condition: &str, now: DateTime<Utc>) -> Result<bool, PluginError> {
        let name = plugin.to_owned();
        let plugin = self.by_name(plugin)?;
        let (event, condition) = (convert::event_to_wit(event), condition.to_owned());
        self.call(plugin, now, move |runtime, store, linked, config| match linked {
            Linked::Condition(pre) => Ok(pre.instantiate(&mut *store)?.call_evaluate(&mut *store, &event, &condition, config)?),
            _ => Err(wrong_kind(runtime, PluginKind::Condition)),
        })
        .await?
        .map_err(|error| guest_error(&name, error))
    }

    /// Checks condition text without an event (when an automation is saved or loaded).
    pub async fn check_condition(&self, condition: &str) -> Result<(), PluginError> {
        let plugin = self.by_name(CONDITION_PLUGIN)?;
        let condition = condition.to_owned();
        self.call(plugin, Utc::now(), move |runtime, store, linked, config| match linked {
            Linked::Condition(pre) => Ok(pre.instantiate(&mut *store)?.call_check(&mut *store, &condition, config)?),
            _ => Err(wrong_kind(runtime, PluginKind::Condition)),
        })
        .await?
        .map_err(|error| guest_error(CONDITION_PLUGIN, error))
    }

    /// Computes the effects of `action` for `event`, with the plugin that handles `action["type"]`.
    pub async fn run_action(&self, event: &crate::store::Event, action: &serde_json::Value, now: DateTime<Utc>) -> Result<Vec<Effect>, PluginError> {
        let plugin = self.by_action(action)?;
        let name = plugin.info.name.clone();
        let (event, action) = (convert::event_to_wit(event), action.to_string());
        let effects = self
            .call(plugin, now, move |runtime, store, linked, config| match linked {
                Linked::Action(pre) => Ok(pre.instantiate(&mut *store)?.call_run(&mut *store, &event, &action, config)?),
                _ => Err(wrong_kind(runtime, PluginKind::Action)),
            })
            .await?
            .map_err(|error| guest_error(&name, error))?;

        effects
            .into_iter()
            .map(|effect| convert::effect_from_wit(effect).map_err(|reason| PluginError::InvalidResult { plugin: name.clone(), reason }))
            .collect()
    }

    /// Checks an automation's `action` JSON with the plugin that handles its `type`.
    pub async fn validate_action(&self, action: &serde_json::Value) -> Result<(), PluginError> {
        let plugin = self.by_action(action)?;
        let name = plugin.info.name.clone();
        let action = action.to_string();
        self.call(plugin, Utc::now(), move |runtime, store, linked, config| match linked {
            Linked::Action(pre) => Ok(pre.instantiate(&mut *store)?.call_validate(&mut *store, &action, config)?),
            _ => Err(wrong_kind(runtime, PluginKind::Action)),
        })
        .await?
        .map_err(|error| guest_error(&name, error))
    }

    /// Turns an inbound request into event drafts with the normalizer named `plugin`.
    pub async fn normalize(&self, plugin: &str, request: InboundRequest) -> Result<Vec<EventDraft>, PluginError> {
        let loaded = self.by_name(plugin)?;
        if loaded.info.kind != PluginKind::Normalizer {
            return Err(PluginError::NotFound { plugin: plugin.to_owned() });
        }
        let request = convert::request_to_wit(request);
        let drafts = self
            .call(loaded, Utc::now(), move |runtime, store, linked, config| match linked {
                Linked::Normalizer(pre) => Ok(pre.instantiate(&mut *store)?.call_normalize(&mut *store, &request, config)?),
                _ => Err(wrong_kind(runtime, PluginKind::Normalizer)),
            })
            .await?
            .map_err(|error| guest_error(plugin, error))?;

        drafts
            .into_iter()
            .map(|draft| convert::draft_from_wit(draft).map_err(|reason| PluginError::InvalidResult { plugin: plugin.to_owned(), reason }))
            .collect()
    }

    fn by_name(&self, name: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        self.inner.routes().by_name.get(name).cloned().ok_or_else(|| PluginError::NotFound { plugin: name.to_owned() })
    }

    fn by_action(&self, action: &serde_json::Value) -> Result<Arc<LoadedPlugin>, PluginError> {
        let action_type = action.get("type").and_then(serde_json::Value::as_str).ok_or(PluginError::MissingActionType)?;
        self.inner
            .routes()
            .by_action_type
            .get(action_type)
            .cloned()
            .ok_or_else(|| PluginError::NoPluginForAction { action_type: action_type.to_owned() })
    }

    /// Runs `call` on a blocking thread in a fresh store for `plugin`, and
    /// turns a trap, a deadline or the memory cap into a `PluginError`.
    async fn call<R, F>(&self, plugin: Arc<LoadedPlugin>, now: DateTime<Utc>, call: F) -> Result<R, PluginError>
    where
        R: Send + 'static,
        F: FnOnce(&Runtime, &mut wasmtime::Store<runtime::CallState>, &Linked, &str) -> wasmtime::Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        let name = plugin.info.name.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut store = inner.runtime.store(&plugin.info.name, now, inner.identities.clone());
            let started = std::time::Instant::now();
            let result = call(&inner.runtime, &mut store, &plugin.linked, &plugin.config);
            let result = result.map_err(|error| inner.runtime.classify(&store, error));
            crate::metrics::record_plugin_call(&plugin.info.name, started.elapsed(), result.is_ok());
            store.data().flush_output();
            if let Err(error) = &result {
                tracing::warn!(plugin = %plugin.info.name, error = %error, "plugin call failed");
            }
            result
        })
        .await;
        joined.unwrap_or_else(|error| Err(PluginError::Internal { plugin: name, reason: error.to_string() }))
    }

    async fn load_builtins(&self) {
        for builtin in builtin::BUILTINS {
            let loaded = watcher::load_bytes(&self.inner, builtin.wasm.to_vec(), None).await;
            let mut registry = self.inner.registry();
            match loaded {
                Ok(plugin) => {
                    tracing::info!(plugin = %plugin.info.name, version = %plugin.info.version, kind = %plugin.info.kind, "built-in plugin loaded");
                    registry.builtins.push(Arc::new(plugin));
                }
                Err(error) => {
                    tracing::error!(plugin = builtin.name, error = %format!("{error:#}"), "built-in plugin failed to load");
                    registry.builtin_errors.push((builtin.name.to_owned(), format!("{error:#}")));
                }
            }
        }
        self.inner.publish_routes();
    }
}

impl Inner {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn routes(&self) -> Arc<Routes> {
        self.routes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Recomputes the routes from the registry and makes them visible to calls.
    fn publish_routes(&self) {
        let routes = Arc::new(self.registry().routes());
        *self.routes.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = routes;
    }

    fn cache_dir(&self) -> Option<&Path> {
        Some(self.settings.cache_dir.as_path())
    }
}

fn wrong_kind(_runtime: &Runtime, expected: PluginKind) -> wasmtime::Error {
    wasmtime::format_err!("the plugin is not a {expected} plugin")
}

fn guest_error(plugin: &str, error: wit::PluginError) -> PluginError {
    PluginError::Guest { plugin: plugin.to_owned(), code: error.code, message: error.message }
}

/// Hands the heap that compiling plugins freed back to the system. Cranelift
/// allocates tens of MiB while compiling, and glibc keeps freed memory in
/// its arenas, so without this a server that compiled its plugins at start
/// stays about 16 MiB larger while idle (measured on Linux with glibc 2.36).
fn release_compiler_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it does
    // not touch memory that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
