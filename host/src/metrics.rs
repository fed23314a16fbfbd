//! Prometheus metrics: one registry for the process, the recording calls the
//! other modules make, and `GET /metrics` in the text exposition format.
//!
//! `/metrics` is open unless `METRICS_TOKEN` is set; then it needs
//! `Authorization: Bearer <METRICS_TOKEN>`. Event names and sources are
//! client input, so each label keeps its first [`MAX_LABEL_VALUES`] distinct
//! values and reports later ones as `other`.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::api::{ApiError, AppState, check_key};

/// Distinct values one client-supplied label may take before `other`.
pub const MAX_LABEL_VALUES: usize = 200;

struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    runs: IntCounterVec,
    attempts: IntCounterVec,
    attempt_duration: Histogram,
    plugin_duration: HistogramVec,
    plugin_failures: IntCounterVec,
    queue_depth: IntGauge,
    oldest_pending_age: Gauge,
    unprocessed_events: IntGauge,
    event_names: LabelCap,
    sources: LabelCap,
    plugins: LabelCap,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("grito".to_owned()), None).expect("the registry prefix is valid");
        let events = IntCounterVec::new(
            Opts::new("events_total", "Events received, by source, name and outcome (accepted or deduplicated)"),
            &["source", "event_name", "outcome"],
        )
        .expect("valid metric");
        let runs = IntCounterVec::new(Opts::new("automation_runs_total", "Automation runs, by outcome"), &["outcome"]).expect("valid metric");
        let attempts = IntCounterVec::new(
            Opts::new("delivery_attempts_total", "Webhook delivery attempts, by outcome and HTTP status class (2xx…5xx, or none)"),
            &["outcome", "status_class"],
        )
        .expect("valid metric");
        let attempt_duration = Histogram::with_opts(HistogramOpts::new(
            "delivery_attempt_duration_seconds",
            "Duration of webhook delivery attempts, in seconds",
        ))
        .expect("valid metric");
        let plugin_duration = HistogramVec::new(
            HistogramOpts::new("plugin_call_duration_seconds", "Duration of plugin calls, in seconds, by plugin")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["plugin"],
        )
        .expect("valid metric");
        let plugin_failures =
            IntCounterVec::new(Opts::new("plugin_call_failures_total", "Plugin calls that trapped, timed out or returned an error, by plugin"), &["plugin"])
                .expect("valid metric");
        let queue_depth = IntGauge::new("delivery_queue_depth", "PENDING webhook deliveries, read at scrape time").expect("valid metric");
        let oldest_pending_age =
            Gauge::new("delivery_oldest_pending_age_seconds", "Age of the oldest PENDING delivery in seconds (0 when none), read at scrape time")
                .expect("valid metric");
        let unprocessed_events =
            IntGauge::new("unprocessed_events", "Events whose automations have not run yet, read at scrape time").expect("valid metric");

        for collector in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(runs.clone()),
            Box::new(attempts.clone()),
            Box::new(attempt_duration.clone()),
            Box::new(plugin_duration.clone()),
            Box::new(plugin_failures.clone()),
            Box::new(queue_depth.clone()),
            Box::new(oldest_pending_age.clone()),
            Box::new(unprocessed_events.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }

        Self {
            registry,
            events,
            runs,
            attempts,
            attempt_duration,
            plugin_duration,
            plugin_failures,
            queue_depth,
            oldest_pending_age,
            unprocessed_events,
            event_names: LabelCap::default(),
            sources: LabelCap::default(),
            plugins: LabelCap::default(),
        }
    }
}

/// Keeps the first [`MAX_LABEL_VALUES`] distinct values of one label.
#[derive(Default)]
struct LabelCap {
    seen: Mutex<HashSet<String>>,
}

impl LabelCap {
    fn label(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        "other".to_owned()
    }
}

/// Counts one event stored (`dedup` false) or recognised as a duplicate.
pub fn record_event(source: &str, event_name: &str, dedup: bool) {
    let metrics = &*METRICS;
    let outcome = if dedup { "deduplicated" } else { "accepted" };
    let source = metrics.sources.label(source);
    let event_name = metrics.event_names.label(event_name);
    metrics.events.with_label_values(&[source.as_str(), event_name.as_str(), outcome]).inc();
}

/// Counts one automation run, by its recorded status (`succeeded`, `failed`, `skipped`…).
pub fn record_run(outcome: &str) {
    METRICS.runs.with_label_values(&[outcome]).inc();
}

/// Counts one delivery attempt and records its duration. `outcome` is
/// `ok`, `retry` or `fail`; `status` the receiver's HTTP status, if any.
pub fn record_attempt(outcome: &str, status: Option<u16>, duration: Duration) {
    let class = match status {
        Some(status @ 100..=599) => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(status / 100 - 1)],
        _ => "none",
    };
    METRICS.attempts.with_label_values(&[outcome, class]).inc();
    METRICS.attempt_duration.observe(duration.as_secs_f64());
}

/// Records one plugin call's duration, and counts it as failed unless `ok`.
pub fn record_plugin_call(plugin: &str, duration: Duration, ok: bool) {
    let metrics = &*METRICS;
    let plugin = metrics.plugins.label(plugin);
    metrics.plugin_duration.with_label_values(&[plugin.as_str()]).observe(duration.as_secs_f64());
    if !ok {
        metrics.plugin_failures.with_label_values(&[plugin.as_str()]).inc();
    }
}

/// Refreshes the queue gauges from the store and renders every metric.
pub async fn render(store: &dyn crate::store::Store) -> anyhow::Result<String> {
    let metrics = &*METRICS;
    let stats = store.queue_stats().await?;
    metrics.queue_depth.set(stats.pending_deliveries);
    metrics.oldest_pending_age.set(stats.oldest_pending_age_seconds.unwrap_or(0.0));
    metrics.unprocessed_events.set(stats.unprocessed_events);

    let mut buffer = Vec::new();
    TextEncoder::new().encode(&metrics.registry.gather(), &mut buffer)?;
    Ok(String::from_utf8(buffer)?)
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = state.admin.metrics_token.as_deref() {
        check_bearer(&headers, token)?;
    }
    let text = render(state.store.as_ref()).await.map_err(|error| ApiError::from_store(&error))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response())
}

fn check_bearer(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let mut bearer = HeaderMap::new();
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok())
        && let Some(given) = value.strip_prefix("Bearer ")
        && let Ok(given) = given.trim().parse()
    {
        bearer.insert("authorization", given);
    }
    check_key(&bearer, "authorization", token).map_err(|_| ApiError::unauthorized("Authorization: Bearer"))
}
