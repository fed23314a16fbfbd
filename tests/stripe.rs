//! `POST /webhooks/stripe` over real HTTP on SQLite and PostgreSQL. Covered:
//! the signature check, the translation of every handled Stripe event type in
//! both API shapes, and idempotency across Stripe's repeats and overlapping
//! event types. Also covered: parking of events whose user is not known yet,
//! and the `grito identities` / `grito inbound` commands.
//!
//! Signature headers come from Stripe's own Python library
//! (`tests/peers/stripe_sign.py`, `pip install stripe`), not from Grito.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use grito::dispatcher::ManualClock;
use grito::store::{NewSubscription, Store};
use grito::stripe::{StripeSettings, StripeWebhook};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "whsec_test_0123456789abcdefghijklmnop";
const OLD_SECRET: &str = "whsec_test_old_secret_being_rotated";
const ALICE: &str = "7b0d5a52-3c4e-4f1a-9b2c-1d2e3f4a5b6c";
const BRUNO: &str = "0a8e1f4d-2b3c-4d5e-8f90-a1b2c3d4e5f6";
const CARLA: &str = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f";
const DAVI: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 25, 14, 30, 0).unwrap()
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../tests/fixtures/stripe/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()));
    serde_json::from_str(&text).expect("fixtures are JSON")
}

