//! Keeps the loaded plugins in step with the plugins folder.
//!
//! A `notify` watcher wakes the scanner on any change in the folder, and a
//! rescan every second catches what notifications miss. A new or changed
//! file is loaded only once its size and modification time (and those of
//! its config file) have stayed the same for `SETTLE`, so a file still
//! being copied is not loaded half-written. A removed file stops serving at
//! once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher;

use super::Inner;
use super::config_file;
use super::loader::{self, LoadedPlugin};
use super::registry::{FileEntry, Fingerprint};

/// How long a file must stay unchanged before it is loaded.
pub const SETTLE: Duration = Duration::from_millis(300);

/// The safety-net rescan interval.
const RESCAN: Duration = Duration::from_secs(1);

/// Delay before the next scan while a file is settling.
const SETTLE_POLL: Duration = Duration::from_millis(100);

type ConfigState = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Files seen changing but not yet settled.
pub struct Scanner {
    dir: PathBuf,
    pending: HashMap<PathBuf, (Fingerprint, Instant)>,
}

impl Scanner {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, pending: HashMap::new() }
    }
}

/// Starts the folder watcher and the rescan task; both stop when the host is dropped.
pub fn spawn(inner: Weak<Inner>) -> anyhow::Result<()> {
    let dir = match inner.upgrade() {
        Some(inner) => inner.settings.dir.clone(),
        None => return Ok(()),
    };
    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Each scan opens and reads the folder, which raises access events; waking on
        // those would rescan in a loop and keep a core busy. A finished write still wakes.
        let read_only = matches!(&event, Ok(event) if matches!(event.kind, notify::EventKind::Access(kind)
            if kind != notify::event::AccessKind::Close(notify::event::AccessMode::Write)));
        if !read_only {
            let _ = wake.send(());
        }
    })?;
    let mut watching = try_watch(&mut watcher, &dir, true);

    tokio::spawn(async move {
        loop {
            let settling = match inner.upgrade() {
                Some(inner) => scan(&inner, false).await,
                None => return,
            };
            if !watching {
                watching = try_watch(&mut watcher, &dir, false);
            }

            let wait = if settling { SETTLE_POLL } else { RESCAN };
            tokio::select! {
                _ = woken.recv() => while woken.try_recv().is_ok() {},
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
    Ok(())
}

fn try_watch(watcher: &mut notify::RecommendedWatcher, dir: &Path, first: bool) -> bool {
    match watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "watching plugins folder");
            true
        }
        Err(error) => {
            if first {
                tracing::warn!(dir = %dir.display(), error = %error, "cannot watch plugins folder; rescanning it every second instead");
            }
            false
        }
    }
}

/// Compares the folder with the registry and loads, replaces or removes
/// plugins. With `force`, changed files load without waiting to settle.
/// Returns true while some file is still settling.
pub async fn scan(inner: &Arc<Inner>, force: bool) -> bool {
    let mut scanner = inner.scanner.lock().await;
    let files = list_wasm_files(&scanner.dir);
    let mut changed = remove_missing(inner, &files);
    scanner.pending.retain(|path, _| files.contains_key(path));

    let mut settling = false;
    for (path, fingerprint) in files {
        let current = inner.registry().files.get(&path).map(|entry| entry.fingerprint.clone());
        if current.as_ref() == Some(&fingerprint) {
            scanner.pending.remove(&path);
            continue;
        }
        if !force && !has_settled(&mut scanner.pending, &path, &fingerprint) {
            settling = true;
            continue;
        }
        scanner.pending.remove(&path);

        let loaded = load_file(inner, path.clone()).await;
        if fingerprint_of(&path).as_ref() != Some(&fingerprint) {
            settling = true;
            continue;
        }
        record(inner, path, fingerprint, loaded);
        changed = true;
    }

    changed |= refresh_builtin_configs(inner, &scanner.dir);
    if changed {
        inner.publish_routes();
    }
    settling
}

/// Reads, compiles and describes the plugin file at `path`, with its config file.
pub async fn load_file(inner: &Arc<Inner>, path: PathBuf) -> anyhow::Result<LoadedPlugin> {
    let bytes = tokio::fs::read(&path).await.map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
    load_bytes(inner, bytes, Some(path)).await
}

/// Loads a plugin from `wasm`; `file` is where it came from (`None` for a built-in).
pub async fn load_bytes(inner: &Arc<Inner>, wasm: Vec<u8>, file: Option<PathBuf>) -> anyhow::Result<LoadedPlugin> {
    let inner = inner.clone();
    tokio::task::spawn_blocking(move || {
        let (info, linked, content_hash) = loader::load(&inner.runtime, inner.cache_dir(), &inner.cache_stats, inner.identities.clone(), &wasm)?;

        let config_stem = match &file {
            Some(file) => file.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default(),
            None => info.name.clone(),
        };
        let config_dir = file.as_deref().and_then(Path::parent).unwrap_or(&inner.settings.dir).to_path_buf();
        let config_file = config_file::find(&config_dir, &config_stem)?;
        let config = match &config_file {
            Some(path) => config_file::read(path)?,
            None => "{}".to_owned(),
        };
        Ok(LoadedPlugin { info, content_hash, config, config_file, linked })
    })
    .await?
}

