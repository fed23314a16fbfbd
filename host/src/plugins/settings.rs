//! Plugin settings: `PLUGINS_DIR`, `PLUGIN_MEMORY_LIMIT`, `PLUGIN_TIMEOUT`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Source;

/// Where plugins live and the limits of each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// Folder whose `*.wasm` files are loaded and watched (`PLUGINS_DIR`, default `./plugins`).
    pub dir: PathBuf,
    /// Folder for compiled code (`DATA_DIR/plugin-cache`).
    pub cache_dir: PathBuf,
    /// Linear memory cap per call, in bytes (`PLUGIN_MEMORY_LIMIT`, default 32 MiB).
    pub memory_limit: usize,
    /// CPU deadline per call (`PLUGIN_TIMEOUT`, default 100 ms).
    pub timeout: Duration,
}

impl PluginSettings {
    pub const DEFAULT_DIR: &str = "plugins";
    pub const DEFAULT_MEMORY_LIMIT: usize = 32 * 1024 * 1024;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

    pub fn from_source(source: &Source, data_dir: &Path) -> anyhow::Result<Self> {
        let dir = PathBuf::from(source.get("PLUGINS_DIR").unwrap_or_else(|| Self::DEFAULT_DIR.to_owned()));
        let memory_limit = match source.get("PLUGIN_MEMORY_LIMIT") {
            Some(text) => parse_bytes(&text).map_err(|error| anyhow::anyhow!("invalid PLUGIN_MEMORY_LIMIT `{text}`: {error}"))?,
            None => Self::DEFAULT_MEMORY_LIMIT,
        };
        anyhow::ensure!(memory_limit >= 1024 * 1024, "PLUGIN_MEMORY_LIMIT must be at least 1MiB, got {memory_limit} bytes");
        let timeout = source.duration_or("PLUGIN_TIMEOUT", Self::DEFAULT_TIMEOUT)?;
        anyhow::ensure!(!timeout.is_zero(), "PLUGIN_TIMEOUT must be more than zero");
        Ok(Self { dir, cache_dir: data_dir.join("plugin-cache"), memory_limit, timeout })
    }
}

/// Parses a byte size: `33554432`, `32MiB`, `512KiB`, `1GiB` (also `MB`, `KB`, `GB` as powers of 1024).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|character: char| !character.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize = digits.parse().map_err(|_| "expected a number of bytes such as 33554432 or 32MiB".to_owned())?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown unit `{other}`; use B, KiB, MiB or GiB")),
    };
    number.checked_mul(multiplier).ok_or_else(|| "the size is too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_unset() {
        let settings = PluginSettings::from_source(&Source::from_pairs([]), Path::new("data")).unwrap();
        assert_eq!(settings.dir, PathBuf::from("plugins"));
        assert_eq!(settings.cache_dir, PathBuf::from("data/plugin-cache"));
        assert_eq!(settings.memory_limit, 32 * 1024 * 1024);
        assert_eq!(settings.timeout, Duration::from_millis(100));
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("32MiB"), Ok(32 * 1024 * 1024));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 * 1024));
        assert_eq!(parse_bytes("1048576"), Ok(1024 * 1024));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
    }

    #[test]
    fn invalid_limits_name_the_setting() {
        let source = Source::from_pairs([("PLUGIN_MEMORY_LIMIT", "12 bananas")]);
        let error = PluginSettings::from_source(&source, Path::new("data")).unwrap_err();
        assert!(error.to_string().contains("PLUGIN_MEMORY_LIMIT"), "{error}");
        let source = Source::from_pairs([("PLUGIN_TIMEOUT", "soon")]);
        let error = PluginSettings::from_source(&source, Path::new("data")).unwrap_err();
        assert!(error.to_string().contains("PLUGIN_TIMEOUT"), "{error}");
    }
}
