//! The mailer: sends the email outbox (`grito_email_outbox`) over SMTP, or
//! to `.eml` files when no SMTP server is configured, with the brief's retry
//! schedule.
//!
//! A message the SMTP server accepted is marked `SENT` right after the
//! server's reply, so retries and restarts do not send it again. One window
//! remains: if the process dies between the server's acceptance and that
//! update, the row's lease expires and the message is sent a second time,
//! with the same `Message-ID` (`<outbox id@sender domain>`) so receivers
//! can drop the copy.

pub mod templates;
pub mod transport;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use crate::config::Source;
use crate::signals::Signals;
use crate::store::{OutboxEmail, Store};

pub use templates::{TemplateError, Templates};
pub use transport::{SendError, Transport};

/// The mailer's settings (`SMTP_URL`, `MAIL_FROM`, `TEMPLATES_DIR`, `MAIL_*`).
#[derive(Debug, Clone)]
pub struct MailerSettings {
    /// `None` writes `.eml` files to `outbox_dir` instead of sending.
    pub smtp_url: Option<String>,
    /// Sender of every email (`MAIL_FROM`).
    pub from: Mailbox,
    pub templates_dir: std::path::PathBuf,
    /// Folder for `.eml` files when `smtp_url` is `None` (`DATA_DIR/outbox`).
    pub outbox_dir: std::path::PathBuf,
    /// Wait after the 1st, 2nd, … failed attempt; later failures reuse the last entry.
    pub retry_schedule: Vec<Duration>,
    /// The failed attempt with this number marks the email `FAIL` (`MAIL_MAX_ATTEMPTS`).
    pub max_attempts: i32,
    /// Emails claimed per query (`MAIL_BATCH_SIZE`).
    pub batch_size: u32,
    /// Limit for one SMTP conversation (`MAIL_TIMEOUT`).
    pub timeout: Duration,
    /// Interval of the safety-net sweep (`MAIL_SWEEP_INTERVAL`).
    pub sweep_interval: Duration,
}

pub const DEFAULT_MAIL_FROM: &str = "Grito <no-reply@localhost>";

