//! The mailer against a real SMTP server on loopback (Python's aiosmtpd,
//! `pip install aiosmtpd`) and real storage on both backends: delivery of
//! the Portuguese welcome email, the retry schedule with injected time, no
//! resend after a restart, the `.eml` folder without SMTP, and the brief's
//! example end to end through the real binary and the built-in plugins.

mod support;
#[path = "peers/fake_plugins.rs"]
mod fake_plugins;
#[path = "peers/smtp_sink.rs"]
mod smtp_sink;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fake_plugins::FakePlugins;
use grito::config::Source;
use grito::engine::{Engine, EngineSettings};
use grito::mailer::{Mailer, MailerSettings, Templates, Transport};
use grito::signals::Signals;
use grito::store::{EmailStatus, NewAutomation, NewEvent, OutboxEmail, Store};
use serde_json::json;
use smtp_sink::{SmtpSink, decode_quoted_printable};
use uuid::Uuid;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 25, 12, 0, 0).unwrap()
}

fn settings(smtp_url: Option<&str>, data_dir: &Path) -> MailerSettings {
    let mut pairs = vec![("MAIL_FROM", "Clube do Grito <contato@grito.example.org>"), ("MAIL_TIMEOUT", "5s")];
    if let Some(url) = smtp_url {
        pairs.push(("SMTP_URL", url));
    }
    MailerSettings::from_source(&Source::from_pairs(pairs), data_dir).unwrap()
}

/// Stores a `user.signed_up` for Maria and lets the engine queue the
/// brief's welcome email; returns the outbox row.
async fn queue_welcome(store: &Arc<dyn Store>) -> OutboxEmail {
    store
        .create_automation(NewAutomation {
            name: "Boas-vindas".to_owned(),
            is_active: true,
            match_event: "user.signed_up".to_owned(),
            condition_sql: None,
            action: json!({"type": "email", "template_id": "welcome_01", "to": "{{payload.email}}", "variables": {"nome": "{{payload.name}}"}}),
        })
        .await
        .unwrap();
    let event = NewEvent {
        event_name: "user.signed_up".to_owned(),
        user_id: Uuid::new_v4(),
        source: "app".to_owned(),
        occurred_at: Some(start()),
        payload: json!({"email": "maria.souza@example.org", "name": "Maria Souza"}).as_object().unwrap().clone(),
        idempotency_key: None,
    };
    let event_id = store.insert_event(event).await.unwrap().id;
    let engine = Engine::new(
        store.clone(),
        Arc::new(FakePlugins::default()),
        Templates::new("/nonexistent-templates-folder"),
        Arc::new(Signals::default()),
        EngineSettings::default(),
    );
    engine.run_once(start()).await.unwrap();
    let mut emails = store.list_emails_for_event(event_id).await.unwrap();
    assert_eq!(emails.len(), 1);
    emails.remove(0)
}

fn assert_welcome(message: &str, email: &OutboxEmail) {
    let decoded = decode_quoted_printable(message);
    assert!(message.contains("To: maria.souza@example.org"), "{message}");
    assert!(message.contains("From: \"Clube do Grito\" <contato@grito.example.org>"), "{message}");
    assert!(message.contains(&format!("Message-ID: <{}@grito.example.org>", email.id)), "{message}");
    assert!(decoded.contains("Olá, Maria Souza! Boas-vindas ao Clube do Grito."), "{decoded}");
}

both_backends!(smtp_sink_receives_portuguese_welcome, |db: support::TestDb| async move {
    let store = db.store.clone();
    let sink = SmtpSink::start().await;
    let email = queue_welcome(&store).await;
    let dir = tempfile::tempdir().unwrap();

    let mailer = Mailer::new(store.clone(), settings(Some(&sink.url()), dir.path())).unwrap();
    let pass = mailer.run_once(start()).await.unwrap();
    assert_eq!(pass.sent, 1, "{pass:?}");

    let messages = sink.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    assert_welcome(&messages[0], &email);
    let stored = store.get_email(email.id).await.unwrap().unwrap();
    assert_eq!(stored.status, EmailStatus::Sent);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.sent_at, Some(start()));
});

