//! The automation engine: claims unprocessed events, runs each active
//! automation whose `match_event` is the event's name (condition, then
//! action), and writes the runs, their effects and the events'
//! `processed_at` in one transaction per claimed batch.
//!
//! Claims are leases in `grito_event_claims`, taken in a short transaction
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite).
//! Plugins run outside any transaction, so a slow plugin never holds a
//! database lock or SQLite's write lock. The commit locks the event row and
//! checks `processed_at` again, and `grito_automation_runs` has a unique
//! (automation_id, event_id), so two workers never both record a run. A
//! worker that dies before its commit wrote nothing; its lease expires
//! (`ENGINE_LEASE`, default 60 s) and another worker retries the event.

pub mod cli;
mod host;
mod plan;
pub mod preview;
pub mod validate;
pub mod workers;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use crate::config::Source;
use crate::mailer::Templates;
use crate::signals::Signals;
use crate::store::{Automation, CommitOutcome, Event, EventRuns, PlannedRun, RunStatus, Store};

pub use plan::{Decision, decide, describe_effect};
pub use preview::{Preview, preview, preview_event};
pub use validate::{InvalidAutomation, validate_automation};

pub use crate::plugins::{Effect, EventDraft};

/// A plugin failure: a trap, a timeout, an error the plugin returned, or no
/// plugin for the action type. The message is what the run records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PluginFailure(pub String);

/// The plugin calls the engine makes, implemented by the Wasm plugin host
/// and by test doubles.
#[async_trait]
pub trait Plugins: Send + Sync {
    /// Evaluates `condition_sql` text against an event.
    async fn evaluate_condition(&self, event: &Event, condition: &str, now: DateTime<Utc>) -> Result<bool, PluginFailure>;

    /// Checks condition text without an event.
    async fn check_condition(&self, condition: &str) -> Result<(), PluginFailure>;

    /// Runs the action plugin that handles `action["type"]`.
    async fn run_action(&self, event: &Event, action: &serde_json::Value, now: DateTime<Utc>) -> Result<Vec<Effect>, PluginFailure>;

    /// Checks an action's JSON with the plugin that handles its type.
    async fn validate_action(&self, action: &serde_json::Value) -> Result<(), PluginFailure>;
}

/// The engine's settings (`ENGINE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Interval of the safety-net sweep (`ENGINE_SWEEP_INTERVAL`).
    pub sweep_interval: Duration,
    /// Events claimed per query (`ENGINE_BATCH_SIZE`).
    pub batch_size: u32,
    /// Lease length of a claim, after which another worker may retry the
    /// event (`ENGINE_LEASE`). It must outlast the plugin calls of one batch.
    pub lease: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self { sweep_interval: Duration::from_secs(5), batch_size: 100, lease: Duration::from_secs(60) }
    }
}

impl EngineSettings {
    pub fn from_source(source: &Source) -> anyhow::Result<Self> {
        let defaults = Self::default();
        let settings = Self {
            sweep_interval: source.duration_or("ENGINE_SWEEP_INTERVAL", defaults.sweep_interval)?,
            batch_size: source.parse_or("ENGINE_BATCH_SIZE", defaults.batch_size)?,
            lease: source.duration_or("ENGINE_LEASE", defaults.lease)?,
        };
        anyhow::ensure!(!settings.sweep_interval.is_zero(), "ENGINE_SWEEP_INTERVAL must be longer than zero");
        anyhow::ensure!(settings.batch_size >= 1, "ENGINE_BATCH_SIZE must be at least 1, got {}", settings.batch_size);
        anyhow::ensure!(settings.lease >= Duration::from_secs(1), "ENGINE_LEASE must be at least 1s");
        Ok(settings)
    }
}

/// Events whose plugin calls run at the same time within one batch.
const DECIDE_CONCURRENCY: usize = 4;

/// A test hook awaited after an event's plugin calls and before its commit,
/// to simulate a crash at that point.
pub type BeforeCommitHook = Arc<dyn Fn(Uuid) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Counts from one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnginePass {
    pub claimed: usize,
    /// Events whose runs were committed by this pass.
    pub processed: usize,
    pub runs: usize,
    /// Events left for a later pass because of a database error.
    pub retried: usize,
}

