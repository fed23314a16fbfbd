//! `POST /events` and `GET /health` over real HTTP, on SQLite and PostgreSQL.

mod support;

use std::sync::Arc;

use futures::future::join_all;
use grito::store::{DeliveryStatus, NewSubscription, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{API_KEY, TestServer};
use uuid::Uuid;

const USER: &str = "c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b";

fn signup(key: Option<&str>) -> Value {
    let mut body = json!({
        "event_name": "user.signed_up",
        "user_id": USER,
        "source": "app",
        "payload": {
            "name": "Maria Souza",
            "email": "maria@email.com",
            "bairro": "Jardim Alvorada",
            "plano": null
        }
    });
    if let Some(key) = key {
        body["idempotency_key"] = json!(key);
    }
    body
}

fn subscription(name: &str, enabled: bool, filter: &[&str]) -> NewSubscription {
    NewSubscription {
        destination_name: name.to_owned(),
        endpoint_url: format!("https://crm.example.org/{name}"),
        secret: "a-long-secret-for-tests".to_owned(),
        enabled,
        event_filter: filter.iter().map(|item| item.to_string()).collect(),
    }
}

async fn event_count(store: &Arc<dyn Store>) -> i64 {
    store.queue_stats().await.unwrap().unprocessed_events
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("error bodies are JSON");
    (status, body)
}

both_backends!(accepted_event_is_stored_with_defaults, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let before = chrono::Utc::now();

    let response = server.post_event(&signup(None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ok"], json!(true));
    assert_eq!(body.get("dedup"), None, "a new event carries no dedup flag");

    let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    let event = db.store.get_event(id).await.unwrap().expect("the event was stored");
    assert_eq!(event.event_name, "user.signed_up");
    assert_eq!(event.user_id.to_string(), USER);
    assert_eq!(event.source, "app");
    assert_eq!(event.payload["bairro"], json!("Jardim Alvorada"));
    assert_eq!(event.payload["plano"], Value::Null);
    assert_eq!(event.idempotency_key, None);
    assert_eq!(event.processed_at, None);
    assert!(event.occurred_at >= before - chrono::Duration::seconds(1), "occurred_at defaults to now");
    assert!(event.occurred_at <= chrono::Utc::now() + chrono::Duration::seconds(1));
});

both_backends!(occurred_at_is_kept_in_utc, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let mut body = signup(None);
    body["occurred_at"] = json!("2025-09-25T14:30:00.123456-03:00");

    let response: Value = server.post_event(&body).await.json().await.unwrap();
    let id = Uuid::parse_str(response["id"].as_str().unwrap()).unwrap();
    let event = db.store.get_event(id).await.unwrap().unwrap();
    assert_eq!(event.occurred_at.to_rfc3339(), "2025-09-25T17:30:00.123456+00:00");
});

both_backends!(bad_requests_are_rejected_and_store_nothing, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let url = server.url("/events");
    let client = &server.client;
    let valid = signup(None).to_string();

    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str, Option<&str>)> = vec![
        (
            "missing key",
            client.post(&url).header("Content-Type", "application/json").body(valid.clone()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        ),
        (
            "wrong key",
            client.post(&url).header("X-Api-Key", "wrong").header("Content-Type", "application/json").body(valid.clone()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        ),
        (
            "key with a matching prefix",
            client
                .post(&url)
                .header("X-Api-Key", &API_KEY[..API_KEY.len() - 1])
                .header("Content-Type", "application/json")
                .body(valid.clone()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        ),
        (
            "wrong content type",
            client.post(&url).header("X-Api-Key", API_KEY).header("Content-Type", "text/plain").body(valid.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("Content-Type"),
        ),
        (
            "no content type",
            client.post(&url).header("X-Api-Key", API_KEY).body(valid.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("Content-Type"),
        ),
        (
            "malformed JSON",
            client.post(&url).header("X-Api-Key", API_KEY).header("Content-Type", "application/json").body("{\"event_name\": "),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            Some("body"),
        ),
        (
            "body over the limit",
            client
                .post(&url)
                .header("X-Api-Key", API_KEY)
                .header("Content-Type", "application/json")
                .body(format!("{{\"payload\": {{\"blob\": \"{}\"}}}}", "x".repeat(1024 * 1024 + 1))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            Some("body"),
        ),
        (
            "body is an array",
            client.post(&url).header("X-Api-Key", API_KEY).json(&json!([signup(None)])),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("body"),
        ),
    ];
    for (case, request, status, code, field) in cases {
        let (actual_status, body) = error_of(request.send().await.unwrap()).await;
        assert_eq!(actual_status, status, "{case}: {body}");
        assert_eq!(body["error"], json!(code), "{case}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {body}");
        if let Some(field) = field {
            assert_eq!(body["fields"], json!([field]), "{case}: {body}");
        }
    }

    let field_cases = [
        ("user_id", json!("c3f1-...")),
        ("user_id", json!(42)),
        ("payload", json!("not an object")),
        ("payload", json!([1, 2, 3])),
        ("occurred_at", json!("25/09/2025 10:00")),
        ("occurred_at", json!(true)),
        ("event_name", json!({"name": "x"})),
        ("source", json!(7)),
        ("idempotency_key", json!(["k"])),
        // PostgreSQL cannot store U+0000; both backends refuse it alike.
        ("payload", json!({"name": "Maria\u{0}"})),
        ("idempotency_key", json!("key\u{0}")),
    ];
    for (field, value) in field_cases {
        let mut body = signup(None);
        body[field] = value.clone();
        let (status, error) = error_of(server.post_event(&body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} = {value}: {error}");
        assert_eq!(error["error"], json!("invalid_field"), "{field} = {value}");
        assert_eq!(error["fields"], json!([field]), "{field} = {value}");
        assert!(error["message"].as_str().unwrap().contains(field), "{field} = {value}: {error}");
    }

    assert_eq!(event_count(&db.store).await, 0, "no rejected request stored an event");
});

both_backends!(missing_fields_are_all_named, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;

    let (status, body) = error_of(server.post_event(&json!({"source": "app", "event_name": null})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("missing_fields"));
    assert_eq!(body["fields"], json!(["event_name", "user_id", "payload"]));
    assert_eq!(body["message"], json!("missing required fields: event_name, user_id, payload"));

    let response = server
        .client
        .post(server.url("/events"))
        .header("X-Api-Key", API_KEY)
        .header("Accept-Language", "pt-BR,pt;q=0.9,en;q=0.8")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-language"], "pt-BR");
    let (_, body) = error_of(response).await;
    assert_eq!(body["error"], json!("missing_fields"), "the code stays English");
    assert_eq!(body["message"], json!("campos obrigatórios ausentes: event_name, user_id, source, payload"));

    assert_eq!(event_count(&db.store).await, 0);
});

both_backends!(repeated_idempotency_key_returns_first_id, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    db.store.create_subscription(subscription("CRM-Doadores", true, &["user.signed_up"])).await.unwrap();
    let key = format!("signup:{USER}:2025-09-25");

    let first: Value = server.post_event(&signup(Some(&key))).await.json().await.unwrap();
    let mut changed = signup(Some(&key));
    changed["payload"]["name"] = json!("Someone Else");
    let second: Value = server.post_event(&changed).await.json().await.unwrap();

    assert_eq!(first["dedup"], Value::Null);
    assert_eq!(second, json!({"ok": true, "id": first["id"], "dedup": true}));
    let id = Uuid::parse_str(first["id"].as_str().unwrap()).unwrap();
    let stored = db.store.get_event(id).await.unwrap().unwrap();
    assert_eq!(stored.payload["name"], json!("Maria Souza"), "the first event is kept unchanged");
    assert_eq!(event_count(&db.store).await, 1);
    assert_eq!(db.store.list_deliveries_for_event(id).await.unwrap().len(), 1, "a duplicate queues nothing");
});

both_backends!(concurrent_duplicates_create_one_event, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    db.store.create_subscription(subscription("CRM-Doadores", true, &["user.signed_up"])).await.unwrap();
    let body = signup(Some("concurrent-key"));

    let responses = join_all((0..100).map(|_| server.post_event(&body))).await;
    let mut ids = Vec::new();
    let mut fresh = 0;
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        if body.get("dedup").is_none() {
            fresh += 1;
        }
        ids.push(body["id"].as_str().unwrap().to_owned());
    }

    assert_eq!(fresh, 1, "exactly one request created the event");
    ids.dedup();
    assert_eq!(ids.len(), 1, "all 100 answers carry the same id: {ids:?}");
    assert_eq!(event_count(&db.store).await, 1);
    let id = Uuid::parse_str(&ids[0]).unwrap();
    assert_eq!(db.store.list_deliveries_for_event(id).await.unwrap().len(), 1);
});

// Concurrent requests are stored in groups on PostgreSQL: each answer must
// still match its own request, duplicates inside one group included.
both_backends!(concurrent_mixed_keys_get_their_own_answers, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    db.store.create_subscription(subscription("CRM-Doadores", true, &["user.signed_up"])).await.unwrap();
    let keys: Vec<String> = (0..100).map(|n| format!("mixed-{n}")).collect();
    let bodies: Vec<Value> = keys.iter().chain(&keys).map(|key| signup(Some(key))).collect();

    let responses = join_all(bodies.iter().map(|body| server.post_event(body))).await;
    let mut answers: std::collections::HashMap<String, Vec<(String, bool)>> = std::collections::HashMap::new();
    for (body, response) in bodies.iter().zip(responses) {
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        let key = body["idempotency_key"].as_str().unwrap().to_owned();
        answers.entry(key).or_default().push((answer["id"].as_str().unwrap().to_owned(), answer.get("dedup").is_some()));
    }

    assert_eq!(event_count(&db.store).await, 100);
    for (key, pair) in answers {
        assert_eq!(pair.len(), 2, "{key}");
        assert_eq!(pair[0].0, pair[1].0, "both answers for {key} carry one id");
        assert_eq!(pair.iter().filter(|(_, dedup)| !dedup).count(), 1, "one fresh answer for {key}: {pair:?}");
        let event = db.store.get_event(Uuid::parse_str(&pair[0].0).unwrap()).await.unwrap().expect("stored");
        assert_eq!(event.idempotency_key.as_deref(), Some(key.as_str()));
        assert_eq!(db.store.list_deliveries_for_event(event.id).await.unwrap().len(), 1, "{key}");
    }
});

// Closing the store waits for every pooled connection, so nothing that
// stored an event may keep one (a CLI command once hung at exit that way).
both_backends!(store_closes_after_storing_events, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let bodies: Vec<Value> = (0..20).map(|n| signup(Some(&format!("close-{n}")))).collect();
    let responses = join_all(bodies.iter().map(|body| server.post_event(body))).await;
    assert!(responses.iter().all(|response| response.status() == StatusCode::OK));

    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), db.store.close()).await;
    assert!(closed.is_ok(), "the store did not close within 20 s");
});

