//! Which plugins serve: built-ins, the files of `PLUGINS_DIR`, and the
//! routes (by plugin name, by action type) computed from them.
//!
//! Rules: a file whose plugin has a built-in's name overrides that built-in.
//! A file that claims a plugin name or an action type already served by
//! another file (or by a built-in it does not override) fails to load, and
//! the first one keeps serving. A file replaced by a broken version keeps
//! serving its previous version, and the new file is listed as failed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::loader::LoadedPlugin;
use super::types::{PluginOrigin, PluginStatus};

/// The state of a file (and its config file) when it was last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub config: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

/// One `.wasm` file of the plugins folder.
pub struct FileEntry {
    pub fingerprint: Fingerprint,
    /// The version that serves (possibly older than the file on disk).
    pub plugin: Option<Arc<LoadedPlugin>>,
    /// Why the newest version failed to load.
    pub error: Option<String>,
    pub config_file: Option<PathBuf>,
}

/// Lookup tables for calls.
#[derive(Default)]
pub struct Routes {
    pub by_name: HashMap<String, Arc<LoadedPlugin>>,
    pub by_action_type: HashMap<String, Arc<LoadedPlugin>>,
}

#[derive(Default)]
pub struct Registry {
    pub builtins: Vec<Arc<LoadedPlugin>>,
    /// Config file state of each built-in, by plugin name.
    pub builtin_configs: HashMap<String, Vec<(PathBuf, u64, Option<SystemTime>)>>,
    pub builtin_errors: Vec<(String, String)>,
    pub files: BTreeMap<PathBuf, FileEntry>,
}

impl Registry {
    /// Checks that `candidate`, loaded from `file`, clashes with no plugin
    /// serving from another file or from a built-in it does not override.
    pub fn check_clashes(&self, file: &Path, candidate: &LoadedPlugin) -> Result<(), String> {
        for (other_file, entry) in &self.files {
            let Some(other) = entry.plugin.as_ref().filter(|_| other_file != file) else {
                continue;
            };
            if other.info.name == candidate.info.name {
                return Err(format!(
                    "plugin name `{}` is already served by {}; rename one of the two plugins",
                    candidate.info.name,
                    other_file.display()
                ));
            }
            if let Some(action_type) = shared_action_type(candidate, other) {
                return Err(format!(
                    "action type `{action_type}` is claimed by both {} (plugin `{}`) and {} (plugin `{}`); the first keeps serving it",
                    other_file.display(),
                    other.info.name,
                    file.display(),
                    candidate.info.name
                ));
            }
        }
        for builtin in &self.builtins {
            if builtin.info.name == candidate.info.name || self.is_overridden(&builtin.info.name, Some(file)) {
                continue;
            }
            if let Some(action_type) = shared_action_type(candidate, builtin) {
                return Err(format!(
                    "action type `{action_type}` is claimed by both the built-in plugin `{}` and {} (plugin `{}`); \
                     name the file's plugin `{}` to override the built-in",
                    builtin.info.name,
                    file.display(),
                    candidate.info.name,
                    builtin.info.name
                ));
            }
        }
        Ok(())
    }

    /// The plugins that serve, files first (in file-name order), then the
    /// built-ins that no file overrides.
    pub fn routes(&self) -> Routes {
        let mut routes = Routes::default();
        let serving_files = self.files.values().filter_map(|entry| entry.plugin.clone());
        let serving_builtins = self.builtins.iter().filter(|builtin| !self.is_overridden(&builtin.info.name, None)).cloned();
        for plugin in serving_files.chain(serving_builtins) {
            if routes.by_name.contains_key(&plugin.info.name) {
                continue;
            }
            for action_type in &plugin.info.action_types {
                routes.by_action_type.entry(action_type.clone()).or_insert_with(|| plugin.clone());
            }
            routes.by_name.insert(plugin.info.name.clone(), plugin);
        }
        routes
    }

    /// One row per built-in and per file.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let mut rows = Vec::new();
        for builtin in &self.builtins {
            let overridden = self.is_overridden(&builtin.info.name, None);
            rows.push(PluginStatus {
                file: format!("builtin:{}", builtin.info.name),
                origin: PluginOrigin::BuiltIn,
                state: if overridden { "overridden" } else { "loaded" },
                info: Some(builtin.info.clone()),
                error: None,
                config_file: builtin.config_file.clone(),
            });
        }
        for (name, error) in &self.builtin_errors {
            rows.push(PluginStatus {
                file: format!("builtin:{name}"),
                origin: PluginOrigin::BuiltIn,
                state: "failed",
                info: None,
                error: Some(error.clone()),
                config_file: None,
            });
        }
        for (file, entry) in &self.files {
            rows.push(PluginStatus {
                file: file.display().to_string(),
                origin: PluginOrigin::File,
                state: if entry.plugin.is_some() { "loaded" } else { "failed" },
                info: entry.plugin.as_ref().map(|plugin| plugin.info.clone()),
                error: entry.error.clone(),
                config_file: entry.config_file.clone(),
            });
        }
        rows
    }

    /// True when a file other than `except` serves a plugin named `name`.
    fn is_overridden(&self, name: &str, except: Option<&Path>) -> bool {
        self.files
            .iter()
            .any(|(file, entry)| Some(file.as_path()) != except && entry.plugin.as_ref().is_some_and(|plugin| plugin.info.name == name))
    }
}

fn shared_action_type<'a>(candidate: &'a LoadedPlugin, other: &LoadedPlugin) -> Option<&'a String> {
    candidate.info.action_types.iter().find(|action_type| other.info.action_types.contains(action_type))
}
