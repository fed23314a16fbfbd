//! The plugin author kit. Crates from `grito plugins new` build for
//! wasm32-wasip2 and pass `grito plugins check` unchanged, and a running
//! server picks up a new action. The example plugins in `plugins/examples`
//! behave as documented inside the real host. Plugins built against another
//! minor version of the WIT package are rejected, and `grito automations
//! preview` runs an author's action.
//!
//! Crates are built into `TARGET/wasm-plugins-kit`, shared by every test
//! process; a crate is rewritten only when its generated text changes, so a
//! warm run only asks cargo whether anything is stale.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use grito::plugins::{Effect, InboundRequest, NoIdentities, PluginHost, PluginSettings};
use grito::store::Event;
use serde_json::{Value, json};

const GRITO: &str = env!("CARGO_BIN_EXE_grito");

/// `TARGET/wasm-plugins-kit`, where TARGET is the cargo target folder of this test binary.
fn kit_dir() -> PathBuf {
    let binary = PathBuf::from(GRITO);
    let target_root = binary.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file()).expect("cargo target folder");
    target_root.join("wasm-plugins-kit")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `grito` with a clean environment apart from PATH and HOME, in `dir`.
fn grito(dir: &Path) -> Command {
    let mut command = Command::new(GRITO);
    command.current_dir(dir).env_clear();
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One text replacement in a generated file: (file, from, to).
type Edit<'a> = (&'a str, &'a str, &'a str);

/// Runs `grito plugins new NAME --kind KIND`, applies `edits` to the
/// generated files, and returns the crate's folder under the shared kit folder.
fn new_crate(name: &str, kind: &str, edits: &[Edit]) -> PathBuf {
    let scratch = tempfile::tempdir().unwrap();
    let output = grito(scratch.path()).args(["plugins", "new", name, "--kind", kind, "--dir"]).arg(scratch.path()).output().unwrap();
    assert_success("grito plugins new", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("created {kind} plugin `{name}`")), "{stdout}");

    let generated = scratch.path().join(name);
    for (file, from, to) in edits {
        let path = generated.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no `{from}` to replace");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    let kept = kit_dir().join("crates").join(name);
    sync_tree(&generated, &kept);
    kept
}

/// The edit that declares package version `version` in the crate's WIT copy.
fn wit_version(version: &str) -> (&'static str, &'static str, String) {
    ("wit/grito.wit", "package grito:plugin@0.1.0;", format!("package grito:plugin@{version};"))
}

/// Copies every file of `from` into `to`, writing only files whose content
/// differs, so cargo finds unchanged crates fresh and does not rebuild them.
fn sync_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            sync_tree(&entry.path(), &target);
            continue;
        }
        let content = std::fs::read(entry.path()).unwrap();
        if std::fs::read(&target).ok().as_deref() != Some(content.as_slice()) {
            std::fs::create_dir_all(to).unwrap();
            std::fs::write(&target, content).unwrap();
        }
    }
}

/// Builds the crate or workspace of `manifest` for wasm32-wasip2 into the kit folder.
fn build_wasm(manifest: &Path) {
    let output = cargo()
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(kit_dir())
        .output()
        .unwrap();
    assert_success(&format!("building {} (is `rustup target add wasm32-wasip2` done?)", manifest.display()), &output);
}

fn wasm_file(package: &str) -> PathBuf {
    kit_dir().join("wasm32-wasip2/release").join(format!("{}.wasm", package.replace('-', "_")))
}

/// Generates, edits and builds a template crate; returns its `.wasm` file.
fn template_wasm(name: &str, kind: &str, edits: &[Edit]) -> PathBuf {
    let dir = new_crate(name, kind, edits);
    build_wasm(&dir.join("Cargo.toml"));
    wasm_file(name)
}

/// Builds `plugins/examples` once per test process; returns the folder of its `.wasm` files.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        build_wasm(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/Cargo.toml"));
        kit_dir().join("wasm32-wasip2/release")
    })
}

fn example_wasm(name: &str) -> PathBuf {
    examples_dir().join(format!("grito_example_{}.wasm", name.replace('-', "_")))
}

fn plugins_check(file: &Path) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    grito(scratch.path())
        .args(["plugins", "check"])
        .arg(file)
        .env("DATA_DIR", scratch.path().join("data"))
        .env("PLUGINS_DIR", scratch.path().join("plugins"))
        .output()
        .unwrap()
}

/// Copies `wasm` into `dir` as `file_name` through a rename, as a deploy does.
fn install(wasm: &Path, dir: &Path, file_name: &str) {
    let partial = dir.join(format!(".{file_name}.partial"));
    std::fs::copy(wasm, &partial).unwrap();
    std::fs::rename(&partial, dir.join(file_name)).unwrap();
}

