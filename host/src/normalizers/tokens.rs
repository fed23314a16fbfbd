//! `INGEST_TOKENS`: the secrets that devices put in the URL of
//! `POST /ingest/{plugin}`, because they cannot set custom headers.
//!
//! Format: `plugin=token|token,other=token`. A token may carry a name,
//! `plugin=centro:9f2c…|norte:77ab…`, which the host passes to the plugin in
//! the `x-grito-token-name` header so the plugin can tell which device sent the
//! request. Only SHA-256 digests are kept in memory, so a `Debug` print or a
//! crash dump never shows a token.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted tokens of every plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestTokens {
    by_plugin: HashMap<String, Vec<Token>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    name: Option<String>,
    digest: [u8; 32],
}

/// A token that matched; `name` is the name it was given in `INGEST_TOKENS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMatch {
    pub name: Option<String>,
}

impl IngestTokens {
    /// Parses `INGEST_TOKENS`. Entries for the same plugin add up.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut by_plugin: HashMap<String, Vec<Token>> = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let Some((plugin, tokens)) = entry.split_once('=') else {
                anyhow::bail!("invalid INGEST_TOKENS entry `{}`: expected plugin=token|token", plugin_part(entry));
            };
            let plugin = plugin.trim();
            anyhow::ensure!(
                !plugin.is_empty() && plugin.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "invalid plugin name `{plugin}` in INGEST_TOKENS: use letters, digits, `-` and `_`"
            );
            for token in tokens.split('|').map(str::trim) {
                let (name, secret) = match token.split_once(':') {
                    Some((name, secret)) => (Some(name.trim().to_owned()), secret.trim()),
                    None => (None, token),
                };
                anyhow::ensure!(!secret.is_empty(), "INGEST_TOKENS has an empty token for plugin `{plugin}`");
                anyhow::ensure!(
                    name.as_deref().is_none_or(|name| !name.is_empty()),
                    "INGEST_TOKENS has a token with an empty name for plugin `{plugin}`: write name:token or just token"
                );
                if secret.len() < 16 {
                    tracing::warn!(plugin, "an INGEST_TOKENS token is shorter than 16 characters; use a long random secret");
                }
                by_plugin.entry(plugin.to_owned()).or_default().push(Token { name, digest: Sha256::digest(secret.as_bytes()).into() });
            }
        }
        Ok(Self { by_plugin })
    }

    /// True when `plugin` has at least one token.
    pub fn has_tokens(&self, plugin: &str) -> bool {
        self.by_plugin.get(plugin).is_some_and(|tokens| !tokens.is_empty())
    }

    /// Checks `given` against every token of `plugin`. Each comparison is
    /// constant-time over SHA-256 digests and all tokens are compared, so
    /// the time taken does not reveal which token came close.
    pub fn check(&self, plugin: &str, given: &str) -> Option<TokenMatch> {
        let tokens = self.by_plugin.get(plugin)?;
        let digest = Sha256::digest(given.as_bytes());
        let mut found = None;
        for token in tokens {
            let equal: bool = token.digest.ct_eq(digest.as_slice()).into();
            if equal && found.is_none() {
                found = Some(TokenMatch { name: token.name.clone() });
            }
        }
        found
    }
}

/// The part of an entry before any secret, for error messages.
fn plugin_part(entry: &str) -> &str {
    entry.split([':', '|']).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_per_plugin() {
        let tokens = IngestTokens::parse("intelbras=tok-one-0123456789|centro:tok-two-0123456789, other=tok-three-012345").unwrap();
        assert_eq!(tokens.check("intelbras", "tok-one-0123456789"), Some(TokenMatch { name: None }));
        assert_eq!(tokens.check("intelbras", "tok-two-0123456789"), Some(TokenMatch { name: Some("centro".into()) }));
        assert_eq!(tokens.check("intelbras", "tok-three-012345"), None);
        assert_eq!(tokens.check("other", "tok-three-012345"), Some(TokenMatch { name: None }));
        assert_eq!(tokens.check("missing", "tok-one-0123456789"), None);
        assert!(tokens.has_tokens("other"));
        assert!(!tokens.has_tokens("missing"));
    }

    #[test]
    fn entries_for_one_plugin_add_up() {
        let tokens = IngestTokens::parse("intelbras=a-long-token-0001,intelbras=a-long-token-0002").unwrap();
        assert!(tokens.check("intelbras", "a-long-token-0001").is_some());
        assert!(tokens.check("intelbras", "a-long-token-0002").is_some());
    }

    #[test]
    fn empty_setting_has_no_tokens() {
        assert_eq!(IngestTokens::parse("").unwrap(), IngestTokens::default());
    }

    #[test]
    fn invalid_entries_are_rejected_without_secrets() {
        for (text, expected) in [
            ("intelbras", "expected plugin=token"),
            ("=secret-value", "invalid plugin name"),
            ("intel bras=secret-value", "invalid plugin name"),
            ("intelbras=", "empty token"),
            ("intelbras=a||b", "empty token"),
            ("intelbras=:secret-value", "empty name"),
        ] {
            let error = IngestTokens::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains("secret-value"), "{text}: the message shows the secret: {error}");
        }
    }
}