both_backends!(fan_out_follows_enabled_matching_subscriptions, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let crm = db
        .store
        .create_subscription(subscription("CRM-Doadores", true, &["user.signed_up", "payment.failed"]))
        .await
        .unwrap();
    let analytics = db.store.create_subscription(subscription("Analytics", true, &["user.signed_up"])).await.unwrap();
    db.store.create_subscription(subscription("Disabled", false, &["user.signed_up"])).await.unwrap();
    db.store.create_subscription(subscription("Payments", true, &["payment.failed"])).await.unwrap();
    db.store.create_subscription(subscription("Prefix", true, &["user.signed"])).await.unwrap();

    let body: Value = server.post_event(&signup(None)).await.json().await.unwrap();
    let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();

    let deliveries = db.store.list_deliveries_for_event(id).await.unwrap();
    let mut targets: Vec<Uuid> = deliveries.iter().map(|delivery| delivery.subscription_id.unwrap()).collect();
    targets.sort();
    let mut expected = vec![crm.id, analytics.id];
    expected.sort();
    assert_eq!(targets, expected);
    for delivery in &deliveries {
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempt, 0);
        assert_eq!(delivery.event_id, Some(id));
        assert_eq!(delivery.last_error, None);
    }
});

both_backends!(disabling_a_subscription_stops_new_deliveries, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let crm = db.store.create_subscription(subscription("CRM-Doadores", true, &["user.signed_up"])).await.unwrap();
    assert!(db.store.set_subscription_enabled(crm.id, false).await.unwrap());

    let body: Value = server.post_event(&signup(None)).await.json().await.unwrap();
    let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    assert!(db.store.list_deliveries_for_event(id).await.unwrap().is_empty());
});

