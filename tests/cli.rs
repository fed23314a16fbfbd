//! The operator commands through the real `grito` binary: subscriptions,
//! events, automations and signatures, on both backends where they touch
//! storage, and the metrics counters after a full run under `grito serve`.

mod support;
#[path = "peers/receiver.rs"]
mod receiver;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use grito::store::{NewAutomation, NewEvent, NewSubscription};
use serde_json::{Value, json};
use support::API_KEY;
use uuid::Uuid;

const GRITO: &str = env!("CARGO_BIN_EXE_grito");

/// A command with a clean environment apart from PATH and HOME, on `database`.
fn grito(database: &str) -> Command {
    let mut command = Command::new(GRITO);
    command.env_clear();
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command.env("RUST_LOG", "warn").env("DATABASE_URL", database);
    command
}

/// Runs `grito ARGS` on `database`, returning (exit code, stdout, stderr).
fn cli(database: &str, args: &[&str]) -> (i32, String, String) {
    let output = grito(database).args(args).output().expect("grito runs");
    result(output)
}

fn result(output: Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `grito ARGS`, expecting success, and returns stdout.
fn ok(database: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = cli(database, args);
    assert_eq!(code, 0, "grito {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs `grito ARGS`, expecting exit code 1, and returns stderr.
fn fails(database: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = cli(database, args);
    assert_eq!(code, 1, "grito {args:?} should fail:\n{stdout}\n{stderr}");
    stderr
}

fn json_of(database: &str, args: &[&str]) -> Value {
    let stdout = ok(database, args);
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("grito {args:?} printed no JSON ({error}):\n{stdout}"))
}

fn event(name: &str, user: Uuid, source: &str, day: u32) -> NewEvent {
    NewEvent {
        event_name: name.into(),
        user_id: user,
        source: source.into(),
        occurred_at: Some(Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()),
        payload: json!({"name": "Maria Souza"}).as_object().unwrap().clone(),
        idempotency_key: None,
    }
}

both_backends!(subscription_commands_change_store, |db: support::TestDb| async move {
    let url = db.url.clone();

    let added = ok(&url, &["subscriptions", "add", "--name", "CRM-Doadores", "--url", "https://crm.example.org/hooks", "--events", "user.signed_up,payment.failed"]);
    let secret = added.lines().last().unwrap().trim().to_owned();
    assert!(added.contains("shown once"), "{added}");
    assert!(secret.len() >= 32, "generated secret `{secret}`");
    let stored = db.store.find_subscription_by_destination("CRM-Doadores").await.unwrap().unwrap();
    assert_eq!(stored.secret, secret);
    assert_eq!(stored.event_filter, ["user.signed_up", "payment.failed"]);

    let given = ok(&url, &["subscriptions", "add", "--name", "Planilha", "--url", "http://127.0.0.1:9/x", "--events", "a", "--secret", "a-given-secret-0123456789"]);
    assert!(!given.contains("a-given-secret-0123456789") && !given.contains("shown once"), "{given}");

    let table = ok(&url, &["subscriptions", "list"]);
    assert!(table.contains("CRM-Doadores") && table.contains("Planilha"), "{table}");
    let listed = json_of(&url, &["subscriptions", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    for text in [table, listed.to_string(), ok(&url, &["subscriptions", "show", "CRM-Doadores"]), ok(&url, &["subscriptions", "show", &stored.id.to_string(), "--json"])] {
        assert!(!text.contains(&secret) && !text.contains("a-given-secret"), "a secret was printed: {text}");
    }

    ok(&url, &["subscriptions", "disable", "CRM-Doadores"]);
    assert_eq!(json_of(&url, &["subscriptions", "show", "CRM-Doadores", "--json"])["enabled"], false);
    ok(&url, &["subscriptions", "enable", &stored.id.to_string()]);
    assert_eq!(json_of(&url, &["subscriptions", "show", "CRM-Doadores", "--json"])["enabled"], true);
    ok(&url, &["subscriptions", "set-events", "CRM-Doadores", "user.signed_up,checkin.created"]);
    ok(&url, &["subscriptions", "set-url", "CRM-Doadores", "https://crm2.example.org/in"]);
    let shown = json_of(&url, &["subscriptions", "show", "CRM-Doadores", "--json"]);
    assert_eq!(shown["event_filter"], json!(["user.signed_up", "checkin.created"]));
    assert_eq!(shown["endpoint_url"], "https://crm2.example.org/in");

    let rotated = ok(&url, &["subscriptions", "rotate-secret", "CRM-Doadores"]);
    let new_secret = rotated.lines().last().unwrap().trim().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(db.store.get_subscription(stored.id).await.unwrap().unwrap().secret, new_secret);

    let inserted = db.store.insert_event(event("user.signed_up", Uuid::new_v4(), "app", 1)).await.unwrap();
    assert_eq!(inserted.deliveries, 1);
    let refused = fails(&url, &["subscriptions", "delete", "CRM-Doadores"]);
    assert!(refused.contains("1 deliveries") && refused.contains("--force") && refused.contains("disable"), "{refused}");
    assert!(db.store.get_subscription(stored.id).await.unwrap().is_some());
    let deleted = ok(&url, &["subscriptions", "delete", "CRM-Doadores", "--force"]);
    assert!(deleted.contains("1 of its deliveries"), "{deleted}");
    ok(&url, &["subscriptions", "delete", "Planilha"]);
    assert!(ok(&url, &["subscriptions", "list"]).contains("no subscriptions"));
});

both_backends!(subscription_commands_reject_bad_values, |db: support::TestDb| async move {
    let url = db.url.clone();
    ok(&url, &["subscriptions", "add", "--name", "CRM", "--url", "https://crm.example.org/hooks", "--events", "user.signed_up"]);

    let duplicate = fails(&url, &["subscriptions", "add", "--name", "CRM", "--url", "https://other.example.org", "--events", "a"]);
    assert!(duplicate.contains("`CRM` already exists") && duplicate.contains("--name"), "{duplicate}");
    let scheme = fails(&url, &["subscriptions", "add", "--name", "Other", "--url", "ftp://crm.example.org", "--events", "a"]);
    assert!(scheme.contains("--url") && scheme.contains("http or https, got `ftp`"), "{scheme}");
    let empty = fails(&url, &["subscriptions", "add", "--name", "Other", "--url", "https://crm.example.org", "--events", ""]);
    assert!(empty.contains("--events"), "{empty}");
    let short = fails(&url, &["subscriptions", "add", "--name", "Other", "--url", "https://crm.example.org", "--events", "a", "--secret", "short"]);
    assert!(short.contains("--secret") && short.contains("16 characters"), "{short}");
    let bad_url = fails(&url, &["subscriptions", "set-url", "CRM", "not a url"]);
    assert!(bad_url.contains("is not a URL"), "{bad_url}");
    let missing = fails(&url, &["subscriptions", "disable", "Nope"]);
    assert!(missing.contains("`Nope` not found") && missing.contains("grito subscriptions list"), "{missing}");
    let (code, _, usage) = cli(&url, &["subscriptions", "add", "--name", "Other", "--url", "https://crm.example.org"]);
    assert_eq!(code, 2, "a missing option is a usage error: {usage}");

    assert_eq!(db.store.list_subscriptions().await.unwrap().len(), 1, "a rejected command changed the store");
});

both_backends!(events_list_filters_and_show, |db: support::TestDb| async move {
    let url = db.url.clone();
    let maria = Uuid::new_v4();
    let joao = Uuid::new_v4();
    db.store
        .create_subscription(NewSubscription {
            destination_name: "CRM".into(),
            endpoint_url: "http://127.0.0.1:9/hooks".into(),
            secret: "events-cli-secret-0123".into(),
            enabled: true,
            event_filter: vec!["payment.failed".into()],
        })
        .await
        .unwrap();
    let first = db.store.insert_event(event("user.signed_up", maria, "app", 1)).await.unwrap().id;
    let second = db.store.insert_event(event("payment.failed", maria, "stripe", 2)).await.unwrap().id;
    let third = db.store.insert_event(event("user.signed_up", joao, "app", 3)).await.unwrap().id;

    let ids = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["events", "list", "--json"];
        full.extend_from_slice(args);
        json_of(&url, &full).as_array().unwrap().iter().map(|event| event["id"].as_str().unwrap().to_owned()).collect()
    };
    let s = |id: Uuid| id.to_string();
    assert_eq!(ids(&[]), [s(third), s(second), s(first)]);
    assert_eq!(ids(&["--name", "user.signed_up"]), [s(third), s(first)]);
    assert_eq!(ids(&["--user", &maria.to_string()]), [s(second), s(first)]);
    assert_eq!(ids(&["--source", "stripe"]), [s(second)]);
    assert_eq!(ids(&["--since", "2026-03-02", "--until", "2026-03-03T00:00:00Z"]), [s(second)]);
    assert_eq!(ids(&["--limit", "1"]), [s(third)]);
    let table = ok(&url, &["events", "list", "--source", "app"]);
    assert!(table.contains(&s(first)) && table.contains(&s(third)) && !table.contains(&s(second)), "{table}");

    let bad_user = cli(&url, &["events", "list", "--user", "maria"]);
    assert_eq!(bad_user.0, 2, "{bad_user:?}");
    let bad_since = cli(&url, &["events", "list", "--since", "yesterday"]);
    assert!(bad_since.2.contains("RFC 3339"), "{bad_since:?}");

    let detail = json_of(&url, &["events", "show", &s(second), "--json"]);
    assert_eq!(detail["event_name"], "payment.failed");
    assert_eq!(detail["runs"], json!([]));
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(detail["deliveries"][0]["status"], "PENDING");
    let text = ok(&url, &["events", "show", &s(second)]);
    assert!(text.contains("payment.failed") && text.contains("PENDING") && text.contains("Maria Souza"), "{text}");
    let missing = fails(&url, &["events", "show", &s(Uuid::new_v4())]);
    assert!(missing.contains("not found") && missing.contains("grito events list"), "{missing}");

    // A subscription added after the event receives it on replay.
    db.store
        .create_subscription(NewSubscription {
            destination_name: "Planilha".into(),
            endpoint_url: "http://127.0.0.1:9/sheet".into(),
            secret: "events-cli-secret-4567".into(),
            enabled: true,
            event_filter: vec!["user.signed_up".into()],
        })
        .await
        .unwrap();
    let replayed = ok(&url, &["events", "replay", &s(first)]);
    assert!(replayed.contains("1 new deliveries, 0 FAIL"), "{replayed}");
    assert_eq!(db.store.list_deliveries_for_event(first).await.unwrap().len(), 1);
    assert!(ok(&url, &["events", "replay", &s(first)]).contains("0 new deliveries"));
});

both_backends!(automations_toggle_and_delete_by_name, |db: support::TestDb| async move {
    let url = db.url.clone();
    let automation = db
        .store
        .create_automation(NewAutomation {
            name: "Boas-vindas".into(),
            is_active: true,
            match_event: "user.signed_up".into(),
            condition_sql: Some("payload->>'plano' is null".into()),
            action: json!({"type": "email", "template_id": "welcome_01", "to": "{{payload.email}}"}),
        })
        .await
        .unwrap();

    ok(&url, &["automations", "deactivate", "Boas-vindas"]);
    assert_eq!(json_of(&url, &["automations", "show", "Boas-vindas", "--json"])["is_active"], false);
    ok(&url, &["automations", "activate", &automation.id.to_string()]);
    let shown = ok(&url, &["automations", "show", "Boas-vindas"]);
    assert!(shown.contains("active") && !shown.contains("inactive") && shown.contains("payload->>'plano' is null"), "{shown}");
    assert!(db.store.get_automation(automation.id).await.unwrap().unwrap().is_active);

    ok(&url, &["automations", "delete", "Boas-vindas"]);
    assert!(db.store.get_automation(automation.id).await.unwrap().is_none());
    let missing = fails(&url, &["automations", "activate", "Boas-vindas"]);
    assert!(missing.contains("`Boas-vindas` not found"), "{missing}");
});

/// `python3 -c` computing HMAC-SHA256 of FILE with SECRET, hex or Standard Webhooks.
fn python_signature(secret: &str, file: &Path, standard: Option<(&str, i64)>) -> String {
    let script = match standard {
        None => "import hmac,hashlib,sys; print('sha256=' + hmac.new(sys.argv[1].encode(), open(sys.argv[2],'rb').read(), hashlib.sha256).hexdigest())".to_owned(),
        Some((id, timestamp)) => format!(
            "import hmac,hashlib,sys,base64; body=open(sys.argv[2],'rb').read(); \
             print('v1,' + base64.b64encode(hmac.new(sys.argv[1].encode(), b'{id}.{timestamp}.' + body, hashlib.sha256).digest()).decode())"
        ),
    };
    let output = Command::new("python3").args(["-c", &script, secret]).arg(file).output().expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn sign_stdin(args: &[&str], body: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = grito("sqlite://unused.db").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    result(child.wait_with_output().unwrap())
}

#[test]
fn signature_matches_python_hmac() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    let body = b"{\"id\":\"e1\",\"payload\":{\"name\":\"Jos\xc3\xa9\"}}\n";
    std::fs::write(&file, body).unwrap();
    let path = file.to_str().unwrap();
    let secret = "SEU_SEGREDO_LONGO_ALEATORIO";
    let unused = "sqlite://unused.db";

    let expected = python_signature(secret, &file, None);
    assert_eq!(ok(unused, &["signature", "sign", "--secret", secret, path]).trim(), expected);
    let (code, from_stdin, _) = sign_stdin(&["signature", "sign", "--secret", secret, "-"], body);
    assert_eq!((code, from_stdin.trim()), (0, expected.as_str()), "stdin must be read byte for byte");
    let (_, without_newline, _) = sign_stdin(&["signature", "sign", "--secret", secret], &body[..body.len() - 1]);
    assert_ne!(without_newline.trim(), expected, "the trailing newline is part of the body");

    let standard = python_signature(secret, &file, Some(("msg_1", 1_700_000_000)));
    let args = ["signature", "sign", "--secret", secret, "--standard", "--id", "msg_1", "--timestamp", "1700000000", path];
    assert_eq!(ok(unused, &args).trim(), standard);

    assert!(ok(unused, &["signature", "verify", "--secret", secret, "--signature", &expected, path]).contains("matches"));
    let mismatch = fails(unused, &["signature", "verify", "--secret", "another-secret", "--signature", &expected, path]);
    assert!(mismatch.contains("does not match") && mismatch.contains("secret"), "{mismatch}");
    let malformed = fails(unused, &["signature", "verify", "--secret", secret, "--signature", "sha256=abc", path]);
    assert!(malformed.contains("is malformed"), "{malformed}");
    assert!(malformed.contains("sha256=<64 hex digits>"), "{malformed}");
    let both = format!("v1,AAAA {standard}");
    ok(unused, &["signature", "verify", "--secret", secret, "--signature", &both, "--standard", "--id", "msg_1", "--timestamp", "1700000000", path]);
    fails(unused, &["signature", "verify", "--secret", secret, "--signature", &standard, "--standard", "--id", "msg_2", "--timestamp", "1700000000", path]);
    let (code, _, usage) = cli(unused, &["signature", "sign", "--secret", secret, "--standard", path]);
    assert_eq!(code, 2, "--standard without --id is a usage error: {usage}");
    let missing = fails(unused, &["signature", "sign", "--secret", secret, "/nonexistent/body.json"]);
    assert!(missing.contains("/nonexistent/body.json"), "{missing}");
}

#[test]
fn help_describes_every_option() {
    for command in [
        &["subscriptions", "add"][..],
        &["subscriptions", "delete"],
        &["events", "list"],
        &["events", "replay"],
        &["signature", "sign"],
        &["signature", "verify"],
        &["automations", "activate"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = ok("sqlite://unused.db", &args);
        for line in help.lines().filter(|line| line.trim_start().starts_with("--") && !line.contains("--help")) {
            assert!(line.trim().split_once("  ").is_some(), "option without a description in {command:?}: {line}");
        }
    }
}

/// Reads one sample's value from Prometheus text; 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.parse().unwrap())
}

both_backends!(metrics_count_runs_attempts_and_plugins, |db: support::TestDb| async move {
    metrics_after_full_run(&db.url).await;
});

/// Seeds `database`, runs `grito serve` on it, posts the brief's sign-up
/// and checks the run, attempt and plugin-call metrics of that process.
async fn metrics_after_full_run(database: &str) {
    let database = database.to_owned();
    let secret = "metrics-cli-secret-0123456789";
    let receiver = receiver::Receiver::start(secret, "200");
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/../templates");
    let seeded = grito(&database).args(["seed", "--endpoint-url", &receiver.url("/hooks"), "--secret", secret]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = grito(&database)
        .arg("serve")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("EVENTS_API_KEY", API_KEY)
        .env("ALLOW_PRIVATE_ENDPOINTS", "true")
        .env("TEMPLATES_DIR", templates)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.get(format!("{base}/health")).send().await.is_ok_and(|response| response.status().is_success()) {
        assert!(Instant::now() < deadline, "grito serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = json!({
        "event_name": "user.signed_up",
        "user_id": Uuid::new_v4(),
        "source": "app",
        "payload": {"name": "Maria Souza", "email": "maria@email.com", "plano": null}
    });
    let posted = client.post(format!("{base}/events")).header("X-Api-Key", API_KEY).json(&body).send().await.unwrap();
    assert!(posted.status().is_success(), "{:?}", posted.text().await);
    receiver.wait_for(1, Duration::from_secs(10)).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let runs = sample(&text, "grito_automation_runs_total{outcome=\"succeeded\"}");
        let attempts = sample(&text, "grito_delivery_attempts_total{outcome=\"ok\",status_class=\"2xx\"}");
        if runs >= 1.0 && attempts >= 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "counters did not move:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(sample(&text, "grito_automation_runs_total{outcome=\"succeeded\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "grito_delivery_attempts_total{outcome=\"ok\",status_class=\"2xx\"}"), 1.0);
    assert_eq!(sample(&text, "grito_delivery_attempt_duration_seconds_count"), 1.0);
    let plugin_calls: f64 = text
        .lines()
        .filter(|line| line.starts_with("grito_plugin_call_duration_seconds_count{"))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert!(plugin_calls >= 2.0, "the condition and the action are plugin calls:\n{text}");
}
