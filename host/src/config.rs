//! Settings, read from the environment and from an optional TOML file.
//!
//! Every setting has an environment variable name (`BIND`, `DATABASE_URL`,
//! …). The optional file (`--config FILE` or `GRITO_CONFIG`) uses the same
//! names as keys, for example `BIND = "0.0.0.0:8080"`. The environment wins
//! over the file, and the file over the defaults.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;

use crate::store::DatabaseUrl;

/// Setting values from the environment, then from the config file.
#[derive(Debug, Clone, Default)]
pub struct Source {
    file: HashMap<String, String>,
    /// Values that replace the environment, for tests.
    overrides: HashMap<String, String>,
    /// When false the process environment is not read, for tests.
    read_env: bool,
}

impl Source {
    /// Reads the environment and, when given, the TOML file at `path`.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = match path {
            Some(path) => read_file(path)?,
            None => HashMap::new(),
        };
        Ok(Self { file, overrides: HashMap::new(), read_env: true })
    }

    /// Builds a source that reads only `values`: no environment, no file.
    pub fn from_pairs<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let overrides = values.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Self { file: HashMap::new(), overrides, read_env: false }
    }

    /// Returns the value of setting `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        let from_env = || self.read_env.then(|| std::env::var(name).ok()).flatten();
        self.overrides
            .get(name)
            .cloned()
            .or_else(from_env)
            .or_else(|| self.file.get(name).cloned())
            .filter(|value| !value.trim().is_empty())
    }

    /// Parses setting `name` with `FromStr`, or returns `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|error| anyhow::anyhow!("invalid {name} `{text}`: {error}")),
        }
    }

    /// Parses a duration such as `10s`, `2m` or `500ms`, or returns `default`.
    pub fn duration_or(&self, name: &str, default: Duration) -> anyhow::Result<Duration> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => parse_duration(&text).with_context(|| format!("invalid {name} `{text}`")),
        }
    }

    /// Parses a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
    pub fn flag(&self, name: &str) -> anyhow::Result<bool> {
        match self.get(name).map(|text| text.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(text) => match text.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => anyhow::bail!("invalid {name} `{text}`: expected true or false"),
            },
        }
    }
}

/// Parses a duration with a unit: `500ms`, `10s`, `2m`, `1h`, `1d`, or combined like `1m30s`.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|error| anyhow::anyhow!("{error} (examples: 500ms, 10s, 2m)"))
}

fn read_file(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("invalid TOML in config file {}", path.display()))?;
    let mut values = HashMap::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).unwrap_or_else(|| item.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => anyhow::bail!("config file {}: `{key}` must be a string, number or boolean, got {}", path.display(), other.type_str()),
        };
        values.insert(key.to_ascii_uppercase(), text);
    }
    Ok(values)
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings every command shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseUrl,
    /// Folder for the embedded database and other local files.
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// `None` when `EVENTS_API_KEY` is unset; `grito serve` refuses to start then.
    pub events_api_key: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// `PLUGINS_DIR`, `PLUGIN_MEMORY_LIMIT`, `PLUGIN_TIMEOUT`.
    pub plugins: crate::plugins::PluginSettings,
    /// `ENGINE_SWEEP_INTERVAL`, `ENGINE_BATCH_SIZE`, `ENGINE_LEASE`.
    pub engine: crate::engine::EngineSettings,
    /// `SMTP_URL`, `MAIL_FROM`, `TEMPLATES_DIR` and `MAIL_*`.
    pub mailer: crate::mailer::MailerSettings,
    /// `None` when `ADMIN_API_KEY` is unset; the admin routes then return 403.
    pub admin_api_key: Option<String>,
    /// `METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// `STRIPE_WEBHOOK_SECRET` and `STRIPE_TOLERANCE`.
    pub stripe: crate::stripe::StripeSettings,
    pub dispatcher: crate::dispatcher::DispatcherSettings,
    /// `INACTIVITY_JOB_*` and `ACTIVITY_EXCLUDED_*`.
    pub inactivity: crate::jobs::InactivitySettings,
    /// `INGEST_TOKENS` and `INGEST_MAX_BODY_BYTES`.
    pub ingest: crate::normalizers::IngestSettings,
    /// `API_ONLY`: `grito serve` serves HTTP without running the workers,
    /// for nodes beside which `grito worker` runs elsewhere.
    pub api_only: bool,
}