/// The automation engine worker.
pub struct Engine {
    store: Arc<dyn Store>,
    plugins: Arc<dyn Plugins>,
    templates: Templates,
    signals: Arc<Signals>,
    settings: EngineSettings,
    worker: String,
    before_commit: Option<BeforeCommitHook>,
    /// Automations already validated at load, by id, with the text checked.
    validated: tokio::sync::Mutex<HashMap<Uuid, String>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        plugins: Arc<dyn Plugins>,
        templates: Templates,
        signals: Arc<Signals>,
        settings: EngineSettings,
    ) -> Self {
        let worker = format!("{}-{}", std::process::id(), &Uuid::new_v4().simple().to_string()[..8]);
        Self {
            store,
            plugins,
            templates,
            signals,
            settings,
            worker,
            before_commit: None,
            validated: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Installs a hook awaited before each event's commit (tests only).
    pub fn with_before_commit(mut self, hook: BeforeCommitHook) -> Self {
        self.before_commit = Some(hook);
        self
    }

    /// Processes events until `shutdown` turns true, woken by
    /// `signals.events` and by a sweep every `sweep_interval`.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(worker = self.worker, sweep_interval_ms = self.settings.sweep_interval.as_millis() as u64, "automation engine started");
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.run_once(Utc::now()).await {
                Ok(pass) => {
                    failures = 0;
                    let full = pass.claimed >= self.settings.batch_size as usize;
                    if full && pass.retried == 0 { Duration::ZERO } else { self.settings.sweep_interval }
                }
                Err(error) => {
                    failures += 1;
                    let backoff = crate::mailer::backoff(failures, self.settings.sweep_interval);
                    tracing::error!(
                        error = format!("{error:#}"),
                        failures,
                        retry_in_ms = backoff.as_millis() as u64,
                        "automation engine pass failed; retrying"
                    );
                    backoff
                }
            };
            tokio::select! {
                () = self.signals.events.notified() => {},
                () = tokio::time::sleep(wait) => {},
                _ = shutdown.changed() => {},
            }
        }
        tracing::info!(worker = self.worker, "automation engine stopped");
    }

    /// Claims a batch of unprocessed events at `now`, decides each one's
    /// runs and commits the batch in one transaction. When the batch's
    /// commit fails, each event is committed alone, so a database error on
    /// one event leaves only that one for the next pass.
    pub async fn run_once(&self, now: DateTime<Utc>) -> anyhow::Result<EnginePass> {
        let events = self.store.claim_events(&self.worker, now, self.settings.lease, self.settings.batch_size).await?;
        let mut pass = EnginePass { claimed: events.len(), ..EnginePass::default() };
        if events.is_empty() {
            return Ok(pass);
        }

        // Plugin calls run on the blocking thread pool: deciding a few events
        // at a time keeps every core busy. `buffered` keeps the claim order.
        let automations = self.load_automations().await?;
        let decisions: Vec<_> = events.iter().map(|event| self.decide_event(event, &automations, now)).collect();
        let decided: Vec<(EventRuns, HashMap<Uuid, String>)> =
            futures::stream::iter(decisions).buffered(DECIDE_CONCURRENCY).collect().await;

        if let Some(hook) = &self.before_commit {
            for event in &events {
                hook(event.id).await;
            }
        }

        let batch: Vec<EventRuns> = decided.iter().map(|(runs, _)| runs.clone()).collect();
        match self.store.commit_batch(batch, now).await {
            Ok(outcomes) => {
                for ((event, (_, names)), outcome) in events.iter().zip(&decided).zip(&outcomes) {
                    self.finish(event, outcome, names, &mut pass);
                }
            }
            Err(error) if events.len() > 1 => {
                tracing::warn!(
                    events = events.len(),
                    error = format!("{error:#}"),
                    "committing the batch of automation runs failed; committing each event alone"
                );
                for (event, (runs, names)) in events.iter().zip(decided) {
                    match self.store.commit_runs(event.id, runs.runs, now).await {
                        Ok(outcome) => self.finish(event, &outcome, &names, &mut pass),
                        Err(error) => self.leave_for_retry(event, &error, &mut pass).await,
                    }
                }
            }
            Err(error) => self.leave_for_retry(&events[0], &error, &mut pass).await,
        }
        Ok(pass)
    }

    /// Runs each active automation that matches the event: its condition,
    /// then its action. Nothing is written here.
    async fn decide_event(&self, event: &Event, automations: &[Automation], now: DateTime<Utc>) -> (EventRuns, HashMap<Uuid, String>) {
        let mut runs = Vec::new();
        let mut names = HashMap::new();
        for automation in automations.iter().filter(|automation| automation.match_event == event.event_name) {
            let decision = decide(self.plugins.as_ref(), &self.templates, automation, event, now).await;
            names.insert(automation.id, automation.name.clone());
            runs.push(PlannedRun {
                id: Uuid::now_v7(),
                automation_id: automation.id,
                status: decision.status,
                condition_result: decision.condition_result,
                effects: decision.planned,
                error: decision.error,
                duration_ms: decision.duration_ms,
            });
        }
        (EventRuns { event_id: event.id, runs }, names)
    }

    fn finish(&self, event: &Event, outcome: &CommitOutcome, names: &HashMap<Uuid, String>, pass: &mut EnginePass) {
        if !outcome.committed {
            tracing::info!(event_id = %event.id, "event already processed by another worker; skipped");
            return;
        }
        pass.processed += 1;
        pass.runs += outcome.runs.len();
        self.log_and_wake(event, outcome, names);
    }

    async fn leave_for_retry(&self, event: &Event, error: &anyhow::Error, pass: &mut EnginePass) {
        pass.retried += 1;
        tracing::error!(
            event_id = %event.id,
            error = format!("{error:#}"),
            "event processing failed on the database; it stays unprocessed and is retried"
        );
        // Best effort: without the release the lease expires on its own.
        let _ = self.store.release_event(event.id).await;
    }

    fn log_and_wake(&self, event: &Event, outcome: &CommitOutcome, names: &HashMap<Uuid, String>) {
        for run in &outcome.runs {
            crate::metrics::record_run(run.status.as_str());
            let automation_name = names.get(&run.automation_id).map(String::as_str).unwrap_or_default();
            let decision = if run.status == RunStatus::Skipped { "skipped" } else { "matched" };
            let effects = run.effects.as_ref().and_then(|effects| effects.as_array()).map_or(0, Vec::len);
            if run.status == RunStatus::Failed {
                tracing::warn!(
                    event_id = %event.id,
                    automation_id = %run.automation_id,
                    automation_name,
                    run_id = %run.id,
                    decision,
                    condition_result = ?run.condition_result,
                    status = run.status.as_str(),
                    error = run.error.as_deref().unwrap_or_default(),
                    duration_ms = run.duration_ms,
                    "automation run"
                );
            } else {
                tracing::info!(
                    event_id = %event.id,
                    automation_id = %run.automation_id,
                    automation_name,
                    run_id = %run.id,
                    decision,
                    condition_result = ?run.condition_result,
                    status = run.status.as_str(),
                    effects,
                    duration_ms = run.duration_ms,
                    "automation run"
                );
            }
        }
        for automation_id in &outcome.already_recorded {
            tracing::info!(event_id = %event.id, automation_id = %automation_id, "automation run already recorded; not run again");
        }
        for (event_name, source, inserted) in &outcome.emitted {
            tracing::info!(
                event_id = %inserted.id,
                event_name,
                source,
                dedup = inserted.dedup,
                deliveries = inserted.deliveries,
                parent_event_id = %event.id,
                "event accepted"
            );
        }
        tracing::debug!(event_id = %event.id, runs = outcome.runs.len(), "event processed");

        if outcome.emitted.iter().any(|(_, _, inserted)| !inserted.dedup) {
            self.signals.events.notify_one();
        }
        if outcome.deliveries > 0 {
            self.signals.deliveries.notify_one();
        }
        if outcome.emails > 0 {
            self.signals.emails.notify_one();
        }
    }

    /// Loads the active automations, oldest first, and validates each new or
    /// changed one once. An invalid one is logged as a warning, because its
    /// runs will fail with the same reason until it is fixed.
    async fn load_automations(&self) -> anyhow::Result<Vec<Automation>> {
        let automations: Vec<Automation> =
            self.store.list_automations().await?.into_iter().filter(|automation| automation.is_active).collect();

        let mut validated = self.validated.lock().await;
        for automation in &automations {
            let checked = format!("{:?}|{}", automation.condition_sql, automation.action);
            if validated.get(&automation.id) == Some(&checked) {
                continue;
            }
            if let Err(invalid) = validate::validate_loaded(self.plugins.as_ref(), &self.templates, automation).await {
                tracing::warn!(
                    automation_id = %automation.id,
                    automation_name = automation.name,
                    problems = %invalid,
                    "stored automation is invalid; its runs will fail until it is fixed"
                );
            }
            validated.insert(automation.id, checked);
        }
        Ok(automations)
    }
}
