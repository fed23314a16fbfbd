//! The dispatcher through the real `grito` binary: the brief's example
//! delivered to a seeded receiver, the retry schedule, reprocessing the dead
//! letter from the command line, and `grito worker` on its own.

mod support;
#[path = "peers/receiver.rs"]
mod receiver;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use receiver::Receiver;
use serde_json::{Value, json};
use support::{API_KEY, Backend, TestDb};

const GRITO: &str = env!("CARGO_BIN_EXE_grito");
const SECRET: &str = "SEU_SEGREDO_LONGO_ALEATORIO";

/// A command with a clean environment apart from PATH and HOME, on `database`.
fn grito(dir: &std::path::Path, database: &str) -> Command {
    let mut command = Command::new(GRITO);
    command.current_dir(dir).env_clear();
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command.env("RUST_LOG", "info").env("DATABASE_URL", database);
    command
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("grito runs");
    assert!(
        output.status.success(),
        "grito failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `grito serve` with `settings` and waits until `/health` responds.
async fn serve(dir: &std::path::Path, database: &str, settings: &[(&str, &str)]) -> (Running, u16) {
    let port = free_port();
    let mut command = grito(dir, database);
    command
        .arg("serve")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("EVENTS_API_KEY", API_KEY)
        .env("ALLOW_PRIVATE_ENDPOINTS", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in settings {
        command.env(name, value);
    }
    let child = Running(command.spawn().expect("grito serve starts"));

    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/health")).send().await
            && response.status().is_success()
        {
            return (child, port);
        }
        assert!(Instant::now() < deadline, "grito serve did not become healthy on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The brief's `user.signed_up` example.
fn signed_up(key: &str) -> Value {
    json!({
        "event_name": "user.signed_up",
        "user_id": "c3f1a7d2-5b8e-4f1a-9c2d-7e6b5a4f3e21",
        "source": "app",
        "idempotency_key": key,
        "payload": {"name": "Maria Souza", "email": "maria@email.com", "bairro": "Jardim Alvorada", "plano": null}
    })
}

async fn post_event(port: u16, body: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/events"))
        .header("X-Api-Key", API_KEY)
        .json(body)
        .send()
        .await
        .expect("grito answers");
    assert!(response.status().is_success(), "{:?}", response.status());
    response.json().await.unwrap()
}

/// `grito deliveries list --json`.
fn list_deliveries(dir: &std::path::Path, database: &str, extra: &[&str]) -> Vec<Value> {
    let output = run(grito(dir, database).args(["deliveries", "list", "--json"]).args(extra));
    serde_json::from_slice(&output.stdout).expect("list prints JSON")
}

/// Polls `grito deliveries list` until one delivery has `status`.
async fn wait_for_status(dir: &std::path::Path, database: &str, status: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let deliveries = list_deliveries(dir, database, &["--status", status]);
        if let Some(delivery) = deliveries.into_iter().next() {
            return delivery;
        }
        assert!(Instant::now() < deadline, "no {status} delivery within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("grito.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_receiver_gets_signed_event_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    let receiver = Receiver::start(SECRET, "200");
    let endpoint = receiver.url("/webhooks/grito");
    run(grito(dir.path(), &database).args(["seed", "--endpoint-url", &endpoint, "--secret", SECRET]));
    let (_server, port) = serve(dir.path(), &database, &[]).await;

    let started = Instant::now();
    let accepted = post_event(port, &signed_up("signup:c3f1:2025-09-25")).await;
    let requests = receiver.wait_for(1, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();

    assert!(elapsed < Duration::from_secs(1), "the webhook arrived {elapsed:?} after the event");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request["path"], "/webhooks/grito");
    assert_eq!(request["grito_signature_ok"], true, "{request}");
    assert_eq!(request["standard_signature_ok"], true, "{request}");
    assert_eq!(request["headers"]["x-grito-event"], "user.signed_up");
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], accepted["id"]);
    assert_eq!(body["payload"]["name"], "Maria Souza");

    let delivered = wait_for_status(dir.path(), &database, "OK", Duration::from_secs(5)).await;
    assert_eq!(delivered["attempt"], 1);
    assert_eq!(delivered["subscription_name"], "CRM-Doadores");
    assert_eq!(request["webhook_id"], delivered["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_gets_brief_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    let receiver = Receiver::start(SECRET, "500");
    run(grito(dir.path(), &database).args(["seed", "--endpoint-url", &receiver.url("/webhooks/grito"), "--secret", SECRET]));
    let (_server, port) = serve(dir.path(), &database, &[]).await;

    post_event(port, &signed_up("signup:schedule")).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let failed_at = Utc::now();

    let deadline = Instant::now() + Duration::from_secs(5);
    let delivery = loop {
        let deliveries = list_deliveries(dir.path(), &database, &[]);
        if deliveries[0]["attempt"] == 1 {
            break deliveries[0].clone();
        }
        assert!(Instant::now() < deadline, "the failed attempt was not recorded: {deliveries:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["status"], "PENDING");
    assert!(delivery["last_error"].as_str().unwrap().starts_with("HTTP 500"), "{delivery}");
    let next: DateTime<Utc> = delivery["next_attempt_at"].as_str().unwrap().parse().unwrap();
    let wait = (next - failed_at).num_seconds();
    assert!((115..=121).contains(&wait), "next attempt in {wait} s, expected 2 minutes");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.requests().len(), 1, "retried before the schedule");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_delivery_reprocessed_from_cli() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    let receiver = Receiver::start(SECRET, "503");
    run(grito(dir.path(), &database).args(["seed", "--endpoint-url", &receiver.url("/webhooks/grito"), "--secret", SECRET]));
    let settings = [
        ("WEBHOOK_RETRY_SCHEDULE", "100ms,200ms"),
        ("WEBHOOK_MAX_ATTEMPTS", "3"),
        ("WEBHOOK_SWEEP_INTERVAL", "100ms"),
    ];
    let (_server, port) = serve(dir.path(), &database, &settings).await;

    post_event(port, &signed_up("signup:dead-letter")).await;
    let failed = wait_for_status(dir.path(), &database, "FAIL", Duration::from_secs(10)).await;
    let id = failed["id"].as_str().unwrap().to_owned();
    assert_eq!(failed["attempt"], 3);
    assert!(failed["last_error"].as_str().unwrap().starts_with("HTTP 503"), "{failed}");
    assert_eq!(receiver.requests().len(), 3);

    let refused = grito(dir.path(), &database).args(["deliveries", "retry", "not-a-uuid"]).output().unwrap();
    assert!(!refused.status.success());
    receiver.set_mode("200").await;
    let output = run(grito(dir.path(), &database).args(["deliveries", "retry", &id]));
    assert!(String::from_utf8_lossy(&output.stdout).contains("PENDING again"));

    let delivered = wait_for_status(dir.path(), &database, "OK", Duration::from_secs(5)).await;
    assert_eq!(delivered["id"], id.as_str());
    assert_eq!(delivered["attempt"], 1);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|request| request["webhook_id"] == id.as_str()));
    let again = grito(dir.path(), &database).args(["deliveries", "retry", &id]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("only FAIL deliveries can be reprocessed"));

    let output = run(grito(dir.path(), &database).args(["deliveries", "show", &id, "--json"]));
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    let statuses: Vec<&Value> = shown["attempts"].as_array().unwrap().iter().map(|attempt| &attempt["response_status"]).collect();
    assert_eq!(statuses, [&json!(503), &json!(503), &json!(503), &json!(200)]);
    let text = run(grito(dir.path(), &database).args(["deliveries", "list"]));
    assert!(String::from_utf8_lossy(&text.stdout).contains("CRM-Doadores"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_reprocessed_by_filter() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    let receiver = Receiver::start(SECRET, "500");
    run(grito(dir.path(), &database).args(["seed", "--endpoint-url", &receiver.url("/webhooks/grito"), "--secret", SECRET]));
    let settings = [("WEBHOOK_MAX_ATTEMPTS", "1"), ("WEBHOOK_SWEEP_INTERVAL", "100ms")];
    let (_server, port) = serve(dir.path(), &database, &settings).await;
    post_event(port, &signed_up("signup:filter:1")).await;
    post_event(port, &signed_up("signup:filter:2")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while list_deliveries(dir.path(), &database, &["--status", "FAIL"]).len() < 2 {
        assert!(Instant::now() < deadline, "the deliveries did not fail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let other = run(grito(dir.path(), &database).args(["deliveries", "retry", "--failed", "--subscription", "Outro"]));
    assert!(String::from_utf8_lossy(&other.stdout).contains("0 FAIL deliveries"));
    receiver.set_mode("200").await;
    let output = run(grito(dir.path(), &database).args(["deliveries", "retry", "--failed", "--subscription", "CRM-Doadores", "--since", "1h"]));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 FAIL deliveries are PENDING again"));

    let deadline = Instant::now() + Duration::from_secs(5);
    while list_deliveries(dir.path(), &database, &["--status", "OK"]).len() < 2 {
        assert!(Instant::now() < deadline, "the reprocessed deliveries were not sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_alone_delivers_on_postgres_notify() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(SECRET, "200");
    run(grito(dir.path(), &db.url).args(["seed", "--endpoint-url", &receiver.url("/webhooks/grito"), "--secret", SECRET]));
    let mut worker = grito(dir.path(), &db.url);
    worker
        .arg("worker")
        .env("ALLOW_PRIVATE_ENDPOINTS", "true")
        .env("WEBHOOK_SWEEP_INTERVAL", "10m")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _worker = Running(worker.spawn().expect("grito worker starts"));
    // The worker needs a moment to connect and LISTEN; its sweep is 10 minutes away.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let server = support::TestServer::start(db.store.clone()).await;
    let response = server.post_event(&signed_up("signup:worker")).await;
    assert!(response.status().is_success());
    let requests = receiver.wait_for(1, Duration::from_secs(5)).await;

    assert!(started.elapsed() < Duration::from_secs(1), "delivered {:?} after the event", started.elapsed());
    assert_eq!(requests[0]["standard_signature_ok"], true);
}

#[tokio::test]
async fn pending_delivery_retry_says_when() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    run(grito(dir.path(), &database).args(["seed", "--endpoint-url", "http://127.0.0.1:9/webhooks/grito", "--secret", SECRET]));
    let store = grito::store::SqliteStore::open(&dir.path().join("grito.db")).await.unwrap();
    let inserted = grito::store::Store::insert_event(
        &store,
        grito::store::NewEvent {
            event_name: "user.signed_up".to_owned(),
            user_id: uuid::Uuid::from_u128(42),
            source: "app".to_owned(),
            occurred_at: None,
            payload: serde_json::Map::new(),
            idempotency_key: None,
        },
    )
    .await
    .unwrap();
    let deliveries = grito::store::Store::list_deliveries_for_event(&store, inserted.id).await.unwrap();
    let id = deliveries[0].id.to_string();
    sqlx::query("update grito_webhook_deliveries set next_attempt_at = '2030-01-02T03:04:05.000000Z' where id = ?1")
        .bind(&id)
        .execute(store.pool())
        .await
        .unwrap();

    let output = grito(dir.path(), &database).args(["deliveries", "retry", &id]).output().unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is PENDING, so it is still being retried"), "{stderr}");
    assert!(stderr.contains("its next attempt is at 2030-01-02 03:04:05 UTC"), "{stderr}");
}
