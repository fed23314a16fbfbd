//! The webhook dispatcher against real receivers on loopback and both
//! storage backends: signing, the retry schedule under an injected clock,
//! failure kinds, leases, concurrent dispatchers, the dead letter, and the
//! SSRF guard.

mod support;
#[path = "peers/receiver.rs"]
mod receiver;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, TimeZone, Utc};
use grito::dispatcher::{Clock, Dispatcher, DispatcherSettings, ManualClock};
use grito::signals::Signals;
use grito::store::{
    Delivery, DeliveryFilter, DeliveryStatus, NewEvent, NewSubscription, PgStore, RequeueFilter, RequeueOutcome, SqliteStore, Store,
    Subscription,
};
use receiver::{Receiver, closed_port};
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "SEU_SEGREDO_LONGO_ALEATORIO";
const EVENT: &str = "user.signed_up";

/// Settings for loopback receivers: private endpoints allowed, short timeout.
fn loopback_settings() -> DispatcherSettings {
    DispatcherSettings { allow_private_endpoints: true, timeout: Duration::from_secs(2), ..DispatcherSettings::default() }
}

async fn subscribe(store: &dyn Store, name: &str, url: &str) -> Subscription {
    store
        .create_subscription(NewSubscription {
            destination_name: name.to_owned(),
            endpoint_url: url.to_owned(),
            secret: SECRET.to_owned(),
            enabled: true,
            event_filter: vec![EVENT.to_owned()],
        })
        .await
        .expect("subscription is stored")
}

async fn post_event(store: &dyn Store, key: &str) -> Uuid {
    let mut payload = serde_json::Map::new();
    payload.insert("name".into(), json!("Maria Souza"));
    payload.insert("email".into(), json!("maria@email.com"));
    payload.insert("bairro".into(), json!("Jardim Alvorada"));
    let inserted = store
        .insert_event(NewEvent {
            event_name: EVENT.to_owned(),
            user_id: Uuid::new_v4(),
            source: "app".to_owned(),
            occurred_at: Some(Utc.with_ymd_and_hms(2025, 9, 25, 12, 0, 0).unwrap()),
            payload,
            idempotency_key: Some(key.to_owned()),
        })
        .await
        .expect("event is stored");
    assert!(inserted.deliveries > 0, "the event queued no delivery");
    inserted.id
}

async fn delivery_of(store: &dyn Store, event_id: Uuid) -> Delivery {
    let deliveries = store.list_deliveries_for_event(event_id).await.unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    deliveries.into_iter().next().unwrap()
}

/// A filter that lists every delivery.
fn all_deliveries() -> DeliveryFilter {
    DeliveryFilter { limit: 1000, ..DeliveryFilter::default() }
}

/// `clock`'s time plus `minutes`, rounded to microseconds as the database stores it.
fn minutes_from_now(clock: &ManualClock, minutes: i64) -> chrono::DateTime<Utc> {
    (clock.now() + chrono::Duration::minutes(minutes)).trunc_subsecs(6)
}

/// A second connection pool on the same database, as another node would have.
async fn second_store(db: &support::TestDb) -> Arc<dyn Store> {
    match db.backend {
        support::Backend::Postgres => Arc::new(PgStore::connect(&db.url).await.unwrap()),
        support::Backend::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").unwrap();
            Arc::new(SqliteStore::open(std::path::Path::new(path)).await.unwrap())
        }
    }
}