fn assert_template_builds_tests_and_checks(kind: &str) {
    let name = format!("kit-{kind}");
    let dir = new_crate(&name, kind, &[]);

    let tested = cargo().args(["test", "--manifest-path"]).arg(dir.join("Cargo.toml")).arg("--target-dir").arg(kit_dir()).output().unwrap();
    assert_success("cargo test of the template", &tested);
    build_wasm(&dir.join("Cargo.toml"));
    let checked = plugins_check(&wasm_file(&name));

    assert_success("grito plugins check", &checked);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(stdout.contains(&format!("name:         {name}")), "{stdout}");
    assert!(stdout.contains(&format!("kind:         {kind}")), "{stdout}");
}

#[test]
fn action_template_builds_and_passes_check() {
    assert_template_builds_tests_and_checks("action");
}

#[test]
fn condition_template_builds_and_passes_check() {
    assert_template_builds_tests_and_checks("condition");
}

#[test]
fn normalizer_template_builds_and_passes_check() {
    assert_template_builds_tests_and_checks("normalizer");
}

#[test]
fn new_rejects_bad_name_and_existing_folder() {
    let scratch = tempfile::tempdir().unwrap();
    let bad = grito(scratch.path()).args(["plugins", "new", "Tarefas", "--kind", "action"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid plugin name `Tarefas`"), "{bad:?}");

    std::fs::create_dir(scratch.path().join("tarefas")).unwrap();
    let existing = grito(scratch.path()).args(["plugins", "new", "tarefas", "--kind", "action"]).output().unwrap();
    assert_eq!(existing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&existing.stderr).contains("already exists"), "{existing:?}");
    assert!(!scratch.path().join("tarefas/Cargo.toml").exists());
}

#[test]
fn newer_minor_wit_is_rejected_with_both_versions() {
    let (file, from, to) = wit_version("0.2.0");
    let wasm = template_wasm("kit-wit-next-minor", "action", &[(file, from, &to)]);

    let checked = plugins_check(&wasm);

    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(
        stderr.contains("plugin built against grito:plugin@0.2.0, this host provides 0.1.0; rebuild it against 0.1.x"),
        "{stderr}"
    );
}

#[test]
fn older_minor_wit_is_rejected_with_both_versions() {
    let (file, from, to) = wit_version("0.0.9");
    let wasm = template_wasm("kit-wit-old-minor", "action", &[(file, from, &to)]);

    let checked = plugins_check(&wasm);

    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("plugin built against grito:plugin@0.0.9, this host provides 0.1.0"), "{stderr}");
}

#[test]
fn newer_patch_wit_loads() {
    let (file, from, to) = wit_version("0.1.1");
    let wasm = template_wasm("kit-wit-next-patch", "action", &[(file, from, &to)]);

    let checked = plugins_check(&wasm);

    assert_success("grito plugins check of a 0.1.1 plugin", &checked);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("name:         kit-wit-next-patch"));
}

#[test]
fn changed_effect_variant_fails_type_check() {
    let (file, from, to) = wit_version("0.1.1");
    let new_case = ("wit/grito.wit", "emit-event(event-draft),\n", "emit-event(event-draft),\n        skip,\n");
    let wasm = template_wasm("kit-wit-new-effect", "action", &[(file, from, &to), new_case]);

    let checked = plugins_check(&wasm);

    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("does not match the `action` world of grito:plugin@0.1.0"), "{stderr}");
    assert!(stderr.contains("expected variant of 3 cases, found 4 cases"), "{stderr}");
}

#[test]
fn unknown_host_function_fails_to_link() {
    let (file, from, to) = wit_version("0.1.1");
    let new_function = (
        "wit/grito.wit",
        "lookup-identity: func(identity: external-identity) -> option<string>;\n",
        "lookup-identity: func(identity: external-identity) -> option<string>;\n    random: func() -> u64;\n",
    );
    let call = ("src/lib.rs", "fn validate(action: String, _config: String) -> Result<(), PluginError> {\n", "fn validate(action: String, _config: String) -> Result<(), PluginError> {\n            let _ = grito::plugin::host::random();\n");
    let wasm = template_wasm("kit-wit-new-host-fn", "action", &[(file, from, &to), new_function, call]);

    let checked = plugins_check(&wasm);

    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("imports something the host does not provide"), "{stderr}");
    assert!(stderr.contains("grito:plugin/host@0.1.1"), "{stderr}");
    assert!(stderr.contains("`random`"), "{stderr}");
}