/// Signs `body` with Stripe's Python library.
fn stripe_header(body: &[u8], secret: &str, timestamp: i64) -> String {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), body).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/stripe_sign.py");
    let output = Command::new("python3")
        .arg(script)
        .args(["--secret", secret, "--timestamp", &timestamp.to_string()])
        .arg(file.path())
        .output()
        .expect("python3 runs (pip install -r tests/peers/requirements.txt)");
    assert!(
        output.status.success(),
        "stripe_sign.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The real router with Stripe configured and a clock the test sets.
struct StripeServer {
    server: support::TestServer,
    clock: Arc<ManualClock>,
}

impl StripeServer {
    async fn start(store: Arc<dyn Store>, secrets: &[&str]) -> Self {
        let clock = Arc::new(ManualClock::new(now()));
        let settings = StripeSettings {
            secrets: secrets.iter().map(|secret| secret.to_string()).collect(),
            tolerance: std::time::Duration::from_secs(300),
        };
        let mut state = support::test_state(store);
        state.stripe = Arc::new(StripeWebhook::new(settings).with_clock(clock.clone()));
        Self {
            server: support::TestServer::start_with(state).await,
            clock,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    async fn post_raw(
        &self,
        body: &[u8],
        header: Option<&str>,
        language: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .server
            .client
            .post(self.url("/webhooks/stripe"))
            .header("Content-Type", "application/json");
        if let Some(header) = header {
            request = request.header("Stripe-Signature", header);
        }
        if let Some(language) = language {
            request = request.header("Accept-Language", language);
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .expect("request reaches the test server");
        let status = response.status();
        (status, response.json().await.expect("answers are JSON"))
    }

    /// Posts `event` signed by Stripe's library with `SECRET` at the server's time.
    async fn deliver(&self, event: &Value) -> (StatusCode, Value) {
        let body = serde_json::to_vec(event).unwrap();
        let header = stripe_header(&body, SECRET, self.clock_seconds());
        self.post_raw(&body, Some(&header), None).await
    }

    /// Like [`deliver`], but fails the test unless Stripe would get a 200.
    async fn deliver_ok(&self, event: &Value) -> Value {
        let (status, body) = self.deliver(event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn clock_seconds(&self) -> i64 {
        use grito::dispatcher::Clock;
        self.clock.now().timestamp()
    }
}

async fn event_count(store: &Arc<dyn Store>) -> i64 {
    store.queue_stats().await.unwrap().unprocessed_events
}

/// Loads the stored event of outcome `index` in a 200 response body.
async fn stored(store: &Arc<dyn Store>, answer: &Value, index: usize) -> grito::store::Event {
    let outcome = &answer["events"][index];
    assert_eq!(outcome["status"], json!("stored"), "{answer}");
    let id = Uuid::parse_str(outcome["id"].as_str().unwrap()).unwrap();
    store
        .get_event(id)
        .await
        .unwrap()
        .expect("the event was stored")
}

both_backends!(
    checkout_signed_by_stripe_library_is_stored,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;

        let answer = server
            .deliver_ok(&fixture("checkout_session_completed_subscription"))
            .await;
        assert_eq!(answer["ok"], json!(true));
        assert_eq!(answer["stripe_event_id"], json!("evt_test_checkout_sub"));
        assert_eq!(answer["type"], json!("checkout.session.completed"));

        let event = stored(&db.store, &answer, 0).await;
        assert_eq!(event.event_name, "plan.subscribed");
        assert_eq!(event.user_id.to_string(), ALICE);
        assert_eq!(event.source, "stripe");
        assert_eq!(
            event.idempotency_key.as_deref(),
            Some("stripe:plan.subscribed:sub_test_alice")
        );
        assert_eq!(
            event.occurred_at,
            Utc.timestamp_opt(1_758_810_600, 0).unwrap(),
            "occurred_at is the event's created"
        );
        assert_eq!(event.payload["email"], json!("alice@example.org"));
        assert_eq!(event.payload["name"], json!("Alice Silva"));
        assert_eq!(event.payload["plan"]["id"], json!("apoiador-mensal"));
        assert_eq!(event.payload["plan"]["name"], json!("Apoiador mensal"));
        assert_eq!(
            event.payload["stripe"]["event_id"],
            json!("evt_test_checkout_sub")
        );
        assert_eq!(event.payload["stripe"]["customer"], json!("cus_test_alice"));
        assert_eq!(
            event.payload["stripe"]["subscription"],
            json!("sub_test_alice")
        );
        assert_eq!(
            event.payload["stripe"]["checkout_session"],
            json!("cs_test_sub_alice")
        );

        let learned = db
            .store
            .lookup_identity("stripe", "cus_test_alice")
            .await
            .unwrap();
        assert_eq!(
            learned.map(|user| user.to_string()).as_deref(),
            Some(ALICE),
            "the customer is mapped to its user"
        );
    }
);

both_backends!(
    every_handled_type_translates_in_both_shapes,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        // (fixture, event_name, user, idempotency key)
        let cases = [
            (
                "checkout_session_completed_subscription",
                "plan.subscribed",
                ALICE,
                "stripe:plan.subscribed:sub_test_alice",
            ),
            (
                "checkout_session_completed_payment",
                "payment.succeeded",
                BRUNO,
                "stripe:payment.succeeded:pi_test_bruno",
            ),
            (
                "invoice_payment_succeeded_legacy",
                "payment.succeeded",
                ALICE,
                "stripe:payment.succeeded:in_test_alice_1",
            ),
            (
                "invoice_paid_basil",
                "payment.succeeded",
                ALICE,
                "stripe:payment.succeeded:in_test_alice_2",
            ),
            (
                "invoice_payment_failed_legacy",
                "payment.failed",
                ALICE,
                "stripe:payment.failed:in_test_alice_3:1",
            ),
            (
                "invoice_payment_failed_basil",
                "payment.failed",
                ALICE,
                "stripe:payment.failed:in_test_alice_4:2",
            ),
            (
                "customer_subscription_created_basil",
                "plan.subscribed",
                CARLA,
                "stripe:plan.subscribed:sub_test_carla",
            ),
            (
                "customer_subscription_updated_activated",
                "plan.subscribed",
                DAVI,
                "stripe:plan.subscribed:sub_test_davi",
            ),
            (
                "customer_subscription_updated_plan",
                "plan.updated",
                ALICE,
                "stripe:plan.updated:evt_test_sub_updated_plan",
            ),
            (
                "customer_subscription_deleted",
                "plan.canceled",
                ALICE,
                "stripe:plan.canceled:sub_test_alice",
            ),
        ];
        for (name, event_name, user, key) in cases {
            let answer = server.deliver_ok(&fixture(name)).await;
            let event = stored(&db.store, &answer, 0).await;
            assert_eq!(event.event_name, event_name, "{name}");
            assert_eq!(event.user_id.to_string(), user, "{name}");
            assert_eq!(event.idempotency_key.as_deref(), Some(key), "{name}");
            assert_eq!(event.source, "stripe", "{name}");
        }

        // Payment payloads: the brief's donation shape, amounts in both units.
        let answer = server
            .deliver_ok(&fixture("invoice_payment_succeeded_legacy"))
            .await;
        let legacy = stored(&db.store, &answer, 0).await.payload;
        assert_eq!(legacy["donation"]["amount"], json!(49.9));
        assert_eq!(legacy["donation"]["amount_cents"], json!(4990));
        assert_eq!(legacy["donation"]["currency"], json!("BRL"));
        assert_eq!(legacy["donation"]["tx_id"], json!("ch_test_alice_1"));
        assert_eq!(legacy["stripe"]["subscription"], json!("sub_test_alice"));
        assert_eq!(legacy["stripe"]["invoice"], json!("in_test_alice_1"));
        assert_eq!(legacy["email"], json!("alice@example.org"));

        let answer = server.deliver_ok(&fixture("invoice_paid_basil")).await;
        let basil = stored(&db.store, &answer, 0).await.payload;
        assert_eq!(
            basil["donation"]["tx_id"],
            json!("pi_test_alice_2"),
            "the tx id comes from invoice.payments"
        );
        assert_eq!(
            basil["stripe"]["subscription"],
            json!("sub_test_alice"),
            "the subscription comes from invoice.parent"
        );

        let answer = server
            .deliver_ok(&fixture("checkout_session_completed_payment"))
            .await;
        let payment = stored(&db.store, &answer, 0).await.payload;
        assert_eq!(payment["donation"]["amount"], json!(150.0));
        assert_eq!(payment["donation"]["method"], json!("card"));
        assert_eq!(payment["donation"]["tx_id"], json!("pi_test_bruno"));

        let answer = server
            .deliver_ok(&fixture("invoice_payment_failed_basil"))
            .await;
        let failed = stored(&db.store, &answer, 0).await.payload;
        assert_eq!(failed["attempt_count"], json!(2));
        assert_eq!(
            failed["donation"]["amount_cents"],
            json!(4990),
            "a failed payment reports the amount due"
        );
        assert_eq!(
            failed["next_payment_attempt"],
            json!("2025-09-30T14:30:00+00:00")
        );

        // Subscription periods: on the subscription before 2025-03-31, on its items after.
        for (name, status, period_end) in [
            (
                "customer_subscription_created_legacy",
                "active",
                "2025-10-25T14:30:00+00:00",
            ),
            (
                "customer_subscription_created_basil",
                "trialing",
                "2025-10-09T14:30:00+00:00",
            ),
        ] {
            // A fresh subscription id, so the plan.subscribed stored above is not returned.
            let mut event = fixture(name);
            event["data"]["object"]["id"] = json!(format!("sub_test_period_{status}"));
            let answer = server.deliver_ok(&event).await;
            let plan = stored(&db.store, &answer, 0).await.payload["plan"].clone();
            assert_eq!(plan["status"], json!(status), "{name}");
            assert_eq!(plan["current_period_end"], json!(period_end), "{name}");
            assert_eq!(plan["id"], json!("price_test_mensal"), "{name}");
            assert_eq!(plan["name"], json!("Apoiador mensal"), "{name}");
            assert_eq!(plan["interval"], json!("month"), "{name}");
            assert_eq!(plan["amount"], json!(49.9), "{name}");
        }
    }
);

both_backends!(
    subscription_canceled_by_update_is_plan_canceled,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let mut event = fixture("customer_subscription_updated_plan");
        event["id"] = json!("evt_test_sub_updated_canceled");
        event["data"]["object"]["status"] = json!("canceled");
        event["data"]["previous_attributes"] = json!({"status": "past_due"});

        let answer = server.deliver_ok(&event).await;
        let stored_event = stored(&db.store, &answer, 0).await;
        assert_eq!(stored_event.event_name, "plan.canceled");
        assert_eq!(stored_event.payload["previous_status"], json!("past_due"));

        // The deletion that follows is the same cancellation: nothing new.
        let answer = server
            .deliver_ok(&fixture("customer_subscription_deleted"))
            .await;
        assert_eq!(answer["events"][0]["dedup"], json!(true), "{answer}");
        assert_eq!(event_count(&db.store).await, 1);
    }
);

both_backends!(
    untranslated_events_answer_200_and_store_nothing,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;

        let answer = server.deliver_ok(&fixture("customer_created")).await;
        assert_eq!(answer["events"], json!([]));
        assert!(
            answer["ignored"]
                .as_str()
                .unwrap()
                .contains("customer.created"),
            "{answer}"
        );

        let mut incomplete = fixture("customer_subscription_created_basil");
        incomplete["data"]["object"]["status"] = json!("incomplete");
        let answer = server.deliver_ok(&incomplete).await;
        assert_eq!(answer["events"], json!([]));

        let mut unpaid = fixture("checkout_session_completed_payment");
        unpaid["data"]["object"]["payment_status"] = json!("unpaid");
        let answer = server.deliver_ok(&unpaid).await;
        assert_eq!(
            answer["events"],
            json!([]),
            "a boleto not yet paid is not a payment"
        );

        assert_eq!(event_count(&db.store).await, 0);
    }
);

both_backends!(
    signature_failures_are_rejected_with_codes,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let body = serde_json::to_vec(&fixture("checkout_session_completed_subscription")).unwrap();
        let t = server.clock_seconds();
        let valid = stripe_header(&body, SECRET, t);
        let signature = valid.split_once(",v1=").unwrap().1.to_owned();
        let other = stripe_header(&body, "whsec_test_someone_else", t)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        let mut tampered = body.clone();
        let position = tampered
            .windows(5)
            .position(|window| window == b"Alice")
            .unwrap();
        tampered[position] = b'E';

        let cases: Vec<(&str, Vec<u8>, Option<String>, &str)> = vec![
            ("missing header", body.clone(), None, "missing_signature"),
            (
                "empty header",
                body.clone(),
                Some(String::new()),
                "missing_signature",
            ),
            (
                "garbage header",
                body.clone(),
                Some("not a signature".into()),
                "malformed_signature",
            ),
            (
                "empty v1",
                body.clone(),
                Some(format!("t={t},v1=")),
                "malformed_signature",
            ),
            (
                "short v1",
                body.clone(),
                Some(format!("t={t},v1={}", &signature[..20])),
                "malformed_signature",
            ),
            (
                "only v0",
                body.clone(),
                Some(format!("t={t},v0={signature}")),
                "malformed_signature",
            ),
            (
                "no timestamp",
                body.clone(),
                Some(format!("v1={signature}")),
                "malformed_signature",
            ),
            (
                "tampered body",
                tampered,
                Some(valid.clone()),
                "signature_mismatch",
            ),
            (
                "wrong secret",
                body.clone(),
                Some(stripe_header(&body, "whsec_test_wrong", t)),
                "signature_mismatch",
            ),
            (
                "stale timestamp",
                body.clone(),
                Some(stripe_header(&body, SECRET, t - 301)),
                "timestamp_outside_tolerance",
            ),
            (
                "future timestamp",
                body.clone(),
                Some(stripe_header(&body, SECRET, t + 301)),
                "timestamp_outside_tolerance",
            ),
            (
                "signed timestamp changed",
                body.clone(),
                Some(format!("t={},v1={signature}", t - 1)),
                "signature_mismatch",
            ),
        ];
        for (case, body, header, code) in cases {
            let (status, answer) = server.post_raw(&body, header.as_deref(), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {answer}");
            assert_eq!(answer["error"], json!(code), "{case}: {answer}");
            assert!(
                !answer.to_string().contains(&signature),
                "{case}: the expected signature is never shown"
            );
        }
        assert_eq!(
            event_count(&db.store).await,
            0,
            "nothing is stored from a rejected request"
        );

        let (_, answer) = server
            .post_raw(&body, Some(&format!("t={t},v1={other}")), Some("pt-BR"))
            .await;
        assert_eq!(answer["error"], json!("signature_mismatch"));
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("nenhuma assinatura"),
            "{answer}"
        );

        // Within the tolerance on either side, and with the valid v1 first or last.
        for header in [
            stripe_header(&body, SECRET, t - 300),
            stripe_header(&body, SECRET, t + 300),
            format!("t={t},v1={signature},v1={other}"),
            format!("t={t},v1={other},v1={signature},v0={other}"),
        ] {
            let (status, answer) = server.post_raw(&body, Some(&header), None).await;
            assert_eq!(status, StatusCode::OK, "{header}: {answer}");
        }
        assert_eq!(event_count(&db.store).await, 1);
    }
);

both_backends!(
    rotated_secrets_both_verify,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[OLD_SECRET, SECRET]).await;
        let body = serde_json::to_vec(&fixture("checkout_session_completed_subscription")).unwrap();
        let t = server.clock_seconds();

        for secret in [OLD_SECRET, SECRET] {
            let (status, answer) = server
                .post_raw(&body, Some(&stripe_header(&body, secret, t)), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        let (status, _) = server
            .post_raw(
                &body,
                Some(&stripe_header(&body, "whsec_test_retired", t)),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
);

both_backends!(
    unconfigured_stripe_rejects_everything,
    |db: support::TestDb| async move {
        let server = support::TestServer::start(db.store.clone()).await;
        let body = serde_json::to_vec(&fixture("checkout_session_completed_subscription")).unwrap();
        let header = stripe_header(&body, SECRET, Utc::now().timestamp());

        let response = server
            .client
            .post(server.url("/webhooks/stripe"))
            .header("Stripe-Signature", header)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], json!("stripe_not_configured"));
        assert_eq!(event_count(&db.store).await, 0);
    }
);

both_backends!(
    signed_bodies_must_be_stripe_events,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let t = server.clock_seconds();

        let (status, answer) = server
            .post_raw(
                b"{not json",
                Some(&stripe_header(b"{not json", SECRET, t)),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"], json!("invalid_json"));

        let body = br#"{"id":"evt_test_x","type":"invoice.paid"}"#;
        let (status, answer) = server
            .post_raw(body, Some(&stripe_header(body, SECRET, t)), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"], json!("invalid_stripe_event"));
        assert_eq!(answer["fields"], json!(["created", "data.object"]));
    }
);

both_backends!(
    repeated_delivery_stores_one_event,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let event = fixture("invoice_payment_succeeded_legacy");

        let first = server.deliver_ok(&event).await;
        server.clock.advance(std::time::Duration::from_secs(3600));
        let second = server.deliver_ok(&event).await;

        assert_eq!(first["events"][0]["dedup"], json!(false));
        assert_eq!(second["events"][0]["dedup"], json!(true));
        assert_eq!(first["events"][0]["id"], second["events"][0]["id"]);
        assert_eq!(event_count(&db.store).await, 1);
    }
);

both_backends!(
    invoice_paid_and_payment_succeeded_store_one_event,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let succeeded = fixture("invoice_payment_succeeded_legacy");
        let mut paid = succeeded.clone();
        paid["id"] = json!("evt_test_invoice_paid_legacy");
        paid["type"] = json!("invoice.paid");

        let first = server.deliver_ok(&paid).await;
        let second = server.deliver_ok(&succeeded).await;

        assert_eq!(first["events"][0]["id"], second["events"][0]["id"]);
        assert_eq!(second["events"][0]["dedup"], json!(true));
        assert_eq!(event_count(&db.store).await, 1);
    }
);

