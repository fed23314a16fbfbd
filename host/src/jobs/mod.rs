//! Scheduled jobs. Today there is one: the daily inactivity job.

pub mod cli;
pub mod inactivity;

pub use inactivity::{InactivitySettings, run_inactivity, spawn_inactivity_schedule};