#[test]
fn core_module_is_told_to_build_a_component() {
    let scratch = tempfile::tempdir().unwrap();
    let module = scratch.path().join("core.wasm");
    // The smallest valid core module: magic number and version 1, no sections.
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();

    let checked = plugins_check(&module);

    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("not a valid WebAssembly component"), "{stderr}");
    assert!(stderr.contains("Build plugins for wasm32-wasip2"), "{stderr}");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn new_action_loads_into_running_server() {
    let wasm = template_wasm("kit-hot-action", "action", &[]);
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let mut child = grito(dir.path())
        .arg("serve")
        .env("EVENTS_API_KEY", "kit-events-key-0123456789")
        .env("BIND", format!("127.0.0.1:{}", free_port()))
        .env("PLUGINS_DIR", &plugins)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    wait_for_log(&received, "watching plugins folder", "");

    install(&wasm, &plugins, "kit-hot-action.wasm");

    let loaded = wait_for_log(&received, "plugin loaded", "kit-hot-action");
    let line: Value = serde_json::from_str(&loaded).unwrap();
    assert_eq!(line["plugin"], json!("kit-hot-action"), "{loaded}");
    let listed = grito(dir.path()).args(["plugins", "list", "--json"]).env("PLUGINS_DIR", &plugins).output().unwrap();
    assert_success("grito plugins list --json", &listed);
    let rows: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let row = rows.iter().find(|row| row["file"].as_str().is_some_and(|file| file.ends_with("kit-hot-action.wasm"))).expect("the file is listed");
    assert_eq!(row["state"], json!("loaded"), "{row}");
    let table = grito(dir.path()).args(["plugins", "list"]).env("PLUGINS_DIR", &plugins).output().unwrap();
    assert_success("grito plugins list", &table);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.lines().any(|line| line.starts_with("kit-hot-action") && line.contains("loaded")), "{table}");
}

/// Waits up to 30 s for a log line containing `message` and `also`.
fn wait_for_log(lines: &mpsc::Receiver<String>, message: &str, also: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(message) && line.contains(also) => return line,
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    panic!("no log line with `{message}` and `{also}` within 30 s");
}

fn host_settings(plugins: &Path, data: &Path) -> PluginSettings {
    PluginSettings {
        dir: plugins.to_path_buf(),
        cache_dir: data.join("plugin-cache"),
        memory_limit: PluginSettings::DEFAULT_MEMORY_LIMIT,
        timeout: Duration::from_secs(1),
    }
}

fn event(payload: Value) -> Event {
    Event {
        id: uuid::Uuid::now_v7(),
        event_name: "user.signed_up".into(),
        user_id: uuid::Uuid::new_v4(),
        source: "app".into(),
        occurred_at: Utc::now(),
        payload,
        idempotency_key: None,
        processed_at: None,
    }
}

#[test]
fn examples_pass_their_unit_tests() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/Cargo.toml");

    let tested = cargo().args(["test", "--manifest-path"]).arg(&manifest).arg("--target-dir").arg(kit_dir()).output().unwrap();

    assert_success("cargo test of plugins/examples", &tested);
}

#[tokio::test]
async fn task_example_delivers_and_emits_task_requested() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    install(&example_wasm("task-request"), plugins.path(), "task-request.wasm");
    std::fs::write(plugins.path().join("task-request.toml"), "source = \"tarefas\"\n").unwrap();
    let host = PluginHost::open(host_settings(plugins.path(), data.path()), Arc::new(NoIdentities)).await.unwrap();
    let trigger = event(json!({"name": "Maria"}));
    let action = json!({"type": "task", "endpoint_ref": "Tarefas", "title": "Ligar para {{payload.name}}"});

    let effects = host.run_action(&trigger, &action, Utc::now()).await.unwrap();

    assert_eq!(effects.len(), 2, "{effects:?}");
    assert_eq!(effects[0], Effect::DeliverWebhook { endpoint_ref: "Tarefas".into() });
    let Effect::EmitEvent(draft) = &effects[1] else { panic!("second effect is not emit-event: {:?}", effects[1]) };
    assert_eq!(draft.event_name, "task.requested");
    assert_eq!(draft.user_id, Some(trigger.user_id));
    assert_eq!(draft.source, "tarefas");
    assert_eq!(draft.payload["title"], json!("Ligar para Maria"));
    assert_eq!(draft.payload["from_event"], json!(trigger.id.to_string()));
    assert_eq!(draft.idempotency_key.as_deref(), Some(format!("task:{}:Tarefas", trigger.id).as_str()));
}

