//! `POST /ingest/{plugin}` with the real Intelbras normalizer plugin, built
//! for wasm32-wasip2 and loaded from a temporary `PLUGINS_DIR` like any
//! third-party plugin, over the device pushes in `tests/fixtures/intelbras/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use grito::api::{AppState, app};
use grito::engine::{Engine, EngineSettings};
use grito::mailer::Templates;
use grito::normalizers::{IngestSettings, IngestTokens, Normalizers, StoreIdentities};
use grito::plugins::{PluginHost, PluginSettings};
use grito::signals::Signals;
use grito::store::{Event, NewAutomation, NewSubscription, RunStatus, Store};
use serde_json::{Value, json};
use support::API_KEY;
use uuid::Uuid;

const TOKEN: &str = "tok-intelbras-0123456789abcdef";
const CENTRO_TOKEN: &str = "tok-centro-0123456789abcdef";
const MULTIPART: &str = "multipart/x-mixed-replace; boundary=myboundary";
const MARIA: &str = "2f1c7a4e-8d1b-4c5e-9a7f-0b6d3e2c1a90";

/// Builds the plugin once per test process; returns the `.wasm` file.
fn plugin_wasm() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_grito"));
        let target_root = binary.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file()).expect("cargo target folder").to_path_buf();
        let target_dir = target_root.join("wasm-plugins");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip2", "-p", "grito-intelbras-checkin", "--manifest-path"])
            .arg(root.join("plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the intelbras plugin failed (is `rustup target add wasm32-wasip2` done?)");
        target_dir.join("wasm32-wasip2/release/grito_intelbras_checkin.wasm")
    })
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/intelbras").join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Creates a plugins folder holding `intelbras.wasm` and its config file, as an operator would lay it out.
fn plugins_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(plugin_wasm(), dir.path().join("intelbras.wasm")).unwrap();
    std::fs::write(dir.path().join("intelbras.toml"), fixture("config.toml")).unwrap();
    dir
}

fn tokens() -> IngestTokens {
    IngestTokens::parse(&format!("intelbras={TOKEN}|centro:{CENTRO_TOKEN}")).unwrap()
}

/// The real router with a plugin host over a temporary plugins folder.
struct Harness {
    store: Arc<dyn Store>,
    plugins: PluginHost,
    address: std::net::SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    _plugins_dir: tempfile::TempDir,
    _data_dir: tempfile::TempDir,
}

impl Harness {
    async fn start(store: Arc<dyn Store>, max_body_bytes: usize) -> Self {
        Self::start_with(store, max_body_bytes, PluginSettings::DEFAULT_MEMORY_LIMIT, Duration::from_secs(1)).await
    }

    async fn start_with(store: Arc<dyn Store>, max_body_bytes: usize, memory_limit: usize, timeout: Duration) -> Self {
        let plugins_dir = plugins_dir();
        let data_dir = tempfile::tempdir().unwrap();
        let settings = PluginSettings {
            dir: plugins_dir.path().to_path_buf(),
            cache_dir: data_dir.path().join("plugin-cache"),
            memory_limit,
            timeout,
        };
        let plugins = PluginHost::open(settings, Arc::new(StoreIdentities::new(store.clone()))).await.expect("plugin host starts");
        let state = AppState {
            normalizers: Normalizers::new(plugins.clone(), IngestSettings { tokens: tokens(), max_body_bytes }),
            ..support::test_state(store.clone())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = app(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("test server runs");
        });
        Self { store, plugins, address, client: reqwest::Client::new(), task, _plugins_dir: plugins_dir, _data_dir: data_dir }
    }

    async fn post(&self, path_and_query: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("http://{}{path_and_query}", self.address))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("request reaches the test server");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn event(&self, id: &Value) -> Event {
        let id = Uuid::parse_str(id.as_str().expect("event id string")).unwrap();
        self.store.get_event(id).await.unwrap().expect("event stored")
    }

