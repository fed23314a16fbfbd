//! In-process wake-ups from the ingest path to the workers.
//!
//! A signal only shortens the wait: workers also sweep their tables on a
//! timer, so a lost signal delays work but never loses it.

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Signals {
    /// New unprocessed events for the automation engine.
    pub events: Notify,
    /// New or reprocessed `PENDING` deliveries for the dispatcher.
    pub deliveries: Notify,
    /// New messages in the email outbox for the mailer.
    pub emails: Notify,
}
