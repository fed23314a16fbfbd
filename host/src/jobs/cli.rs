//! `grito jobs …`: run scheduled jobs on demand.

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::config::Settings;
use crate::signals::Signals;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Emit engagement.inactive_14d / engagement.inactive_30d now; users already emitted for their current inactivity stretch are skipped.
    Inactivity {
        /// Run as if the current time were this RFC 3339 time (for backfills and checks).
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
    },
}

pub async fn run(command: JobsCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        JobsCommand::Inactivity { now } => {
            let store = store::connect(&settings.database).await?;
            let signals = Signals::default();
            let now = now.unwrap_or_else(Utc::now);
            let report = super::run_inactivity(store.as_ref(), &signals, &settings.inactivity, now).await;
            store.close().await;
            let report = report?;
            println!(
                "inactivity job as of {}: {} events emitted, {} already emitted earlier",
                now.to_rfc3339(),
                report.emitted,
                report.already_emitted
            );
            Ok(())
        }
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| format!("expected an RFC 3339 time such as 2026-01-31T03:00:00-03:00 ({error})"))
}