both_backends!(
    each_failed_attempt_is_its_own_event,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let first = fixture("invoice_payment_failed_legacy");
        let mut retry = first.clone();
        retry["id"] = json!("evt_test_invoice_failed_legacy_retry");
        retry["data"]["object"]["attempt_count"] = json!(2);

        server.deliver_ok(&first).await;
        server.deliver_ok(&retry).await;
        server.deliver_ok(&retry).await;
        assert_eq!(event_count(&db.store).await, 2);
    }
);

both_backends!(
    checkout_and_subscription_created_store_one_plan_subscribed,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;

        // Stripe does not order its deliveries: the subscription may come first.
        let created = server
            .deliver_ok(&fixture("customer_subscription_created_legacy"))
            .await;
        let checkout = server
            .deliver_ok(&fixture("checkout_session_completed_subscription"))
            .await;

        assert_eq!(created["events"][0]["event_name"], json!("plan.subscribed"));
        assert_eq!(checkout["events"][0]["id"], created["events"][0]["id"]);
        assert_eq!(checkout["events"][0]["dedup"], json!(true));
        assert_eq!(event_count(&db.store).await, 1);
    }
);

/// Builds an invoice event whose user is known only through its Stripe customer.
fn anonymous_invoice(customer: &str) -> Value {
    let mut event = fixture("invoice_payment_succeeded_legacy");
    event["id"] = json!(format!("evt_test_invoice_{customer}"));
    let invoice = &mut event["data"]["object"];
    invoice["id"] = json!(format!("in_test_{customer}"));
    invoice["customer"] = json!(customer);
    invoice["subscription_details"] = json!({"metadata": {}});
    event
}

