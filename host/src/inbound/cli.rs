//! `grito identities …` (set, get, delete, import) and `grito inbound …`
//! (parked, publish): the operator's view of the identity map and of parked
//! inbound events.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use uuid::Uuid;

use crate::config::Settings;
use crate::signals::Signals;
use crate::store::{self, IdentityChange, ParkedEvent, Store};

/// The `grito identities` subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Map an external id to a user, replacing any earlier mapping, and
    /// publish the parked events waiting on it.
    Set {
        /// The identity source, for example `stripe`.
        source: String,
        /// The id in that source, for example a Stripe customer id `cus_…`.
        external_id: String,
        /// The Grito user (UUID).
        user_id: Uuid,
    },
    /// Print the user an external id is mapped to.
    Get {
        source: String,
        external_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a mapping. Events already stored keep their user.
    Delete { source: String, external_id: String },
    /// Set every mapping in a CSV file with the header `source,external_id,user_id`.
    Import { file: PathBuf },
}

/// The `grito inbound` subcommands.
#[derive(Debug, Subcommand)]
pub enum InboundCommand {
    /// List parked inbound events, oldest first.
    Parked {
        /// Include events that were published already.
        #[arg(long)]
        all: bool,
        /// Maximum number of rows shown.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish one parked event for the given user.
    Publish {
        /// The parked row's id, from `grito inbound parked`.
        id: Uuid,
        /// The Grito user (UUID) the event belongs to.
        #[arg(long)]
        user: Uuid,
    },
}

/// Runs a `grito identities` subcommand against the configured database.
pub async fn run_identities(command: IdentitiesCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = store::connect(&settings.database).await?;
    let result = identities(store.as_ref(), command).await;
    store.close().await;
    result
}

/// Runs a `grito inbound` subcommand against the configured database.
pub async fn run_inbound(command: InboundCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = store::connect(&settings.database).await?;
    let result = inbound(store.as_ref(), command).await;
    store.close().await;
    result
}

async fn identities(store: &dyn Store, command: IdentitiesCommand) -> anyhow::Result<()> {
    let signals = Signals::default();
    match command {
        IdentitiesCommand::Set {
            source,
            external_id,
            user_id,
        } => {
            set_one(store, &signals, &source, &external_id, user_id).await?;
        }
        IdentitiesCommand::Get {
            source,
            external_id,
            json,
        } => {
            let identity = store.get_identity(&source, &external_id).await?;
            match (identity, json) {
                (Some(identity), true) => println!("{}", serde_json::to_string_pretty(&identity)?),
                (Some(identity), false) => {
                    println!("{source} {external_id} -> {}", identity.user_id)
                }
                (None, _) => anyhow::bail!("no user is mapped to {source} id {external_id}"),
            }
        }
        IdentitiesCommand::Delete {
            source,
            external_id,
        } => {
            anyhow::ensure!(
                store.delete_identity(&source, &external_id).await?,
                "no user is mapped to {source} id {external_id}"
            );
            tracing::info!(source, external_id, "identity deleted");
            println!("deleted {source} {external_id}");
        }
        IdentitiesCommand::Import { file } => {
            let rows = read_csv(&file)?;
            for (source, external_id, user_id) in &rows {
                set_one(store, &signals, source, external_id, *user_id).await?;
            }
            println!("imported {} mappings from {}", rows.len(), file.display());
        }
    }
    Ok(())
}

async fn set_one(
    store: &dyn Store,
    signals: &Signals,
    source: &str,
    external_id: &str,
    user_id: Uuid,
) -> anyhow::Result<()> {
    let (change, published) =
        super::set_identity(store, signals, source, external_id, user_id, true).await?;
    let what = match change {
        IdentityChange::Created => "mapped".to_owned(),
        IdentityChange::Unchanged => "already mapped".to_owned(),
        IdentityChange::Replaced { previous } => format!("remapped (was {previous})"),
        IdentityChange::Kept { existing } => format!("kept the existing mapping to {existing}"),
    };
    println!(
        "{source} {external_id} -> {user_id}: {what}; published {} parked events",
        published.len()
    );
    for item in published {
        println!("  parked {} -> event {}", item.parked_id, item.event_id);
    }
    Ok(())
}

/// Reads `source,external_id,user_id` rows after a header line. Every row is
/// checked before any is written, so a bad file changes nothing.
fn read_csv(path: &Path) -> anyhow::Result<Vec<(String, String, Uuid)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let header = lines
        .next()
        .map(|(_, line)| line.trim().to_ascii_lowercase().replace(' ', ""));
    anyhow::ensure!(
        header.as_deref() == Some("source,external_id,user_id"),
        "{}: the first line must be the header source,external_id,user_id",
        path.display()
    );

    let mut rows = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let fields: Vec<&str> = line
            .split(',')
            .map(|field| field.trim().trim_matches('"'))
            .collect();
        let [source, external_id, user_id] = fields[..] else {
            anyhow::bail!(
                "{} line {number}: expected 3 fields (source,external_id,user_id), got {}",
                path.display(),
                fields.len()
            );
        };
        anyhow::ensure!(
            !source.is_empty() && !external_id.is_empty(),
            "{} line {number}: source and external_id must not be empty",
            path.display()
        );
        let user_id = Uuid::parse_str(user_id).with_context(|| {
            format!(
                "{} line {number}: user_id `{user_id}` is not a UUID",
                path.display()
            )
        })?;
        rows.push((source.to_owned(), external_id.to_owned(), user_id));
    }
    Ok(rows)
}

async fn inbound(store: &dyn Store, command: InboundCommand) -> anyhow::Result<()> {
    match command {
        InboundCommand::Parked { all, limit, json } => {
            let parked = store.list_parked(all, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&parked)?);
            } else {
                print_table(&parked);
            }
        }
        InboundCommand::Publish { id, user } => {
            let parked = store
                .get_parked(id)
                .await?
                .with_context(|| format!("no parked event has id {id}"))?;
            if let Some(event_id) = parked.published_event_id {
                anyhow::bail!("parked event {id} was already published as event {event_id}");
            }
            let published =
                super::publish(store, &Signals::default(), &parked, user, Utc::now()).await?;
            println!(
                "published parked {id} as event {} for user {user}",
                published.event_id
            );
            if let Some(external_id) = &parked.external_id {
                println!(
                    "to route later {} events of {external_id} to this user: grito identities set {} {external_id} {user}",
                    parked.identity_source, parked.identity_source
                );
            }
        }
    }
    Ok(())
}

fn print_table(parked: &[ParkedEvent]) {
    if parked.is_empty() {
        println!("no parked events");
        return;
    }
    println!(
        "{:<36}  {:<20}  {:<18}  {:<24}  {:<10}  reason",
        "id", "created_at", "event_name", "waiting_on", "published"
    );
    for row in parked {
        let waiting_on = format!(
            "{}:{}",
            row.identity_source,
            row.external_id.as_deref().unwrap_or("-")
        );
        let published = if row.published_at.is_some() {
            "yes"
        } else {
            "no"
        };
        println!(
            "{:<36}  {:<20}  {:<18}  {:<24}  {:<10}  {}",
            row.id,
            row.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            row.draft.event_name,
            waiting_on,
            published,
            row.reason
        );
    }
}
