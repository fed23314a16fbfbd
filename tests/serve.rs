//! The real `grito` binary: start-up guards, the first log line, `migrate`
//! and `seed`, and the brief's example end to end over HTTP.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{API_KEY, Backend, TestDb};

const GRITO: &str = env!("CARGO_BIN_EXE_grito");

/// Builds a command with a clean environment apart from PATH and HOME, run in `dir`.
fn grito(dir: &std::path::Path) -> Command {
    let mut command = Command::new(GRITO);
    command.current_dir(dir).env_clear();
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command.env("RUST_LOG", "info");
    command
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

/// Waits until `GET /health` returns 200, or panics after 30 s.
async fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/health")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("grito serve did not become healthy on port {port} within 30 s");
}

#[test]
fn serve_refuses_to_start_without_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = grito(dir.path()).arg("serve").output().unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EVENTS_API_KEY is not set"), "{stderr}");
    assert!(!dir.path().join("grito-data").exists(), "nothing is created before the key check");
}

#[test]
fn invalid_setting_exits_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = grito(dir.path()).arg("serve").env("BIND", "not-an-address").output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid BIND `not-an-address`"), "{stderr}");
}

#[tokio::test]
async fn first_log_line_names_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = grito(dir.path())
        .arg("serve")
        .env("EVENTS_API_KEY", API_KEY)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);

    // The reader keeps draining stderr, so the server never writes into a closed pipe.
    let (first_line, first_line_received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = first_line.send(line);
        }
    });
    let first = first_line_received.recv_timeout(Duration::from_secs(30)).expect("grito serve logs a first line");

    let line: Value = serde_json::from_str(&first).unwrap_or_else(|_| panic!("not a JSON log line: {first}"));
    let expected = format!("sqlite://{}/grito-data/grito.db (embedded)", dir.path().canonicalize().unwrap().display());
    assert_eq!(line["database"], json!(expected), "{first}");
    wait_healthy(port).await;
    assert!(dir.path().join("grito-data/grito.db").exists());
}

#[test]
fn migrate_then_seed_twice_adds_nothing_more() {
    let dir = tempfile::tempdir().unwrap();

    let migrate = grito(dir.path()).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));

    let first = grito(dir.path()).args(["seed", "--secret", "s3cret-for-tests"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let first = String::from_utf8_lossy(&first.stdout);
    assert!(first.contains("created subscription CRM-Doadores"), "{first}");
    assert!(first.contains("created automation Boas-vindas"), "{first}");
    assert!(!first.contains("s3cret-for-tests"), "a secret given on the command line is not echoed");

    let second = grito(dir.path()).arg("seed").output().unwrap();
    assert!(second.status.success());
    let second = String::from_utf8_lossy(&second.stdout);
    assert!(second.contains("subscription CRM-Doadores already exists"), "{second}");
    assert!(second.contains("automation Boas-vindas already exists"), "{second}");
}

/// Posts the brief's example twice after `grito seed` and checks the
/// deduplication and the delivery row for CRM-Doadores.
async fn brief_example_end_to_end(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();

    // A closed loopback port: the test sends nothing off this machine.
    let seed = grito(dir.path())
        .env("DATABASE_URL", &db.url)
        .args(["seed", "--endpoint-url", "http://127.0.0.1:9/webhooks/grito"])
        .output()
        .unwrap();
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));

    let child = grito(dir.path())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("EVENTS_API_KEY", API_KEY)
        .env("BIND", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    wait_healthy(port).await;

    let body = json!({
        "event_name": "user.signed_up",
        "user_id": "c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        "source": "app",
        "idempotency_key": "signup:c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b:2025-09-25",
        "payload": {"name": "Maria Souza", "email": "maria@email.com", "bairro": "Jardim Alvorada", "plano": null}
    });
    let client = reqwest::Client::new();
    let post = || {
        client
            .post(format!("http://127.0.0.1:{port}/events"))
            .header("X-Api-Key", API_KEY)
            .json(&body)
            .send()
    };

    let first: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(first["ok"], json!(true));
    let second: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(second, json!({"ok": true, "id": first["id"], "dedup": true}));

    let id = uuid::Uuid::parse_str(first["id"].as_str().unwrap()).unwrap();
    let deliveries = db.store.list_deliveries_for_event(id).await.unwrap();
    let subscriptions = db.store.list_subscriptions().await.unwrap();
    let crm = subscriptions.iter().find(|s| s.destination_name == "CRM-Doadores").unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].subscription_id, Some(crm.id));
}

#[tokio::test]
async fn brief_example_on_sqlite() {
    brief_example_end_to_end(TestDb::new(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test]
async fn brief_example_on_postgres() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    brief_example_end_to_end(db).await;
}

/// `API_ONLY=true`: the server stores events and their deliveries but runs
/// no worker; a `grito worker` on the same database then processes them.
async fn api_only_leaves_the_work_to_grito_worker(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let seed = grito(dir.path())
        .env("DATABASE_URL", &db.url)
        .args(["seed", "--endpoint-url", "http://127.0.0.1:9/webhooks/grito"])
        .output()
        .unwrap();
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));

    let api = grito(dir.path())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("EVENTS_API_KEY", API_KEY)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("API_ONLY", "true")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _api = Running(api);
    wait_healthy(port).await;

    let body = json!({
        "event_name": "user.signed_up",
        "user_id": "c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        "source": "app",
        "payload": {"name": "Maria Souza", "email": "maria@email.com", "plano": null}
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/events"))
        .header("X-Api-Key", API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = uuid::Uuid::parse_str(answer["id"].as_str().unwrap()).unwrap();

    // Well past the sweep intervals a worker would use: nothing ran.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(db.store.get_event(id).await.unwrap().unwrap().processed_at, None);
    let deliveries = db.store.list_deliveries_for_event(id).await.unwrap();
    assert_eq!((deliveries.len(), deliveries[0].attempt), (1, 0), "{deliveries:?}");

    let worker = grito(dir.path())
        .arg("worker")
        .env("DATABASE_URL", &db.url)
        .env("ENGINE_SWEEP_INTERVAL", "200ms")
        .env("WEBHOOK_SWEEP_INTERVAL", "200ms")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _worker = Running(worker);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let processed = db.store.get_event(id).await.unwrap().unwrap().processed_at.is_some();
        let attempted = db.store.list_deliveries_for_event(id).await.unwrap()[0].attempt > 0;
        if processed && attempted {
            break;
        }
        assert!(Instant::now() < deadline, "grito worker did not process the event within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn api_only_on_sqlite() {
    api_only_leaves_the_work_to_grito_worker(TestDb::new(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test]
async fn api_only_on_postgres() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    api_only_leaves_the_work_to_grito_worker(db).await;
}