both_backends!(
    invoice_before_checkout_is_parked_then_published,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let invoice = anonymous_invoice("cus_test_alice");

        let parked = server.deliver_ok(&invoice).await;
        assert_eq!(parked["events"][0]["status"], json!("parked"), "{parked}");
        assert_eq!(event_count(&db.store).await, 0);
        let again = server.deliver_ok(&invoice).await;
        assert_eq!(
            again["events"][0]["parked_id"], parked["events"][0]["parked_id"],
            "a repeat parks once"
        );
        let waiting = db.store.list_parked(false, 100).await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].external_id.as_deref(), Some("cus_test_alice"));
        assert_eq!(waiting[0].draft.event_name, "payment.succeeded");

        // The checkout session names the user and maps its customer.
        server
            .deliver_ok(&fixture("checkout_session_completed_subscription"))
            .await;
        assert_eq!(
            db.store.list_parked(false, 100).await.unwrap(),
            vec![],
            "nothing waits any more"
        );
        let published = db.store.list_parked(true, 100).await.unwrap();
        let event_id = published[0]
            .published_event_id
            .expect("the parked row records its event");
        let event = db.store.get_event(event_id).await.unwrap().unwrap();
        assert_eq!(event.event_name, "payment.succeeded");
        assert_eq!(event.user_id.to_string(), ALICE);
        assert_eq!(
            event.idempotency_key.as_deref(),
            Some("stripe:payment.succeeded:in_test_cus_test_alice")
        );
        assert_eq!(event_count(&db.store).await, 2);

        // A repeat after publishing finds the published event.
        let late = server.deliver_ok(&invoice).await;
        assert_eq!(late["events"][0]["status"], json!("stored"));
        assert_eq!(late["events"][0]["dedup"], json!(true));
        assert_eq!(late["events"][0]["id"], json!(event_id));
    }
);

