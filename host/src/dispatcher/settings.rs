//! The dispatcher's settings (`WEBHOOK_*`, `ALLOW_PRIVATE_ENDPOINTS`) and the
//! retry schedule they define.

use std::time::Duration;

use anyhow::Context;

use crate::config::{Source, parse_duration};

/// How the dispatcher sends and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherSettings {
    /// Wait after the 1st, 2nd, … failed attempt (`WEBHOOK_RETRY_SCHEDULE`).
    /// Failures beyond its length reuse the last entry.
    pub retry_schedule: Vec<Duration>,
    /// The failed attempt with this number marks the delivery `FAIL`
    /// (`WEBHOOK_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Deliveries claimed per query (`WEBHOOK_BATCH_SIZE`).
    pub batch_size: u32,
    /// Limit for one request, from connecting to the end of the response
    /// body (`WEBHOOK_TIMEOUT`).
    pub timeout: Duration,
    /// Deliveries of one batch sent at the same time (`WEBHOOK_CONCURRENCY`).
    pub concurrency: usize,
    /// Interval of the safety-net sweep for due deliveries
    /// (`WEBHOOK_SWEEP_INTERVAL`).
    pub sweep_interval: Duration,
    /// Allows endpoints on loopback and private networks
    /// (`ALLOW_PRIVATE_ENDPOINTS`), for development and tests only.
    pub allow_private_endpoints: bool,
}

/// How long a claim outlives the request timeout, so a slow send finishes
/// and records its outcome before another worker may claim the delivery.
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);

impl Default for DispatcherSettings {
    fn default() -> Self {
        Self {
            retry_schedule: [2, 4, 8, 16, 32].map(|minutes| Duration::from_secs(minutes * 60)).to_vec(),
            max_attempts: 6,
            batch_size: 20,
            timeout: Duration::from_secs(10),
            concurrency: 20,
            sweep_interval: Duration::from_secs(5),
            allow_private_endpoints: false,
        }
    }
}

impl DispatcherSettings {
    pub fn from_source(source: &Source) -> anyhow::Result<Self> {
        let defaults = Self::default();
        let retry_schedule = match source.get("WEBHOOK_RETRY_SCHEDULE") {
            None => defaults.retry_schedule,
            Some(text) => parse_schedule(&text).with_context(|| format!("invalid WEBHOOK_RETRY_SCHEDULE `{text}`"))?,
        };
        let settings = Self {
            retry_schedule,
            max_attempts: source.parse_or("WEBHOOK_MAX_ATTEMPTS", defaults.max_attempts)?,
            batch_size: source.parse_or("WEBHOOK_BATCH_SIZE", defaults.batch_size)?,
            timeout: source.duration_or("WEBHOOK_TIMEOUT", defaults.timeout)?,
            concurrency: source.parse_or("WEBHOOK_CONCURRENCY", defaults.concurrency)?,
            sweep_interval: source.duration_or("WEBHOOK_SWEEP_INTERVAL", defaults.sweep_interval)?,
            allow_private_endpoints: source.flag("ALLOW_PRIVATE_ENDPOINTS")?,
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_attempts >= 1, "WEBHOOK_MAX_ATTEMPTS must be at least 1, got {}", self.max_attempts);
        anyhow::ensure!(self.batch_size >= 1, "WEBHOOK_BATCH_SIZE must be at least 1, got {}", self.batch_size);
        anyhow::ensure!(self.concurrency >= 1, "WEBHOOK_CONCURRENCY must be at least 1, got {}", self.concurrency);
        anyhow::ensure!(!self.timeout.is_zero(), "WEBHOOK_TIMEOUT must be longer than zero");
        anyhow::ensure!(!self.sweep_interval.is_zero(), "WEBHOOK_SWEEP_INTERVAL must be longer than zero");
        Ok(())
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let index = (attempt.max(1) - 1) as usize;
        self.retry_schedule
            .get(index)
            .or(self.retry_schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }

    /// The wait after failed attempt number `attempt`, or the endpoint's
    /// `Retry-After` clamped between the schedule's shortest and longest
    /// entries.
    pub fn retry_delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let Some(requested) = retry_after else {
            return self.retry_delay(attempt);
        };
        let shortest = self.retry_schedule.iter().min().copied().unwrap_or_default();
        let longest = self.retry_schedule.iter().max().copied().unwrap_or(shortest);
        requested.clamp(shortest, longest)
    }

