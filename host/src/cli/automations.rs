//! `grito automations show|activate|deactivate|delete`: the stored-state
//! half of the automation commands (add, list and preview live in
//! [`crate::engine::cli`]).

use super::{print_json, time_or_dash};
use crate::store::{Automation, AutomationChanges, Store};

/// Prints one automation, as text or JSON.
pub async fn show(store: &dyn Store, id_or_name: &str, json: bool) -> anyhow::Result<()> {
    let automation = find(store, id_or_name).await?;
    if json {
        return print_json(&automation);
    }
    println!("automation    {}", automation.id);
    println!("name          {}", automation.name);
    println!("state         {}", state(&automation));
    println!("on event      {}", automation.match_event);
    println!("condition     {}", automation.condition_sql.as_deref().unwrap_or("-"));
    println!("action        {}", automation.action);
    println!("created at    {}", time_or_dash(automation.created_at));
    Ok(())
}

/// Sets is_active, so new events run the automation or skip it.
pub async fn set_active(store: &dyn Store, id_or_name: &str, active: bool) -> anyhow::Result<()> {
    let id = find(store, id_or_name).await?.id;
    let changes = AutomationChanges { is_active: Some(active), ..Default::default() };
    let Some(automation) = store.update_automation(id, changes).await? else {
        return Err(not_found(id_or_name));
    };
    tracing::info!(automation_id = %id, is_active = active, "automation updated from the command line");
    println!("automation {} ({}) is {}", automation.name, automation.id, state(&automation));
    Ok(())
}

/// Deletes an automation and its run records.
pub async fn delete(store: &dyn Store, id_or_name: &str) -> anyhow::Result<()> {
    let automation = find(store, id_or_name).await?;
    if !store.delete_automation(automation.id).await? {
        return Err(not_found(id_or_name));
    }
    tracing::info!(automation_id = %automation.id, "automation deleted from the command line");
    println!("deleted automation {} ({}) and its runs", automation.name, automation.id);
    Ok(())
}

async fn find(store: &dyn Store, id_or_name: &str) -> anyhow::Result<Automation> {
    store.find_automation(id_or_name).await?.ok_or_else(|| not_found(id_or_name))
}

fn not_found(id_or_name: &str) -> anyhow::Error {
    anyhow::anyhow!("automation `{id_or_name}` not found; `grito automations list` shows ids and names")
}

fn state(automation: &Automation) -> &'static str {
    if automation.is_active { "active" } else { "inactive" }
}