both_backends!(delivery_is_signed_and_recorded, |db: support::TestDb| async move {
    let receiver = Receiver::start(SECRET, "200");
    let subscription = subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let event_id = post_event(db.store.as_ref(), "signup:1").await;
    let dispatcher = Dispatcher::new(db.store.clone(), loopback_settings()).unwrap();

    let processed = dispatcher.run_once().await.unwrap();

    assert_eq!(processed.len(), 1);
    let requests = receiver.wait_for(1, Duration::from_secs(5)).await;
    let request = &requests[0];
    assert_eq!(request["grito_signature_ok"], true, "{request}");
    assert_eq!(request["standard_signature_ok"], true, "{request}");
    let headers = &request["headers"];
    let delivery = delivery_of(db.store.as_ref(), event_id).await;
    assert_eq!(headers["webhook-id"], delivery.id.to_string());
    assert_eq!(headers["x-grito-event"], EVENT);
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers["user-agent"].as_str().unwrap().starts_with("Grito/"), "{headers}");
    let timestamp: i64 = headers["webhook-timestamp"].as_str().unwrap().parse().unwrap();
    assert!((Utc::now().timestamp() - timestamp).abs() < 10);

    let raw = request["body"].as_str().unwrap();
    let positions: Vec<usize> = ["id", "event_name", "user_id", "occurred_at", "source", "payload"]
        .iter()
        .map(|key| raw.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} missing from {raw}")))
        .collect();
    assert!(positions.is_sorted(), "fields out of the brief's order: {raw}");
    let body: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 6, "{raw}");
    assert_eq!(body["id"], event_id.to_string());
    assert_eq!(body["occurred_at"], "2025-09-25T12:00:00.000000Z");
    assert_eq!(body["payload"]["bairro"], "Jardim Alvorada");

    assert_eq!(delivery.status, DeliveryStatus::Ok);
    assert_eq!(delivery.attempt, 1);
    assert_eq!(delivery.subscription_id, Some(subscription.id));
    let attempts = db.store.list_attempts(delivery.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].attempt, 1);
    assert_eq!(attempts[0].response_status, Some(200));
    assert_eq!(attempts[0].error, None);
    assert!(attempts[0].response_body.as_deref().unwrap().contains("received"));
});

both_backends!(whsec_secret_is_base64_key, |db: support::TestDb| async move {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let receiver = Receiver::start(secret, "200");
    db.store
        .create_subscription(NewSubscription {
            destination_name: "standard".into(),
            endpoint_url: receiver.url("/hook"),
            secret: secret.into(),
            enabled: true,
            event_filter: vec![EVENT.into()],
        })
        .await
        .unwrap();
    let event_id = post_event(db.store.as_ref(), "signup:whsec").await;

    Dispatcher::new(db.store.clone(), loopback_settings()).unwrap().run_once().await.unwrap();

    let requests = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(requests[0]["standard_signature_ok"], true, "{}", requests[0]);
    assert_eq!(requests[0]["grito_signature_ok"], true, "{}", requests[0]);
    assert_eq!(delivery_of(db.store.as_ref(), event_id).await.status, DeliveryStatus::Ok);
});

both_backends!(retry_schedule_then_fail, |db: support::TestDb| async move {
    let receiver = Receiver::start(SECRET, "500");
    subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let event_id = post_event(db.store.as_ref(), "signup:retry").await;
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let dispatcher = Dispatcher::new(db.store.clone(), loopback_settings()).unwrap().with_clock(clock.clone());

    for (attempt, minutes) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32)] {
        let processed = dispatcher.run_once().await.unwrap();
        assert_eq!(processed.len(), 1, "attempt {attempt} was not made");
        let delivery = delivery_of(db.store.as_ref(), event_id).await;
        assert_eq!(delivery.status, DeliveryStatus::Pending, "after attempt {attempt}");
        assert_eq!(delivery.attempt, attempt);
        assert_eq!(delivery.next_attempt_at, Some(minutes_from_now(&clock, minutes)), "after attempt {attempt}");
        assert!(delivery.last_error.as_deref().unwrap().starts_with("HTTP 500"), "{:?}", delivery.last_error);

        clock.advance(Duration::from_secs(minutes as u64 * 60) - Duration::from_secs(1));
        assert!(dispatcher.run_once().await.unwrap().is_empty(), "retried before {minutes} minutes");
        clock.advance(Duration::from_secs(1));
    }

    let processed = dispatcher.run_once().await.unwrap();
    assert_eq!(processed.len(), 1);
    let delivery = delivery_of(db.store.as_ref(), event_id).await;
    assert_eq!(delivery.status, DeliveryStatus::Fail);
    assert_eq!(delivery.attempt, 6);
    assert_eq!(delivery.next_attempt_at, None);
    clock.advance(Duration::from_secs(3600));
    assert!(dispatcher.run_once().await.unwrap().is_empty(), "a FAIL delivery was attempted again");

    let attempts = db.store.list_attempts(delivery.id).await.unwrap();
    assert_eq!(attempts.iter().map(|attempt| attempt.attempt).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    assert!(attempts.iter().all(|attempt| attempt.response_status == Some(500)));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6);
    assert!(requests.iter().all(|request| request["webhook_id"] == delivery.id.to_string()));
    assert!(requests.iter().all(|request| request["standard_signature_ok"] == true));
});

