//! The admin API on both backends: its key, every subscription operation,
//! automations checked by the real plugins, event filters and pagination,
//! replay, and the plugin list.

mod support;

use std::sync::Arc;

use grito::api::{AppState, app};
use grito::config::Source;
use grito::plugins::{NoIdentities, PluginHost, PluginSettings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN_KEY, TestServer};
use uuid::Uuid;

async fn call(server: &TestServer, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(key) = key {
        request = request.header("X-Admin-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(server, method, path, Some(ADMIN_KEY), body).await
}

fn subscription_body(name: &str) -> Value {
    json!({"destination_name": name, "endpoint_url": "https://crm.example.org/hooks", "event_filter": ["user.signed_up"]})
}

/// A test server whose state has a real plugin host with the built-in plugins.
async fn server_with_plugins(db: &support::TestDb) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins").display().to_string();
    let source = Source::from_pairs([("PLUGINS_DIR", plugins_dir.as_str())]);
    let settings = PluginSettings::from_source(&source, dir.path()).unwrap();
    let host = PluginHost::open(settings, Arc::new(NoIdentities)).await.unwrap();
    let mut server = TestServer::start(db.store.clone()).await;
    let state = AppState { normalizers: grito::normalizers::Normalizers { plugins: Some(host), ..Default::default() }, ..server.state.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server.address = listener.local_addr().unwrap();
    let router = app(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (server, dir)
}

both_backends!(admin_key_is_required, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;

    let (missing, body) = call(&server, Method::GET, "/admin/subscriptions", None, None).await;
    assert_eq!(missing, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    let (wrong, _) = call(&server, Method::GET, "/admin/subscriptions", Some("wrong-key"), None).await;
    assert_eq!(wrong, StatusCode::UNAUTHORIZED);
    let (right, _) = call(&server, Method::GET, "/admin/subscriptions", Some(ADMIN_KEY), None).await;
    assert_eq!(right, StatusCode::OK);

    let unset = AppState { admin_api_key: None, ..server.state.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(unset)).await.unwrap() });
    let response = reqwest::Client::new()
        .get(format!("http://{address}/admin/events"))
        .header("X-Admin-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
});

both_backends!(subscription_lifecycle, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;

    let (status, created) = admin(&server, Method::POST, "/admin/subscriptions", Some(subscription_body("CRM"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, listed) = admin(&server, Method::GET, "/admin/subscriptions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none(), "list must not show the secret");
    let (_, shown) = admin(&server, Method::GET, &format!("/admin/subscriptions/{id}"), None).await;
    assert!(shown.get("secret").is_none(), "get must not show the secret");
    assert_eq!(shown["destination_name"], "CRM");

    let (status, disabled) =
        admin(&server, Method::PATCH, &format!("/admin/subscriptions/{id}"), Some(json!({"enabled": false, "event_filter": ["a", "b"]}))).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["event_filter"], json!(["a", "b"]));

    let (status, rotated) = admin(&server, Method::POST, &format!("/admin/subscriptions/{id}/rotate-secret"), None).await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let stored = db.store.get_subscription(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.secret, new_secret);

    let (status, deleted) = admin(&server, Method::DELETE, &format!("/admin/subscriptions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, _) = admin(&server, Method::GET, &format!("/admin/subscriptions/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
});

both_backends!(subscription_validation_names_fields, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;

    let bad = json!({"destination_name": "", "endpoint_url": "ftp://x", "event_filter": []});
    let (status, body) = admin(&server, Method::POST, "/admin/subscriptions", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_fields");
    assert_eq!(body["fields"], json!(["destination_name", "endpoint_url", "event_filter"]));

    let blank_name = json!({"destination_name": "CRM", "endpoint_url": "http://crm.example.org", "event_filter": ["ok", ""]});
    let (status, body) = admin(&server, Method::POST, "/admin/subscriptions", Some(blank_name)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["fields"], json!(["event_filter"]));

    let (status, _) = admin(&server, Method::POST, "/admin/subscriptions", Some(subscription_body("CRM"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = admin(&server, Method::POST, "/admin/subscriptions", Some(subscription_body("CRM"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "conflict");

    let response = server
        .client
        .post(server.url("/admin/subscriptions"))
        .header("X-Admin-Key", ADMIN_KEY)
        .header("Accept-Language", "pt-BR")
        .json(&subscription_body("CRM"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("já existe"), "{body}");

    let (status, body) = admin(&server, Method::GET, "/admin/subscriptions/not-a-uuid", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_id");
});

both_backends!(subscription_delete_with_deliveries, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let (_, created) = admin(&server, Method::POST, "/admin/subscriptions", Some(subscription_body("CRM"))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let event = json!({"event_name": "user.signed_up", "user_id": Uuid::new_v4(), "source": "app", "payload": {}});
    assert!(server.post_event(&event).await.status().is_success());

    let (status, body) = admin(&server, Method::DELETE, &format!("/admin/subscriptions/{id}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = admin(&server, Method::DELETE, &format!("/admin/subscriptions/{id}?force=true"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted_deliveries"], 1);
});

both_backends!(events_filters_and_pagination, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let maria = Uuid::new_v4();
    for index in 0..5 {
        let body = json!({
            "event_name": if index % 2 == 0 { "user.signed_up" } else { "payment.failed" },
            "user_id": if index < 3 { maria } else { Uuid::new_v4() },
            "source": if index == 4 { "stripe" } else { "app" },
            "occurred_at": format!("2026-01-0{}T10:00:00Z", index + 1),
            "payload": {"index": index}
        });
        assert!(server.post_event(&body).await.status().is_success());
    }

    let (_, page) = admin(&server, Method::GET, "/admin/events?name=user.signed_up", None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    let (_, page) = admin(&server, Method::GET, &format!("/admin/events?user={maria}"), None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    let (_, page) = admin(&server, Method::GET, "/admin/events?source=stripe", None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    let (_, page) = admin(&server, Method::GET, "/admin/events?since=2026-01-02T00:00:00Z&until=2026-01-04T00:00:00Z", None).await;
    let indexes: Vec<i64> = page["events"].as_array().unwrap().iter().map(|event| event["payload"]["index"].as_i64().unwrap()).collect();
    assert_eq!(indexes, vec![2, 1]);

    let mut seen = Vec::new();
    let mut path = "/admin/events?limit=2".to_owned();
    loop {
        let (status, page) = admin(&server, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["events"].as_array().unwrap().iter().map(|event| event["payload"]["index"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/events?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![4, 3, 2, 1, 0]);

    let (status, body) = admin(&server, Method::GET, "/admin/events?since=yesterday", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["fields"], json!(["since"]));
    let (status, body) = admin(&server, Method::GET, "/admin/events?limit=-1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
});

both_backends!(event_show_and_replay, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let event = json!({"event_name": "user.signed_up", "user_id": Uuid::new_v4(), "source": "app", "payload": {}});
    let accepted: Value = server.post_event(&event).await.json().await.unwrap();
    let event_id = accepted["id"].as_str().unwrap().to_owned();

    let (status, detail) = admin(&server, Method::GET, &format!("/admin/events/{event_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["deliveries"], json!([]));
    assert_eq!(detail["runs"], json!([]));

    let (status, _) = admin(&server, Method::POST, "/admin/subscriptions", Some(subscription_body("CRM"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, replay) = admin(&server, Method::POST, &format!("/admin/events/{event_id}/replay"), None).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["created"].as_array().unwrap().len(), 1);
    let (_, again) = admin(&server, Method::POST, &format!("/admin/events/{event_id}/replay"), None).await;
    assert_eq!(again["created"], json!([]), "a second replay adds nothing");
    let (_, detail) = admin(&server, Method::GET, &format!("/admin/events/{event_id}"), None).await;
    assert_eq!(detail["deliveries"][0]["status"], "PENDING");

    let (status, _) = admin(&server, Method::GET, &format!("/admin/events/{}", Uuid::new_v4()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
});

both_backends!(automations_checked_by_plugins, |db: support::TestDb| async move {
    let (server, _dir) = server_with_plugins(&db).await;
    let action = json!({"type": "webhook", "endpoint_ref": "CRM"});

    let bad = json!({"name": "Bad", "match_event": "user.signed_up", "condition_sql": "payload->>'plan' =", "action": {"type": "no-such-action"}});
    let (status, body) = admin(&server, Method::POST, "/admin/automations", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["fields"], json!(["condition_sql", "action"]));

    let good = json!({"name": "Forward", "match_event": "user.signed_up", "condition_sql": "payload->>'plan' is null", "action": action});
    let (status, created) = admin(&server, Method::POST, "/admin/automations", Some(good)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let (_, deactivated) = admin(&server, Method::POST, &format!("/admin/automations/{id}/deactivate"), None).await;
    assert_eq!(deactivated["is_active"], false);
    let (_, activated) = admin(&server, Method::POST, &format!("/admin/automations/{id}/activate"), None).await;
    assert_eq!(activated["is_active"], true);
    let (status, updated) = admin(&server, Method::PATCH, &format!("/admin/automations/{id}"), Some(json!({"condition_sql": ""}))).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["condition_sql"], Value::Null);

    let event = json!({"event_name": "user.signed_up", "source": "app", "payload": {}});
    let (status, preview) = admin(&server, Method::POST, &format!("/admin/automations/{id}/preview"), Some(json!({"event": event}))).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["would_run"], true);

    let (status, _) = admin(&server, Method::DELETE, &format!("/admin/automations/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = admin(&server, Method::GET, "/admin/automations", None).await;
    assert_eq!(listed, json!([]));
});

both_backends!(plugins_list_shows_builtins, |db: support::TestDb| async move {
    let (server, _dir) = server_with_plugins(&db).await;
    let (status, plugins) = admin(&server, Method::GET, "/admin/plugins", None).await;
    assert_eq!(status, StatusCode::OK);
    let condition = plugins.as_array().unwrap().iter().find(|plugin| plugin["name"] == "condition-sql").expect("condition-sql listed");
    assert_eq!(condition["state"], "loaded");
    assert_eq!(condition["kind"], "condition");

    let plain = TestServer::start(db.store.clone()).await;
    let (status, body) = admin(&plain, Method::GET, "/admin/plugins", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "plugins_unavailable");
});
