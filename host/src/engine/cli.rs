//! `grito automations`: add (checked before it is stored), list, preview;
//! show, activate, deactivate and delete run in [`crate::cli::automations`].

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;

use super::{preview, preview_event, validate_automation};
use crate::config::Settings;
use crate::mailer::Templates;
use crate::plugins::{NoIdentities, PluginHost};
use crate::store::{self, NewAutomation, Store};

#[derive(Debug, Subcommand)]
pub enum AutomationsCommand {
    /// Add an automation. Its condition and action are checked by the
    /// plugins first, and a bad one is rejected with the reason.
    Add {
        /// Display name, for example "Boas-vindas".
        #[arg(long)]
        name: String,
        /// Event name that triggers it, for example user.signed_up.
        #[arg(long)]
        match_event: String,
        /// Optional condition_sql, for example "payload->>'plan' is null".
        #[arg(long)]
        condition: Option<String>,
        /// The action as JSON, for example
        /// '{"type":"email","template_id":"welcome_01","to":"{{payload.email}}","variables":{"nome":"{{payload.name}}"}}'.
        #[arg(long)]
        action: String,
        /// Store it inactive (is_active = false).
        #[arg(long)]
        inactive: bool,
    },
    /// List every automation.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print, as JSON, what an automation would do for an event: its
    /// condition and action run, nothing is written or sent.
    Preview {
        /// Automation id or name.
        automation: String,
        /// A POST /events body in a JSON file; a missing user_id is made up.
        #[arg(long)]
        event: PathBuf,
    },
    /// Show one automation: its event, condition, action and state.
    Show {
        /// Automation id or name.
        automation: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Activate an automation (is_active = true): new events run it.
    Activate {
        /// Automation id or name.
        automation: String,
    },
    /// Deactivate an automation (is_active = false): new events skip it; its runs are kept.
    Deactivate {
        /// Automation id or name.
        automation: String,
    },
    /// Delete an automation and its run records.
    Delete {
        /// Automation id or name.
        automation: String,
    },
}

pub async fn run(command: AutomationsCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = store::connect(&settings.database).await?;
    let result = match command {
        AutomationsCommand::Add { name, match_event, condition, action, inactive } => {
            let action = serde_json::from_str(&action).context("--action is not valid JSON")?;
            let automation = NewAutomation { name, is_active: !inactive, match_event, condition_sql: condition, action };
            add(store.as_ref(), settings, automation).await
        }
        AutomationsCommand::List { json } => list(store.as_ref(), json).await,
        AutomationsCommand::Preview { automation, event } => run_preview(store.as_ref(), settings, &automation, &event).await,
        AutomationsCommand::Show { automation, json } => crate::cli::automations::show(store.as_ref(), &automation, json).await,
        AutomationsCommand::Activate { automation } => crate::cli::automations::set_active(store.as_ref(), &automation, true).await,
        AutomationsCommand::Deactivate { automation } => crate::cli::automations::set_active(store.as_ref(), &automation, false).await,
        AutomationsCommand::Delete { automation } => crate::cli::automations::delete(store.as_ref(), &automation).await,
    };
    store.close().await;
    result
}

async fn open_plugins(settings: &Settings) -> anyhow::Result<PluginHost> {
    PluginHost::open(settings.plugins.clone(), Arc::new(NoIdentities)).await
}

async fn add(store: &dyn Store, settings: &Settings, automation: NewAutomation) -> anyhow::Result<()> {
    let plugins = open_plugins(settings).await?;
    let templates = Templates::new(settings.mailer.templates_dir.clone());
    if let Err(invalid) = validate_automation(&plugins, &templates, &automation).await {
        let lines: Vec<String> = invalid.problems.iter().map(|problem| format!("  {}: {}", problem.field, problem.message)).collect();
        anyhow::bail!("automation `{}` rejected:\n{}", automation.name, lines.join("\n"));
    }

    let created = store.create_automation(automation).await?;
    tracing::info!(automation_id = %created.id, automation_name = created.name, "automation added");
    println!("added automation {} ({}) on {}", created.name, created.id, created.match_event);
    Ok(())
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let automations = store.list_automations().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&automations)?);
        return Ok(());
    }
    if automations.is_empty() {
        println!("no automations; add one with `grito automations add` or `grito seed`");
        return Ok(());
    }
    for automation in automations {
        let state = if automation.is_active { "active" } else { "inactive" };
        let condition = automation.condition_sql.as_deref().unwrap_or("-");
        println!(
            "{}  {:<8}  {}  on {}  if {}  do {}",
            automation.id, state, automation.name, automation.match_event, condition, automation.action
        );
    }
    Ok(())
}

async fn run_preview(store: &dyn Store, settings: &Settings, automation: &str, event_file: &std::path::Path) -> anyhow::Result<()> {
    let Some(automation) = store.find_automation(automation).await? else {
        anyhow::bail!("automation `{automation}` not found; `grito automations list` shows ids and names");
    };
    let text = std::fs::read_to_string(event_file).with_context(|| format!("cannot read {}", event_file.display()))?;
    let body = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", event_file.display()))?;
    let now = Utc::now();
    let event = preview_event(&body, now).with_context(|| format!("in {}", event_file.display()))?;

    let plugins = open_plugins(settings).await?;
    let templates = Templates::new(settings.mailer.templates_dir.clone());
    let result = preview(store, &plugins, &templates, &automation, event, now).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
