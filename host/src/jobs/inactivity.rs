//! The daily inactivity job: `engagement.inactive_14d` and
//! `engagement.inactive_30d` for users whose latest activity is 14 or 30 days
//! old.
//!
//! Each emitted event's idempotency key is made of the user, the threshold and
//! the last activity time. A user is therefore emitted once per inactivity
//! stretch: running the job again, or on several nodes at once, stores
//! nothing new, and a user who comes back and goes quiet again gets a new key.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;
use tokio::sync::watch;

use crate::config::Source;
use crate::ingest;
use crate::signals::Signals;
use crate::store::{ActivityFilter, NewEvent, Store};

/// The thresholds in days, each with its event name.
pub const THRESHOLDS: [(i64, &str); 2] = [(14, "engagement.inactive_14d"), (30, "engagement.inactive_30d")];

/// The `source` of the events this job emits.
pub const SOURCE: &str = "grito";

#[derive(Debug, Clone, PartialEq)]
pub struct InactivitySettings {
    /// False turns the daily schedule off; `grito jobs inactivity` still runs.
    pub enabled: bool,
    /// Local time of day of the daily run.
    pub at: NaiveTime,
    pub timezone: Tz,
    pub activity: ActivityFilter,
}

impl InactivitySettings {
    /// Reads `INACTIVITY_JOB_ENABLED`, `INACTIVITY_JOB_AT`,
    /// `INACTIVITY_JOB_TIMEZONE`, `ACTIVITY_EXCLUDED_SOURCES` and
    /// `ACTIVITY_EXCLUDED_EVENTS`.
    pub fn from_source(source: &Source) -> anyhow::Result<Self> {
        let enabled = source.get("INACTIVITY_JOB_ENABLED").is_none() || source.flag("INACTIVITY_JOB_ENABLED")?;
        let at_text = source.get("INACTIVITY_JOB_AT").unwrap_or_else(|| "03:00".to_owned());
        let at = NaiveTime::parse_from_str(at_text.trim(), "%H:%M")
            .with_context(|| format!("invalid INACTIVITY_JOB_AT `{at_text}`: expected a time such as 03:00"))?;
        let zone_text = source.get("INACTIVITY_JOB_TIMEZONE").unwrap_or_else(|| "America/Sao_Paulo".to_owned());
        let timezone: Tz = zone_text.trim().parse().map_err(|_| {
            anyhow::anyhow!("invalid INACTIVITY_JOB_TIMEZONE `{zone_text}`: expected an IANA zone such as America/Sao_Paulo")
        })?;
        let list = |name: &str, default: &str| -> Vec<String> {
            source
                .get(name)
                .unwrap_or_else(|| default.to_owned())
                .split(',')
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect()
        };
        Ok(Self {
            enabled,
            at,
            timezone,
            activity: ActivityFilter {
                excluded_sources: list("ACTIVITY_EXCLUDED_SOURCES", "stripe"),
                excluded_events: list("ACTIVITY_EXCLUDED_EVENTS", "engagement.*"),
            },
        })
    }
}

/// Counts of one run of the job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InactivityReport {
    /// Events stored for the first time.
    pub emitted: u64,
    /// Events that an earlier run (or another node) had already stored.
    pub already_emitted: u64,
}

