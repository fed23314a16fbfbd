//! `GET /metrics`: counters move when events arrive, the queue gauges follow
//! the store, the text format parses, and `METRICS_TOKEN` guards it.

mod support;

use grito::api::{AppState, app};
use reqwest::StatusCode;
use serde_json::json;
use support::TestServer;
use uuid::Uuid;

/// Parses Prometheus text lines into (name with labels, value), checking each line's shape.
fn samples(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("line without a value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value is not a number: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(series[..name_end].chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad metric name: {line}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        samples.push((series.to_owned(), value));
    }
    samples
}

fn value(samples: &[(String, f64)], series: &str) -> f64 {
    samples.iter().find(|(name, _)| name == series).map(|(_, value)| *value).unwrap_or(0.0)
}

both_backends!(metrics_count_events_and_queue, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    db.store
        .create_subscription(grito::store::NewSubscription {
            destination_name: "CRM".into(),
            endpoint_url: "http://127.0.0.1:9/hooks".into(),
            secret: "metrics-test-secret-0123".into(),
            enabled: true,
            event_filter: vec!["metrics.tested".into()],
        })
        .await
        .unwrap();
    let source = format!("metrics-{}", Uuid::new_v4().simple());
    let accepted = format!("grito_events_total{{event_name=\"metrics.tested\",outcome=\"accepted\",source=\"{source}\"}}");
    let deduplicated = format!("grito_events_total{{event_name=\"metrics.tested\",outcome=\"deduplicated\",source=\"{source}\"}}");

    let body = json!({"event_name": "metrics.tested", "user_id": Uuid::new_v4(), "source": source, "idempotency_key": source, "payload": {}});
    for _ in 0..2 {
        assert!(server.post_event(&body).await.status().is_success());
    }

    let response = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let parsed = samples(&text);
    assert_eq!(value(&parsed, &accepted), 1.0, "{text}");
    assert_eq!(value(&parsed, &deduplicated), 1.0);
    assert_eq!(value(&parsed, "grito_delivery_queue_depth"), 1.0);
    assert!(value(&parsed, "grito_delivery_oldest_pending_age_seconds") >= 0.0);
    assert!(text.contains("# TYPE grito_delivery_attempt_duration_seconds histogram"));
});

both_backends!(metrics_token_guards_scrape, |db: support::TestDb| async move {
    let server = TestServer::start(db.store.clone()).await;
    let mut admin = server.state.admin.clone();
    admin.metrics_token = Some("scrape-token".into());
    let state = AppState { admin, ..server.state.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    let url = format!("http://{address}/metrics");

    let missing = reqwest::get(&url).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let client = reqwest::Client::new();
    let wrong = client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client.get(&url).bearer_auth("scrape-token").send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
});

#[test]
fn client_labels_capped_at_limit() {
    for index in 0..grito::metrics::MAX_LABEL_VALUES + 10 {
        grito::metrics::record_event("cap-test", &format!("cap.{index}"), false);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let text = runtime.block_on(async {
        let db = support::TestDb::sqlite().await;
        grito::metrics::render(db.store.as_ref()).await.unwrap()
    });
    let names: std::collections::HashSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("grito_events_total{"))
        .filter_map(|line| line.split("event_name=\"").nth(1)?.split('"').next())
        .collect();
    assert!(names.len() <= grito::metrics::MAX_LABEL_VALUES + 1, "{} distinct names", names.len());
    assert!(names.contains("other"));
}