both_backends!(
    admin_lists_parked_events,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        server
            .deliver_ok(&anonymous_invoice("cus_test_nobody"))
            .await;

        let url = server.url("/admin/inbound/parked");
        let denied = server.server.client.get(&url).send().await.unwrap();
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

        let response = server
            .server
            .client
            .get(&url)
            .header("X-Admin-Key", support::ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let rows: Value = response.json().await.unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 1);
        assert_eq!(rows[0]["external_id"], json!("cus_test_nobody"));
        assert_eq!(rows[0]["draft"]["event_name"], json!("payment.succeeded"));
        assert_eq!(rows[0]["published_at"], Value::Null);
    }
);

/// Runs the `grito` binary against the test database.
fn grito(db: &support::TestDb, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_grito"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("grito runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

both_backends!(
    identity_set_publishes_parked_events,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        server.deliver_ok(&anonymous_invoice("cus_test_eva")).await;

        let (ok, stdout, stderr) = grito(&db, &["inbound", "parked", "--json"]);
        assert!(ok, "{stderr}");
        let rows: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(rows[0]["external_id"], json!("cus_test_eva"));

        let eva = "3f2e1d0c-9b8a-4765-8432-10fedcba9876";
        let (ok, stdout, stderr) =
            grito(&db, &["identities", "set", "stripe", "cus_test_eva", eva]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("published 1 parked events"), "{stdout}");

        let published = db.store.list_parked(true, 100).await.unwrap();
        let event = db
            .store
            .get_event(published[0].published_event_id.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.user_id.to_string(), eva);

        let (ok, stdout, _) = grito(&db, &["identities", "get", "stripe", "cus_test_eva"]);
        assert!(ok);
        assert!(stdout.contains(eva), "{stdout}");
        let (ok, _, _) = grito(&db, &["identities", "delete", "stripe", "cus_test_eva"]);
        assert!(ok);
        let (ok, _, stderr) = grito(&db, &["identities", "get", "stripe", "cus_test_eva"]);
        assert!(!ok, "a deleted mapping is not found");
        assert!(stderr.contains("no user is mapped"), "{stderr}");
    }
);