impl MailerSettings {
    pub fn from_source(source: &Source, data_dir: &Path) -> anyhow::Result<Self> {
        let from_text = source.get("MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned());
        let from: Mailbox = from_text
            .parse()
            .map_err(|error| anyhow::anyhow!("invalid MAIL_FROM `{from_text}`: {error} (example: Grito <no-reply@example.org>)"))?;
        let settings = Self {
            smtp_url: source.get("SMTP_URL"),
            from,
            templates_dir: source.get("TEMPLATES_DIR").unwrap_or_else(|| "templates".to_owned()).into(),
            outbox_dir: data_dir.join("outbox"),
            retry_schedule: [2, 4, 8, 16, 32].map(|minutes| Duration::from_secs(minutes * 60)).to_vec(),
            max_attempts: source.parse_or("MAIL_MAX_ATTEMPTS", 6)?,
            batch_size: source.parse_or("MAIL_BATCH_SIZE", 20)?,
            timeout: source.duration_or("MAIL_TIMEOUT", Duration::from_secs(30))?,
            sweep_interval: source.duration_or("MAIL_SWEEP_INTERVAL", Duration::from_secs(5))?,
        };
        anyhow::ensure!(settings.max_attempts >= 1, "MAIL_MAX_ATTEMPTS must be at least 1, got {}", settings.max_attempts);
        anyhow::ensure!(settings.batch_size >= 1, "MAIL_BATCH_SIZE must be at least 1, got {}", settings.batch_size);
        anyhow::ensure!(!settings.timeout.is_zero(), "MAIL_TIMEOUT must be longer than zero");
        anyhow::ensure!(!settings.sweep_interval.is_zero(), "MAIL_SWEEP_INTERVAL must be longer than zero");
        Ok(settings)
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn retry_delay(&self, attempt: i32) -> Duration {
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        self.retry_schedule.get(index).or(self.retry_schedule.last()).copied().unwrap_or(Duration::from_secs(60))
    }

    /// How long a claim holds an email: the SMTP timeout plus a margin, so
    /// a slow send records its outcome before another mailer may claim it.
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }

    /// The transport these settings name.
    pub fn transport(&self) -> anyhow::Result<Transport> {
        match &self.smtp_url {
            Some(url) => Transport::smtp(url, self.timeout),
            None => Ok(Transport::folder(&self.outbox_dir)),
        }
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailerPass {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// The mailer worker.
pub struct Mailer {
    store: Arc<dyn Store>,
    transport: Transport,
    settings: MailerSettings,
}

impl Mailer {
    pub fn new(store: Arc<dyn Store>, settings: MailerSettings) -> anyhow::Result<Self> {
        let transport = settings.transport()?;
        Ok(Self { store, transport, settings })
    }

    pub fn with_transport(store: Arc<dyn Store>, settings: MailerSettings, transport: Transport) -> Self {
        Self { store, transport, settings }
    }

    /// Sends due emails until `shutdown` turns true, woken by
    /// `signals.emails` and by a sweep every `sweep_interval`.
    pub async fn run(self, signals: Arc<Signals>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        match &self.transport {
            Transport::Folder(dir) => tracing::warn!(
                folder = %dir.display(),
                "mailer started without SMTP_URL: emails are written as .eml files, not sent"
            ),
            Transport::Smtp { described, .. } => tracing::info!(smtp = described.as_str(), "mailer started"),
        }
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.run_once(Utc::now()).await {
                Ok(pass) => {
                    failures = 0;
                    let full = pass.claimed >= self.settings.batch_size as usize;
                    if full { Duration::ZERO } else { self.settings.sweep_interval }
                }
                Err(error) => {
                    failures += 1;
                    let backoff = backoff(failures, self.settings.sweep_interval);
                    tracing::error!(error = format!("{error:#}"), retry_in_ms = backoff.as_millis() as u64, "mailer pass failed");
                    backoff
                }
            };
            tokio::select! {
                () = signals.emails.notified() => {},
                () = tokio::time::sleep(wait) => {},
                _ = shutdown.changed() => {},
            }
        }
        tracing::info!("mailer stopped");
    }

    /// Claims due emails at `now` and sends each; a database error stops the pass.
    pub async fn run_once(&self, now: DateTime<Utc>) -> anyhow::Result<MailerPass> {
        let emails = self.store.claim_emails(now, self.settings.lease(), self.settings.batch_size).await?;
        let mut pass = MailerPass { claimed: emails.len(), ..MailerPass::default() };
        for email in emails {
            self.send_one(&email, now, &mut pass).await?;
        }
        Ok(pass)
    }

    async fn send_one(&self, email: &OutboxEmail, now: DateTime<Utc>, pass: &mut MailerPass) -> anyhow::Result<()> {
        let attempt = email.attempts + 1;
        let result = self.transport.send(email, &self.settings.from).await;

        let error = match result {
            Ok(()) => {
                self.store.mark_email_sent(email.id, now).await?;
                pass.sent += 1;
                tracing::info!(
                    email_id = %email.id,
                    event_id = ?email.event_id,
                    automation_id = ?email.automation_id,
                    template_id = email.template_id,
                    attempt,
                    status = "SENT",
                    "email sent"
                );
                return Ok(());
            }
            Err(error) => error,
        };

        let permanent = matches!(error, SendError::Permanent(_));
        let next_attempt_at = if permanent || attempt >= self.settings.max_attempts {
            None
        } else {
            Some(now + chrono::Duration::from_std(self.settings.retry_delay(attempt))?)
        };
        self.store.record_email_failure(email.id, attempt, next_attempt_at, &error.to_string()).await?;
        match next_attempt_at {
            Some(next_attempt_at) => {
                pass.retried += 1;
                tracing::warn!(
                    email_id = %email.id,
                    event_id = ?email.event_id,
                    attempt,
                    status = "PENDING",
                    %next_attempt_at,
                    error = %error,
                    "email send failed; will retry"
                );
            }
            None => {
                pass.failed += 1;
                tracing::error!(
                    email_id = %email.id,
                    event_id = ?email.event_id,
                    attempt,
                    status = "FAIL",
                    error = %error,
                    "email send failed for good"
                );
            }
        }
        Ok(())
    }
}

/// Doubling wait after repeated database failures, capped at one minute.
pub(crate) fn backoff(failures: u32, base: Duration) -> Duration {
    let factor = 1u32 << failures.min(6);
    (base.max(Duration::from_millis(100)) * factor).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_brief_schedule() {
        let settings = MailerSettings::from_source(&Source::from_pairs([]), Path::new("data")).unwrap();
        let minutes: Vec<u64> = (1..=5).map(|attempt| settings.retry_delay(attempt).as_secs() / 60).collect();
        assert_eq!(minutes, [2, 4, 8, 16, 32]);
        assert_eq!(settings.max_attempts, 6);
        assert_eq!(settings.smtp_url, None);
        assert_eq!(settings.outbox_dir, Path::new("data/outbox"));
        assert_eq!(settings.templates_dir, Path::new("templates"));
        assert_eq!(settings.from.to_string(), "Grito <no-reply@localhost>");
    }

    #[test]
    fn invalid_settings_name_the_variable() {
        for (name, value) in [("MAIL_FROM", "not an address"), ("MAIL_MAX_ATTEMPTS", "0"), ("MAIL_TIMEOUT", "soon")] {
            let error = MailerSettings::from_source(&Source::from_pairs([(name, value)]), Path::new("data")).unwrap_err();
            assert!(format!("{error:#}").contains(name), "{name}={value}: {error:#}");
        }
    }

    #[test]
    fn database_backoff_doubles_and_caps() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(1, base), Duration::from_secs(10));
        assert_eq!(backoff(2, base), Duration::from_secs(20));
        assert_eq!(backoff(10, base), Duration::from_secs(60));
    }
}
