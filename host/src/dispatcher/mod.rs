//! The webhook dispatcher: claims due `PENDING` deliveries under a lease,
//! signs and POSTs each to its subscription's endpoint, and records every
//! attempt with the delivery's new state in one transaction.
//!
//! A delivery's life: `PENDING` → (2xx) `OK`, or (failure) `PENDING` again
//! with `next_attempt_at` after the retry schedule (2, 4, 8, 16, 32 minutes
//! by default, or the endpoint's `Retry-After` on 429 and 503, clamped to
//! the schedule's range), until the failed attempt number `WEBHOOK_MAX_ATTEMPTS` (6)
//! marks it `FAIL`, the dead-letter state. Reprocessing a `FAIL` delivery
//! puts it back to `PENDING` with `attempt` reset to 0, so it gets the whole
//! schedule again. `grito_webhook_attempts` keeps every earlier attempt.
//!
//! A claimed delivery whose subscription is disabled or deleted, or whose
//! event is gone, is not sent: it becomes `FAIL` with `last_error` saying why
//! ("subscription disabled", "subscription deleted", "event not found") and
//! without an attempt, so it can be reprocessed once the subscription is
//! enabled again.
//!
//! The worker wakes on `signals.deliveries` (in process), on PostgreSQL
//! `NOTIFY` from other processes, and every `WEBHOOK_SWEEP_INTERVAL`.

mod address;
pub mod admin;
pub mod cli;
mod clock;
mod sender;
mod settings;
pub mod signing;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use address::{AddressKind, EndpointRejected, check_address, classify};
pub use clock::{Clock, ManualClock, SystemClock};
pub use sender::{MAX_RESPONSE_BODY_BYTES, SendResult};
pub use settings::{DispatcherSettings, LEASE_MARGIN};

use crate::signals::Signals;
use crate::store::{ClaimedDelivery, DeliveryOutcome, DeliveryStatus, FinishedAttempt, NewAttempt, Store};

/// The worker that sends webhooks.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    settings: DispatcherSettings,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

/// The outcome of one claimed delivery, for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub delivery_id: uuid::Uuid,
    pub status: DeliveryStatus,
    /// False when the lease ran out before the outcome was written, so
    /// another worker owns the delivery now and nothing was recorded.
    pub recorded: bool,
}

impl Dispatcher {
    /// A dispatcher on the system clock.
    pub fn new(store: Arc<dyn Store>, settings: DispatcherSettings) -> anyhow::Result<Self> {
        let client = sender::client(settings.timeout, settings.allow_private_endpoints)?;
        Ok(Self { store, settings, client, clock: Arc::new(SystemClock) })
    }

