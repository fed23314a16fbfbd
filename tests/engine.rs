//! The automation engine against real storage on both backends: which
//! automations run, what their runs and effects write, failures, two
//! engines on one database, and a crash between the plugin call and the
//! commit. Plugins are a test double here; `tests/mailer.rs` drives the
//! real binary with the built-in Wasm plugins.

mod support;
#[path = "peers/fake_plugins.rs"]
mod fake_plugins;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fake_plugins::FakePlugins;
use grito::engine::{Engine, EngineSettings, Plugins, preview, preview_event, validate_automation};
use grito::mailer::Templates;
use grito::signals::Signals;
use grito::store::{Automation, NewAutomation, NewEvent, NewSubscription, RunStatus, Store};
use serde_json::{Value, json};
use uuid::Uuid;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 25, 12, 0, 0).unwrap()
}

fn engine(store: &Arc<dyn Store>, plugins: Arc<dyn Plugins>) -> Engine {
    Engine::new(
        store.clone(),
        plugins,
        Templates::new("/nonexistent-templates-folder"),
        Arc::new(Signals::default()),
        EngineSettings::default(),
    )
}

fn welcome_action() -> Value {
    json!({"type": "email", "template_id": "welcome_01", "to": "{{payload.email}}", "variables": {"nome": "{{payload.name}}"}})
}

async fn automation(store: &Arc<dyn Store>, name: &str, match_event: &str, condition: Option<&str>, action: Value) -> Automation {
    store
        .create_automation(NewAutomation {
            name: name.to_owned(),
            is_active: true,
            match_event: match_event.to_owned(),
            condition_sql: condition.map(str::to_owned),
            action,
        })
        .await
        .unwrap()
}

async fn signed_up(store: &Arc<dyn Store>, payload: Value) -> Uuid {
    let event = NewEvent {
        event_name: "user.signed_up".to_owned(),
        user_id: Uuid::new_v4(),
        source: "app".to_owned(),
        occurred_at: Some(start()),
        payload: payload.as_object().unwrap().clone(),
        idempotency_key: None,
    };
    store.insert_event(event).await.unwrap().id
}

fn maria() -> Value {
    json!({"email": "maria@example.org", "name": "Maria Souza"})
}

async fn subscription(store: &Arc<dyn Store>, name: &str, filter: &[&str]) -> Uuid {
    store
        .create_subscription(NewSubscription {
            destination_name: name.to_owned(),
            endpoint_url: "https://crm.example.org/hooks".to_owned(),
            secret: "secret-0123456789".to_owned(),
            enabled: true,
            event_filter: filter.iter().map(|name| (*name).to_owned()).collect(),
        })
        .await
        .unwrap()
        .id
}

both_backends!(runs_only_active_matching_automations, |db: support::TestDb| async move {
    let store = db.store.clone();
    let welcome = automation(&store, "Boas-vindas", "user.signed_up", None, welcome_action()).await;
    let other = automation(&store, "Pagamento", "payment.failed", None, welcome_action()).await;
    let inactive = store
        .create_automation(NewAutomation {
            name: "Desligada".to_owned(),
            is_active: false,
            match_event: "user.signed_up".to_owned(),
            condition_sql: None,
            action: welcome_action(),
        })
        .await
        .unwrap();
    let event_id = signed_up(&store, maria()).await;

    let plugins = Arc::new(FakePlugins::default());
    let pass = engine(&store, plugins.clone()).run_once(start()).await.unwrap();
    assert_eq!(pass.claimed, 1);
    assert_eq!(pass.processed, 1);

    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].automation_id, welcome.id);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].condition_result, None);
    assert!(runs.iter().all(|run| run.automation_id != other.id && run.automation_id != inactive.id));
    assert_eq!(plugins.action_calls(), 1);

    let emails = store.list_emails_for_event(event_id).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, "maria@example.org");
    assert_eq!(emails[0].subject, "Boas-vindas ao Clube do Grito, Maria Souza!");
    assert!(emails[0].body_text.starts_with("Olá, Maria Souza!"));

    // A second pass finds nothing left to do.
    let pass = engine(&store, plugins.clone()).run_once(start() + chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(pass.claimed, 0);
    assert_eq!(plugins.action_calls(), 1);
});