/// Runs the job once as of `now`.
pub async fn run_inactivity(
    store: &dyn Store,
    signals: &Signals,
    settings: &InactivitySettings,
    now: DateTime<Utc>,
) -> anyhow::Result<InactivityReport> {
    let (shortest, _) = THRESHOLDS[0];
    let candidates = store.inactive_users(&settings.activity, now - chrono::Duration::days(shortest)).await?;

    let mut report = InactivityReport::default();
    for candidate in candidates {
        let idle = now - candidate.last_activity_at;
        for (days, event_name) in THRESHOLDS {
            if idle < chrono::Duration::days(days) {
                continue;
            }
            let last_activity = candidate.last_activity_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let event = NewEvent {
                event_name: event_name.to_owned(),
                user_id: candidate.user_id,
                source: SOURCE.to_owned(),
                occurred_at: Some(now),
                payload: json!({
                    "last_activity_at": last_activity,
                    "days_inactive": idle.num_days(),
                    "threshold_days": days,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                idempotency_key: Some(format!("inactivity:{}:{days}d:{last_activity}", candidate.user_id)),
            };
            let inserted = ingest::accept(store, signals, event).await?;
            if inserted.dedup {
                report.already_emitted += 1;
            } else {
                report.emitted += 1;
            }
        }
    }

    tracing::info!(emitted = report.emitted, already_emitted = report.already_emitted, "inactivity job finished");
    Ok(report)
}

/// Computes the first scheduled run strictly after `now`: the next `at` in `timezone`.
/// A local time skipped by a daylight-saving jump runs one hour later; a
/// repeated one runs at its first occurrence.
pub fn next_run_after(now: DateTime<Utc>, at: NaiveTime, timezone: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&timezone).date_naive();
    for offset in 0..=2 {
        let date = today + chrono::Duration::days(offset);
        let local = date.and_time(at);
        let candidate = timezone
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| timezone.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest());
        if let Some(candidate) = candidate.map(|time| time.with_timezone(&Utc))
            && candidate > now
        {
            return candidate;
        }
    }
    now + chrono::Duration::days(1)
}

/// Runs the job every day at the configured local time until `shutdown`
/// turns true. A failed run is logged and retried at the next day's time.
pub fn spawn_inactivity_schedule(
    store: Arc<dyn Store>,
    signals: Arc<Signals>,
    settings: InactivitySettings,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !settings.enabled {
            tracing::info!("inactivity job schedule is off (INACTIVITY_JOB_ENABLED=false)");
            return;
        }
        loop {
            let now = Utc::now();
            let next = next_run_after(now, settings.at, settings.timezone);
            tracing::info!(next_run = %next, timezone = %settings.timezone, "inactivity job scheduled");
            let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(error) = run_inactivity(store.as_ref(), &signals, &settings, Utc::now()).await {
                tracing::error!(error = format!("{error:#}"), "inactivity job failed; it runs again at the next scheduled time");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_run_is_later_today_in_local_time() {
        // 02:00 in São Paulo (UTC-3) is 05:00 UTC; 03:00 local is 06:00 UTC.
        let next = next_run_after(utc("2026-12-04T05:00:00Z"), at(3, 0), chrono_tz::America::Sao_Paulo);
        assert_eq!(next, utc("2026-12-04T06:00:00Z"));
    }

    #[test]
    fn next_run_moves_to_tomorrow_after_the_time() {
        let next = next_run_after(utc("2026-12-04T06:00:00Z"), at(3, 0), chrono_tz::America::Sao_Paulo);
        assert_eq!(next, utc("2026-12-05T06:00:00Z"));
    }

    #[test]
    fn skipped_local_time_runs_an_hour_later() {
        // New York skipped 02:00-03:00 on 2026-03-08.
        let next = next_run_after(utc("2026-03-08T05:00:00Z"), at(2, 30), chrono_tz::America::New_York);
        assert_eq!(next, utc("2026-03-08T07:30:00Z"));
    }

    #[test]
    fn settings_default_and_reject_bad_values() {
        let settings = InactivitySettings::from_source(&Source::from_pairs([])).unwrap();
        assert!(settings.enabled);
        assert_eq!(settings.at, at(3, 0));
        assert_eq!(settings.timezone, chrono_tz::America::Sao_Paulo);
        assert_eq!(settings.activity.excluded_sources, ["stripe"]);
        assert_eq!(settings.activity.excluded_events, ["engagement.*"]);

        let error = InactivitySettings::from_source(&Source::from_pairs([("INACTIVITY_JOB_AT", "3am")])).unwrap_err();
        assert!(error.to_string().contains("INACTIVITY_JOB_AT"), "{error}");
        let error = InactivitySettings::from_source(&Source::from_pairs([("INACTIVITY_JOB_TIMEZONE", "Mars/Base")])).unwrap_err();
        assert!(error.to_string().contains("INACTIVITY_JOB_TIMEZONE"), "{error}");
    }
}
