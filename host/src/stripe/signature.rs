//! Verification of the `Stripe-Signature` header against the raw body.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`. Each
//! `v1` is the hex HMAC-SHA256 of `"{t}.{body}"` keyed with an endpoint
//! secret. One matching `v1` for one configured secret is enough, so both
//! Stripe and the operator can rotate secrets. `v0` and unknown keys are
//! ignored.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api::ApiError;

/// A verification failure, each with a stable HTTP error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// No `Stripe-Signature` header, or an empty one.
    Missing,
    /// The header could not be read. The text names the invalid part.
    Malformed(&'static str),
    /// The signature matches, but `t` is further than the tolerance from now.
    OutsideTolerance {
        timestamp: i64,
        now: i64,
        tolerance: Duration,
    },
    /// No `v1` value matches any configured secret.
    Mismatch,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed(_) => "malformed_signature",
            Self::OutsideTolerance { .. } => "timestamp_outside_tolerance",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        let code = error.code();
        let (english, portuguese) = match &error {
            SignatureError::Missing => (
                "the Stripe-Signature header is missing".to_owned(),
                "o cabeçalho Stripe-Signature está ausente".to_owned(),
            ),
            SignatureError::Malformed(part) => (
                format!("the Stripe-Signature header is malformed: {part}"),
                format!("o cabeçalho Stripe-Signature está malformado: {}", malformed_pt(part)),
            ),
            SignatureError::OutsideTolerance { timestamp, now, tolerance } => {
                let seconds = tolerance.as_secs();
                (
                    format!(
                        "the Stripe-Signature timestamp {timestamp} is more than {seconds} seconds away from the \
                         server time {now}; check the server clock, or Stripe is replaying an old request"
                    ),
                    format!(
                        "o horário {timestamp} do Stripe-Signature está a mais de {seconds} segundos do horário do \
                         servidor {now}; confira o relógio do servidor"
                    ),
                )
            }
            SignatureError::Mismatch => (
                "no v1 signature in Stripe-Signature matches the body with any configured STRIPE_WEBHOOK_SECRET"
                    .to_owned(),
                "nenhuma assinatura v1 do Stripe-Signature confere com o corpo e os segredos em STRIPE_WEBHOOK_SECRET"
                    .to_owned(),
            ),
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, english, portuguese)
            .with_fields(["Stripe-Signature"])
    }
}

/// Part descriptions of [`SignatureError::Malformed`], in Portuguese.
fn malformed_pt(part: &str) -> &'static str {
    match part {
        MISSING_TIMESTAMP => "falta o horário t=",
        INVALID_TIMESTAMP => "o horário t= não é um número inteiro de segundos",
        REPEATED_TIMESTAMP => "o horário t= aparece mais de uma vez",
        NO_V1 => "não há nenhuma assinatura v1=",
        INVALID_V1 => "nenhuma assinatura v1= tem 64 dígitos hexadecimais",
        _ => "formato inválido",
    }
}

const MISSING_TIMESTAMP: &str = "no t= timestamp";
const INVALID_TIMESTAMP: &str = "t= is not an integer number of seconds";
const REPEATED_TIMESTAMP: &str = "t= appears more than once";
const NO_V1: &str = "no v1= signature";
const INVALID_V1: &str = "no v1= signature is 64 hexadecimal digits";

/// Checks `header` against `body` for any of `secrets`, then checks the
/// timestamp against `now`. Returns the signed timestamp.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    tolerance: Duration,
    now: DateTime<Utc>,
) -> Result<i64, SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .ok_or(SignatureError::Missing)?;
    let (timestamp, candidates) = parse_header(header)?;

    let signed_prefix = format!("{timestamp}.");
    let matches = secrets.iter().any(|secret| {
        candidates.iter().any(|candidate| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(signed_prefix.as_bytes());
            mac.update(body);
            // verify_slice compares in constant time.
            mac.verify_slice(candidate).is_ok()
        })
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }

    let now = now.timestamp();
    let tolerance_seconds = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > tolerance_seconds.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance {
            timestamp,
            now,
            tolerance,
        });
    }
    Ok(timestamp)
}