    /// How long a claim holds a delivery: the request timeout for each
    /// round a batch needs (it is sent `WEBHOOK_CONCURRENCY` at a time, so its
    /// last delivery may start only after the earlier rounds timed out), plus
    /// [`LEASE_MARGIN`].
    pub fn lease(&self) -> Duration {
        let rounds = self.batch_size.div_ceil(self.concurrency.max(1) as u32).max(1);
        self.timeout * rounds + LEASE_MARGIN
    }
}

/// Parses a comma-separated list of durations such as `2m,4m,8m`.
fn parse_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    let schedule = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse_duration)
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!schedule.is_empty(), "expected at least one duration, for example 2m,4m,8m,16m,32m");
    Ok(schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_brief() {
        let settings = DispatcherSettings::from_source(&Source::from_pairs([])).unwrap();
        let minutes: Vec<u64> = settings.retry_schedule.iter().map(|delay| delay.as_secs() / 60).collect();
        assert_eq!(minutes, [2, 4, 8, 16, 32]);
        assert_eq!(settings.max_attempts, 6);
        assert_eq!(settings.batch_size, 20);
        assert_eq!(settings.timeout, Duration::from_secs(10));
        assert_eq!(settings.sweep_interval, Duration::from_secs(5));
        assert!(!settings.allow_private_endpoints);
        assert_eq!(settings.concurrency, 20);
        assert_eq!(settings.lease(), Duration::from_secs(40), "one round of 10 s plus the margin");
    }

    #[test]
    fn lease_covers_every_round_of_a_batch() {
        let source = Source::from_pairs([("WEBHOOK_BATCH_SIZE", "50"), ("WEBHOOK_CONCURRENCY", "8"), ("WEBHOOK_TIMEOUT", "5s")]);
        let settings = DispatcherSettings::from_source(&source).unwrap();
        assert_eq!(settings.lease(), Duration::from_secs(7 * 5 + 30), "50 deliveries 8 at a time take 7 rounds");
    }

    #[test]
    fn schedule_parses_and_repeats_its_last_entry() {
        let source = Source::from_pairs([("WEBHOOK_RETRY_SCHEDULE", "10s, 1m,90s"), ("ALLOW_PRIVATE_ENDPOINTS", "true")]);
        let settings = DispatcherSettings::from_source(&source).unwrap();
        assert_eq!(settings.retry_delay(1), Duration::from_secs(10));
        assert_eq!(settings.retry_delay(2), Duration::from_secs(60));
        assert_eq!(settings.retry_delay(3), Duration::from_secs(90));
        assert_eq!(settings.retry_delay(7), Duration::from_secs(90));
        assert!(settings.allow_private_endpoints);
    }

    #[test]
    fn retry_after_is_clamped_to_schedule() {
        let settings = DispatcherSettings::default();
        assert_eq!(settings.retry_delay_after(1, None), Duration::from_secs(120));
        assert_eq!(settings.retry_delay_after(1, Some(Duration::from_secs(600))), Duration::from_secs(600));
        assert_eq!(settings.retry_delay_after(3, Some(Duration::from_secs(5))), Duration::from_secs(120));
        assert_eq!(settings.retry_delay_after(1, Some(Duration::from_secs(86_400))), Duration::from_secs(32 * 60));
    }

    #[test]
    fn invalid_settings_name_the_variable() {
        for (name, value) in [
            ("WEBHOOK_RETRY_SCHEDULE", "soon"),
            ("WEBHOOK_RETRY_SCHEDULE", ","),
            ("WEBHOOK_MAX_ATTEMPTS", "0"),
            ("WEBHOOK_BATCH_SIZE", "many"),
            ("WEBHOOK_CONCURRENCY", "0"),
            ("WEBHOOK_TIMEOUT", "0s"),
            ("ALLOW_PRIVATE_ENDPOINTS", "maybe"),
        ] {
            let error = DispatcherSettings::from_source(&Source::from_pairs([(name, value)])).unwrap_err();
            assert!(format!("{error:#}").contains(name), "{name}={value}: {error:#}");
        }
    }
}
