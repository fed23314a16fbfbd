//! Requests posted to `POST /ingest/{plugin}`, handed to the normalizer
//! plugin of that name: who may post (per-plugin tokens or `X-Api-Key`),
//! which parts of the request reach the plugin, and how its event drafts are stored
//! (the `POST /events` path, or parked until their identity is mapped).
//!
//! Nothing here knows any particular device or vendor: a new source is a
//! `.wasm` file and a config file in `PLUGINS_DIR`.

pub mod identities;
pub mod tokens;

use std::collections::HashSet;

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use crate::config::Source;
use crate::inbound::{self, DraftOutcome, ExternalIdentity};
use crate::plugins::{EventDraft, InboundRequest, PluginHost, PluginKind};
use crate::signals::Signals;
use crate::store::{self, Store};

pub use identities::StoreIdentities;
pub use tokens::{IngestTokens, TokenMatch};

/// The header that carries the name of the `INGEST_TOKENS` entry that matched.
pub const TOKEN_NAME_HEADER: &str = "x-grito-token-name";

/// `INGEST_TOKENS` and `INGEST_MAX_BODY_BYTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSettings {
    pub tokens: IngestTokens,
    /// Largest accepted body of an ingest request, in bytes. Larger than
    /// `MAX_BODY_BYTES` by default because device pushes may carry photos.
    pub max_body_bytes: usize,
}

impl IngestSettings {
    pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

    pub fn from_source(source: &Source) -> anyhow::Result<Self> {
        let tokens = IngestTokens::parse(&source.get("INGEST_TOKENS").unwrap_or_default())?;
        let max_body_bytes = source.parse_or("INGEST_MAX_BODY_BYTES", Self::DEFAULT_MAX_BODY_BYTES)?;
        anyhow::ensure!(max_body_bytes >= 1024, "INGEST_MAX_BODY_BYTES must be at least 1024, got {max_body_bytes}");
        Ok(Self { tokens, max_body_bytes })
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self { tokens: IngestTokens::default(), max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES }
    }
}

/// The ingest route's state: the plugin host (none when plugins are off)
/// and the settings.
#[derive(Clone, Default)]
pub struct Normalizers {
    pub plugins: Option<PluginHost>,
    pub settings: IngestSettings,
}

impl Normalizers {
    pub fn new(plugins: PluginHost, settings: IngestSettings) -> Self {
        Self { plugins: Some(plugins), settings }
    }

    /// Returns the plugin host when `plugin` is a loaded normalizer.
    pub fn normalizer(&self, plugin: &str) -> Option<&PluginHost> {
        let host = self.plugins.as_ref()?;
        let loaded = host.list().into_iter().any(|status| {
            status.state == "loaded" && status.info.is_some_and(|info| info.name == plugin && info.kind == PluginKind::Normalizer)
        });
        loaded.then_some(host)
    }
}

/// Where the request's token was, so it can be removed before the request reaches the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPlace {
    /// `?token=…`
    Query,
    /// The first segment of the path after `/ingest/{plugin}`.
    Path,
}

/// Finds the token of an ingest request: `token` in the query, else the
/// first path segment after `/ingest/{plugin}`.
pub fn find_token(query: &str, rest: &str) -> Option<(String, TokenPlace)> {
    let from_query = url::form_urlencoded::parse(query.as_bytes()).find(|(name, value)| name == "token" && !value.is_empty());
    if let Some((_, value)) = from_query {
        return Some((value.into_owned(), TokenPlace::Query));
    }
    let segment = rest.trim_start_matches('/').split('/').next().unwrap_or_default();
    (!segment.is_empty()).then(|| (segment.to_owned(), TokenPlace::Path))
}

/// Builds the request the plugin receives: the token removed from the query or path,
/// the host's own `x-api-key` and `x-grito-*` headers removed, and the
/// matched token's name added as `x-grito-token-name`.
pub fn plugin_request(
    method: &str,
    rest: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: Vec<u8>,
    token: Option<(TokenPlace, &TokenMatch)>,
) -> InboundRequest {
    let place = token.map(|(place, _)| place);

    let query = if place == Some(TokenPlace::Query) {
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                url::form_urlencoded::parse(name.as_bytes()).next().is_none_or(|(name, _)| name != "token")
            })
            .collect::<Vec<_>>()
            .join("&")
    } else {
        query.to_owned()
    };

    let mut segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    if place == Some(TokenPlace::Path) && !segments.is_empty() {
        segments.remove(0);
    }
    let path = format!("/{}", segments.join("/"));

    let mut plugin_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| *name != "x-api-key" && !name.as_str().starts_with("x-grito-"))
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    if let Some((_, TokenMatch { name: Some(name) })) = token {
        plugin_headers.push((TOKEN_NAME_HEADER.to_owned(), name.clone()));
    }

    InboundRequest { method: method.to_owned(), path, query, headers: plugin_headers, body }
}

/// One stored event in the ingest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    pub id: Uuid,
    pub dedup: bool,
}

/// The fate of a request's drafts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    pub events: Vec<StoredEvent>,
    /// Drafts parked until their identity is mapped.
    pub parked: u32,
    /// Drafts that repeat the idempotency key of an earlier draft of the same request.
    pub ignored: u32,
}

/// A draft that breaks the host's rules: the plugin's fault, not the client's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}` returned an invalid event draft ({event_name}): {reason}")]
pub struct InvalidDraft {
    pub plugin: String,
    pub event_name: String,
    pub reason: String,
}

/// A draft checked and ready to store or park.
#[derive(Debug)]
pub struct CheckedDraft {
    draft: store::EventDraft,
    user_id: Option<Uuid>,
    identity: ExternalIdentity,
}

