//! End-to-end latency through the real `grito serve`: the harness posts an
//! event and the receiver timestamps the webhook carrying its id. Measured
//! once on an idle server (one event at a time) and at a steady rate, and
//! the server's idle RSS is read before any event arrives.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::database::{Backend, FreshDatabase};
use crate::fixtures;
use crate::grito_process::GritoProcess;
use crate::receiver::Receiver;
use crate::stats::percentile_ms;

#[derive(Debug, Clone, Copy)]
pub struct EndToEndRun {
    pub idle_rss_mib: f64,
    pub idle_p50_ms: f64,
    pub steady_p50_ms: f64,
    pub steady_p95_ms: f64,
    pub steady_p99_ms: f64,
    /// Events posted per second over the steady phase, as achieved.
    pub achieved_rate: f64,
    /// Posted events whose webhook had not arrived when the wait ran out.
    pub undelivered: usize,
}

pub struct EndToEndOptions<'a> {
    pub grito_binary: &'a Path,
    pub postgres_base: &'a str,
    pub idle_events: usize,
    pub rate: u32,
    pub duration: Duration,
    pub log_filter: &'a str,
}

pub async fn run_once(backend: Backend, options: &EndToEndOptions<'_>) -> anyhow::Result<EndToEndRun> {
    let database = FreshDatabase::create(backend, options.postgres_base).await?;
    let receiver = Receiver::start().await?;
    let store = fixtures::open_store(&database.url).await?;
    fixtures::create_subscription_and_automation(&store, &receiver.url).await?;
    drop(store);
    let server = GritoProcess::start(options.grito_binary, &database.url, options.log_filter).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/events", server.base_url);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_mib = server.rss_mib()?;

    let mut idle = Vec::with_capacity(options.idle_events);
    for _ in 0..options.idle_events {
        let sent = Instant::now();
        let id = post_event(&client, &url).await?;
        let arrived = wait_for(&receiver, &id, Duration::from_secs(5)).await?;
        idle.push(arrived - sent);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let steady_started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(options.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    while steady_started.elapsed() < options.duration {
        ticker.tick().await;
        let (client, url, sent_at) = (client.clone(), url.clone(), sent_at.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let id = post_event(&client, &url).await?;
            sent_at.lock().expect("sent lock").insert(id, sent);
            anyhow::Ok(())
        }));
    }
    for task in tasks.drain(..) {
        task.await??;
    }
    let achieved_rate = sent_at.lock().expect("sent lock").len() as f64 / steady_started.elapsed().as_secs_f64();

    let sent_at = std::mem::take(&mut *sent_at.lock().expect("sent lock"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && delivered(&receiver, &sent_at) < sent_at.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut steady = Vec::with_capacity(sent_at.len());
    {
        let arrivals = receiver.arrivals.first_seen.lock().expect("receiver lock");
        for (id, sent) in &sent_at {
            if let Some(arrived) = arrivals.get(id) {
                steady.push(arrived.saturating_duration_since(*sent));
            }
        }
    }
    let undelivered = sent_at.len() - steady.len();
    drop(server);
    database.drop_now().await?;

    Ok(EndToEndRun {
        idle_rss_mib,
        idle_p50_ms: percentile_ms(&mut idle, 0.50),
        steady_p50_ms: percentile_ms(&mut steady, 0.50),
        steady_p95_ms: percentile_ms(&mut steady, 0.95),
        steady_p99_ms: percentile_ms(&mut steady, 0.99),
        achieved_rate,
        undelivered,
    })
}

async fn post_event(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Api-Key", fixtures::EVENTS_API_KEY)
        .body(fixtures::event_body())
        .send()
        .await?
        .error_for_status()?;
    let body: serde_json::Value = response.json().await?;
    body["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("POST /events returned no id: {body}"))
}

async fn wait_for(receiver: &Receiver, id: &str, limit: Duration) -> anyhow::Result<Instant> {
    let started = Instant::now();
    loop {
        if let Some(arrived) = receiver.arrivals.first_seen.lock().expect("receiver lock").get(id) {
            return Ok(*arrived);
        }
        anyhow::ensure!(started.elapsed() < limit, "the webhook for event {id} did not arrive within {limit:?}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn delivered(receiver: &Receiver, sent_at: &HashMap<String, Instant>) -> usize {
    let arrivals = receiver.arrivals.first_seen.lock().expect("receiver lock");
    sent_at.keys().filter(|id| arrivals.contains_key(*id)).count()
}
