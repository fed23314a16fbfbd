//! Turns `.wasm` bytes into a callable plugin: compile (or read the cache),
//! find which Grito world the component implements, link it, and ask it to
//! describe itself.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use wasmtime::component::{Component, InstancePre};

use super::IdentityLookup;
use super::bindings::{action::ActionPre, condition::ConditionPre, normalizer::NormalizerPre, types};
use super::cache::{self, CacheStats};
use super::runtime::{CallState, Runtime};
use super::types::{PluginInfo, PluginKind};
use super::wit_package;

/// The `\0asm` magic number that opens every Wasm module and component.
const WASM_MAGIC: &[u8] = b"\0asm";

/// A linked component of one world, ready to instantiate.
#[derive(Clone)]
pub enum Linked {
    Condition(ConditionPre<CallState>),
    Action(ActionPre<CallState>),
    Normalizer(NormalizerPre<CallState>),
}

/// A plugin that loaded and described itself.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    /// SHA-256 of the `.wasm` bytes.
    pub content_hash: String,
    /// The configuration text handed to every call (JSON, `{}` when none).
    pub config: String,
    pub config_file: Option<PathBuf>,
    pub linked: Linked,
}

/// Compiles and links `wasm`, then calls `describe`. The error explains why the
/// bytes are not a usable Grito plugin.
pub fn load(
    runtime: &Runtime,
    cache_dir: Option<&std::path::Path>,
    stats: &CacheStats,
    identities: Arc<dyn IdentityLookup>,
    wasm: &[u8],
) -> anyhow::Result<(PluginInfo, Linked, String)> {
    anyhow::ensure!(wasm.starts_with(WASM_MAGIC), "not a WebAssembly file (it does not start with the `\\0asm` magic number)");
    let content_hash = cache::content_hash(wasm);

    let component = cache::load_component(&runtime.engine, cache_dir, wasm, stats).map_err(|error| {
        anyhow::anyhow!("not a valid WebAssembly component: {error:#}. Build plugins for wasm32-wasip2 so cargo emits a component")
    })?;
    check_package_version(runtime, &component)?;
    let kind = detect_kind(runtime, &component)?;
    let instance_pre = runtime.linker.instantiate_pre(&component).map_err(|error| {
        anyhow::anyhow!("imports something the host does not provide (plugins may import only WASI and grito:plugin/host): {error:#}")
    })?;
    let linked = link(kind, instance_pre)?;

    let info = describe(runtime, &linked, identities)?;
    anyhow::ensure!(
        info.kind == kind,
        "plugin `{}` describes itself as a {} plugin but implements the {kind} world",
        info.name,
        info.kind
    );
    check_info(&info)?;
    Ok((info, linked, content_hash))
}

/// Checks that every `grito:plugin/…@X.Y.Z` import has this host's major and
/// minor version. Wasmtime links an import of another patch of the same `0.x`
/// minor version to the host's definitions, so any `0.1.x` loads. Another
/// minor version is rejected here with both versions named, before linking
/// fails with a less helpful type error.
fn check_package_version(runtime: &Runtime, component: &Component) -> anyhow::Result<()> {
    let host = wit_package::VERSION;
    let component_type = component.component_type();
    for (name, _) in component_type.imports(&runtime.engine) {
        let Some(version) = name.strip_prefix(wit_package::INTERFACE_PREFIX).and_then(|rest| rest.split_once('@')).map(|(_, version)| version) else {
            continue;
        };
        anyhow::ensure!(
            wit_package::compatible(version),
            "plugin built against grito:plugin@{version}, this host provides {host}; rebuild it against {}.x",
            wit_package::series()
        );
    }
    Ok(())
}