both_backends!(accepted_email_is_not_resent_after_restart, |db: support::TestDb| async move {
    let store = db.store.clone();
    let sink = SmtpSink::start().await;
    let email = queue_welcome(&store).await;
    let dir = tempfile::tempdir().unwrap();

    let first = Mailer::new(store.clone(), settings(Some(&sink.url()), dir.path())).unwrap();
    assert_eq!(first.run_once(start()).await.unwrap().sent, 1);
    drop(first);

    // A restarted mailer, long after every lease and retry delay.
    let restarted = Mailer::new(store.clone(), settings(Some(&sink.url()), dir.path())).unwrap();
    for hours in [1, 24, 24 * 30] {
        let pass = restarted.run_once(start() + chrono::Duration::hours(hours)).await.unwrap();
        assert_eq!(pass.claimed, 0, "after {hours} h");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(store.get_email(email.id).await.unwrap().unwrap().status, EmailStatus::Sent);
});

both_backends!(refused_smtp_retries_on_schedule_then_fails, |db: support::TestDb| async move {
    let store = db.store.clone();
    let email = queue_welcome(&store).await;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port, so every connection is refused.
    let refused = format!("smtp://127.0.0.1:{}?tls=none", smtp_sink::free_port());
    let mailer = Mailer::new(store.clone(), settings(Some(&refused), dir.path())).unwrap();

    let mut now = start();
    for (attempt, wait_minutes) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32)] {
        let pass = mailer.run_once(now).await.unwrap();
        assert_eq!(pass.retried, 1, "attempt {attempt}: {pass:?}");
        let stored = store.get_email(email.id).await.unwrap().unwrap();
        assert_eq!(stored.status, EmailStatus::Pending);
        assert_eq!(stored.attempts, attempt);
        assert_eq!(stored.next_attempt_at, now + chrono::Duration::minutes(wait_minutes), "attempt {attempt}");
        assert!(stored.last_error.as_deref().unwrap().contains("SMTP send failed"), "{stored:?}");

        // Not due a second before its time.
        let early = mailer.run_once(stored.next_attempt_at - chrono::Duration::seconds(1)).await.unwrap();
        assert_eq!(early.claimed, 0, "attempt {attempt}");
        now = stored.next_attempt_at;
    }

    let pass = mailer.run_once(now).await.unwrap();
    assert_eq!(pass.failed, 1, "{pass:?}");
    let stored = store.get_email(email.id).await.unwrap().unwrap();
    assert_eq!(stored.status, EmailStatus::Fail);
    assert_eq!(stored.attempts, 6);
    assert_eq!(mailer.run_once(now + chrono::Duration::days(1)).await.unwrap().claimed, 0);
});

both_backends!(claimed_email_is_leased_from_other_mailers, |db: support::TestDb| async move {
    let store = db.store.clone();
    let email = queue_welcome(&store).await;

    let claimed = store.claim_emails(start(), Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, email.id);
    assert!(store.claim_emails(start(), Duration::from_secs(60), 10).await.unwrap().is_empty());
    // A mailer that died mid-send leaves the row to come back after the lease.
    let again = store.claim_emails(start() + chrono::Duration::seconds(60), Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(again.len(), 1);
});

both_backends!(without_smtp_url_writes_eml_file, |db: support::TestDb| async move {
    let store = db.store.clone();
    let email = queue_welcome(&store).await;
    let dir = tempfile::tempdir().unwrap();

    let settings = settings(None, dir.path());
    assert!(matches!(settings.transport().unwrap(), Transport::Folder(_)));
    let mailer = Mailer::new(store.clone(), settings).unwrap();
    assert_eq!(mailer.run_once(start()).await.unwrap().sent, 1);

    let path = dir.path().join("outbox").join(format!("{}.eml", email.id));
    let message = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_welcome(&message, &email);
    assert_eq!(store.get_email(email.id).await.unwrap().unwrap().status, EmailStatus::Sent);
});

/// Runs the real binary with `env`, waiting for it to exit.
fn grito(env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grito"))
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .expect("the grito binary runs");
    assert!(output.status.success(), "grito {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

both_backends!(brief_example_sends_welcome_email, |db: support::TestDb| async move {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = smtp_sink::free_port();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("DATA_DIR", dir.path().join("data").display().to_string()),
        ("PLUGINS_DIR", dir.path().join("plugins").display().to_string()),
        ("TEMPLATES_DIR", dir.path().join("templates").display().to_string()),
        ("BIND", format!("127.0.0.1:{port}")),
        ("EVENTS_API_KEY", support::API_KEY.to_owned()),
        ("SMTP_URL", sink.url()),
        ("MAIL_FROM", "Clube do Grito <contato@grito.example.org>".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    // The seeded subscription points at a closed loopback port, which the
    // dispatcher refuses by default, so nothing leaves this machine.
    let closed = format!("http://127.0.0.1:{}/webhooks/grito", smtp_sink::free_port());
    grito(&env, &["seed", "--endpoint-url", &closed, "--secret", "segredo-longo-0123456789"]);

    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_grito"))
        .arg("serve")
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("grito serve starts");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "grito serve did not answer /health within 20 s");

    let response = client
        .post(format!("{base}/events"))
        .header("X-Api-Key", support::API_KEY)
        .json(&json!({
            "event_name": "user.signed_up",
            "user_id": Uuid::new_v4(),
            "source": "app",
            "payload": {"email": "maria.souza@example.org", "name": "Maria Souza"},
            "idempotency_key": "signup:maria:2025-09-25"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let event_id: Uuid = serde_json::from_value(body["id"].clone()).unwrap();

    let messages = sink.wait_for(1).await;
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(messages.len(), 1, "the SMTP sink received no welcome email");
    let email = db.store.list_emails_for_event(event_id).await.unwrap().remove(0);
    assert_welcome(&messages[0], &email);
    assert_eq!(email.status, EmailStatus::Sent);
    let runs = db.store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, grito::store::RunStatus::Succeeded);
});