both_backends!(
    identity_import_and_manual_publish,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        server
            .deliver_ok(&anonymous_invoice("cus_test_fabio"))
            .await;

        // A payment with neither user id nor customer waits for a person.
        let mut guest = fixture("checkout_session_completed_payment");
        guest["data"]["object"]["metadata"] = json!({});
        let parked = server.deliver_ok(&guest).await;
        let guest_parked = parked["events"][0]["parked_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("identities.csv");
        let fabio = "11111111-2222-4333-8444-555555555555";
        std::fs::write(
            &csv,
            format!("source,external_id,user_id\nstripe,cus_test_fabio,{fabio}\n"),
        )
        .unwrap();
        let (ok, stdout, stderr) = grito(&db, &["identities", "import", csv.to_str().unwrap()]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("imported 1 mappings"), "{stdout}");

        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            "source,external_id,user_id\nstripe,cus_test_x,not-a-uuid\n",
        )
        .unwrap();
        let (ok, _, stderr) = grito(&db, &["identities", "import", bad.to_str().unwrap()]);
        assert!(!ok);
        assert!(stderr.contains("line 2"), "{stderr}");
        assert_eq!(
            db.store
                .lookup_identity("stripe", "cus_test_x")
                .await
                .unwrap(),
            None
        );

        let (ok, stdout, stderr) =
            grito(&db, &["inbound", "publish", &guest_parked, "--user", BRUNO]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("published parked"), "{stdout}");
        let (ok, _, stderr) = grito(&db, &["inbound", "publish", &guest_parked, "--user", BRUNO]);
        assert!(!ok, "publishing twice is refused");
        assert!(stderr.contains("already published"), "{stderr}");

        assert_eq!(db.store.list_parked(false, 100).await.unwrap(), vec![]);
        assert_eq!(event_count(&db.store).await, 2);
    }
);

