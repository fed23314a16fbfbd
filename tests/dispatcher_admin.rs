//! The admin HTTP API for deliveries on both backends: its key, listing,
//! showing attempts, and reprocessing `FAIL` deliveries.

mod support;
#[path = "peers/receiver.rs"]
mod receiver;

use std::time::Duration;

use grito::api::{AppState, app};
use grito::dispatcher::{Dispatcher, DispatcherSettings};
use grito::store::{DeliveryStatus, NewSubscription};
use receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{ADMIN_KEY, TestServer};
use uuid::Uuid;

const SECRET: &str = "admin-test-secret";

/// A server with one subscription whose receiver fails, and one `FAIL`
/// delivery per posted event.
async fn with_failed_deliveries(db: &support::TestDb, events: usize) -> (TestServer, Receiver, Dispatcher) {
    let receiver = Receiver::start(SECRET, "500");
    db.store
        .create_subscription(NewSubscription {
            destination_name: "CRM-Doadores".into(),
            endpoint_url: receiver.url("/webhooks/grito"),
            secret: SECRET.into(),
            enabled: true,
            event_filter: vec!["user.signed_up".into()],
        })
        .await
        .unwrap();
    let server = TestServer::start(db.store.clone()).await;
    for index in 0..events {
        let body = json!({
            "event_name": "user.signed_up",
            "user_id": Uuid::new_v4(),
            "source": "app",
            "idempotency_key": format!("admin:{index}"),
            "payload": {"name": "Maria Souza"}
        });
        assert!(server.post_event(&body).await.status().is_success());
    }
    let settings = DispatcherSettings { allow_private_endpoints: true, max_attempts: 1, ..DispatcherSettings::default() };
    let dispatcher = Dispatcher::new(db.store.clone(), settings).unwrap();
    assert_eq!(dispatcher.run_once().await.unwrap().len(), events);
    (server, receiver, dispatcher)
}

async fn admin_post(server: &TestServer, path: &str, key: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = server.client.post(server.url(path));
    if let Some(key) = key {
        request = request.header("X-Admin-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = server.client.get(server.url(path)).header("X-Admin-Key", ADMIN_KEY).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

both_backends!(admin_retries_one_failed_delivery, |db: support::TestDb| async move {
    let (server, receiver, dispatcher) = with_failed_deliveries(&db, 1).await;
    let (status, failed) = admin_get(&server, "/admin/deliveries?status=FAIL").await;
    assert_eq!(status, StatusCode::OK);
    let id = failed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(failed[0]["subscription_name"], "CRM-Doadores");
    assert!(failed[0]["last_error"].as_str().unwrap().starts_with("HTTP 500"));

    let path = format!("/admin/deliveries/{id}/retry");
    let (status, body) = admin_post(&server, &path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = admin_post(&server, &path, Some("wrong-key"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin_post(&server, &path, Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "PENDING");
    let (status, body) = admin_post(&server, &path, Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "delivery_not_failed");
    let (status, _) = admin_post(&server, &format!("/admin/deliveries/{}/retry", Uuid::new_v4()), Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = admin_post(&server, "/admin/deliveries/nope/retry", Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_id");

    // The admin route wakes the dispatcher through the in-process signal.
    tokio::time::timeout(Duration::from_secs(1), server.state.signals.deliveries.notified()).await.unwrap();
    receiver.set_mode("200").await;
    dispatcher.run_once().await.unwrap();
    let (status, shown) = admin_get(&server, &format!("/admin/deliveries/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["status"], "OK");
    assert_eq!(shown["attempt"], 1);
    let statuses: Vec<&Value> = shown["attempts"].as_array().unwrap().iter().map(|attempt| &attempt["response_status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(200)]);
});

both_backends!(admin_retries_failed_by_filter, |db: support::TestDb| async move {
    let (server, _receiver, _dispatcher) = with_failed_deliveries(&db, 3).await;

    let (status, body) =
        admin_post(&server, "/admin/deliveries/retry", Some(ADMIN_KEY), Some(json!({"subscription": "Outro"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requeued"], 0);
    let (status, body) =
        admin_post(&server, "/admin/deliveries/retry", Some(ADMIN_KEY), Some(json!({"sort": "newest"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_filter");
    let filter = json!({"subscription": "CRM-Doadores", "since": "2020-01-01T00:00:00Z"});
    let (status, body) = admin_post(&server, "/admin/deliveries/retry", Some(ADMIN_KEY), Some(filter)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requeued"], 3);

    let pending = db
        .store
        .list_deliveries(&grito::store::DeliveryFilter { status: Some(DeliveryStatus::Pending), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|summary| summary.delivery.attempt == 0));
});

#[tokio::test]
async fn admin_routes_refuse_without_admin_key_setting() {
    let db = support::TestDb::new(support::Backend::Sqlite).await.unwrap();
    let configured = TestServer::start(db.store.clone()).await;
    let state = AppState { admin_api_key: None, ..configured.state.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });

    let response = reqwest::Client::new()
        .post(format!("http://{address}/admin/deliveries/retry"))
        .header("X-Admin-Key", "")
        .header("Accept-Language", "pt-BR")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "admin_disabled");
    assert!(body["message"].as_str().unwrap().contains("ADMIN_API_KEY não está definida"), "{body}");
}
