//! Dispatch throughput: Grito's webhook dispatcher (in process, default
//! batch size and concurrency) drains pre-seeded `PENDING` deliveries to a
//! local receiver that answers 200; the floor is a bare reqwest POST loop
//! with the same concurrency and body to the same receiver.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use grito::dispatcher::{Dispatcher, DispatcherSettings};
use grito::signals::Signals;
use grito::store::NewSubscription;

use crate::database::{Backend, FreshDatabase};
use crate::fixtures;
use crate::receiver::Receiver;

#[derive(Debug, Clone, Copy)]
pub struct DispatchRun {
    pub grito_per_second: f64,
    pub floor_per_second: f64,
    pub ratio: f64,
    pub concurrency: usize,
}

pub async fn run_once(backend: Backend, postgres_base: &str, deliveries: usize) -> anyhow::Result<DispatchRun> {
    let database = FreshDatabase::create(backend, postgres_base).await?;
    let receiver = Receiver::start().await?;
    let store = fixtures::open_store(&database.url).await?;
    store
        .create_subscription(NewSubscription {
            destination_name: "Bench receiver".to_owned(),
            endpoint_url: receiver.url.clone(),
            secret: fixtures::SUBSCRIPTION_SECRET.to_owned(),
            enabled: true,
            event_filter: vec![fixtures::EVENT_NAME.to_owned()],
        })
        .await?;
    seed_events(&store, deliveries).await?;

    let settings = DispatcherSettings { allow_private_endpoints: true, ..DispatcherSettings::default() };
    let concurrency = settings.concurrency;
    let dispatcher = Dispatcher::new(store.clone(), settings)?;
    let started = Instant::now();
    let mut sent = 0usize;
    loop {
        let processed = dispatcher.run_once().await?;
        if processed.is_empty() {
            break;
        }
        sent += processed.len();
    }
    let grito_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(sent == deliveries, "the dispatcher sent {sent} of {deliveries} deliveries");
    drop(dispatcher);
    drop(store);
    database.drop_now().await?;

    let floor_per_second = bare_post_loop(&receiver.url, deliveries, concurrency).await?;
    let grito_per_second = deliveries as f64 / grito_seconds;
    Ok(DispatchRun { grito_per_second, floor_per_second, ratio: grito_per_second / floor_per_second, concurrency })
}

async fn seed_events(store: &Arc<dyn grito::store::Store>, count: usize) -> anyhow::Result<()> {
    let signals = Signals::default();
    let events = futures::stream::iter(0..count).map(|_| {
        let event = grito::store::NewEvent {
            event_name: fixtures::EVENT_NAME.to_owned(),
            user_id: uuid::Uuid::new_v4(),
            source: "app".to_owned(),
            occurred_at: None,
            payload: fixtures::payload_map(),
            idempotency_key: None,
        };
        grito::ingest::accept(store.as_ref(), &signals, event)
    });
    let results: Vec<_> = events.buffer_unordered(8).collect().await;
    for result in results {
        result?;
    }
    Ok(())
}

/// Sends `count` signed-size POSTs with `concurrency` in flight; returns requests per second.
async fn bare_post_loop(url: &str, count: usize, concurrency: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let body = serde_json::json!({
        "id": uuid::Uuid::now_v7(),
        "event_name": fixtures::EVENT_NAME,
        "user_id": uuid::Uuid::new_v4(),
        "occurred_at": "2026-12-04T12:00:00.000000Z",
        "source": "app",
        "payload": fixtures::payload()
    })
    .to_string();
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..count)
        .map(|_| {
            let request = client.post(url).header("Content-Type", "application/json").body(body.clone());
            async move { request.send().await?.error_for_status() }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
