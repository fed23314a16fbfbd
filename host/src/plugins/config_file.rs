//! A plugin's optional config file, `NAME.json` or `NAME.toml` beside
//! `NAME.wasm`, read as the JSON text handed to every call.

use std::path::{Path, PathBuf};

/// The config file for plugin file stem `stem` in `dir`, if any. Both
/// `NAME.json` and `NAME.toml` present is an error, because one would be ignored.
pub fn find(dir: &Path, stem: &str) -> anyhow::Result<Option<PathBuf>> {
    let json = dir.join(format!("{stem}.json"));
    let toml = dir.join(format!("{stem}.toml"));
    match (json.is_file(), toml.is_file()) {
        (true, true) => anyhow::bail!("both {} and {} exist; keep one config file", json.display(), toml.display()),
        (true, false) => Ok(Some(json)),
        (false, true) => Ok(Some(toml)),
        (false, false) => Ok(None),
    }
}

/// Reads `path` and returns its contents as JSON text (TOML converted to JSON).
pub fn read(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|error| anyhow::anyhow!("cannot read config file {}: {error}", path.display()))?;
    let value: serde_json::Value = if path.extension().is_some_and(|extension| extension == "toml") {
        let table: toml::Table = text.parse().map_err(|error| anyhow::anyhow!("invalid TOML in config file {}: {error}", path.display()))?;
        serde_json::to_value(table)?
    } else {
        serde_json::from_str(&text).map_err(|error| anyhow::anyhow!("invalid JSON in config file {}: {error}", path.display()))?
    };
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_config_becomes_json_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email.toml");
        std::fs::write(&path, "sender = \"grito@example.org\"\n[limits]\nper_hour = 10\n").unwrap();
        let json: serde_json::Value = serde_json::from_str(&read(&path).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"sender": "grito@example.org", "limits": {"per_hour": 10}}));
    }

    #[test]
    fn two_config_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("email.toml"), "").unwrap();
        std::fs::write(dir.path().join("email.json"), "{}").unwrap();
        assert!(find(dir.path(), "email").unwrap_err().to_string().contains("keep one"));
    }
}
