//! `grito events`: list with filters, show with runs and deliveries, and
//! replay (the admin API's replay: re-delivers, never re-runs automations).

use chrono::{DateTime, Utc};
use clap::Subcommand;
use uuid::Uuid;

use super::{print_json, time_or_dash};
use crate::admin::{EventView, replay_event};
use crate::config::Settings;
use crate::dispatcher::cli::parse_since;
use crate::store::{self, EventQuery, Store};

/// Maximum page size of `grito events list`, the same as the admin API's.
const MAX_LIMIT: u32 = 500;

/// The `grito events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List stored events, newest first.
    List {
        /// Only events with this exact event_name, for example user.signed_up.
        #[arg(long)]
        name: Option<String>,
        /// Only events of this user_id (a UUID).
        #[arg(long)]
        user: Option<Uuid>,
        /// Only events with this exact source, for example app or stripe.
        #[arg(long)]
        source: Option<String>,
        /// Only events that occurred at or after TIME: RFC 3339
        /// (2025-09-25T12:00:00Z), a date (2025-09-25, UTC midnight) or a
        /// duration ago (2h, 3d).
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// Only events that occurred before TIME (same forms as --since).
        #[arg(long, value_parser = parse_since)]
        until: Option<DateTime<Utc>>,
        /// Maximum number of events shown, 1 to 500.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one event with its payload, automation runs and webhook deliveries.
    Show {
        /// Event id (a UUID).
        id: Uuid,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deliver an event again: queue a delivery for each enabled matching
    /// subscription that has none for it, and put its FAIL deliveries back
    /// to PENDING. Automations are not run again.
    Replay {
        /// Event id (a UUID).
        id: Uuid,
    },
}

/// Runs a `grito events` subcommand against the configured database.
pub async fn run(command: EventsCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = store::connect(&settings.database).await?;
    let result = run_with(store.as_ref(), command).await;
    store.close().await;
    result
}

async fn run_with(store: &dyn Store, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List { name, user, source, since, until, limit, json } => {
            let query = EventQuery { event_name: name, user_id: user, source, since, until, after: None, limit };
            let events = store.list_events(&query).await?;
            if json {
                let views: Vec<EventView> = events.into_iter().map(Into::into).collect();
                return print_json(&views);
            }
            print_table(&events);
            Ok(())
        }
        EventsCommand::Show { id, json } => show(store, id, json).await,
        EventsCommand::Replay { id } => {
            let Some(outcome) = replay_event(store, id).await? else {
                return Err(not_found(id));
            };
            tracing::info!(event_id = %id, created = outcome.created.len(), requeued = outcome.requeued.len(), "event replayed from the command line");
            for delivery in &outcome.created {
                println!("created  {delivery}");
            }
            for delivery in &outcome.requeued {
                println!("requeued {delivery}");
            }
            println!(
                "event {id}: {} new deliveries, {} FAIL deliveries PENDING again; a running dispatcher sends them",
                outcome.created.len(),
                outcome.requeued.len()
            );
            Ok(())
        }
    }
}

async fn show(store: &dyn Store, id: Uuid, json: bool) -> anyhow::Result<()> {
    let Some(event) = store.get_event(id).await? else {
        return Err(not_found(id));
    };
    let runs = store.list_runs_for_event(id).await?;
    let deliveries = store.list_deliveries_for_event(id).await?;
    if json {
        let mut value = serde_json::to_value(EventView::from(event))?;
        value["runs"] = serde_json::to_value(&runs)?;
        value["deliveries"] = serde_json::to_value(&deliveries)?;
        return print_json(&value);
    }

    println!("event         {}", event.id);
    println!("name          {}", event.event_name);
    println!("user          {}", event.user_id);
    println!("source        {}", event.source);
    println!("occurred at   {}", time_or_dash(Some(event.occurred_at)));
    println!("idempotency   {}", event.idempotency_key.as_deref().unwrap_or("-"));
    println!("processed at  {}", time_or_dash(event.processed_at));
    println!("payload       {}", event.payload);
    println!("runs:");
    if runs.is_empty() {
        println!("  none");
    }
    for run in &runs {
        println!(
            "  {} automation {} {} in {} ms{}",
            run.id,
            run.automation_id,
            run.status.as_str(),
            run.duration_ms,
            run.error.as_deref().map(|error| format!(", error: {error}")).unwrap_or_default()
        );
    }
    println!("deliveries:");
    if deliveries.is_empty() {
        println!("  none");
    }
    for delivery in &deliveries {
        println!(
            "  {} {} attempt {} subscription {}{}",
            delivery.id,
            delivery.status.as_str(),
            delivery.attempt,
            delivery.subscription_id.map_or_else(|| "(deleted)".to_owned(), |id| id.to_string()),
            delivery.last_error.as_deref().map(|error| format!(", last error: {error}")).unwrap_or_default()
        );
    }
    Ok(())
}

fn print_table(events: &[crate::store::Event]) {
    if events.is_empty() {
        println!("no events match");
        return;
    }
    println!("{:<36}  {:<20}  {:<24}  {:<36}  {:<10}  PROCESSED", "ID", "OCCURRED AT", "NAME", "USER", "SOURCE");
    for event in events {
        println!(
            "{:<36}  {:<20}  {:<24}  {:<36}  {:<10}  {}",
            event.id,
            time_or_dash(Some(event.occurred_at)),
            event.event_name,
            event.user_id,
            event.source,
            if event.processed_at.is_some() { "yes" } else { "no" }
        );
    }
}

fn not_found(id: Uuid) -> anyhow::Error {
    anyhow::anyhow!("event {id} not found; `grito events list` shows recent event ids")
}