/// Finds the world from the component's exports.
fn detect_kind(runtime: &Runtime, component: &Component) -> anyhow::Result<PluginKind> {
    let component_type = component.component_type();
    let exports: BTreeSet<&str> = component_type.exports(&runtime.engine).map(|(name, _)| name).collect();
    let has = |names: &[&str]| names.iter().all(|name| exports.contains(name));

    if has(&["describe", "check", "evaluate"]) {
        Ok(PluginKind::Condition)
    } else if has(&["describe", "validate", "run"]) {
        Ok(PluginKind::Action)
    } else if has(&["describe", "normalize"]) {
        Ok(PluginKind::Normalizer)
    } else {
        let found = if exports.is_empty() { "none".to_owned() } else { exports.into_iter().collect::<Vec<_>>().join(", ") };
        anyhow::bail!(
            "implements no Grito world of grito:plugin@{} (exports: {found}; a condition exports describe, check and evaluate, \
             an action describe, validate and run, a normalizer describe and normalize). \
             Generate the bindings with `world: \"action\"` (or condition, normalizer) and call `export!` on your type",
            wit_package::VERSION
        )
    }
}

fn link(kind: PluginKind, instance_pre: InstancePre<CallState>) -> anyhow::Result<Linked> {
    let mismatch = |error: wasmtime::Error| {
        anyhow::anyhow!("does not match the `{kind}` world of grito:plugin@{}: {error:#}. Rebuild it against this host's WIT (`grito plugins new` writes a copy)", wit_package::VERSION)
    };
    Ok(match kind {
        PluginKind::Condition => Linked::Condition(ConditionPre::new(instance_pre).map_err(mismatch)?),
        PluginKind::Action => Linked::Action(ActionPre::new(instance_pre).map_err(mismatch)?),
        PluginKind::Normalizer => Linked::Normalizer(NormalizerPre::new(instance_pre).map_err(mismatch)?),
    })
}

fn describe(runtime: &Runtime, linked: &Linked, identities: Arc<dyn IdentityLookup>) -> anyhow::Result<PluginInfo> {
    let mut store = runtime.store("(loading)", Utc::now(), identities);
    let result = match linked {
        Linked::Condition(pre) => pre.instantiate(&mut store).and_then(|plugin| plugin.call_describe(&mut store)),
        Linked::Action(pre) => pre.instantiate(&mut store).and_then(|plugin| plugin.call_describe(&mut store)),
        Linked::Normalizer(pre) => pre.instantiate(&mut store).and_then(|plugin| plugin.call_describe(&mut store)),
    };
    let described = result.map_err(|error| anyhow::anyhow!("`describe` failed: {}", runtime.classify(&store, error)));
    store.data().flush_output();

    let info = described?;
    Ok(PluginInfo {
        name: info.name,
        version: info.version,
        kind: match info.kind {
            types::PluginKind::Condition => PluginKind::Condition,
            types::PluginKind::Action => PluginKind::Action,
            types::PluginKind::Normalizer => PluginKind::Normalizer,
        },
        action_types: info.action_types,
    })
}

/// Plugin names appear in URLs (`/ingest/{plugin}`) and file names, so they
/// are kept to lowercase letters, digits, `-` and `_`.
fn check_info(info: &PluginInfo) -> anyhow::Result<()> {
    let valid_name = |name: &str| {
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_')
    };
    anyhow::ensure!(
        valid_name(&info.name),
        "`describe` returned the invalid name `{}`: use 1 to 64 lowercase letters, digits, `-` or `_`",
        info.name
    );
    match info.kind {
        PluginKind::Action => {
            anyhow::ensure!(!info.action_types.is_empty(), "action plugin `{}` handles no action type (`describe` returned an empty `action-types`)", info.name);
            for action_type in &info.action_types {
                anyhow::ensure!(!action_type.trim().is_empty(), "action plugin `{}` lists an empty action type", info.name);
            }
            let unique: BTreeSet<&String> = info.action_types.iter().collect();
            anyhow::ensure!(unique.len() == info.action_types.len(), "action plugin `{}` lists an action type twice", info.name);
        }
        PluginKind::Condition | PluginKind::Normalizer => anyhow::ensure!(
            info.action_types.is_empty(),
            "{} plugin `{}` lists action types; only action plugins handle action types",
            info.kind,
            info.name
        ),
    }
    Ok(())
}