both_backends!(false_condition_records_skipped_run, |db: support::TestDb| async move {
    let store = db.store.clone();
    let no_plan = automation(&store, "Sem plano", "user.signed_up", Some("payload->>'plan' is null"), welcome_action()).await;
    let event_id = signed_up(&store, json!({"email": "a@example.org", "name": "Ana", "plan": {"id": "pro"}})).await;

    let plugins = Arc::new(FakePlugins::default());
    engine(&store, plugins.clone()).run_once(start()).await.unwrap();

    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].automation_id, no_plan.id);
    assert_eq!(runs[0].status, RunStatus::Skipped);
    assert_eq!(runs[0].condition_result, Some(false));
    assert_eq!(runs[0].effects, None);
    assert_eq!(plugins.action_calls(), 0, "a false condition must not run the action");
    assert!(store.list_emails_for_event(event_id).await.unwrap().is_empty());
    assert!(store.get_event(event_id).await.unwrap().unwrap().processed_at.is_some());
});

both_backends!(effects_commit_with_run_and_processed_at, |db: support::TestDb| async move {
    let store = db.store.clone();
    subscription(&store, "CRM-Doadores", &["donation.created"]).await;
    let action = json!({
        "type": "email_then_webhook", "template_id": "welcome_01", "to": "{{payload.email}}",
        "variables": {"nome": "{{payload.name}}"}, "endpoint_ref": "CRM-Doadores"
    });
    let both = automation(&store, "Boas-vindas e CRM", "user.signed_up", Some("true"), action).await;
    let event_id = signed_up(&store, maria()).await;
    assert!(store.list_deliveries_for_event(event_id).await.unwrap().is_empty(), "the filter does not match this event");

    let now = start() + chrono::Duration::seconds(30);
    engine(&store, Arc::new(FakePlugins::default())).run_once(now).await.unwrap();

    let event = store.get_event(event_id).await.unwrap().unwrap();
    assert_eq!(event.processed_at, Some(now));
    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.automation_id, both.id);
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.condition_result, Some(true));

    let emails = store.list_emails_for_event(event_id).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].run_id, Some(run.id));
    assert_eq!(emails[0].automation_id, Some(both.id));
    let deliveries = store.list_deliveries_for_event(event_id).await.unwrap();
    assert_eq!(deliveries.len(), 1, "the webhook effect adds the delivery");

    let effects = run.effects.as_ref().unwrap().as_array().unwrap();
    assert_eq!(effects.len(), 2);
    assert_eq!(effects[0]["type"], "send_email");
    assert_eq!(effects[0]["outbox_id"], json!(emails[0].id));
    assert_eq!(effects[1]["type"], "deliver_webhook");
    assert_eq!(effects[1]["delivery_id"], json!(deliveries[0].id));
});

both_backends!(unknown_endpoint_ref_fails_run_and_writes_nothing, |db: support::TestDb| async move {
    let store = db.store.clone();
    let action = json!({
        "type": "email_then_webhook", "template_id": "welcome_01", "to": "{{payload.email}}",
        "variables": {"nome": "{{payload.name}}"}, "endpoint_ref": "CRM-Inexistente"
    });
    automation(&store, "CRM errado", "user.signed_up", None, action).await;
    let event_id = signed_up(&store, maria()).await;

    engine(&store, Arc::new(FakePlugins::default())).run_once(start()).await.unwrap();

    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed);
    let error = runs[0].error.as_deref().unwrap();
    assert!(error.contains("no subscription has destination_name `CRM-Inexistente`"), "{error}");
    assert!(store.list_emails_for_event(event_id).await.unwrap().is_empty(), "the run's email must be rolled back");
    assert!(store.list_deliveries_for_event(event_id).await.unwrap().is_empty());
    assert!(store.get_event(event_id).await.unwrap().unwrap().processed_at.is_some());
});