both_backends!(retry_after_overrides_schedule, |db: support::TestDb| async move {
    let receiver = Receiver::start(SECRET, "retry-after");
    subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let event_id = post_event(db.store.as_ref(), "signup:retry-after").await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let dispatcher = Dispatcher::new(db.store.clone(), loopback_settings()).unwrap().with_clock(clock.clone());

    dispatcher.run_once().await.unwrap();

    let delivery = delivery_of(db.store.as_ref(), event_id).await;
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.next_attempt_at, Some(minutes_from_now(&clock, 10)), "Retry-After: 600 was not honoured");
    assert!(delivery.last_error.as_deref().unwrap().starts_with("HTTP 503"));
});

both_backends!(failure_kinds_are_described, |db: support::TestDb| async move {
    let receiver = Receiver::start_with(SECRET, "200", 5.0);
    let closed = format!("http://127.0.0.1:{}/hook", closed_port());
    let cases = [
        ("not-found", receiver.url("/mode/404"), "HTTP 404"),
        ("unavailable", receiver.url("/mode/503"), "HTTP 503"),
        ("redirect", receiver.url("/mode/redirect"), "HTTP 301: redirects are not followed (Location: /moved-here)"),
        ("hang", receiver.url("/mode/hang"), "timed out after 1s"),
        ("reset", receiver.url("/mode/reset"), "connection"),
        ("closed", closed, "connection refused"),
    ];
    for (name, url, _) in &cases {
        subscribe(db.store.as_ref(), name, url).await;
    }
    let event_id = post_event(db.store.as_ref(), "signup:failures").await;
    let settings = DispatcherSettings { timeout: Duration::from_secs(1), ..loopback_settings() };
    let dispatcher = Dispatcher::new(db.store.clone(), settings).unwrap();

    let processed = dispatcher.run_once().await.unwrap();

    assert_eq!(processed.len(), cases.len());
    let deliveries = db.store.list_deliveries(&all_deliveries()).await.unwrap();
    for (name, _, expected) in &cases {
        let summary = deliveries.iter().find(|summary| summary.subscription_name.as_deref() == Some(name)).unwrap();
        assert_eq!(summary.delivery.status, DeliveryStatus::Pending, "{name}");
        assert_eq!(summary.delivery.attempt, 1, "{name}");
        assert_eq!(summary.delivery.event_id, Some(event_id));
        let error = summary.delivery.last_error.as_deref().unwrap();
        assert!(error.starts_with(expected), "{name}: `{error}` should start with `{expected}`");
    }
    let paths: Vec<String> = receiver.requests().iter().map(|request| request["path"].as_str().unwrap().to_owned()).collect();
    assert!(!paths.iter().any(|path| path == "/moved-here"), "a redirect was followed: {paths:?}");
});

both_backends!(disabled_subscription_goes_to_dead_letter, |db: support::TestDb| async move {
    let receiver = Receiver::start(SECRET, "200");
    let subscription = subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let event_id = post_event(db.store.as_ref(), "signup:disabled").await;
    db.store.set_subscription_enabled(subscription.id, false).await.unwrap();
    let dispatcher = Dispatcher::new(db.store.clone(), loopback_settings()).unwrap();

    dispatcher.run_once().await.unwrap();

    let delivery = delivery_of(db.store.as_ref(), event_id).await;
    assert_eq!(delivery.status, DeliveryStatus::Fail);
    assert_eq!(delivery.attempt, 0);
    assert_eq!(delivery.last_error.as_deref(), Some("subscription disabled"));
    assert!(db.store.list_attempts(delivery.id).await.unwrap().is_empty());
    assert!(dispatcher.run_once().await.unwrap().is_empty(), "the disabled delivery loops");
    assert!(receiver.requests().is_empty());

    db.store.set_subscription_enabled(subscription.id, true).await.unwrap();
    assert_eq!(db.store.requeue_delivery(delivery.id).await.unwrap(), RequeueOutcome::Requeued);
    dispatcher.run_once().await.unwrap();

    let delivery = delivery_of(db.store.as_ref(), event_id).await;
    assert_eq!(delivery.status, DeliveryStatus::Ok);
    assert_eq!(delivery.attempt, 1);
    assert_eq!(receiver.requests().len(), 1);
});

