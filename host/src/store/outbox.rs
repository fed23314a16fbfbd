//! Storage for the email outbox: rows written with their automation run,
//! leased by the mailer, then marked `SENT` or retried until `FAIL`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A rendered email, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewEmail {
    pub template_id: String,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
}

/// Outbox states, spelled like the delivery states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EmailStatus {
    #[serde(rename = "PENDING")]
    Pending,
    #[serde(rename = "SENT")]
    Sent,
    #[serde(rename = "FAIL")]
    Fail,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
            Self::Fail => "FAIL",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "PENDING" => Ok(Self::Pending),
            "SENT" => Ok(Self::Sent),
            "FAIL" => Ok(Self::Fail),
            other => anyhow::bail!("unknown email status `{other}` in grito_email_outbox"),
        }
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEmail {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub automation_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub template_id: String,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub status: EmailStatus,
    /// Send attempts that ended (accepted or failed); a claim alone does not count.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Storage for the mailer. Same behaviour on both backends.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` `PENDING` emails due at `now` by pushing their
    /// `next_attempt_at` to `now + lease`, so a mailer that dies mid-send
    /// leaves rows that come back on their own. On PostgreSQL the claim
    /// skips rows another mailer is claiming at the same moment.
    async fn claim_emails(&self, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<OutboxEmail>>;

    /// Marks a `PENDING` email `SENT`; false when it was no longer `PENDING`.
    async fn mark_email_sent(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool>;

    /// Records a failed attempt: `attempts` is the new count, and the email
    /// becomes `FAIL` when `next_attempt_at` is `None`.
    async fn record_email_failure(
        &self,
        id: Uuid,
        attempts: i32,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> anyhow::Result<()>;

    async fn get_email(&self, id: Uuid) -> anyhow::Result<Option<OutboxEmail>>;

    async fn list_emails_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<OutboxEmail>>;

    /// Counts `PENDING` emails, for health and tests.
    async fn pending_emails(&self) -> anyhow::Result<i64>;
}