/// Builds a header for `body` signed with `secret` at `timestamp`, in the
/// format Stripe sends.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Splits the header into its timestamp and the decoded `v1` signatures.
/// Signatures that are not 32 bytes of hex are dropped, so an empty or short
/// `v1` can never match.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
    let mut timestamp = None;
    let mut v1_seen = false;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed(REPEATED_TIMESTAMP));
                }
                let seconds = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed(INVALID_TIMESTAMP))?;
                timestamp = Some(seconds);
            }
            "v1" => {
                v1_seen = true;
                if let Ok(bytes) = hex::decode(value.trim())
                    && bytes.len() == 32
                {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }

    let timestamp = timestamp.ok_or(SignatureError::Malformed(MISSING_TIMESTAMP))?;
    if !v1_seen {
        return Err(SignatureError::Malformed(NO_V1));
    }
    if candidates.is_empty() {
        return Err(SignatureError::Malformed(INVALID_V1));
    }
    Ok((timestamp, candidates))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_test_1"}"#;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    fn check(header: &str, now: i64) -> Result<i64, SignatureError> {
        verify(
            Some(header),
            BODY,
            &[SECRET.to_owned()],
            Duration::from_secs(300),
            at(now),
        )
    }

    #[test]
    fn signed_header_verifies_within_tolerance() {
        let header = sign(BODY, SECRET, 1_700_000_000);
        assert_eq!(check(&header, 1_700_000_000), Ok(1_700_000_000));
        assert_eq!(check(&header, 1_700_000_300), Ok(1_700_000_000));
        assert_eq!(check(&header, 1_699_999_700), Ok(1_700_000_000));
    }

    #[test]
    fn timestamp_beyond_tolerance_is_rejected_both_ways() {
        let header = sign(BODY, SECRET, 1_700_000_000);
        assert_eq!(
            check(&header, 1_700_000_301).unwrap_err().code(),
            "timestamp_outside_tolerance"
        );
        assert_eq!(
            check(&header, 1_699_999_699).unwrap_err().code(),
            "timestamp_outside_tolerance"
        );
    }

    #[test]
    fn header_shapes_are_rejected_with_their_codes() {
        let valid = sign(BODY, SECRET, 1_700_000_000);
        let signature = valid.split_once(",v1=").unwrap().1;
        let cases = [
            ("", "missing_signature"),
            ("   ", "missing_signature"),
            ("garbage", "malformed_signature"),
            ("v1=abc", "malformed_signature"),
            ("t=soon,v1=abc", "malformed_signature"),
            ("t=1700000000", "malformed_signature"),
            ("t=1700000000,v1=", "malformed_signature"),
            ("t=1700000000,v1=abcd", "malformed_signature"),
            ("t=1700000000,t=1700000000,v1=00", "malformed_signature"),
            (
                &format!("t=1700000000,v0={signature}"),
                "malformed_signature",
            ),
            (
                &format!("t=1700000001,v1={signature}"),
                "signature_mismatch",
            ),
        ];
        for (header, code) in cases {
            assert_eq!(
                check(header, 1_700_000_000).unwrap_err().code(),
                code,
                "header `{header}`"
            );
        }
        assert_eq!(
            verify(
                None,
                BODY,
                &[SECRET.to_owned()],
                Duration::from_secs(300),
                at(0)
            )
            .unwrap_err(),
            SignatureError::Missing
        );
    }

    #[test]
    fn any_matching_v1_or_secret_is_enough() {
        let signature = sign(BODY, SECRET, 1_700_000_000)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        let other = "0".repeat(64);
        for header in [
            format!("t=1700000000,v1={other},v1={signature}"),
            format!("t=1700000000,v1={signature},v1={other}"),
            format!("t=1700000000,v1=,v1={signature},v0={other}"),
        ] {
            assert_eq!(
                check(&header, 1_700_000_000),
                Ok(1_700_000_000),
                "header `{header}`"
            );
        }

        let secrets = ["whsec_old".to_owned(), SECRET.to_owned()];
        let header = sign(BODY, SECRET, 1_700_000_000);
        assert!(
            verify(
                Some(&header),
                BODY,
                &secrets,
                Duration::from_secs(300),
                at(1_700_000_000)
            )
            .is_ok()
        );
    }
}