    /// Replaces the clock, for tests.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn settings(&self) -> &DispatcherSettings {
        &self.settings
    }

    /// Claims one batch of due deliveries and sends them, up to
    /// `WEBHOOK_CONCURRENCY` at a time. Outcomes are written as attempts
    /// finish, those finished together in one transaction, so a slow
    /// endpoint does not hold back the record of the others. Returns what
    /// happened to each.
    pub async fn run_once(&self) -> anyhow::Result<Vec<Processed>> {
        let now = self.clock.now();
        let lease_until = now + chrono::Duration::from_std(self.settings.lease())?;
        let claimed = self.store.claim_due_deliveries(now, lease_until, self.settings.batch_size).await?;

        let mut finished = futures::stream::iter(claimed)
            .map(|delivery| self.attempt(delivery))
            .buffer_unordered(self.settings.concurrency)
            .ready_chunks(self.settings.concurrency);
        let mut processed = Vec::new();
        while let Some(attempts) = finished.next().await {
            processed.extend(self.record(attempts).await?);
        }
        Ok(processed)
    }

    /// Runs until `stop` turns true: a batch, then (unless the batch was full)
    /// a wait for a signal, a notification or the sweep interval. A batch in
    /// flight is finished before stopping.
    pub async fn run(self, signals: Arc<Signals>, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            batch_size = self.settings.batch_size,
            concurrency = self.settings.concurrency,
            timeout_ms = self.settings.timeout.as_millis() as u64,
            sweep_interval_ms = self.settings.sweep_interval.as_millis() as u64,
            "webhook dispatcher started"
        );
        while !*stop.borrow() {
            let batch_was_full = match self.run_once().await {
                Ok(processed) => processed.len() >= self.settings.batch_size as usize,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "webhook dispatcher batch failed; retrying after the sweep interval");
                    false
                }
            };
            if batch_was_full {
                continue;
            }
            tokio::select! {
                () = signals.deliveries.notified() => {}
                () = tokio::time::sleep(self.settings.sweep_interval) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("webhook dispatcher stopped");
    }

    /// Sends one claimed delivery, or gives it up when it cannot be sent,
    /// and works out its new state. Nothing is written here.
    async fn attempt(&self, delivery: ClaimedDelivery) -> Attempted {
        let (Some(subscription), Some(event)) = (&delivery.subscription, &delivery.event) else {
            let reason = if delivery.subscription.is_none() { "subscription deleted" } else { "event not found" };
            return Attempted::given_up(delivery, reason);
        };
        if !subscription.enabled {
            return Attempted::given_up(delivery, "subscription disabled");
        }

        let body = signing::body(event);
        let started_at = self.clock.now();
        // The signature's timestamp is the wall-clock time even under a test
        // clock: receivers compare it with their own clock to reject replays.
        let headers = signing::headers(&subscription.secret, delivery.id, &event.event_name, Utc::now(), &body);
        let result = sender::send(
            &self.client,
            &subscription.endpoint_url,
            headers,
            body,
            self.settings.allow_private_endpoints,
            self.settings.timeout,
        )
        .await;

        let outcome = self.outcome(delivery.attempt + 1, started_at, &result);
        Attempted { delivery, outcome, sent: Ok(result) }
    }

    /// Writes the outcomes of attempts that finished together, then logs
    /// and counts each.
    async fn record(&self, attempts: Vec<Attempted>) -> anyhow::Result<Vec<Processed>> {
        let finished = attempts
            .iter()
            .map(|attempted| FinishedAttempt {
                delivery_id: attempted.delivery.id,
                lease_until: attempted.delivery.lease_until,
                outcome: attempted.outcome.clone(),
            })
            .collect();
        let recorded = self.store.finish_attempts(finished).await?;

        let mut processed = Vec::with_capacity(attempts.len());
        for (attempted, recorded) in attempts.iter().zip(recorded) {
            let Attempted { delivery, outcome, sent } = attempted;
            match sent {
                Ok(result) => {
                    crate::metrics::record_attempt(attempt_outcome(outcome.status), result.status, result.duration);
                    log_attempt(delivery, outcome.attempt, outcome.status, result, recorded);
                }
                Err(reason) => log_given_up(delivery, reason, recorded),
            }
            processed.push(Processed { delivery_id: delivery.id, status: outcome.status, recorded });
        }
        Ok(processed)
    }

    /// The delivery's state after attempt number `attempt`.
    fn outcome(&self, attempt: i32, started_at: DateTime<Utc>, result: &SendResult) -> DeliveryOutcome {
        let log = Some(NewAttempt {
            attempt,
            started_at,
            duration_ms: result.duration.as_millis() as i64,
            response_status: result.status.map(i32::from),
            response_body: result.body.clone(),
            error: result.error.clone(),
        });
        if result.succeeded() {
            return DeliveryOutcome { status: DeliveryStatus::Ok, attempt, last_error: None, next_attempt_at: None, log };
        }
        if attempt >= self.settings.max_attempts as i32 {
            return DeliveryOutcome {
                status: DeliveryStatus::Fail,
                attempt,
                last_error: result.error.clone(),
                next_attempt_at: None,
                log,
            };
        }
        let delay = self.settings.retry_delay_after(attempt as u32, result.retry_after);
        let next_attempt_at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        DeliveryOutcome {
            status: DeliveryStatus::Pending,
            attempt,
            last_error: result.error.clone(),
            next_attempt_at: Some(next_attempt_at),
            log,
        }
    }
}

