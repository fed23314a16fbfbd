//! The daily inactivity job on both backends, with injected time.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use grito::jobs::{InactivitySettings, run_inactivity};
use grito::signals::Signals;
use grito::store::{NewEvent, Store};
use serde_json::json;
use uuid::Uuid;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn settings() -> InactivitySettings {
    InactivitySettings::from_source(&grito::config::Source::from_pairs([])).unwrap()
}

async fn record(store: &Arc<dyn Store>, user: Uuid, name: &str, source: &str, at: DateTime<Utc>) {
    store
        .insert_event(NewEvent {
            event_name: name.to_owned(),
            user_id: user,
            source: source.to_owned(),
            occurred_at: Some(at),
            payload: serde_json::Map::new(),
            idempotency_key: None,
        })
        .await
        .unwrap();
}

/// Reads the inactivity events stored so far, as (user, event name, payload).
async fn emitted(db: &support::TestDb) -> Vec<(Uuid, String, serde_json::Value)> {
    let rows: Vec<(String, String, String)> = match db.backend {
        support::Backend::Sqlite => {
            let store = grito::store::SqliteStore::open(std::path::Path::new(db.url.trim_start_matches("sqlite://"))).await.unwrap();
            sqlx::query_as(
                "select user_id, event_name, payload from grito_events
                 where event_name like 'engagement.%' order by user_id, event_name",
            )
            .fetch_all(store.pool())
            .await
            .unwrap()
        }
        support::Backend::Postgres => {
            let store = grito::store::PgStore::connect(&db.url).await.unwrap();
            sqlx::query_as(
                "select user_id::text, event_name, payload::text from grito_events
                 where event_name like 'engagement.%' order by user_id, event_name",
            )
            .fetch_all(store.pool())
            .await
            .unwrap()
        }
    };
    rows.into_iter()
        .map(|(user, name, payload)| (user.parse().unwrap(), name, serde_json::from_str(&payload).unwrap()))
        .collect()
}

both_backends!(inactive_users_get_each_threshold_once, |db: support::TestDb| async move {
    let signals = Signals::default();
    let now = utc("2026-03-01T06:00:00Z");
    let idle_40 = Uuid::from_u128(1);
    let idle_20 = Uuid::from_u128(2);
    let active = Uuid::from_u128(3);
    record(&db.store, idle_40, "user.signed_up", "app", now - Duration::days(40)).await;
    record(&db.store, idle_20, "event.checked_in", "intelbras", now - Duration::days(20)).await;
    record(&db.store, active, "user.signed_up", "app", now - Duration::days(3)).await;

    let report = run_inactivity(db.store.as_ref(), &signals, &settings(), now).await.unwrap();
    assert_eq!(report.emitted, 3, "14d and 30d for the 40-day user, 14d for the 20-day user");

    let events = emitted(&db).await;
    let names: Vec<(Uuid, &str)> = events.iter().map(|(user, name, _)| (*user, name.as_str())).collect();
    assert_eq!(
        names,
        [
            (idle_40, "engagement.inactive_14d"),
            (idle_40, "engagement.inactive_30d"),
            (idle_20, "engagement.inactive_14d"),
        ]
    );
    let payload = &events[1].2;
    assert_eq!(payload["days_inactive"], json!(40));
    assert_eq!(payload["threshold_days"], json!(30));
    assert_eq!(payload["last_activity_at"], json!("2026-01-20T06:00:00.000000Z"));

    let again = run_inactivity(db.store.as_ref(), &signals, &settings(), now + Duration::days(1)).await.unwrap();
    assert_eq!(again.emitted, 0, "the next day's run emits nothing new");
    assert_eq!(again.already_emitted, 3);
    assert_eq!(emitted(&db).await.len(), 3);
});

both_backends!(returning_user_is_emitted_again_later, |db: support::TestDb| async move {
    let signals = Signals::default();
    let user = Uuid::from_u128(7);
    let start = utc("2026-01-01T12:00:00Z");
    record(&db.store, user, "user.signed_up", "app", start).await;

    let first = run_inactivity(db.store.as_ref(), &signals, &settings(), start + Duration::days(15)).await.unwrap();
    assert_eq!(first.emitted, 1);

    record(&db.store, user, "event.checked_in", "intelbras", start + Duration::days(16)).await;
    let while_active = run_inactivity(db.store.as_ref(), &signals, &settings(), start + Duration::days(20)).await.unwrap();
    assert_eq!(while_active.emitted, 0);

    let second = run_inactivity(db.store.as_ref(), &signals, &settings(), start + Duration::days(31)).await.unwrap();
    assert_eq!(second.emitted, 1, "a new stretch of inactivity emits 14d again");
    let fourteen: Vec<_> = emitted(&db).await.into_iter().filter(|(_, name, _)| name == "engagement.inactive_14d").collect();
    assert_eq!(fourteen.len(), 2);
});

both_backends!(excluded_sources_and_names_are_not_activity, |db: support::TestDb| async move {
    let signals = Signals::default();
    let now = utc("2026-06-01T06:00:00Z");
    let user = Uuid::from_u128(9);
    record(&db.store, user, "user.signed_up", "app", now - Duration::days(20)).await;
    record(&db.store, user, "payment.succeeded", "stripe", now - Duration::days(1)).await;
    record(&db.store, user, "engagement.nudged", "crm", now - Duration::days(1)).await;

    let report = run_inactivity(db.store.as_ref(), &signals, &settings(), now).await.unwrap();
    assert_eq!(report.emitted, 1, "a Stripe payment and engagement.* events do not count as activity");
    let events = emitted(&db).await;
    let inactive: Vec<_> = events.iter().filter(|(_, name, _)| name == "engagement.inactive_14d").collect();
    assert_eq!(inactive.len(), 1);
    assert_eq!(inactive[0].2["days_inactive"], json!(20));
});

both_backends!(two_nodes_emit_each_event_once, |db: support::TestDb| async move {
    let now = utc("2026-03-01T06:00:00Z");
    for user in 0..30u128 {
        record(&db.store, Uuid::from_u128(100 + user), "user.signed_up", "app", now - Duration::days(35)).await;
    }

    // A second store on the same database stands for a second node.
    let other: Arc<dyn Store> = match db.backend {
        support::Backend::Sqlite => {
            Arc::new(grito::store::SqliteStore::open(std::path::Path::new(db.url.trim_start_matches("sqlite://"))).await.unwrap())
        }
        support::Backend::Postgres => Arc::new(grito::store::PgStore::connect(&db.url).await.unwrap()),
    };
    let (signals_a, signals_b) = (Signals::default(), Signals::default());
    let settings = settings();
    let (a, b) = tokio::join!(
        run_inactivity(db.store.as_ref(), &signals_a, &settings, now),
        run_inactivity(other.as_ref(), &signals_b, &settings, now),
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a.emitted + b.emitted, 60, "30 users, two thresholds, each stored by exactly one node");
    assert_eq!(a.already_emitted + b.already_emitted, 60);
    assert_eq!(emitted(&db).await.len(), 60);
});