both_backends!(requeue_resets_attempts_and_keeps_history, |db: support::TestDb| async move {
    let receiver = Receiver::start(SECRET, "500");
    subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    subscribe(db.store.as_ref(), "Outro-CRM", &receiver.url("/other")).await;
    let event_id = post_event(db.store.as_ref(), "signup:requeue").await;
    let settings = DispatcherSettings { max_attempts: 2, retry_schedule: vec![Duration::ZERO], ..loopback_settings() };
    let dispatcher = Dispatcher::new(db.store.clone(), settings).unwrap();
    dispatcher.run_once().await.unwrap();
    dispatcher.run_once().await.unwrap();
    let failed = db.store.list_deliveries(&DeliveryFilter { status: Some(DeliveryStatus::Fail), limit: 10, ..all_deliveries() }).await.unwrap();
    assert_eq!(failed.len(), 2);

    let pending_id = Uuid::new_v4();
    assert_eq!(db.store.requeue_delivery(pending_id).await.unwrap(), RequeueOutcome::NotFound);
    let filter = RequeueFilter { subscription: Some("CRM-Doadores".into()), since: None };
    let requeued = db.store.requeue_failed(&filter).await.unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(db.store.requeue_delivery(requeued[0]).await.unwrap(), RequeueOutcome::NotFailed(DeliveryStatus::Pending));
    let future = RequeueFilter { subscription: None, since: Some(Utc::now() + chrono::Duration::hours(1)) };
    assert!(db.store.requeue_failed(&future).await.unwrap().is_empty());

    let delivery = db.store.get_delivery(requeued[0]).await.unwrap().unwrap();
    assert_eq!(delivery.subscription_name.as_deref(), Some("CRM-Doadores"));
    assert_eq!(delivery.delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.delivery.attempt, 0);
    assert_eq!(delivery.delivery.next_attempt_at, None);

    receiver.set_mode("200").await;
    dispatcher.run_once().await.unwrap();
    let delivery = db.store.get_delivery(requeued[0]).await.unwrap().unwrap();
    assert_eq!(delivery.delivery.status, DeliveryStatus::Ok);
    assert_eq!(delivery.delivery.attempt, 1);
    let attempts = db.store.list_attempts(requeued[0]).await.unwrap();
    assert_eq!(attempts.iter().map(|attempt| attempt.attempt).collect::<Vec<_>>(), [1, 2, 1]);
    assert_eq!(attempts.iter().map(|attempt| attempt.response_status).collect::<Vec<_>>(), [Some(500), Some(500), Some(200)]);
    let _ = event_id;
});

both_backends!(abandoned_claim_returns_after_lease, |db: support::TestDb| async move {
    let receiver = Receiver::start(SECRET, "200");
    subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let event_id = post_event(db.store.as_ref(), "signup:lease").await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let dispatcher = Dispatcher::new(db.store.clone(), loopback_settings()).unwrap().with_clock(clock.clone());
    let lease = dispatcher.settings().lease();
    let now = clock.now();

    // A worker claims the delivery and dies before sending it.
    let crashed = db.store.claim_due_deliveries(now, now + chrono::Duration::from_std(lease).unwrap(), 20).await.unwrap();
    assert_eq!(crashed.len(), 1);
    assert!(dispatcher.run_once().await.unwrap().is_empty(), "a leased delivery was claimed twice");
    clock.advance(lease - Duration::from_secs(1));
    assert!(dispatcher.run_once().await.unwrap().is_empty(), "the lease ended early");

    clock.advance(Duration::from_secs(1));
    let processed = dispatcher.run_once().await.unwrap();

    assert_eq!(processed.len(), 1);
    assert!(processed[0].recorded);
    assert_eq!(delivery_of(db.store.as_ref(), event_id).await.status, DeliveryStatus::Ok);
    assert_eq!(receiver.requests().len(), 1);

    // The crashed worker comes back late: its outcome is not written.
    let stale = grito::store::DeliveryOutcome {
        status: DeliveryStatus::Fail,
        attempt: 1,
        last_error: Some("stale".into()),
        next_attempt_at: None,
        log: None,
    };
    assert!(!db.store.finish_attempt(crashed[0].id, crashed[0].lease_until, stale).await.unwrap());
    let delivery = delivery_of(db.store.as_ref(), event_id).await;
    assert_eq!(delivery.status, DeliveryStatus::Ok);
    assert_eq!(delivery.last_error, None);
});

