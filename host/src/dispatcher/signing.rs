//! The webhook request: the brief's body and the signature headers.
//!
//! Every request carries two signatures over the same body bytes:
//!
//! - `X-Grito-Signature: sha256=<hex>`, the brief's scheme: HMAC-SHA256 of the
//!   body, keyed with the subscription's `secret` as UTF-8 bytes.
//! - The Standard Webhooks headers (<https://www.standardwebhooks.com/>):
//!   `webhook-id` (the delivery id, the same on every retry),
//!   `webhook-timestamp` (unix seconds of this attempt) and
//!   `webhook-signature: v1,<base64>`, HMAC-SHA256 of
//!   `"{webhook-id}.{webhook-timestamp}.{body}"`.
//!
//! The Standard Webhooks key comes from the same `secret`: when it starts
//! with `whsec_`, the key is the base64 decoding of the rest (the form
//! Standard Webhooks libraries generate); otherwise the key is the secret's
//! raw UTF-8 bytes, the same key as `X-Grito-Signature`. A receiver using a
//! Standard Webhooks library passes a `whsec_…` secret as the string and any
//! other secret as bytes; the Python `standardwebhooks` package (1.3.0), for
//! example, base64-decodes every string it is given, so it needs
//! `Webhook(secret.encode())` for a plain secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::store::DeliveryEvent;

type HmacSha256 = Hmac<Sha256>;

const STANDARD_WEBHOOKS_PREFIX: &str = "whsec_";

/// The brief's webhook body, fields in the brief's order.
#[derive(Debug, Serialize)]
struct Body<'a> {
    id: Uuid,
    event_name: &'a str,
    user_id: Uuid,
    occurred_at: String,
    source: &'a str,
    payload: &'a serde_json::Value,
}

/// Serializes `{id, event_name, user_id, occurred_at, source, payload}` with
/// `id` the event id and `occurred_at` in RFC 3339 (UTC, microseconds).
pub fn body(event: &DeliveryEvent) -> Vec<u8> {
    let body = Body {
        id: event.id,
        event_name: &event.event_name,
        user_id: event.user_id,
        occurred_at: event.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        source: &event.source,
        payload: &event.payload,
    };
    serde_json::to_vec(&body).expect("a webhook body serializes")
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the `X-Grito-Signature` value.
pub fn grito_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &[body])))
}

/// The Standard Webhooks signing key for a subscription secret, as the
/// module documentation describes.
pub fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix(STANDARD_WEBHOOKS_PREFIX) {
        Some(encoded) => match BASE64.decode(encoded.trim_end_matches('=')).or_else(|_| BASE64.decode(encoded)) {
            Ok(key) if !key.is_empty() => key,
            // A `whsec_` secret that is not base64 is used as it stands, so
            // deliveries still carry a signature the receiver can check.
            _ => secret.as_bytes().to_vec(),
        },
        None => secret.as_bytes().to_vec(),
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the
/// `webhook-signature` value.
pub fn standard_webhooks_signature(secret: &str, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = standard_webhooks_key(secret);
    let prefix = format!("{webhook_id}.{timestamp}.");
    format!("v1,{}", BASE64.encode(hmac(&key, &[prefix.as_bytes(), body])))
}

/// The headers of one attempt, in sending order.
pub fn headers(
    secret: &str,
    delivery_id: Uuid,
    event_name: &str,
    sent_at: DateTime<Utc>,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let webhook_id = delivery_id.to_string();
    let timestamp = sent_at.timestamp();
    vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", format!("Grito/{}", env!("CARGO_PKG_VERSION"))),
        ("x-grito-event", event_name.to_owned()),
        ("x-grito-signature", grito_signature(secret, body)),
        ("webhook-signature", standard_webhooks_signature(secret, &webhook_id, timestamp, body)),
        ("webhook-id", webhook_id),
        ("webhook-timestamp", timestamp.to_string()),
    ]
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn grito_signature_matches_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            grito_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn standard_webhooks_signature_matches_reference_example() {
        // The example from the Standard Webhooks specification and its test suites.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_webhooks_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn plain_secret_is_its_own_key() {
        assert_eq!(standard_webhooks_key("SEU_SEGREDO_LONGO"), b"SEU_SEGREDO_LONGO");
        assert_eq!(standard_webhooks_key("whsec_AAEC"), [0u8, 1, 2]);
        assert_eq!(standard_webhooks_key("whsec_!!"), b"whsec_!!");
    }

    #[test]
    fn body_has_the_brief_fields_in_order() {
        let event = DeliveryEvent {
            id: Uuid::nil(),
            event_name: "user.signed_up".into(),
            user_id: Uuid::max(),
            occurred_at: Utc.with_ymd_and_hms(2025, 9, 25, 12, 0, 0).unwrap(),
            source: "app".into(),
            payload: json!({"name": "Maria Souza"}),
        };
        assert_eq!(
            String::from_utf8(body(&event)).unwrap(),
            r#"{"id":"00000000-0000-0000-0000-000000000000","event_name":"user.signed_up","user_id":"ffffffff-ffff-ffff-ffff-ffffffffffff","occurred_at":"2025-09-25T12:00:00.000000Z","source":"app","payload":{"name":"Maria Souza"}}"#
        );
    }
}