#[tokio::test]
async fn task_example_rejects_missing_endpoint() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    install(&example_wasm("task-request"), plugins.path(), "task-request.wasm");
    let host = PluginHost::open(host_settings(plugins.path(), data.path()), Arc::new(NoIdentities)).await.unwrap();

    let error = host.validate_action(&json!({"type": "task", "title": "Ligar"})).await.unwrap_err();

    assert!(error.is_guest_error(), "{error:?}");
    assert_eq!(error.code(), "invalid_action");
    assert!(error.to_string().contains("`endpoint_ref` is missing"), "{error}");
}

#[tokio::test]
async fn bairro_example_reads_its_toml_config() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    install(&example_wasm("bairro-condition"), plugins.path(), "bairro-condition.wasm");
    std::fs::write(plugins.path().join("bairro-condition.toml"), "bairros = [\"Boa Viagem\"]\nzona_norte = [\"Casa Amarela\", \"Água Fria\"]\n").unwrap();
    let host = PluginHost::open(host_settings(plugins.path(), data.path()), Arc::new(NoIdentities)).await.unwrap();
    let evaluate = |payload: Value, condition: &'static str| {
        let host = host.clone();
        async move { host.evaluate_condition_with("bairro-condition", &event(payload), condition, Utc::now()).await }
    };

    assert_eq!(evaluate(json!({"bairro": "boa viagem"}), "").await, Ok(true));
    assert_eq!(evaluate(json!({"bairro": "Água Fria"}), "zona_norte").await, Ok(true));
    assert_eq!(evaluate(json!({"bairro": "Pina"}), "bairros").await, Ok(false));
    assert_eq!(evaluate(json!({"cidade": "Recife"}), "bairros").await, Ok(false));
    let error = evaluate(json!({"bairro": "Pina"}), "zona_sul").await.unwrap_err();
    assert_eq!(error.code(), "invalid_condition");
    assert!(error.to_string().contains("`zona_sul`"), "{error}");
}

#[tokio::test]
async fn form_example_turns_form_post_into_one_draft() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    install(&example_wasm("form-post"), plugins.path(), "form-post.wasm");
    let host = PluginHost::open(host_settings(plugins.path(), data.path()), Arc::new(NoIdentities)).await.unwrap();
    let user = uuid::Uuid::new_v4();
    let request = InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
        body: format!("user_id={user}&event=form.submitted&nome=Maria+da+Silva&bairro=Casa%20Amarela").into_bytes(),
        ..InboundRequest::default()
    };

    let drafts = host.normalize("form-post", request).await.unwrap();

    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(drafts[0].event_name, "form.submitted");
    assert_eq!(drafts[0].user_id, Some(user));
    assert_eq!(drafts[0].source, "form-post");
    assert_eq!(Value::Object(drafts[0].payload.clone()), json!({"nome": "Maria da Silva", "bairro": "Casa Amarela"}));

    let json_post = InboundRequest { method: "POST".into(), headers: vec![("content-type".into(), "application/json".into())], ..InboundRequest::default() };
    let error = host.normalize("form-post", json_post).await.unwrap_err();
    assert_eq!(error.code(), "invalid_request");
}

#[test]
fn preview_runs_an_example_action() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install(&example_wasm("task-request"), &plugins, "task-request.wasm");
    let with_plugins = |command: &mut Command| {
        command.env("PLUGINS_DIR", &plugins);
    };

    // A closed loopback port: the preview sends nothing anyway.
    let mut seed = grito(dir.path());
    with_plugins(seed.args(["seed", "--endpoint-url", "http://127.0.0.1:9/tarefas", "--secret", "kit-secret"]));
    assert_success("grito seed", &seed.output().unwrap());
    let mut add = grito(dir.path());
    with_plugins(add.args([
        "automations",
        "add",
        "--name",
        "Tarefa de boas-vindas",
        "--match-event",
        "user.signed_up",
        "--action",
        r#"{"type":"task","endpoint_ref":"CRM-Doadores","title":"Ligar para {{payload.name}}"}"#,
    ]));
    assert_success("grito automations add", &add.output().unwrap());
    std::fs::write(dir.path().join("event.json"), r#"{"event_name":"user.signed_up","source":"app","payload":{"name":"Maria"}}"#).unwrap();

    let mut preview = grito(dir.path());
    with_plugins(preview.args(["automations", "preview", "Tarefa de boas-vindas", "--event", "event.json"]));
    let output = preview.output().unwrap();

    assert_success("grito automations preview", &output);
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["would_run"], json!(true), "{result}");
    assert_eq!(result["status"], json!("succeeded"), "{result}");
    let effects = result["effects"].as_array().unwrap();
    assert_eq!(effects.len(), 2, "{result}");
    assert_eq!(effects[0]["endpoint_url"], json!("http://127.0.0.1:9/tarefas"), "{result}");
    assert_eq!(effects[1]["event_name"], json!("task.requested"), "{result}");
}
