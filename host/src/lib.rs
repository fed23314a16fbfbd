//! Grito: stores events once, runs automations on them through Wasm plugins,
//! and delivers them as signed webhooks with retries.

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod dispatcher;
pub mod engine;
pub mod inbound;
pub mod ingest;
pub mod jobs;
pub mod mailer;
pub mod metrics;
pub mod normalizers;
pub mod plugins;
pub mod seed;
pub mod server;
pub mod signals;
pub mod store;
pub mod stripe;
