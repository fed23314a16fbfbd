//! `grito signature sign|verify`: computes and checks the webhook
//! signatures a receiver gets, with the dispatcher's own functions, so an
//! operator can debug a receiver that rejects deliveries.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use subtle::ConstantTimeEq;

use crate::dispatcher::signing::{grito_signature, standard_webhooks_signature};

/// The `grito signature` subcommands.
#[derive(Debug, Subcommand)]
pub enum SignatureCommand {
    /// Print the signature of a body: `sha256=<hex>` (X-Grito-Signature), or
    /// with --standard `v1,<base64>` (webhook-signature).
    Sign(Signing),
    /// Check a signature against a body; exits 0 when it matches, 1 when not.
    Verify {
        #[command(flatten)]
        signing: Signing,
        /// The header value to check: `sha256=<hex>`, or with --standard one
        /// or more space-separated `v1,<base64>`.
        #[arg(long)]
        signature: String,
    },
}

/// The secret, scheme and body both subcommands sign.
#[derive(Debug, Args)]
pub struct Signing {
    /// The subscription's signing secret (or set GRITO_SIGNATURE_SECRET, which
    /// keeps it out of the shell history).
    #[arg(long, env = "GRITO_SIGNATURE_SECRET", hide_env_values = true)]
    secret: String,
    /// Use the Standard Webhooks scheme (needs --id and --timestamp) instead of X-Grito-Signature.
    #[arg(long, requires_all = ["id", "timestamp"])]
    standard: bool,
    /// The webhook-id header (the delivery id).
    #[arg(long, requires = "standard")]
    id: Option<String>,
    /// The webhook-timestamp header (unix seconds).
    #[arg(long, requires = "standard", allow_negative_numbers = true)]
    timestamp: Option<i64>,
    /// The body file, byte for byte as sent; `-` or nothing reads standard input.
    file: Option<PathBuf>,
}

/// Runs a `grito signature` subcommand; it needs no database.
pub fn run(command: SignatureCommand) -> anyhow::Result<()> {
    match command {
        SignatureCommand::Sign(signing) => {
            println!("{}", sign(&signing)?);
            Ok(())
        }
        SignatureCommand::Verify { signing, signature } => {
            check_format(&signature, signing.standard)?;
            let expected = sign(&signing)?;
            if matches(&expected, &signature, signing.standard) {
                println!("signature matches");
                return Ok(());
            }
            anyhow::bail!(
                "signature does not match the body: expected {expected}; check that the secret is the subscription's \
                 current one (after rotate-secret the old one no longer matches) and that the body is byte for byte \
                 what was received"
            )
        }
    }
}

fn sign(signing: &Signing) -> anyhow::Result<String> {
    let body = read_body(signing.file.as_deref())?;
    match (signing.standard, &signing.id, signing.timestamp) {
        (true, Some(id), Some(timestamp)) => Ok(standard_webhooks_signature(&signing.secret, id, timestamp, &body)),
        (true, _, _) => anyhow::bail!("--standard needs --id (the webhook-id header) and --timestamp (the webhook-timestamp header)"),
        (false, _, _) => Ok(grito_signature(&signing.secret, &body)),
    }
}

/// Rejects a value that cannot be a signature of the scheme at all, so a
/// pasted header name or a truncated value is not reported as a mismatch.
fn check_format(given: &str, standard: bool) -> anyhow::Result<()> {
    let well_formed = |candidate: &str| {
        if standard {
            candidate.strip_prefix("v1,").is_some_and(|encoded| {
                !encoded.is_empty() && encoded.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"+/=".contains(&byte))
            })
        } else {
            candidate.strip_prefix("sha256=").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
        }
    };
    let candidates: Vec<&str> = if standard { given.split_whitespace().collect() } else { vec![given.trim()] };
    if !candidates.is_empty() && candidates.iter().all(|candidate| well_formed(candidate)) {
        return Ok(());
    }
    let expected_form = if standard { "one or more space-separated v1,<base64>" } else { "sha256=<64 hex digits>" };
    anyhow::bail!("signature `{given}` is malformed: expected {expected_form}")
}

/// Compares in constant time; a Standard Webhooks header may carry several
/// space-separated signatures, and any one matching is enough.
fn matches(expected: &str, given: &str, standard: bool) -> bool {
    let equal = |candidate: &str| bool::from(expected.as_bytes().ct_eq(candidate.trim().as_bytes()));
    if standard { given.split_whitespace().any(equal) } else { equal(given) }
}

fn read_body(file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    match file {
        Some(path) if path.as_os_str() != "-" => {
            body = std::fs::read(path).map_err(|error| anyhow::anyhow!("cannot read the body file {}: {error}", path.display()))?;
        }
        _ => {
            std::io::stdin().read_to_end(&mut body).map_err(|error| anyhow::anyhow!("cannot read the body from standard input: {error}"))?;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_signatures_are_named_as_such() {
        let hex = "a".repeat(64);
        assert!(check_format(&format!("sha256={hex}"), false).is_ok());
        assert!(check_format("v1,abc= v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", true).is_ok());
        for (value, standard) in [
            ("X-Grito-Signature: sha256=ab", false),
            ("sha256=abc", false),
            (&*format!("sha256={}", "g".repeat(64)), false),
            ("", false),
            ("v1,", true),
            ("sha256=ab", true),
            ("v1,abc= v2,abc=", true),
            ("", true),
        ] {
            let error = check_format(value, standard).unwrap_err().to_string();
            assert!(error.contains("is malformed"), "{value:?}: {error}");
        }
    }

    #[test]
    fn standard_header_matches_any_listed_signature() {
        assert!(matches("v1,abc=", "v1,zzz= v1,abc=", true));
        assert!(!matches("v1,abc=", "v1,zzz=", true));
        assert!(!matches("sha256=ab", "sha256=ab sha256=cd", false));
    }
}