    async fn map(&self, external_id: &str, user_id: &str) {
        let signals = Signals::default();
        grito::inbound::set_identity(self.store.as_ref(), &signals, "intelbras", external_id, Uuid::parse_str(user_id).unwrap(), true)
            .await
            .unwrap();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn single_url() -> String {
    format!("/ingest/intelbras?token={TOKEN}&SN=SS5530CENTRO01")
}

both_backends!(device_push_becomes_check_in, |db: support::TestDb| async move {
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;
    harness.map("1001", MARIA).await;

    let (status, body) = harness.post(&single_url(), MULTIPART, fixture("single.multipart")).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], json!(true));
    assert_eq!(body["parked"], json!(0));
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    assert_eq!(body["events"][0]["dedup"], json!(false));
    let event = harness.event(&body["events"][0]["id"]).await;
    assert_eq!(event.event_name, "event.checked_in");
    assert_eq!(event.user_id.to_string(), MARIA);
    assert_eq!(event.source, "intelbras");
    assert_eq!(event.occurred_at.to_rfc3339(), "2025-09-25T11:01:02+00:00");
    assert_eq!(event.idempotency_key.as_deref(), Some("intelbras:centro-catraca-1:0:1001:1758798062"));
    assert_eq!(event.payload["unidade"], "Centro");
    assert_eq!(event.payload["turma"], "Capoeira Infantil");
    assert_eq!(event.payload["turno"], "manhã");
    assert_eq!(event.payload["device_id"], "centro-catraca-1");
    assert_eq!(event.payload["device_time"], "2025-09-25T08:01:02-03:00");
});

both_backends!(same_push_three_times_one_check_in, |db: support::TestDb| async move {
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;
    harness.map("1001", MARIA).await;

    let mut ids = Vec::new();
    for attempt in 0..3 {
        let (status, body) = harness.post(&single_url(), MULTIPART, fixture("single.multipart")).await;
        assert_eq!(status, 200, "attempt {attempt}: {body}");
        assert_eq!(body["events"][0]["dedup"], json!(attempt > 0), "attempt {attempt}");
        ids.push(body["events"][0]["id"].clone());
    }

    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], ids[2]);
});

both_backends!(unknown_user_parked_then_published, |db: support::TestDb| async move {
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;

    for _ in 0..2 {
        let (status, body) = harness.post(&single_url(), "application/json", fixture("unknown-user.json")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["parked"], json!(1));
        assert_eq!(body["events"], json!([]));
    }
    let parked = harness.store.parked_waiting_on("intelbras", "9090").await.unwrap();
    assert_eq!(parked.len(), 1, "a repeated push parks the event once");

    let signals = Signals::default();
    let user = Uuid::new_v4();
    let (_, published) = grito::inbound::set_identity(harness.store.as_ref(), &signals, "intelbras", "9090", user, true).await.unwrap();

    assert_eq!(published.len(), 1);
    let event = harness.store.get_event(published[0].event_id).await.unwrap().unwrap();
    assert_eq!(event.user_id, user);
    assert_eq!(event.event_name, "event.checked_in");
    assert_eq!(event.payload["device_user_id"], "9090");
    assert!(harness.store.parked_waiting_on("intelbras", "9090").await.unwrap().is_empty());

    let (status, body) = harness.post(&single_url(), "application/json", fixture("unknown-user.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"][0]["id"], json!(event.id), "a push after the mapping finds the published event");
    assert_eq!(body["events"][0]["dedup"], json!(true));
});

both_backends!(batch_with_image_stores_and_parks, |db: support::TestDb| async move {
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;
    harness.map("1001", MARIA).await;

    let (status, body) = harness.post(&single_url(), MULTIPART, fixture("batch-with-image.multipart")).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "1001 is mapped");
    assert_eq!(body["parked"], json!(1), "1002 is not mapped; 1003 was denied");
    let event = harness.event(&body["events"][0]["id"]).await;
    assert_eq!(event.payload["device_user_id"], "1001");
});

both_backends!(check_in_runs_automation_and_webhooks, |db: support::TestDb| async move {
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;
    harness.map("1001", MARIA).await;
    let store = harness.store.clone();
    let presence = store
        .create_subscription(NewSubscription {
            destination_name: "CRM-Presenca".into(),
            endpoint_url: "http://127.0.0.1:9/presenca".into(),
            secret: "secret-0123456789abcdef".into(),
            enabled: true,
            event_filter: vec!["event.checked_in".into()],
        })
        .await
        .unwrap();
    let coach = store
        .create_subscription(NewSubscription {
            destination_name: "Coordenacao-Manha".into(),
            endpoint_url: "http://127.0.0.1:9/coordenacao".into(),
            secret: "secret-0123456789abcdef".into(),
            enabled: true,
            event_filter: vec![],
        })
        .await
        .unwrap();
    let automation = store
        .create_automation(NewAutomation {
            name: "Presença da manhã".into(),
            is_active: true,
            match_event: "event.checked_in".into(),
            condition_sql: Some("payload->>'turno' = 'manhã' AND payload->>'unidade' = 'Centro'".into()),
            action: json!({"type": "webhook", "endpoint_ref": "Coordenacao-Manha"}),
        })
        .await
        .unwrap();

    let (status, body) = harness.post(&single_url(), MULTIPART, fixture("single.multipart")).await;
    assert_eq!(status, 200, "{body}");
    let event = harness.event(&body["events"][0]["id"]).await;

    let engine = Engine::new(
        store.clone(),
        Arc::new(harness.plugins.clone()),
        Templates::new("/nonexistent-templates-folder"),
        Arc::new(Signals::default()),
        EngineSettings::default(),
    );
    engine.run_once(chrono::Utc::now()).await.unwrap();

    let runs = store.list_runs_for_event(event.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].automation_id, automation.id);
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{:?}", runs[0].error);
    let deliveries = store.list_deliveries_for_event(event.id).await.unwrap();
    let mut subscriptions: Vec<Uuid> = deliveries.iter().filter_map(|delivery| delivery.subscription_id).collect();
    subscriptions.sort();
    let mut expected = vec![presence.id, coach.id];
    expected.sort();
    assert_eq!(subscriptions, expected, "one delivery from the filter, one from the automation");
});

