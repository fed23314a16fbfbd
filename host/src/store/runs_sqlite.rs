//! `RunStore` on SQLite. Write transactions start with `BEGIN IMMEDIATE`,
//! which takes SQLite's single write lock up front, so claims and commits of
//! several engines in one process never interleave.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Acquire, Row, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use super::outbox::NewEmail;
use super::runs::{
    AutomationRun, CommitOutcome, EffectRejected, EventRuns, PlannedEffect, PlannedRun, RunStatus, RunStore,
    disabled_endpoint_message, email_effect_json, event_effect_json, unknown_endpoint_message, webhook_effect_json,
};
use super::time::{from_text, to_text};
use super::{Automation, Event, InsertedEvent, NewEvent, SqliteStore, Subscription};

const EVENT_COLUMNS: &str = "e.id, e.event_name, e.user_id, e.source, e.occurred_at, e.payload, e.idempotency_key, e.processed_at";

#[async_trait]
impl RunStore for SqliteStore {
    async fn claim_events(&self, worker: &str, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<Event>> {
        let (_turn, mut tx) = self.begin_write().await?;

        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS}
             from grito_events e
             left join grito_event_claims c on c.event_id = e.id
             where e.processed_at is null and (c.event_id is null or c.lease_until <= ?1)
             order by e.occurred_at, e.id
             limit ?2"
        ))
        .bind(to_text(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let events: Vec<Event> = rows.iter().map(event_from_row).collect::<anyhow::Result<_>>()?;

        let lease_until = to_text(now + chrono::Duration::from_std(lease)?);
        for event in &events {
            sqlx::query(
                "insert into grito_event_claims (event_id, worker, lease_until) values (?1, ?2, ?3)
                 on conflict (event_id) do update
                   set worker = excluded.worker, lease_until = excluded.lease_until, claims = claims + 1",
            )
            .bind(event.id.to_string())
            .bind(worker)
            .bind(&lease_until)
            .execute(&mut *tx)
            .await?;
        }

        tx.commit().await?;
        Ok(events)
    }

    async fn release_event(&self, event_id: Uuid) -> anyhow::Result<()> {
        sqlx::query("delete from grito_event_claims where event_id = ?1")
            .bind(event_id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn commit_batch(&self, batch: Vec<EventRuns>, now: DateTime<Utc>) -> anyhow::Result<Vec<CommitOutcome>> {
        // One transaction, so one sync of the write-ahead log, for the batch.
        let (_turn, mut tx) = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for EventRuns { event_id, runs } in batch {
            outcomes.push(commit_event(&mut tx, event_id, runs, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn list_runs_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<AutomationRun>> {
        let rows = sqlx::query(
            "select id, automation_id, event_id, status, condition_result, effects, error, duration_ms, created_at
             from grito_automation_runs where event_id = ?1 order by created_at, id",
        )
        .bind(event_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn find_subscription_by_destination(&self, destination_name: &str) -> anyhow::Result<Option<Subscription>> {
        let row = sqlx::query(
            "select id, destination_name, endpoint_url, secret, enabled, event_filter, created_at
             from grito_webhook_subscriptions where destination_name = ?1",
        )
        .bind(destination_name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let filter: String = row.try_get("event_filter")?;
            Ok(Subscription {
                id: parse_uuid(row.try_get("id")?)?,
                destination_name: row.try_get("destination_name")?,
                endpoint_url: row.try_get("endpoint_url")?,
                secret: row.try_get("secret")?,
                enabled: row.try_get("enabled")?,
                event_filter: serde_json::from_str(&filter).context("invalid JSON in column event_filter")?,
                created_at: optional_time(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn find_automation(&self, id_or_name: &str) -> anyhow::Result<Option<Automation>> {
        // Ids are stored lowercase, so a parsed id is compared in that form.
        let id = Uuid::parse_str(id_or_name).ok().map(|id| id.to_string());
        let row = sqlx::query(
            "select id, name, is_active, match_event, condition_sql, action, created_at
             from grito_automations where id = ?1 or name = ?2
             order by (id = ?1) desc, created_at, id limit 1",
        )
        .bind(id)
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let action: String = row.try_get("action")?;
            Ok(Automation {
                id: parse_uuid(row.try_get("id")?)?,
                name: row.try_get("name")?,
                is_active: row.try_get("is_active")?,
                match_event: row.try_get("match_event")?,
                condition_sql: row.try_get("condition_sql")?,
                action: serde_json::from_str(&action).context("invalid JSON in column action")?,
                created_at: optional_time(&row, "created_at")?,
            })
        })
        .transpose()
    }
}

/// Writes one event's runs inside the batch's transaction, unless the event
/// is already processed.
async fn commit_event(
    tx: &mut Transaction<'static, Sqlite>,
    event_id: Uuid,
    runs: Vec<PlannedRun>,
    now: DateTime<Utc>,
) -> anyhow::Result<CommitOutcome> {
    let processed: Option<Option<String>> = sqlx::query_scalar("select processed_at from grito_events where id = ?1")
        .bind(event_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(None) = processed else {
        return Ok(CommitOutcome::default());
    };

    let recorded: Vec<String> = sqlx::query_scalar("select automation_id from grito_automation_runs where event_id = ?1")
        .bind(event_id.to_string())
        .fetch_all(&mut **tx)
        .await?;

    let mut outcome = CommitOutcome { committed: true, ..CommitOutcome::default() };
    for run in runs {
        if recorded.contains(&run.automation_id.to_string()) {
            outcome.already_recorded.push(run.automation_id);
            continue;
        }
        let written = write_run(tx, event_id, run, now, &mut outcome).await?;
        outcome.runs.push(written);
    }

    sqlx::query("update grito_events set processed_at = ?2 where id = ?1")
        .bind(event_id.to_string())
        .bind(to_text(now))
        .execute(&mut **tx)
        .await?;
    sqlx::query("delete from grito_event_claims where event_id = ?1")
        .bind(event_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(outcome)
}

/// Writes one run. Its effects go inside a savepoint, so an effect the store
/// rejects rolls back the others of the same run and leaves a failed record.
async fn write_run(
    tx: &mut Transaction<'static, Sqlite>,
    event_id: Uuid,
    run: PlannedRun,
    now: DateTime<Utc>,
    outcome: &mut CommitOutcome,
) -> anyhow::Result<AutomationRun> {
    // The run row goes first because its email rows reference it.
    let mut savepoint = tx.begin().await?;
    insert_run(&mut savepoint, event_id, &run, now).await?;
    let mut counts = EffectCounts::default();
    let applied = apply_effects(&mut savepoint, event_id, &run, now, &mut counts).await?;

    let (run, effects) = match applied {
        Ok(effects) => {
            let effects = (run.status == RunStatus::Succeeded).then_some(serde_json::Value::Array(effects));
            if let Some(effects) = &effects {
                set_run_effects(&mut savepoint, run.id, effects).await?;
            }
            savepoint.commit().await?;
            outcome.emails += counts.emails;
            outcome.deliveries += counts.deliveries;
            outcome.emitted.append(&mut counts.emitted);
            (run, effects)
        }
        Err(EffectRejected(message)) => {
            savepoint.rollback().await?;
            let failed = run.failed(message);
            insert_run(tx, event_id, &failed, now).await?;
            (failed, None)
        }
    };

    Ok(AutomationRun {
        id: run.id,
        automation_id: run.automation_id,
        event_id,
        status: run.status,
        condition_result: run.condition_result,
        effects,
        error: run.error,
        duration_ms: run.duration_ms,
        created_at: now,
    })
}

async fn insert_run(connection: &mut SqliteConnection, event_id: Uuid, run: &PlannedRun, now: DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query(
        "insert into grito_automation_runs
           (id, automation_id, event_id, status, condition_result, effects, error, duration_ms, created_at)
         values (?1, ?2, ?3, ?4, ?5, null, ?6, ?7, ?8)",
    )
    .bind(run.id.to_string())
    .bind(run.automation_id.to_string())
    .bind(event_id.to_string())
    .bind(run.status.as_str())
    .bind(run.condition_result)
    .bind(&run.error)
    .bind(run.duration_ms)
    .bind(to_text(now))
    .execute(connection)
    .await?;
    Ok(())
}

async fn set_run_effects(connection: &mut SqliteConnection, run_id: Uuid, effects: &serde_json::Value) -> anyhow::Result<()> {
    sqlx::query("update grito_automation_runs set effects = ?2 where id = ?1")
        .bind(run_id.to_string())
        .bind(effects.to_string())
        .execute(connection)
        .await?;
    Ok(())
}

#[derive(Default)]
struct EffectCounts {
    emails: u64,
    deliveries: u64,
    emitted: Vec<(String, String, InsertedEvent)>,
}

async fn apply_effects(
    tx: &mut Transaction<'_, Sqlite>,
    event_id: Uuid,
    run: &PlannedRun,
    now: DateTime<Utc>,
    counts: &mut EffectCounts,
) -> anyhow::Result<Result<Vec<serde_json::Value>, EffectRejected>> {
    let mut described = Vec::new();
    if run.status != RunStatus::Succeeded {
        return Ok(Ok(described));
    }
    for effect in &run.effects {
        let description = match effect {
            PlannedEffect::Email(email) => {
                let outbox_id = insert_email(tx, event_id, run, email, now).await?;
                counts.emails += 1;
                email_effect_json(outbox_id, email)
            }
            PlannedEffect::Webhook { endpoint_ref } => {
                let subscription: Option<(String, bool)> =
                    sqlx::query_as("select id, enabled from grito_webhook_subscriptions where destination_name = ?1")
                        .bind(endpoint_ref)
                        .fetch_optional(&mut **tx)
                        .await?;
                let Some((subscription_id, enabled)) = subscription else {
                    return Ok(Err(EffectRejected(unknown_endpoint_message(endpoint_ref))));
                };
                if !enabled {
                    return Ok(Err(EffectRejected(disabled_endpoint_message(endpoint_ref))));
                }
                let delivery_id: Option<String> = sqlx::query_scalar(
                    "insert into grito_webhook_deliveries (id, subscription_id, event_id, status, created_at)
                     values (?1, ?2, ?3, 'PENDING', ?4)
                     on conflict (subscription_id, event_id) do nothing
                     returning id",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(&subscription_id)
                .bind(event_id.to_string())
                .bind(to_text(now))
                .fetch_optional(&mut **tx)
                .await?;
                counts.deliveries += u64::from(delivery_id.is_some());
                let delivery_id = delivery_id.as_deref().map(parse_uuid).transpose()?;
                webhook_effect_json(endpoint_ref, parse_uuid(&subscription_id)?, delivery_id)
            }
            PlannedEffect::Event(event) => {
                let inserted = insert_event(tx, event, now).await?;
                counts.deliveries += inserted.deliveries;
                counts.emitted.push((event.event_name.clone(), event.source.clone(), inserted));
                event_effect_json(event, &inserted)
            }
        };
        described.push(description);
    }
    Ok(Ok(described))
}

async fn insert_email(
    tx: &mut Transaction<'_, Sqlite>,
    event_id: Uuid,
    run: &PlannedRun,
    email: &NewEmail,
    now: DateTime<Utc>,
) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into grito_email_outbox
           (id, event_id, automation_id, run_id, template_id, \"to\", subject, body_text, body_html,
            status, attempts, next_attempt_at, created_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'PENDING', 0, ?10, ?10)",
    )
    .bind(id.to_string())
    .bind(event_id.to_string())
    .bind(run.automation_id.to_string())
    .bind(run.id.to_string())
    .bind(&email.template_id)
    .bind(&email.to)
    .bind(&email.subject)
    .bind(&email.body_text)
    .bind(&email.body_html)
    .bind(to_text(now))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Stores an event and its fan-out inside `tx`: `Store::insert_event` and
/// the engine's emitted events both go through here.
pub(super) async fn insert_event(tx: &mut Transaction<'_, Sqlite>, event: &NewEvent, now: DateTime<Utc>) -> anyhow::Result<InsertedEvent> {
    let inserted: Option<String> = sqlx::query_scalar(
        "insert into grito_events (id, event_name, user_id, source, occurred_at, payload, idempotency_key)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         on conflict (idempotency_key) do nothing
         returning id",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(&event.event_name)
    .bind(event.user_id.to_string())
    .bind(&event.source)
    .bind(to_text(event.occurred_at.unwrap_or(now)))
    .bind(serde_json::to_string(&event.payload)?)
    .bind(&event.idempotency_key)
    .fetch_optional(&mut **tx)
    .await?;

    let Some(id) = inserted else {
        let first: String = sqlx::query_scalar("select id from grito_events where idempotency_key = ?1")
            .bind(&event.idempotency_key)
            .fetch_one(&mut **tx)
            .await
            .context("idempotency key conflicted but its event was not found")?;
        return Ok(InsertedEvent { id: parse_uuid(&first)?, dedup: true, deliveries: 0 });
    };

    let subscription_ids: Vec<String> = sqlx::query_scalar(
        "select s.id from grito_webhook_subscriptions s
         where s.enabled = 1
           and exists (select 1 from json_each(s.event_filter) f where f.value = ?1)",
    )
    .bind(&event.event_name)
    .fetch_all(&mut **tx)
    .await?;
    let mut deliveries = 0;
    for subscription_id in subscription_ids {
        deliveries += sqlx::query(
            "insert into grito_webhook_deliveries (id, subscription_id, event_id, status, created_at)
             values (?1, ?2, ?3, 'PENDING', ?4)
             on conflict (subscription_id, event_id) do nothing",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(subscription_id)
        .bind(&id)
        .bind(to_text(now))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(InsertedEvent { id: parse_uuid(&id)?, dedup: false, deliveries })
}

pub(super) fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("invalid UUID `{text}` in the SQLite database"))
}

pub(super) fn optional_uuid(row: &SqliteRow, column: &str) -> anyhow::Result<Option<Uuid>> {
    row.try_get::<Option<String>, _>(column)?.as_deref().map(parse_uuid).transpose()
}

pub(super) fn optional_time(row: &SqliteRow, column: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(column)?.as_deref().map(from_text).transpose()
}

fn event_from_row(row: &SqliteRow) -> anyhow::Result<Event> {
    let payload: String = row.try_get("payload")?;
    Ok(Event {
        id: parse_uuid(row.try_get("id")?)?,
        event_name: row.try_get("event_name")?,
        user_id: parse_uuid(row.try_get("user_id")?)?,
        source: row.try_get("source")?,
        occurred_at: from_text(row.try_get("occurred_at")?)?,
        payload: serde_json::from_str(&payload).context("invalid JSON in column payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        processed_at: optional_time(row, "processed_at")?,
    })
}

fn run_from_row(row: &SqliteRow) -> anyhow::Result<AutomationRun> {
    let effects: Option<String> = row.try_get("effects")?;
    Ok(AutomationRun {
        id: parse_uuid(row.try_get("id")?)?,
        automation_id: parse_uuid(row.try_get("automation_id")?)?,
        event_id: parse_uuid(row.try_get("event_id")?)?,
        status: RunStatus::parse(row.try_get("status")?)?,
        condition_result: row.try_get("condition_result")?,
        effects: effects.as_deref().map(serde_json::from_str).transpose().context("invalid JSON in column effects")?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        created_at: from_text(row.try_get("created_at")?)?,
    })
}