/// Stores the outcome of loading `path`. A failure keeps the previous
/// version serving and lists the file as failed.
fn record(inner: &Arc<Inner>, path: PathBuf, fingerprint: Fingerprint, loaded: anyhow::Result<LoadedPlugin>) {
    let mut registry = inner.registry();
    let previous = registry.files.get(&path).and_then(|entry| entry.plugin.clone());
    let outcome = loaded.map_err(|error| format!("{error:#}")).and_then(|plugin| {
        registry.check_clashes(&path, &plugin)?;
        Ok(plugin)
    });

    let file = path.display().to_string();
    let entry = match outcome {
        Ok(plugin) => {
            let info = &plugin.info;
            match &previous {
                Some(old) => tracing::info!(file, plugin = %info.name, version = %info.version, previous_version = %old.info.version, "plugin replaced"),
                None => tracing::info!(file, plugin = %info.name, version = %info.version, kind = %info.kind, action_types = ?info.action_types, "plugin loaded"),
            }
            FileEntry { fingerprint, config_file: plugin.config_file.clone(), plugin: Some(Arc::new(plugin)), error: None }
        }
        Err(error) => {
            match &previous {
                Some(old) => tracing::error!(file, error, still_serving = %old.info.version, "plugin failed to load; the previous version keeps serving"),
                None => tracing::error!(file, error, "plugin failed to load"),
            }
            let config_file = previous.as_ref().and_then(|plugin| plugin.config_file.clone());
            FileEntry { fingerprint, plugin: previous, error: Some(error), config_file }
        }
    };
    registry.files.insert(path, entry);
}

fn remove_missing(inner: &Arc<Inner>, files: &HashMap<PathBuf, Fingerprint>) -> bool {
    let mut registry = inner.registry();
    let gone: Vec<PathBuf> = registry.files.keys().filter(|path| !files.contains_key(*path)).cloned().collect();
    for path in &gone {
        let entry = registry.files.remove(path);
        let plugin = entry.and_then(|entry| entry.plugin).map(|plugin| plugin.info.name.clone()).unwrap_or_default();
        tracing::info!(file = %path.display(), plugin, "plugin file removed; plugin unloaded");
    }
    !gone.is_empty()
}

/// Re-reads a built-in's config file (`PLUGINS_DIR/NAME.json` or `.toml`)
/// when it changed. A broken config keeps the previous one and is logged.
fn refresh_builtin_configs(inner: &Arc<Inner>, dir: &Path) -> bool {
    let mut registry = inner.registry();
    let mut changed = false;
    for index in 0..registry.builtins.len() {
        let name = registry.builtins[index].info.name.clone();
        let state = config_state(dir, &name);
        let known = registry.builtin_configs.get(&name);
        if known == Some(&state) || (known.is_none() && state.is_empty()) {
            registry.builtin_configs.insert(name, state);
            continue;
        }
        registry.builtin_configs.insert(name.clone(), state);

        let found = config_file::find(dir, &name).and_then(|file| {
            let config = match &file {
                Some(path) => config_file::read(path)?,
                None => "{}".to_owned(),
            };
            Ok((file, config))
        });
        match found {
            Ok((config_file, config)) => {
                let old = &registry.builtins[index];
                if old.config == config && old.config_file == config_file {
                    continue;
                }
                let plugin = LoadedPlugin {
                    info: old.info.clone(),
                    content_hash: old.content_hash.clone(),
                    config,
                    config_file,
                    linked: old.linked.clone(),
                };
                tracing::info!(plugin = %name, "built-in plugin config reloaded");
                registry.builtins[index] = Arc::new(plugin);
                changed = true;
            }
            Err(error) => tracing::error!(plugin = %name, error = %format!("{error:#}"), "built-in plugin config is invalid; the previous config stays"),
        }
    }
    changed
}

/// Lists the `*.wasm` files directly in `dir`, with their fingerprints. A missing
/// folder has no files.
fn list_wasm_files(dir: &Path) -> HashMap<PathBuf, Fingerprint> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => return HashMap::new(),
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "wasm") && path.is_file())
        .filter_map(|path| Some((path.clone(), fingerprint_of(&path)?)))
        .collect()
}

fn fingerprint_of(path: &Path) -> Option<Fingerprint> {
    let metadata = std::fs::metadata(path).ok()?;
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let config = config_state(path.parent()?, &stem);
    Some(Fingerprint { size: metadata.len(), modified: metadata.modified().ok(), config })
}

fn config_state(dir: &Path, stem: &str) -> ConfigState {
    ["json", "toml"]
        .iter()
        .map(|extension| dir.join(format!("{stem}.{extension}")))
        .filter_map(|path| {
            let metadata = std::fs::metadata(&path).ok()?;
            Some((path, metadata.len(), metadata.modified().ok()))
        })
        .collect()
}

/// True when `path` has shown `fingerprint` for at least `SETTLE`; otherwise
/// starts or restarts its settle clock.
fn has_settled(pending: &mut HashMap<PathBuf, (Fingerprint, Instant)>, path: &Path, fingerprint: &Fingerprint) -> bool {
    match pending.get(path) {
        Some((seen, since)) if seen == fingerprint => since.elapsed() >= SETTLE,
        _ => {
            pending.insert(path.to_path_buf(), (fingerprint.clone(), Instant::now()));
            false
        }
    }
}