both_backends!(ignored_pushes_store_nothing, |db: support::TestDb| async move {
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;
    harness.map("1001", MARIA).await;

    for (name, content_type) in [("denied.json", "application/json"), ("door-status.txt", "text/plain"), ("heartbeat.txt", "text/plain")] {
        let (status, body) = harness.post(&single_url(), content_type, fixture(name)).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body, json!({"ok": true, "events": [], "parked": 0, "ignored": 0}), "{name}");
    }
    assert_eq!(harness.store.queue_stats().await.unwrap().unprocessed_events, 0);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_form_with_path_token_and_token_name() {
    let db = support::TestDb::sqlite().await;
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;
    harness.map("1004", MARIA).await;

    // The named token identifies the device, so the URL needs no SN.
    let (status, body) = harness.post(&format!("/ingest/intelbras/{CENTRO_TOKEN}"), "text/plain", fixture("text-form.txt")).await;

    assert_eq!(status, 200, "{body}");
    let event = harness.event(&body["events"][0]["id"]).await;
    assert_eq!(event.payload["device_id"], "centro-catraca-1");
    assert_eq!(event.payload["card_no"], "D4E5F6A7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_accepted_instead_of_token() {
    let db = support::TestDb::sqlite().await;
    let harness = Harness::start(db.store.clone(), 8 * 1024 * 1024).await;

    let response = harness
        .client
        .post(format!("http://{}/ingest/intelbras?SN=SS3530NORTE01", harness.address))
        .header("X-Api-Key", API_KEY)
        .header("Content-Type", "application/json")
        .body(fixture("evening.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["parked"], json!(1), "1001 is not mapped in this test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_have_codes() {
    let db = support::TestDb::sqlite().await;
    let harness = Harness::start(db.store.clone(), 4096).await;
    let single = fixture("single.multipart");

    let cases: Vec<(String, &str, Vec<u8>, u16, &str)> = vec![
        ("/ingest/intelbras?SN=SS5530CENTRO01".into(), MULTIPART, single.clone(), 401, "unauthorized"),
        ("/ingest/intelbras?token=wrong-token-0123456789&SN=SS5530CENTRO01".into(), MULTIPART, single.clone(), 401, "unauthorized"),
        ("/ingest/intelbras/wrong-token-0123456789?SN=SS5530CENTRO01".into(), MULTIPART, single.clone(), 401, "unauthorized"),
        (format!("/ingest/stripe-like?token={TOKEN}"), MULTIPART, single.clone(), 404, "not_found"),
        (format!("/ingest/webhook?token={TOKEN}"), MULTIPART, single.clone(), 404, "not_found"),
        (format!("/ingest/intelbras?token={TOKEN}&SN=NOPE"), MULTIPART, single.clone(), 422, "plugin_error"),
        (single_url(), "application/json", fixture("malformed.json"), 422, "plugin_error"),
        (single_url(), MULTIPART, fixture("batch-with-image.multipart"), 413, "payload_too_large"),
    ];
    for (url, content_type, body, expected_status, expected_code) in cases {
        let (status, response) = harness.post(&url, content_type, body).await;
        assert_eq!(status, expected_status, "{url}: {response}");
        assert_eq!(response["error"], expected_code, "{url}: {response}");
    }

    let (_, response) = harness.post(&format!("/ingest/intelbras?token={TOKEN}&SN=NOPE"), MULTIPART, single).await;
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("unknown_device"), "{message}");
    assert!(message.contains("`NOPE`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_over_memory_limit_is_502() {
    let db = support::TestDb::sqlite().await;
    let harness = Harness::start_with(db.store.clone(), 16 * 1024 * 1024, 2 * 1024 * 1024, Duration::from_secs(1)).await;
    let mut body = b"--myboundary\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    body.resize(body.len() + 6 * 1024 * 1024, 0xAB);
    body.extend_from_slice(b"\r\n--myboundary--\r\n");

    let (status, response) = harness.post(&single_url(), MULTIPART, body).await;

    assert_eq!(status, 502, "{response}");
    assert_eq!(response["error"], "plugin_failed");
    assert!(response["message"].as_str().unwrap().contains("memory"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_image_push_is_accepted() {
    // The deadline is generous on purpose: this checks that image parts are
    // skipped within the memory cap, not how fast; speed lives in the benchmarks.
    let db = support::TestDb::sqlite().await;
    let harness =
        Harness::start_with(db.store.clone(), 8 * 1024 * 1024, PluginSettings::DEFAULT_MEMORY_LIMIT, Duration::from_secs(5)).await;
    harness.map("1001", MARIA).await;
    let mut body = fixture("single.multipart");
    body.truncate(body.len() - b"--myboundary--\r\n".len());
    body.extend_from_slice(b"--myboundary\r\nContent-Type: image/jpeg\r\n\r\n");
    body.resize(8 * 1024 * 1024 - 64, 0xAB);
    body.extend_from_slice(b"\r\n--myboundary--\r\n");

    let started = Instant::now();
    let (status, response) = harness.post(&single_url(), MULTIPART, body).await;

    assert_eq!(status, 200, "{response}");
    assert_eq!(response["events"].as_array().unwrap().len(), 1);
    eprintln!("an 8 MiB push took {:?} end to end", started.elapsed());
}

/// The binary a plugin author never rebuilds: nothing in it names the vendor.
#[test]
fn host_binary_knows_no_vendor() {
    let grep = Command::new("grep").args(["--quiet", "--ignore-case", "--text", "intelbras", env!("CARGO_BIN_EXE_grito")]).status().expect("grep runs");
    assert_eq!(grep.code(), Some(1), "the grito binary contains the text `intelbras` (grep exit {grep}); vendor logic belongs in plugins");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `grito serve` with the plugin in `PLUGINS_DIR` and `INGEST_TOKENS`: a
/// push becomes a check-in whose automation run is recorded by the server's own engine.
async fn served_binary_checks_in(db: support::TestDb) {
    let plugins = plugins_dir();
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    db.store
        .create_automation(NewAutomation {
            name: "Presença".into(),
            is_active: true,
            match_event: "event.checked_in".into(),
            condition_sql: Some("payload->>'turma' = 'Capoeira Infantil'".into()),
            action: json!({"type": "webhook", "endpoint_ref": "CRM-Presenca"}),
        })
        .await
        .unwrap();
    let subscription = db
        .store
        .create_subscription(NewSubscription {
            destination_name: "CRM-Presenca".into(),
            endpoint_url: "http://127.0.0.1:9/presenca".into(),
            secret: "secret-0123456789abcdef".into(),
            enabled: true,
            event_filter: vec![],
        })
        .await
        .unwrap();
    let signals = Signals::default();
    grito::inbound::set_identity(db.store.as_ref(), &signals, "intelbras", "1001", Uuid::parse_str(MARIA).unwrap(), true).await.unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_grito"));
    command.current_dir(data.path()).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    let child = command
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("DATA_DIR", data.path())
        .env("EVENTS_API_KEY", API_KEY)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("PLUGINS_DIR", plugins.path())
        .env("PLUGIN_TIMEOUT", "2s")
        .env("INGEST_TOKENS", format!("intelbras={TOKEN}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest/intelbras?token={TOKEN}&SN=SS5530CENTRO01");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body: Value = loop {
        let sent = client.post(&url).header("Content-Type", MULTIPART).body(fixture("single.multipart")).send().await;
        if let Ok(response) = sent
            && response.status().is_success()
        {
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "grito serve did not accept the push within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let event_id = Uuid::parse_str(body["events"][0]["id"].as_str().unwrap()).unwrap();
    let event = db.store.get_event(event_id).await.unwrap().unwrap();
    assert_eq!(event.payload["turma"], "Capoeira Infantil");
    let deadline = Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let runs = db.store.list_runs_for_event(event_id).await.unwrap();
        if !runs.is_empty() {
            break runs;
        }
        assert!(Instant::now() < deadline, "the server's engine ran no automation for the check-in within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{:?}", runs[0].error);
    let deliveries = db.store.list_deliveries_for_event(event_id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].subscription_id, Some(subscription.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_binary_checks_in_on_sqlite() {
    served_binary_checks_in(support::TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_binary_checks_in_on_postgres() {
    let Some(db) = support::TestDb::new(support::Backend::Postgres).await else { return };
    served_binary_checks_in(db).await;
}