both_backends!(webhook_effect_adds_no_second_delivery, |db: support::TestDb| async move {
    let store = db.store.clone();
    let subscription_id = subscription(&store, "CRM-Doadores", &["user.signed_up"]).await;
    automation(&store, "CRM", "user.signed_up", None, json!({"type": "webhook", "endpoint_ref": "CRM-Doadores"})).await;
    let event_id = signed_up(&store, maria()).await;
    let fanned_out = store.list_deliveries_for_event(event_id).await.unwrap();
    assert_eq!(fanned_out.len(), 1, "the subscription's filter already queued a delivery");

    engine(&store, Arc::new(FakePlugins::default())).run_once(start()).await.unwrap();

    let deliveries = store.list_deliveries_for_event(event_id).await.unwrap();
    assert_eq!(deliveries, fanned_out);
    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    let effect = &runs[0].effects.as_ref().unwrap()[0];
    assert_eq!(effect["subscription_id"], json!(subscription_id));
    assert_eq!(effect["delivery_id"], Value::Null);
});

both_backends!(plugin_failure_fails_only_its_run, |db: support::TestDb| async move {
    let store = db.store.clone();
    let trap = automation(&store, "Quebrada", "user.signed_up", None, json!({"type": "trap"})).await;
    let unknown = automation(&store, "Sem plugin", "user.signed_up", None, json!({"type": "sms"})).await;
    let bad_condition = automation(&store, "Condição ruim", "user.signed_up", Some("fail"), welcome_action()).await;
    let welcome = automation(&store, "Boas-vindas", "user.signed_up", None, welcome_action()).await;
    let event_id = signed_up(&store, maria()).await;

    engine(&store, Arc::new(FakePlugins::default())).run_once(start()).await.unwrap();

    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 4);
    let run_of = |id: Uuid| runs.iter().find(|run| run.automation_id == id).unwrap().clone();
    let trapped = run_of(trap.id);
    assert_eq!(trapped.status, RunStatus::Failed);
    assert!(trapped.error.as_deref().unwrap().contains("action failed: plugin trap"), "{trapped:?}");
    let no_plugin = run_of(unknown.id);
    assert_eq!(no_plugin.status, RunStatus::Failed);
    assert!(no_plugin.error.as_deref().unwrap().contains("action type `sms`"), "{no_plugin:?}");
    let condition = run_of(bad_condition.id);
    assert_eq!(condition.status, RunStatus::Failed);
    assert_eq!(condition.condition_result, None);
    assert!(condition.error.as_deref().unwrap().starts_with("condition failed:"), "{condition:?}");
    assert_eq!(run_of(welcome.id).status, RunStatus::Succeeded);
    assert_eq!(store.list_emails_for_event(event_id).await.unwrap().len(), 1);
    assert!(store.get_event(event_id).await.unwrap().unwrap().processed_at.is_some());
});

both_backends!(missing_template_fails_run_clearly, |db: support::TestDb| async move {
    let store = db.store.clone();
    let action = json!({"type": "email", "template_id": "farewell_99", "to": "{{payload.email}}", "variables": {}});
    automation(&store, "Despedida", "user.signed_up", None, action).await;
    let missing_variable = json!({"type": "email", "template_id": "welcome_01", "to": "{{payload.email}}", "variables": {}});
    automation(&store, "Sem nome", "user.signed_up", None, missing_variable).await;
    let event_id = signed_up(&store, maria()).await;

    engine(&store, Arc::new(FakePlugins::default())).run_once(start()).await.unwrap();

    let runs = store.list_runs_for_event(event_id).await.unwrap();
    assert_eq!(runs.len(), 2);
    let errors: Vec<&str> = runs.iter().map(|run| run.error.as_deref().unwrap()).collect();
    assert!(errors.iter().any(|error| error.contains("email template `farewell_99` not found")), "{errors:?}");
    assert!(errors.iter().any(|error| error.contains("welcome_01.subject.txt") && error.contains("undefined")), "{errors:?}");
    assert!(store.list_emails_for_event(event_id).await.unwrap().is_empty());
});

