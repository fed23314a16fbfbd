//! `grito deliveries …` (list, show, retry) and `grito worker`.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use uuid::Uuid;

use crate::config::{Settings, parse_duration};
use crate::signals::Signals;
use crate::store::{self, DeliveryFilter, DeliveryStatus, DeliverySummary, RequeueFilter, RequeueOutcome, Store};

/// The `grito deliveries` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List webhook deliveries, newest first, with status, attempts and last error.
    List {
        /// Only deliveries with this status: PENDING, OK or FAIL.
        #[arg(long)]
        status: Option<String>,
        /// Only deliveries of the subscription with this destination_name.
        #[arg(long)]
        subscription: Option<String>,
        /// Maximum number of deliveries shown.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one delivery and all of its attempts.
    Show {
        id: Uuid,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put FAIL deliveries back to PENDING, with a full new retry schedule.
    Retry {
        /// The delivery to reprocess (omit with --failed).
        #[arg(required_unless_present = "failed", conflicts_with_all = ["failed", "subscription", "since"])]
        id: Option<Uuid>,
        /// Reprocess every FAIL delivery (narrowed by --subscription and --since).
        #[arg(long)]
        failed: bool,
        /// Only deliveries of the subscription with this destination_name.
        #[arg(long, requires = "failed")]
        subscription: Option<String>,
        /// Only deliveries created at or after TIME: RFC 3339 (2025-09-25T12:00:00Z),
        /// a date (2025-09-25, UTC midnight) or a duration ago (2h, 3d).
        #[arg(long, requires = "failed", value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
    },
}

/// Runs a `grito deliveries` subcommand against the configured database.
pub async fn run(command: DeliveriesCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = store::connect(&settings.database).await?;
    let result = run_with(store.as_ref(), command).await;
    store.close().await;
    result
}

async fn run_with(store: &dyn Store, command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List { status, subscription, limit, json } => {
            let status = status.as_deref().map(|text| DeliveryStatus::parse(&text.to_ascii_uppercase())).transpose()
                .map_err(|_| anyhow::anyhow!("invalid --status: expected PENDING, OK or FAIL"))?;
            let filter = DeliveryFilter { status, subscription, since: None, limit: limit.max(1) };
            let deliveries = store.list_deliveries(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&deliveries)?);
            } else {
                print_table(&deliveries);
            }
            Ok(())
        }
        DeliveriesCommand::Show { id, json } => {
            let Some(delivery) = store.get_delivery(id).await? else {
                anyhow::bail!("delivery {id} not found");
            };
            let attempts = store.list_attempts(id).await?;
            if json {
                let mut value = serde_json::to_value(&delivery)?;
                value["attempts"] = serde_json::to_value(&attempts)?;
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_detail(&delivery);
                for attempt in &attempts {
                    let status = attempt.response_status.map_or("-".to_owned(), |status| status.to_string());
                    println!(
                        "  attempt {} at {}: {} ms, HTTP {status}{}",
                        attempt.attempt,
                        attempt.started_at.to_rfc3339(),
                        attempt.duration_ms,
                        attempt.error.as_deref().map(|error| format!(", error: {error}")).unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
        DeliveriesCommand::Retry { id: Some(id), .. } => match store.requeue_delivery(id).await? {
            RequeueOutcome::Requeued => {
                tracing::info!(delivery_id = %id, status = "PENDING", "delivery reprocessed from the command line");
                println!("delivery {id} is PENDING again and will be attempted now{}", wake_note(store));
                Ok(())
            }
            RequeueOutcome::NotFailed(DeliveryStatus::Pending) => {
                let next = store.get_delivery(id).await?.and_then(|summary| summary.delivery.next_attempt_at);
                let when = match next {
                    Some(time) => format!("its next attempt is at {} UTC", time.format("%Y-%m-%d %H:%M:%S")),
                    None => "it is due now".to_owned(),
                };
                anyhow::bail!(
                    "delivery {id} is PENDING, so it is still being retried and {when}; \
                     only FAIL deliveries can be reprocessed (see `grito deliveries show {id}`)"
                )
            }
            RequeueOutcome::NotFailed(status) => {
                anyhow::bail!("delivery {id} is {}; only FAIL deliveries can be reprocessed", status.as_str())
            }
            RequeueOutcome::NotFound => anyhow::bail!("delivery {id} not found"),
        },
        DeliveriesCommand::Retry { id: None, subscription, since, .. } => {
            let filter = RequeueFilter { subscription, since };
            let ids = store.requeue_failed(&filter).await?;
            tracing::info!(
                requeued = ids.len(),
                subscription = filter.subscription.as_deref(),
                "failed deliveries reprocessed from the command line"
            );
            for id in &ids {
                println!("{id}");
            }
            println!("{} FAIL deliveries are PENDING again{}", ids.len(), wake_note(store));
            Ok(())
        }
    }
}

/// Runs the workers without the HTTP server, until Ctrl-C or SIGTERM.
pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = crate::server::describe_database(&settings.database),
        "starting grito worker"
    );
    let store = store::connect(&settings.database).await?;
    let signals = Arc::new(Signals::default());
    let dispatcher = super::spawn(store.clone(), signals.clone(), settings.dispatcher.clone())?;
    let plugins = crate::engine::workers::start_plugins(&settings, store.clone()).await?;
    let automation = crate::engine::workers::spawn(store.clone(), signals, Arc::new(plugins), &settings)?;

    crate::server::shutdown_signal().await;
    dispatcher.stop().await;
    automation.stop().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How a running server learns of the change: PostgreSQL notifies it at
/// once, SQLite leaves it to the periodic sweep.
fn wake_note(store: &dyn Store) -> &'static str {
    match store.backend() {
        "postgres" => " (running dispatchers were notified)",
        _ => " (a running dispatcher picks it up within WEBHOOK_SWEEP_INTERVAL)",
    }
}

pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    match parse_duration(text) {
        Ok(ago) => Ok(Utc::now() - chrono::Duration::from_std(ago).map_err(|error| error.to_string())?),
        Err(_) => Err(format!(
            "invalid time `{text}`: expected RFC 3339 (2025-09-25T12:00:00Z), a date (2025-09-25) or a duration ago (2h)"
        )),
    }
}

fn print_table(deliveries: &[DeliverySummary]) {
    if deliveries.is_empty() {
        println!("no deliveries");
        return;
    }
    println!("{:<36}  {:<7}  {:>7}  {:<20}  {:<20}  {:<20}  LAST ERROR", "ID", "STATUS", "ATTEMPT", "SUBSCRIPTION", "EVENT", "NEXT ATTEMPT");
    for summary in deliveries {
        let delivery = &summary.delivery;
        let next = delivery.next_attempt_at.map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string());
        let error: String = delivery.last_error.as_deref().unwrap_or("").chars().take(80).collect();
        println!(
            "{:<36}  {:<7}  {:>7}  {:<20}  {:<20}  {:<20}  {error}",
            delivery.id,
            delivery.status.as_str(),
            delivery.attempt,
            summary.subscription_name.as_deref().unwrap_or("(deleted)"),
            summary.event_name.as_deref().unwrap_or("(missing)"),
            next.as_deref().unwrap_or("-"),
        );
    }
}

fn print_detail(summary: &DeliverySummary) {
    let delivery = &summary.delivery;
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    println!("delivery      {}", delivery.id);
    println!("status        {}", delivery.status.as_str());
    println!("attempt       {}", delivery.attempt);
    println!("subscription  {}", summary.subscription_name.as_deref().unwrap_or("(deleted)"));
    println!("event         {} {}", optional(delivery.event_id.map(|id| id.to_string())), summary.event_name.as_deref().unwrap_or(""));
    println!("created at    {}", optional(delivery.created_at.map(|time| time.to_rfc3339())));
    println!("next attempt  {}", optional(delivery.next_attempt_at.map(|time| time.to_rfc3339())));
    println!("last error    {}", delivery.last_error.as_deref().unwrap_or("-"));
    println!("attempts:");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_dates_and_durations() {
        assert_eq!(parse_since("2025-09-25T12:00:00Z").unwrap().to_rfc3339(), "2025-09-25T12:00:00+00:00");
        assert_eq!(parse_since("2025-09-25").unwrap().to_rfc3339(), "2025-09-25T00:00:00+00:00");
        let two_hours_ago = parse_since("2h").unwrap();
        assert!((Utc::now() - two_hours_ago - chrono::Duration::hours(2)).num_seconds().abs() < 5);
        assert!(parse_since("yesterday").is_err());
    }
}