both_backends!(two_dispatchers_send_burst_once, |db: support::TestDb| async move {
    const EVENTS: usize = 200;
    let receiver = Receiver::start(SECRET, "200");
    subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let other_node = second_store(&db).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    let mut all_signals = Vec::new();
    for store in [db.store.clone(), other_node.clone()] {
        let signals = Arc::new(Signals::default());
        let settings = DispatcherSettings { sweep_interval: Duration::from_millis(50), ..loopback_settings() };
        let dispatcher = Dispatcher::new(store, settings).unwrap();
        workers.push(tokio::spawn(dispatcher.run(signals.clone(), stopped.clone())));
        all_signals.push(signals);
    }

    for index in 0..EVENTS {
        post_event(db.store.as_ref(), &format!("burst:{index}")).await;
        all_signals[index % 2].deliveries.notify_one();
    }
    receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending = db.store.queue_stats().await.unwrap().pending_deliveries;
        if pending == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{pending} deliveries still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }

    let mut per_id: HashMap<String, usize> = HashMap::new();
    for request in receiver.requests() {
        *per_id.entry(request["webhook_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(per_id.len(), EVENTS);
    let repeated: Vec<_> = per_id.iter().filter(|(_, count)| **count != 1).collect();
    assert!(repeated.is_empty(), "sent more than once: {repeated:?}");
    let delivered = db.store.list_deliveries(&DeliveryFilter { status: Some(DeliveryStatus::Ok), limit: 1000, ..all_deliveries() }).await.unwrap();
    assert_eq!(delivered.len(), EVENTS);
    assert!(delivered.iter().all(|summary| summary.delivery.attempt == 1));
    other_node.close().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_wakes_other_node() {
    let Some(db) = support::TestDb::new(support::Backend::Postgres).await else { return };
    let receiver = Receiver::start(SECRET, "200");
    subscribe(db.store.as_ref(), "CRM-Doadores", &receiver.url("/webhooks/grito")).await;
    let other_node = second_store(&db).await;
    let settings = DispatcherSettings { sweep_interval: Duration::from_secs(600), ..loopback_settings() };
    let handle = grito::dispatcher::spawn(other_node.clone(), Arc::new(Signals::default()), settings).unwrap();
    // The worker's first pass finds nothing; then it waits on LISTEN.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = std::time::Instant::now();
    post_event(db.store.as_ref(), "signup:notify").await;
    receiver.wait_for(1, Duration::from_secs(3)).await;

    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "delivered {elapsed:?} after the event");
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_guard_refuses_local_targets() {
    let db = support::TestDb::new(support::Backend::Sqlite).await.unwrap();
    let receiver = Receiver::start(SECRET, "200");
    let port = receiver.port;
    let cases = [
        ("loopback", format!("http://127.0.0.1:{port}/hook"), "endpoint resolves to a loopback address 127.0.0.1; set ALLOW_PRIVATE_ENDPOINTS=true for development"),
        ("localhost", format!("http://localhost:{port}/hook"), "endpoint resolves to a loopback address"),
        ("ipv6-loopback", format!("http://[::1]:{port}/hook"), "endpoint resolves to a loopback address ::1"),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/hook"), "endpoint resolves to a loopback address"),
        ("private", "http://10.0.0.5/hook".to_owned(), "endpoint resolves to a private address 10.0.0.5; set ALLOW_PRIVATE_ENDPOINTS=true for development"),
        ("metadata", "http://169.254.169.254/latest/meta-data".to_owned(), "endpoint resolves to a cloud metadata address 169.254.169.254, which is never allowed"),
        ("scheme", "ftp://127.0.0.1/hook".to_owned(), "endpoint URL must use http or https"),
    ];
    for (name, url, _) in &cases {
        subscribe(db.store.as_ref(), name, url).await;
    }
    post_event(db.store.as_ref(), "signup:ssrf").await;
    let settings = DispatcherSettings { allow_private_endpoints: false, ..loopback_settings() };
    let dispatcher = Dispatcher::new(db.store.clone(), settings).unwrap();

    dispatcher.run_once().await.unwrap();

    let deliveries = db.store.list_deliveries(&all_deliveries()).await.unwrap();
    for (name, _, expected) in &cases {
        let summary = deliveries.iter().find(|summary| summary.subscription_name.as_deref() == Some(name)).unwrap();
        assert_eq!(summary.delivery.status, DeliveryStatus::Pending, "{name}");
        assert_eq!(summary.delivery.attempt, 1, "{name}");
        let error = summary.delivery.last_error.as_deref().unwrap();
        assert!(error.starts_with(expected), "{name}: `{error}` should start with `{expected}`");
    }
    assert!(receiver.requests().is_empty(), "the guard let a request through");
}
