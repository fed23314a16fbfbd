//! The plugin host with real `.wasm` plugins built from `plugins/`: sandbox
//! failures, routing, hot reload of the plugins folder, the compiled-code
//! cache, and `grito plugins check`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use grito::plugins::{Effect, NoIdentities, PluginError, PluginHost, PluginSettings};
use grito::store::Event;
use serde_json::json;

/// Builds the test plugins once per test process and returns the folder holding the `.wasm` files.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_grito"));
        let target_root = binary.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file()).expect("cargo target folder").to_path_buf();
        let target_dir = target_root.join("wasm-plugins");
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"]).arg(root.join("plugins/Cargo.toml"));
        command.arg("--target-dir").arg(&target_dir);
        for package in ["grito-webhook", "grito-email", "grito-test-loop", "grito-test-alloc", "grito-test-trap", "grito-test-garbage", "grito-test-clash", "grito-test-echo", "grito-test-noworld"] {
            command.args(["-p", package]);
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the test plugins failed (is `rustup target add wasm32-wasip2` done?)");
        target_dir.join("wasm32-wasip2/release")
    })
}

fn plugin_file(crate_name: &str) -> PathBuf {
    wasm_dir().join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// Copies a built plugin into `dir` as `file_name` through a rename, as an operator's deploy would.
fn install(dir: &Path, crate_name: &str, file_name: &str) {
    let temporary = dir.join(format!(".{file_name}.partial"));
    std::fs::copy(plugin_file(crate_name), &temporary).unwrap();
    std::fs::rename(&temporary, dir.join(file_name)).unwrap();
}

struct Folders {
    plugins: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Folders {
    fn new() -> Self {
        Self { plugins: tempfile::tempdir().unwrap(), data: tempfile::tempdir().unwrap() }
    }

    fn settings(&self) -> PluginSettings {
        PluginSettings {
            dir: self.plugins.path().to_path_buf(),
            cache_dir: self.data.path().join("plugin-cache"),
            memory_limit: 32 * 1024 * 1024,
            timeout: Duration::from_millis(100),
        }
    }

    async fn start(&self) -> PluginHost {
        PluginHost::start(self.settings(), Arc::new(NoIdentities)).await.expect("plugin host starts")
    }
}

fn event() -> Event {
    Event {
        id: uuid::Uuid::now_v7(),
        event_name: "user.signed_up".into(),
        user_id: uuid::Uuid::new_v4(),
        source: "app".into(),
        occurred_at: Utc::now(),
        payload: json!({"email": "maria@example.org", "name": "Maria", "address": {"city": "Recife"}}),
        idempotency_key: None,
        processed_at: None,
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing after 10 s.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn webhook_endpoint(host: &PluginHost) -> Option<String> {
    match host.run_action(&event(), &json!({"type": "webhook", "endpoint_ref": "CRM"}), Utc::now()).await {
        Ok(effects) => match effects.as_slice() {
            [Effect::DeliverWebhook { endpoint_ref }] => Some(endpoint_ref.clone()),
            other => panic!("unexpected effects {other:?}"),
        },
        Err(error) => panic!("webhook action failed: {error}"),
    }
}

#[tokio::test]
async fn builtin_email_resolves_placeholders() {
    let folders = Folders::new();
    let host = folders.start().await;
    let action = json!({"type": "email", "template_id": "welcome_01", "to": "{{payload.email}}", "variables": {"cidade": "{{payload.address.city}}"}});

    host.validate_action(&action).await.unwrap();
    let effects = host.run_action(&event(), &action, Utc::now()).await.unwrap();

    assert_eq!(
        effects,
        vec![Effect::SendEmail { template_id: "welcome_01".into(), to: "maria@example.org".into(), variables: vec![("cidade".into(), "Recife".into())] }]
    );
}

#[tokio::test]
async fn builtin_email_reports_missing_path_as_guest_error() {
    let folders = Folders::new();
    let host = folders.start().await;
    let action = json!({"type": "email", "template_id": "welcome_01", "to": "{{payload.contact.email}}"});

    let error = host.run_action(&event(), &action, Utc::now()).await.unwrap_err();

    assert!(error.is_guest_error(), "{error:?}");
    assert_eq!(error.code(), "missing_value");
    assert!(error.to_string().contains("payload.contact"), "{error}");
}

#[tokio::test]
async fn unknown_action_type_and_plugin_are_not_found() {
    let folders = Folders::new();
    let host = folders.start().await;

    let error = host.run_action(&event(), &json!({"type": "sms"}), Utc::now()).await.unwrap_err();
    assert_eq!(error, PluginError::NoPluginForAction { action_type: "sms".into() });
    let error = host.validate_action(&json!({"endpoint_ref": "x"})).await.unwrap_err();
    assert_eq!(error, PluginError::MissingActionType);
    let error = host.normalize("intelbras", Default::default()).await.unwrap_err();
    assert_eq!(error, PluginError::NotFound { plugin: "intelbras".into() });
}

#[tokio::test]
async fn sandbox_failures_fail_only_their_call() {
    let folders = Folders::new();
    for name in ["loop", "alloc", "trap", "garbage"] {
        install(folders.plugins.path(), &format!("grito-test-{name}"), &format!("{name}.wasm"));
    }
    // A generous deadline, so that on a loaded machine the allocating plugin
    // reaches the memory cap before the deadline.
    let settings = PluginSettings { timeout: Duration::from_millis(1000), ..folders.settings() };
    let host = PluginHost::start(settings, Arc::new(NoIdentities)).await.unwrap();
    let run = |kind: &'static str| {
        let host = host.clone();
        async move { host.run_action(&event(), &json!({"type": kind}), Utc::now()).await.unwrap_err() }
    };

    let started = Instant::now();
    let error = run("loop").await;
    assert_eq!(error, PluginError::Timeout { plugin: "loop".into(), timeout: Duration::from_millis(1000) });
    assert_eq!(error.to_string(), "plugin `loop` exceeded its 1000 ms CPU deadline");
    assert!(started.elapsed() < Duration::from_secs(5), "the deadline took {:?}", started.elapsed());

    let error = run("alloc").await;
    assert_eq!(error, PluginError::MemoryLimit { plugin: "alloc".into(), limit_bytes: 32 * 1024 * 1024 });

    let error = run("trap").await;
    assert!(matches!(&error, PluginError::Trap { plugin, .. } if plugin == "trap"), "{error:?}");
    assert!(error.to_string().contains("boom"), "the panic message is kept: {error}");

    let error = run("garbage").await;
    assert!(matches!(&error, PluginError::InvalidResult { plugin, .. } if plugin == "garbage"), "{error:?}");
    assert!(error.to_string().contains("user-id"), "{error}");

    assert_eq!(webhook_endpoint(&host).await.as_deref(), Some("CRM"));
    let error = run("loop").await;
    assert!(matches!(error, PluginError::Timeout { .. }), "a second call gets a fresh instance: {error:?}");
}

#[tokio::test]
async fn action_type_clash_fails_the_later_file() {
    let folders = Folders::new();
    install(folders.plugins.path(), "grito-test-clash", "mailer.wasm");
    let host = folders.start().await;

    let status = host.list().into_iter().find(|status| status.file.ends_with("mailer.wasm")).unwrap();
    assert_eq!(status.state, "failed");
    let error = status.error.unwrap();
    assert!(error.contains("action type `email`") && error.contains("built-in plugin `email`") && error.contains("mailer.wasm"), "{error}");

    let action = json!({"type": "email", "template_id": "t", "to": "a@example.org"});
    assert!(host.run_action(&event(), &action, Utc::now()).await.is_ok(), "the built-in keeps serving");
}

#[tokio::test]
async fn folder_changes_take_effect_without_restart() {
    let folders = Folders::new();
    let dir = folders.plugins.path();
    let host = folders.start().await;
    assert_eq!(webhook_endpoint(&host).await.as_deref(), Some("CRM"));

    install(dir, "grito-test-echo", "webhook.wasm");
    eventually("the file to override the built-in", async || webhook_endpoint(&host).await.filter(|endpoint| endpoint == "v2:CRM")).await;

    std::fs::write(dir.join("webhook.toml"), "prefix = \"cfg:\"\n").unwrap();
    eventually("the config file to reach the plugin", async || webhook_endpoint(&host).await.filter(|endpoint| endpoint == "cfg:CRM")).await;

    std::fs::write(dir.join("broken.wasm"), b"\0asm but not really").unwrap();
    let error = eventually("the broken file to be listed", async || {
        host.list().into_iter().find(|status| status.file.ends_with("broken.wasm")).and_then(|status| status.error)
    })
    .await;
    assert!(error.contains("not a valid WebAssembly component"), "{error}");
    assert_eq!(webhook_endpoint(&host).await.as_deref(), Some("cfg:CRM"), "a broken neighbour changes nothing");

    std::fs::copy(dir.join("broken.wasm"), dir.join(".webhook.partial")).unwrap();
    std::fs::rename(dir.join(".webhook.partial"), dir.join("webhook.wasm")).unwrap();
    eventually("the bad replacement to be listed", async || {
        host.list().into_iter().find(|status| status.file.ends_with("webhook.wasm")).and_then(|status| status.error)
    })
    .await;
    assert_eq!(webhook_endpoint(&host).await.as_deref(), Some("cfg:CRM"), "the previous version keeps serving");

    std::fs::remove_file(dir.join("webhook.wasm")).unwrap();
    eventually("the built-in to serve again", async || webhook_endpoint(&host).await.filter(|endpoint| endpoint == "CRM")).await;
}

#[tokio::test]
async fn half_written_file_waits_until_complete() {
    let folders = Folders::new();
    let dir = folders.plugins.path();
    let host = folders.start().await;
    let bytes = std::fs::read(plugin_file("grito-test-echo")).unwrap();
    let path = dir.join("webhook.wasm");

    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        assert!(host.list().iter().all(|status| !status.file.ends_with("webhook.wasm")), "a file still being written is not loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&bytes[bytes.len() / 2..]).unwrap();

    eventually("the completed file to load", async || webhook_endpoint(&host).await.filter(|endpoint| endpoint == "v2:CRM")).await;
    let status = host.list().into_iter().find(|status| status.file.ends_with("webhook.wasm")).unwrap();
    assert_eq!(status.error, None);
}

#[tokio::test]
async fn restart_reuses_compiled_code_and_recovers_corrupt_entries() {
    let folders = Folders::new();
    install(folders.plugins.path(), "grito-test-echo", "webhook.wasm");

    let first = folders.start().await;
    assert!(first.cache_counts().compiles >= 1);
    drop(first);

    let second = folders.start().await;
    let counts = second.cache_counts();
    assert_eq!(counts.compiles, 0, "nothing is recompiled: {counts:?}");
    assert!(counts.hits >= 2, "{counts:?}");
    drop(second);

    for entry in std::fs::read_dir(folders.data.path().join("plugin-cache")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "cwasm") {
            std::fs::write(&path, b"corrupted").unwrap();
        }
    }
    let third = folders.start().await;
    assert!(third.cache_counts().compiles >= 1);
    assert_eq!(webhook_endpoint(&third).await.as_deref(), Some("v2:CRM"));
}

fn grito_plugins_check(file: &Path) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_grito"))
        .args(["plugins", "check"])
        .arg(file)
        .env("DATA_DIR", data.path())
        .env("PLUGINS_DIR", plugins.path())
        .env("RUST_LOG", "error")
        .output()
        .expect("grito runs")
}

#[test]
fn plugins_check_prints_a_good_plugin() {
    let output = grito_plugins_check(&plugin_file("grito-email"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("name:         email"), "{stdout}");
    assert!(stdout.contains("kind:         action"), "{stdout}");
    assert!(stdout.contains("action types: email"), "{stdout}");
}

#[test]
fn plugins_check_rejects_a_non_wasm_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.wasm");
    std::fs::write(&file, "just text").unwrap();
    let output = grito_plugins_check(&file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr.contains("is not a usable Grito plugin") && stderr.contains("not a WebAssembly file"), "{stderr}");
}

#[test]
fn plugins_check_rejects_a_component_of_no_world() {
    let output = grito_plugins_check(&plugin_file("grito-test-noworld"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr.contains("implements no Grito world"), "{stderr}");
}