both_backends!(emitted_event_is_stored_and_fanned_out, |db: support::TestDb| async move {
    let store = db.store.clone();
    subscription(&store, "CRM-Doadores", &["user.profile_completed"]).await;
    automation(&store, "Encadeada", "user.signed_up", None, json!({"type": "emit", "event_name": "user.profile_completed"})).await;
    automation(&store, "Identidade", "user.signed_up", None, json!({"type": "emit_identity"})).await;
    let event_id = signed_up(&store, maria()).await;

    let signals = Arc::new(Signals::default());
    let engine = Engine::new(
        store.clone(),
        Arc::new(FakePlugins::default()),
        Templates::new("/nonexistent-templates-folder"),
        signals.clone(),
        EngineSettings::default(),
    );
    engine.run_once(start()).await.unwrap();

    let runs = store.list_runs_for_event(event_id).await.unwrap();
    let emitted_run = runs.iter().find(|run| run.status == RunStatus::Succeeded).expect("the emit run succeeded");
    let emitted_id: Uuid = serde_json::from_value(emitted_run.effects.as_ref().unwrap()[0]["event_id"].clone()).unwrap();
    let emitted = store.get_event(emitted_id).await.unwrap().unwrap();
    assert_eq!(emitted.event_name, "user.profile_completed");
    assert_eq!(emitted.idempotency_key, Some(format!("emit:{event_id}")));
    assert_eq!(emitted.processed_at, None, "the emitted event waits for its own pass");
    assert_eq!(store.list_deliveries_for_event(emitted_id).await.unwrap().len(), 1, "fan-out as in POST /events");

    let identity_run = runs.iter().find(|run| run.status == RunStatus::Failed).expect("the identity run failed");
    assert!(identity_run.error.as_deref().unwrap().contains("identity resolution not available"), "{identity_run:?}");

    // Both wake-ups fire: the engine for the new event, the dispatcher for its delivery.
    tokio::time::timeout(Duration::from_secs(1), signals.events.notified()).await.expect("engine woken");
    tokio::time::timeout(Duration::from_secs(1), signals.deliveries.notified()).await.expect("dispatcher woken");
});