/// A claimed delivery after its attempt, before its outcome is written.
struct Attempted {
    delivery: ClaimedDelivery,
    outcome: DeliveryOutcome,
    /// The HTTP attempt, or why none was made.
    sent: Result<SendResult, &'static str>,
}

impl Attempted {
    /// Builds the outcome of a delivery that cannot be sent: `FAIL`, without an attempt.
    fn given_up(delivery: ClaimedDelivery, reason: &'static str) -> Self {
        let outcome = DeliveryOutcome {
            status: DeliveryStatus::Fail,
            attempt: delivery.attempt,
            last_error: Some(reason.to_owned()),
            next_attempt_at: None,
            log: None,
        };
        Self { delivery, outcome, sent: Err(reason) }
    }
}

fn log_given_up(delivery: &ClaimedDelivery, reason: &str, recorded: bool) {
    tracing::warn!(
        delivery_id = %delivery.id,
        event_id = delivery.event.as_ref().map(|event| event.id.to_string()),
        subscription = delivery.subscription.as_ref().map(|subscription| subscription.destination_name.clone()),
        status = "FAIL",
        reason,
        recorded,
        "webhook delivery not sent"
    );
}

/// The `outcome` label of an attempt that left the delivery in `status`.
fn attempt_outcome(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Ok => "ok",
        DeliveryStatus::Pending => "retry",
        DeliveryStatus::Fail => "fail",
    }
}

fn log_attempt(delivery: &ClaimedDelivery, attempt: i32, status: DeliveryStatus, result: &SendResult, recorded: bool) {
    let event_id = delivery.event.as_ref().map(|event| event.id.to_string());
    let subscription = delivery.subscription.as_ref().map(|subscription| subscription.destination_name.clone());
    let duration_ms = result.duration.as_millis() as u64;
    if !recorded {
        tracing::warn!(
            delivery_id = %delivery.id, event_id, subscription, attempt, status = status.as_str(),
            http_status = result.status, duration_ms,
            "webhook attempt not recorded: the lease ran out and another worker claimed the delivery"
        );
        return;
    }
    match status {
        DeliveryStatus::Ok => tracing::info!(
            delivery_id = %delivery.id, event_id, subscription, attempt, status = status.as_str(),
            http_status = result.status, duration_ms,
            "webhook delivered"
        ),
        DeliveryStatus::Pending => tracing::warn!(
            delivery_id = %delivery.id, event_id, subscription, attempt, status = status.as_str(),
            http_status = result.status, duration_ms, error = result.error.as_deref(),
            "webhook attempt failed; retry scheduled"
        ),
        DeliveryStatus::Fail => tracing::error!(
            delivery_id = %delivery.id, event_id, subscription, attempt, status = status.as_str(),
            http_status = result.status, duration_ms, error = result.error.as_deref(),
            "webhook attempt failed; delivery moved to the dead letter (FAIL)"
        ),
    }
}

/// A running dispatcher task and, on PostgreSQL, its `LISTEN` task.
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    worker: JoinHandle<()>,
    listener: Option<JoinHandle<()>>,
}

impl DispatcherHandle {
    /// Stops the worker after its batch in flight, and the listener.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.worker.await {
            tracing::error!(error = %error, "webhook dispatcher task ended abnormally");
        }
        if let Some(listener) = self.listener {
            listener.abort();
            let _ = listener.await;
        }
    }
}

/// Starts the dispatcher and, on PostgreSQL, the listener that wakes it when
/// other processes queue deliveries.
pub fn spawn(store: Arc<dyn Store>, signals: Arc<Signals>, settings: DispatcherSettings) -> anyhow::Result<DispatcherHandle> {
    if settings.allow_private_endpoints {
        tracing::warn!(
            "ALLOW_PRIVATE_ENDPOINTS=true: webhooks may be sent to loopback and private network addresses; \
             use this only for development and tests"
        );
    }
    let dispatcher = Dispatcher::new(store.clone(), settings)?;
    let listener = store.spawn_delivery_listener(signals.clone());
    let (stop, stop_receiver) = watch::channel(false);
    let worker = tokio::spawn(dispatcher.run(signals, stop_receiver));
    Ok(DispatcherHandle { stop, worker, listener })
}