/// Checks every draft with `POST /events`' validation before anything is
/// stored, so one bad draft stores nothing. A draft without an idempotency
/// key gets a random one (it is then never deduplicated). Repeated keys
/// within the request are dropped and counted.
pub fn check_drafts(plugin: &str, drafts: Vec<EventDraft>) -> Result<(Vec<CheckedDraft>, u32), InvalidDraft> {
    let mut seen = HashSet::new();
    let mut checked = Vec::new();
    let mut ignored = 0;

    for draft in drafts {
        let invalid = |reason: String| InvalidDraft { plugin: plugin.to_owned(), event_name: draft.event_name.clone(), reason };
        let identity = match (&draft.user_id, &draft.identity) {
            (_, Some((source, external_id))) => ExternalIdentity { source: source.clone(), external_id: Some(external_id.clone()) },
            (Some(_), None) => ExternalIdentity { source: draft.source.clone(), external_id: None },
            (None, None) => return Err(invalid("it names neither a user-id nor an identity".to_owned())),
        };
        let idempotency_key = draft.idempotency_key.clone().unwrap_or_else(|| format!("{plugin}:{}", Uuid::new_v4()));
        let stored = store::EventDraft {
            event_name: draft.event_name.clone(),
            source: draft.source.clone(),
            occurred_at: draft.occurred_at.unwrap_or_else(Utc::now),
            payload: draft.payload.clone(),
            idempotency_key,
        };
        // Any user id passes the same checks, so a placeholder validates drafts still without one.
        inbound::new_event(&stored, draft.user_id.unwrap_or_else(Uuid::nil)).map_err(|error| invalid(error.to_string()))?;

        if !seen.insert(stored.idempotency_key.clone()) {
            ignored += 1;
            continue;
        }
        checked.push(CheckedDraft { draft: stored, user_id: draft.user_id, identity });
    }
    Ok((checked, ignored))
}

/// Stores each checked draft through the `POST /events` path, or parks it
/// when its user is not mapped yet.
pub async fn store_drafts(store: &dyn Store, signals: &Signals, drafts: Vec<CheckedDraft>, ignored: u32) -> anyhow::Result<IngestOutcome> {
    let mut outcome = IngestOutcome { ignored, ..IngestOutcome::default() };
    for checked in drafts {
        match inbound::store_or_park(store, signals, checked.draft, checked.user_id, &checked.identity).await? {
            DraftOutcome::Stored { id, dedup, .. } => outcome.events.push(StoredEvent { id, dedup }),
            DraftOutcome::Parked { .. } => outcome.parked += 1,
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use serde_json::Map;

    use super::*;

    fn draft(key: Option<&str>, user_id: Option<Uuid>, identity: Option<(&str, &str)>) -> EventDraft {
        EventDraft {
            event_name: "event.checked_in".into(),
            user_id,
            identity: identity.map(|(source, id)| (source.to_owned(), id.to_owned())),
            source: "device".into(),
            occurred_at: None,
            payload: Map::new(),
            idempotency_key: key.map(str::to_owned),
        }
    }

    #[test]
    fn query_token_wins_over_path() {
        assert_eq!(find_token("a=1&token=abc", "/def"), Some(("abc".into(), TokenPlace::Query)));
        assert_eq!(find_token("a=1", "/def/x"), Some(("def".into(), TokenPlace::Path)));
        assert_eq!(find_token("token=", "/"), None);
        assert_eq!(find_token("token=a%2Bb", ""), Some(("a+b".into(), TokenPlace::Query)));
    }

    #[test]
    fn plugin_request_hides_host_secrets() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("secret"));
        headers.insert("x-grito-token-name", HeaderValue::from_static("spoofed"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let matched = TokenMatch { name: Some("centro".into()) };

        let request = plugin_request("POST", "/tok/extra", "SN=1&token=tok", &headers, b"x".to_vec(), Some((TokenPlace::Query, &matched)));
        assert_eq!(request.query, "SN=1");
        assert_eq!(request.path, "/tok/extra");
        assert_eq!(request.headers, [("content-type".to_owned(), "text/plain".to_owned()), ("x-grito-token-name".to_owned(), "centro".to_owned())]);

        let request = plugin_request("POST", "/tok/extra", "SN=1", &headers, Vec::new(), Some((TokenPlace::Path, &matched)));
        assert_eq!(request.path, "/extra");
        assert_eq!(request.query, "SN=1");

        let request = plugin_request("POST", "", "", &headers, Vec::new(), None);
        assert_eq!(request.path, "/");
        assert!(request.headers.iter().all(|(name, _)| name != "x-grito-token-name"));
    }

    #[test]
    fn repeated_keys_in_one_request_are_ignored() {
        let user = Some(Uuid::new_v4());
        let (checked, ignored) = check_drafts("p", vec![draft(Some("k1"), user, None), draft(Some("k1"), user, None), draft(None, user, None)]).unwrap();
        assert_eq!(checked.len(), 2);
        assert_eq!(ignored, 1);
        assert!(checked[1].draft.idempotency_key.starts_with("p:"));
    }

    #[test]
    fn draft_without_user_or_identity_is_invalid() {
        let error = check_drafts("p", vec![draft(Some("k"), None, None)]).unwrap_err();
        assert!(error.to_string().contains("neither a user-id nor an identity"), "{error}");
    }

    #[test]
    fn draft_failing_event_rules_is_invalid() {
        let mut bad = draft(Some("k"), None, Some(("device", "42")));
        bad.event_name = " spaced ".into();
        let error = check_drafts("p", vec![draft(Some("k0"), None, Some(("device", "41"))), bad]).unwrap_err();
        assert!(error.reason.contains("event_name"), "{error}");
    }
}