both_backends!(two_engines_never_run_one_event_twice, |db: support::TestDb| async move {
    let store = db.store.clone();
    automation(&store, "Boas-vindas", "user.signed_up", None, welcome_action()).await;
    let mut event_ids = Vec::new();
    for index in 0..40 {
        event_ids.push(signed_up(&store, json!({"email": format!("p{index}@example.org"), "name": format!("Pessoa {index}")})).await);
    }

    let plugins = Arc::new(FakePlugins::default());
    let settings = EngineSettings { batch_size: 5, ..EngineSettings::default() };
    let make = || {
        Arc::new(Engine::new(
            store.clone(),
            plugins.clone(),
            Templates::new("/nonexistent-templates-folder"),
            Arc::new(Signals::default()),
            settings.clone(),
        ))
    };
    let workers: Vec<_> = [make(), make()]
        .into_iter()
        .map(|engine| {
            tokio::spawn(async move {
                let mut processed = 0;
                loop {
                    let pass = engine.run_once(start()).await.unwrap();
                    processed += pass.processed;
                    if pass.claimed == 0 {
                        return processed;
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }

    assert_eq!(total, 40, "every event committed exactly once across both engines");
    for event_id in &event_ids {
        let runs = store.list_runs_for_event(*event_id).await.unwrap();
        assert_eq!(runs.len(), 1, "event {event_id}");
        assert_eq!(store.list_emails_for_event(*event_id).await.unwrap().len(), 1, "event {event_id}");
    }
    assert_eq!(plugins.action_calls(), 40, "leases keep the engines off each other's events");
});

both_backends!(crash_before_commit_leaves_one_run, |db: support::TestDb| async move {
    let store = db.store.clone();
    automation(&store, "Boas-vindas", "user.signed_up", None, welcome_action()).await;
    let event_id = signed_up(&store, maria()).await;

    // The first engine stops for good after the plugin call, before its
    // commit, and is then aborted like a killed process.
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel::<()>();
    let reached_tx = std::sync::Mutex::new(Some(reached_tx));
    let plugins = Arc::new(FakePlugins::default());
    let doomed = engine(&store, plugins.clone()).with_before_commit(Arc::new(move |_event_id| {
        if let Some(sender) = reached_tx.lock().unwrap().take() {
            let _ = sender.send(());
        }
        Box::pin(std::future::pending())
    }));
    let task = tokio::spawn(async move { doomed.run_once(start()).await });
    reached_rx.await.expect("the engine reached the commit");
    task.abort();
    let _ = task.await;
    assert_eq!(plugins.action_calls(), 1);

    assert!(store.list_runs_for_event(event_id).await.unwrap().is_empty());
    assert!(store.list_emails_for_event(event_id).await.unwrap().is_empty());
    assert_eq!(store.get_event(event_id).await.unwrap().unwrap().processed_at, None);

    // A restarted engine waits for the dead one's lease, then retries once.
    let restarted = engine(&store, plugins.clone());
    let pass = restarted.run_once(start() + chrono::Duration::seconds(30)).await.unwrap();
    assert_eq!(pass.claimed, 0, "the lease still holds");
    let after_lease = start() + chrono::Duration::from_std(EngineSettings::default().lease).unwrap();
    let pass = restarted.run_once(after_lease).await.unwrap();
    assert_eq!(pass.processed, 1, "{pass:?}");
    let pass = restarted.run_once(after_lease + chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(pass.claimed, 0);

    assert_eq!(store.list_runs_for_event(event_id).await.unwrap().len(), 1);
    assert_eq!(store.list_emails_for_event(event_id).await.unwrap().len(), 1);
    assert_eq!(plugins.action_calls(), 2);
});

both_backends!(preview_writes_nothing, |db: support::TestDb| async move {
    let store = db.store.clone();
    subscription(&store, "CRM-Doadores", &[]).await;
    let action = json!({
        "type": "email_then_webhook", "template_id": "welcome_01", "to": "{{payload.email}}",
        "variables": {"nome": "{{payload.name}}"}, "endpoint_ref": "CRM-Doadores"
    });
    let welcome = automation(&store, "Boas-vindas", "user.signed_up", Some("true"), action).await;
    let found = store.find_automation("Boas-vindas").await.unwrap().unwrap();
    assert_eq!(found.id, welcome.id);
    assert_eq!(store.find_automation(&welcome.id.to_string()).await.unwrap().unwrap().id, welcome.id);

    let body = json!({"event_name": "user.signed_up", "source": "app", "payload": maria()});
    let event = preview_event(&body, start()).unwrap();
    let templates = Templates::new("/nonexistent-templates-folder");
    let plugins = FakePlugins::default();
    let result = preview(store.as_ref(), &plugins, &templates, &found, event.clone(), start()).await.unwrap();

    assert!(result.would_run);
    assert_eq!(result.status, RunStatus::Succeeded, "{result:?}");
    assert_eq!(result.condition_result, Some(true));
    assert_eq!(result.effects[0]["subject"], "Boas-vindas ao Clube do Grito, Maria Souza!");
    assert_eq!(result.effects[0]["to"], "maria@example.org");
    assert!(result.effects[1]["subscription_id"].is_string());
    assert!(store.get_event(event.id).await.unwrap().is_none(), "the preview event is not stored");
    assert_eq!(store.queue_stats().await.unwrap().unprocessed_events, 0);
    assert_eq!(store.pending_emails().await.unwrap(), 0);
});

both_backends!(invalid_automations_are_rejected, |db: support::TestDb| async move {
    let _store = db.store.clone();
    let plugins = FakePlugins::default();
    let templates = Templates::new("/nonexistent-templates-folder");
    let valid = NewAutomation {
        name: "Boas-vindas".to_owned(),
        is_active: true,
        match_event: "user.signed_up".to_owned(),
        condition_sql: Some("payload->>'plan' is null".to_owned()),
        action: welcome_action(),
    };
    validate_automation(&plugins, &templates, &valid).await.unwrap();

    let unknown_type = NewAutomation { action: json!({"type": "sms"}), ..valid.clone() };
    let error = validate_automation(&plugins, &templates, &unknown_type).await.unwrap_err();
    assert!(error.to_string().contains("action type `sms`"), "{error}");

    let bad_condition = NewAutomation { condition_sql: Some("payload ->>> 1".to_owned()), ..valid.clone() };
    let error = validate_automation(&plugins, &templates, &bad_condition).await.unwrap_err();
    assert_eq!(error.problems[0].field, "condition_sql");

    let missing_template = NewAutomation { action: json!({"type": "email", "template_id": "nao_existe"}), ..valid.clone() };
    let error = validate_automation(&plugins, &templates, &missing_template).await.unwrap_err();
    assert!(error.to_string().contains("email template `nao_existe` not found"), "{error}");

    let everything = NewAutomation { name: " ".to_owned(), match_event: String::new(), action: json!("email"), ..valid };
    let error = validate_automation(&plugins, &templates, &everything).await.unwrap_err();
    let fields: Vec<&str> = error.problems.iter().map(|problem| problem.field).collect();
    assert_eq!(fields, ["name", "match_event", "action"]);
});