both_backends!(
    translated_events_fan_out_to_subscriptions,
    |db: support::TestDb| async move {
        let server = StripeServer::start(db.store.clone(), &[SECRET]).await;
        let crm = db
            .store
            .create_subscription(NewSubscription {
                destination_name: "CRM-Doadores".into(),
                endpoint_url: "https://crm.example.org/webhooks/grito".into(),
                secret: "a-long-secret-for-tests".into(),
                enabled: true,
                event_filter: vec!["plan.subscribed".into(), "payment.failed".into()],
            })
            .await
            .unwrap();

        let subscribed = server
            .deliver_ok(&fixture("checkout_session_completed_subscription"))
            .await;
        let failed = server
            .deliver_ok(&fixture("invoice_payment_failed_legacy"))
            .await;
        let paid = server
            .deliver_ok(&fixture("invoice_payment_succeeded_legacy"))
            .await;

        for (answer, expected) in [(&subscribed, 1), (&failed, 1), (&paid, 0)] {
            let id = Uuid::parse_str(answer["events"][0]["id"].as_str().unwrap()).unwrap();
            let deliveries = db.store.list_deliveries_for_event(id).await.unwrap();
            assert_eq!(deliveries.len(), expected, "{answer}");
            assert!(
                deliveries
                    .iter()
                    .all(|delivery| delivery.subscription_id == Some(crm.id))
            );
        }
    }
);
