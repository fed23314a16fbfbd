//! Operator commands over the stored configuration and history:
//! `grito subscriptions`, `grito events`, `grito signature`, and the
//! show/activate/deactivate/delete part of `grito automations`.
//!
//! They change the database through the same store methods and checks as
//! the admin API, print tables for people and JSON with `--json`, and exit
//! non-zero with a message naming the value and the next step on error.

pub mod automations;
pub mod events;
pub mod signature;
pub mod subscriptions;

/// Prints `value` as indented JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// An optional time as RFC 3339, or `-`.
fn time_or_dash(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map_or_else(|| "-".to_owned(), |time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