impl Settings {
    pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

    pub fn from_source(source: &Source) -> anyhow::Result<Self> {
        let data_dir = PathBuf::from(source.get("DATA_DIR").unwrap_or_else(|| "grito-data".to_owned()));
        let database = match source.get("DATABASE_URL") {
            Some(url) => DatabaseUrl::parse(&url)?,
            None => DatabaseUrl::Sqlite(data_dir.join("grito.db")),
        };
        let bind = source.parse_or("BIND", Self::DEFAULT_BIND.parse::<SocketAddr>()?)?;
        let max_body_bytes = source.parse_or("MAX_BODY_BYTES", Self::DEFAULT_MAX_BODY_BYTES)?;
        anyhow::ensure!(max_body_bytes >= 1024, "MAX_BODY_BYTES must be at least 1024, got {max_body_bytes}");
        let log_format = match source.get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => anyhow::bail!("invalid LOG_FORMAT `{other}`: expected text or json"),
        };
        let plugins = crate::plugins::PluginSettings::from_source(source, &data_dir)?;
        let mailer = crate::mailer::MailerSettings::from_source(source, &data_dir)?;
        Ok(Self {
            database,
            data_dir,
            bind,
            events_api_key: source.get("EVENTS_API_KEY"),
            max_body_bytes,
            log_format,
            plugins,
            engine: crate::engine::EngineSettings::from_source(source)?,
            mailer,
            admin_api_key: source.get("ADMIN_API_KEY"),
            metrics_token: source.get("METRICS_TOKEN"),
            stripe: crate::stripe::StripeSettings::from_source(source)?,
            dispatcher: crate::dispatcher::DispatcherSettings::from_source(source)?,
            inactivity: crate::jobs::InactivitySettings::from_source(source)?,
            ingest: crate::normalizers::IngestSettings::from_source(source)?,
            api_only: source.flag("API_ONLY")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_embedded_sqlite_on_loopback() {
        let settings = Settings::from_source(&Source::from_pairs([])).unwrap();
        assert_eq!(settings.database, DatabaseUrl::Sqlite(PathBuf::from("grito-data/grito.db")));
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.events_api_key, None);
        assert_eq!(settings.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn postgres_url_switches_backend() {
        let source = Source::from_pairs([("DATABASE_URL", "postgres://app:pw@db:5432/grito")]);
        let settings = Settings::from_source(&source).unwrap();
        assert_eq!(settings.database, DatabaseUrl::Postgres("postgres://app:pw@db:5432/grito".into()));
        assert_eq!(settings.database.describe(), "postgres://app:***@db:5432/grito");
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let error = Settings::from_source(&Source::from_pairs([("BIND", "nowhere")])).unwrap_err();
        assert!(error.to_string().contains("BIND"), "{error}");
        let error = Settings::from_source(&Source::from_pairs([("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(error.to_string().contains("DATABASE_URL"), "{error}");
    }

    #[test]
    fn config_file_adds_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grito.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9999\"\nMAX_BODY_BYTES = 4096\n").unwrap();
        let mut source = Source::load(Some(&path)).unwrap();
        source.read_env = false;
        let settings = Settings::from_source(&source).unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(settings.max_body_bytes, 4096);

        source.overrides.insert("BIND".into(), "127.0.0.1:7777".into());
        assert_eq!(Settings::from_source(&source).unwrap().bind.to_string(), "127.0.0.1:7777");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("ten").is_err());
    }
}
