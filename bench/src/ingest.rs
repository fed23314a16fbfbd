//! Ingest and sustained pipeline: `wrk` posts events to the real `grito
//! serve` (one matching subscription, one matching automation), first with
//! `API_ONLY=true` (the request path alone), then with its workers, and then
//! to the bare one-INSERT floor, each on a fresh database of the same backend.
//! After the load stops the run waits until every delivery is `OK` and every
//! event is processed, and reports the whole pipeline's rate.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::database::{Backend, FreshDatabase};
use crate::fixtures;
use crate::floor::FloorServer;
use crate::grito_process::GritoProcess;
use crate::receiver::Receiver;
use crate::wrk::{self, Load, WrkResult};

/// One ingest run: Grito and its floor measured back to back.
#[derive(Debug, Clone, Copy)]
pub struct IngestRun {
    /// `grito serve` with `API_ONLY=true`: the request path alone.
    pub api_only: WrkResult,
    /// `grito serve` with its workers processing and delivering meanwhile.
    pub grito: WrkResult,
    pub floor: WrkResult,
    /// The API-only server's requests per second over the floor's.
    pub ratio: f64,
    /// The server with workers over the floor.
    pub with_workers_ratio: f64,
    /// Events stored divided by the time from the start of the load until the last delivery and run were done.
    pub pipeline_events_per_second: f64,
    /// Seconds from the end of the load until nothing was left to deliver or process.
    pub drain_seconds: f64,
    /// Deliveries not `OK` plus events not processed when the drain limit ran out (0 is the target).
    pub left_undone: i64,
    /// `grito serve` CPU time per stored event over the load and drain, in microseconds.
    pub cpu_per_event_us: f64,
}

pub struct IngestOptions<'a> {
    pub grito_binary: &'a Path,
    pub postgres_base: &'a str,
    pub load: Load,
    pub drain_limit: Duration,
    pub log_filter: &'a str,
}

pub async fn run_once(backend: Backend, options: &IngestOptions<'_>) -> anyhow::Result<IngestRun> {
    let work_dir = tempfile::tempdir()?;
    let body = fixtures::event_body();

    let api_only = measure_api_only(backend, options, &body, work_dir.path()).await?;

    let database = FreshDatabase::create(backend, options.postgres_base).await?;
    let receiver = Receiver::start().await?;
    let store = fixtures::open_store(&database.url).await?;
    fixtures::create_subscription_and_automation(&store, &receiver.url).await?;
    drop(store);
    let server = GritoProcess::start(options.grito_binary, &database.url, options.log_filter).await?;

    let cpu_before = server.cpu_time()?;
    let started = Instant::now();
    let grito = wrk::run(&format!("{}/events", server.base_url), &body, fixtures::EVENTS_API_KEY, options.load, work_dir.path())?;
    let load_ended = Instant::now();
    let left_undone = wait_until_drained(&database, options.drain_limit).await?;
    let drain_seconds = load_ended.elapsed().as_secs_f64();
    let total_seconds = started.elapsed().as_secs_f64();
    let cpu_used = server.cpu_time()? - cpu_before;
    let stored = database.count("select count(*) from grito_events").await?;
    drop(server);
    database.drop_now().await?;

    let floor_database = FreshDatabase::create(backend, options.postgres_base).await?;
    drop(fixtures::open_store(&floor_database.url).await?);
    let floor_server = FloorServer::start(&floor_database).await?;
    let floor = wrk::run(&floor_server.url, &body, fixtures::EVENTS_API_KEY, options.load, work_dir.path())?;
    drop(floor_server);
    floor_database.drop_now().await?;

    Ok(IngestRun {
        api_only,
        grito,
        floor,
        ratio: api_only.requests_per_second / floor.requests_per_second,
        with_workers_ratio: grito.requests_per_second / floor.requests_per_second,
        pipeline_events_per_second: stored as f64 / total_seconds,
        drain_seconds,
        left_undone,
        cpu_per_event_us: cpu_used.as_secs_f64() * 1e6 / stored.max(1) as f64,
    })
}

/// Measures the request path alone: an API-only server stores events and
/// their deliveries, and no worker in the process competes for the cores.
async fn measure_api_only(backend: Backend, options: &IngestOptions<'_>, body: &str, work_dir: &Path) -> anyhow::Result<WrkResult> {
    let database = FreshDatabase::create(backend, options.postgres_base).await?;
    let receiver = Receiver::start().await?;
    let store = fixtures::open_store(&database.url).await?;
    fixtures::create_subscription_and_automation(&store, &receiver.url).await?;
    drop(store);
    let server = GritoProcess::start_with(options.grito_binary, &database.url, options.log_filter, &[("API_ONLY", "true")]).await?;
    let result = wrk::run(&format!("{}/events", server.base_url), body, fixtures::EVENTS_API_KEY, options.load, work_dir)?;
    drop(server);
    database.drop_now().await?;
    Ok(result)
}

/// Polls until no delivery is pending and no event is unprocessed, or `limit` passes; returns what is left.
async fn wait_until_drained(database: &FreshDatabase, limit: Duration) -> anyhow::Result<i64> {
    let started = Instant::now();
    loop {
        let pending = database.count("select count(*) from grito_webhook_deliveries where status <> 'OK'").await?;
        let unprocessed = database.count("select count(*) from grito_events where processed_at is null").await?;
        let left = pending + unprocessed;
        if left == 0 || started.elapsed() >= limit {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