both_backends!(health_reports_queue_then_outage, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    db.store.create_subscription(subscription("CRM-Doadores", true, &["user.signed_up"])).await.unwrap();
    server.post_event(&signup(None)).await;

    let response = server.client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(health["database"]["status"], json!("ok"));
    assert_eq!(health["queue"]["pending_deliveries"], json!(1));
    assert_eq!(health["queue"]["unprocessed_events"], json!(1));
    assert!(health["queue"]["oldest_pending_age_seconds"].as_f64().unwrap() >= 0.0);

    db.store.close().await;
    let response = server.client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], json!("unavailable"));
    assert_eq!(health["database"]["status"], json!("unreachable"));
    assert!(health["database"]["reason"].as_str().is_some_and(|reason| !reason.is_empty()));
});

#[tokio::test]
async fn health_is_unavailable_when_postgres_is_down() {
    // Nothing listens on port 1 of the loopback address.
    let store = grito::store::PgStore::connect("postgres://postgres@127.0.0.1:1/test").await.unwrap();
    let server = TestServer::start(Arc::new(store)).await;

    let response = server.client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["database"]["backend"], json!("postgres"));
    assert_eq!(health["database"]["status"], json!("unreachable"));
}

#[tokio::test]
async fn events_with_database_down_answer_503() {
    let db = support::TestDb::sqlite().await;
    let server = TestServer::start(db.store.clone()).await;
    db.store.close().await;

    let response = server.post_event(&signup(None)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], json!("database_unavailable"));
    assert!(!body["message"].as_str().unwrap().contains("pool"), "internals stay in the log: {body}");
}

#[tokio::test]
async fn unknown_route_answers_json_404() {
    let db = support::TestDb::sqlite().await;
    let server = TestServer::start(db.store.clone()).await;

    let (status, body) = error_of(server.client.get(server.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], json!("not_found"));
}
