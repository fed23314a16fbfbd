//! Last activity per user, for the daily inactivity job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Exclusions that decide which events count as activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Sources whose events never count (for example `stripe`).
    pub excluded_sources: Vec<String>,
    /// Event names that never count: exact names, or prefixes ending in `*`
    /// such as `engagement.*`.
    pub excluded_events: Vec<String>,
}

impl ActivityFilter {
    /// Converts the event exclusions to case-sensitive SQLite GLOB patterns.
    pub fn glob_patterns(&self) -> Vec<String> {
        self.excluded_events
            .iter()
            .map(|pattern| {
                let (stem, prefix) = match pattern.strip_suffix('*') {
                    Some(stem) => (stem, true),
                    None => (pattern.as_str(), false),
                };
                // GLOB has no escape character: a special character matches itself inside brackets.
                let mut escaped = String::new();
                for character in stem.chars() {
                    match character {
                        '*' | '?' | '[' => escaped.push_str(&format!("[{character}]")),
                        other => escaped.push(other),
                    }
                }
                if prefix {
                    escaped.push('*');
                }
                escaped
            })
            .collect()
    }

    /// Converts the event exclusions to SQL LIKE patterns with `\` as the escape character.
    pub fn like_patterns(&self) -> Vec<String> {
        self.excluded_events
            .iter()
            .map(|pattern| {
                let (stem, prefix) = match pattern.strip_suffix('*') {
                    Some(stem) => (stem, true),
                    None => (pattern.as_str(), false),
                };
                let escaped = stem.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                if prefix { format!("{escaped}%") } else { escaped }
            })
            .collect()
    }
}

/// A user and the time of their latest activity event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastActivity {
    pub user_id: Uuid,
    pub last_activity_at: DateTime<Utc>,
}

#[async_trait]
pub trait ActivityStore {
    /// Users whose latest activity event happened at or before `cutoff`,
    /// ordered by user id.
    async fn inactive_users(&self, filter: &ActivityFilter, cutoff: DateTime<Utc>) -> anyhow::Result<Vec<LastActivity>>;
}

#[async_trait]
impl ActivityStore for super::PgStore {
    async fn inactive_users(&self, filter: &ActivityFilter, cutoff: DateTime<Utc>) -> anyhow::Result<Vec<LastActivity>> {
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "select user_id, max(occurred_at) as last_activity_at
             from grito_events
             where not (source = any($1))
               and not (event_name like any($2))
             group by user_id
             having max(occurred_at) <= $3
             order by user_id",
        )
        .bind(&filter.excluded_sources)
        .bind(filter.like_patterns())
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(user_id, last_activity_at)| LastActivity { user_id, last_activity_at }).collect())
    }
}

#[async_trait]
impl ActivityStore for super::SqliteStore {
    async fn inactive_users(&self, filter: &ActivityFilter, cutoff: DateTime<Utc>) -> anyhow::Result<Vec<LastActivity>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select user_id, max(occurred_at) as last_activity_at
             from grito_events
             where source not in (select value from json_each(?1))
               and not exists (select 1 from json_each(?2) p where event_name glob p.value)
             group by user_id
             having max(occurred_at) <= ?3
             order by user_id",
        )
        .bind(serde_json::to_string(&filter.excluded_sources)?)
        .bind(serde_json::to_string(&filter.glob_patterns())?)
        .bind(super::time::to_text(cutoff))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(user_id, last_activity_at)| {
                Ok(LastActivity { user_id: user_id.parse()?, last_activity_at: super::time::from_text(&last_activity_at)? })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        let filter = ActivityFilter {
            excluded_sources: vec![],
            excluded_events: vec!["engagement.*".into(), "user.signed_up".into(), "100%".into()],
        };
        assert_eq!(filter.like_patterns(), ["engagement.%", "user.signed\\_up", "100\\%"]);
        assert_eq!(filter.glob_patterns(), ["engagement.*", "user.signed_up", "100%"]);
    }
}
