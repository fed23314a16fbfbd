//! `RunStore` on PostgreSQL.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Acquire, PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use super::outbox::NewEmail;
use super::runs::{
    AutomationRun, CommitOutcome, EffectRejected, PlannedEffect, PlannedRun, RunStatus, RunStore,
    disabled_endpoint_message, email_effect_json, event_effect_json, unknown_endpoint_message, webhook_effect_json,
};
use super::{Automation, Event, InsertedEvent, NewEvent, PgStore, Subscription};

const EVENT_COLUMNS: &str = "e.id, e.event_name, e.user_id, e.source, e.occurred_at, e.payload, e.idempotency_key, e.processed_at";

#[async_trait]
impl RunStore for PgStore {
    async fn claim_events(&self, worker: &str, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<Event>> {
        let mut tx = self.pool().begin().await?;

        // SKIP LOCKED keeps two nodes from claiming one event at the same
        // moment; the lease row then keeps it claimed after this commit.
        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS}
             from grito_events e
             left join grito_event_claims c on c.event_id = e.id
             where e.processed_at is null and (c.event_id is null or c.lease_until <= $1)
             order by e.occurred_at, e.id
             limit $2
             for update of e skip locked"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let events: Vec<Event> = rows.iter().map(event_from_row).collect::<anyhow::Result<_>>()?;

        let lease_until = now + chrono::Duration::from_std(lease)?;
        for event in &events {
            sqlx::query(
                "insert into grito_event_claims (event_id, worker, lease_until) values ($1, $2, $3)
                 on conflict (event_id) do update
                   set worker = excluded.worker, lease_until = excluded.lease_until,
                       claims = grito_event_claims.claims + 1",
            )
            .bind(event.id)
            .bind(worker)
            .bind(lease_until)
            .execute(&mut *tx)
            .await?;
        }

        tx.commit().await?;
        Ok(events)
    }

    async fn release_event(&self, event_id: Uuid) -> anyhow::Result<()> {
        sqlx::query("delete from grito_event_claims where event_id = $1")
            .bind(event_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn commit_runs(&self, event_id: Uuid, runs: Vec<PlannedRun>, now: DateTime<Utc>) -> anyhow::Result<CommitOutcome> {
        let mut tx = self.pool().begin().await?;

        // The row lock serializes commits for one event across workers, so
        // the processed_at check below cannot race.
        let processed: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("select processed_at from grito_events where id = $1 for update")
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(None) = processed else {
            tx.rollback().await?;
            return Ok(CommitOutcome::default());
        };

        let recorded: Vec<Uuid> = sqlx::query_scalar("select automation_id from grito_automation_runs where event_id = $1")
            .bind(event_id)
            .fetch_all(&mut *tx)
            .await?;

        let mut outcome = CommitOutcome { committed: true, ..CommitOutcome::default() };
        for run in runs {
            if recorded.contains(&run.automation_id) {
                outcome.already_recorded.push(run.automation_id);
                continue;
            }
            let written = write_run(&mut tx, event_id, run, now, &mut outcome).await?;
            outcome.runs.push(written);
        }

        sqlx::query("update grito_events set processed_at = $2 where id = $1")
            .bind(event_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("delete from grito_event_claims where event_id = $1")
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        // Dispatchers on other nodes wake on commit, as they do for POST /events.
        if outcome.deliveries > 0 {
            sqlx::query(super::deliveries_pg::NOTIFY_DELIVERIES_SQL).execute(&mut *tx).await?;
        }

        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_runs_for_event(&self, event_id: Uuid) -> anyhow::Result<Vec<AutomationRun>> {
        let rows = sqlx::query(
            "select id, automation_id, event_id, status, condition_result, effects, error, duration_ms, created_at
             from grito_automation_runs where event_id = $1 order by created_at, id",
        )
        .bind(event_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn find_subscription_by_destination(&self, destination_name: &str) -> anyhow::Result<Option<Subscription>> {
        let row = sqlx::query(
            "select id, destination_name, endpoint_url, secret, enabled, event_filter, created_at
             from grito_webhook_subscriptions where destination_name = $1",
        )
        .bind(destination_name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Subscription {
                id: row.try_get("id")?,
                destination_name: row.try_get("destination_name")?,
                endpoint_url: row.try_get("endpoint_url")?,
                secret: row.try_get("secret")?,
                enabled: row.try_get("enabled")?,
                event_filter: row.try_get("event_filter")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn find_automation(&self, id_or_name: &str) -> anyhow::Result<Option<Automation>> {
        let id = Uuid::parse_str(id_or_name).ok();
        let row = sqlx::query(
            "select id, name, is_active, match_event, condition_sql, action, created_at
             from grito_automations where id = $1 or name = $2
             order by (id = $1) desc nulls last, created_at, id limit 1",
        )
        .bind(id)
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Automation {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                is_active: row.try_get("is_active")?,
                match_event: row.try_get("match_event")?,
                condition_sql: row.try_get("condition_sql")?,
                action: row.try_get("action")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }
}

/// Writes one run. Its effects go inside a savepoint, so an effect the store
/// rejects rolls back the others of the same run and leaves a failed record.
async fn write_run(
    tx: &mut Transaction<'static, Postgres>,
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
            let effects = (run.status == RunStatus::Succeeded).then(|| serde_json::Value::Array(effects));
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

async fn insert_run(connection: &mut PgConnection, event_id: Uuid, run: &PlannedRun, now: DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query(
        "insert into grito_automation_runs
           (id, automation_id, event_id, status, condition_result, effects, error, duration_ms, created_at)
         values ($1, $2, $3, $4, $5, null, $6, $7, $8)",
    )
    .bind(run.id)
    .bind(run.automation_id)
    .bind(event_id)
    .bind(run.status.as_str())
    .bind(run.condition_result)
    .bind(&run.error)
    .bind(run.duration_ms)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

async fn set_run_effects(connection: &mut PgConnection, run_id: Uuid, effects: &serde_json::Value) -> anyhow::Result<()> {
    sqlx::query("update grito_automation_runs set effects = $2 where id = $1")
        .bind(run_id)
        .bind(effects)
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
    tx: &mut Transaction<'_, Postgres>,
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
                let subscription: Option<(Uuid, bool)> =
                    sqlx::query_as("select id, enabled from grito_webhook_subscriptions where destination_name = $1")
                        .bind(endpoint_ref)
                        .fetch_optional(&mut **tx)
                        .await?;
                let Some((subscription_id, enabled)) = subscription else {
                    return Ok(Err(EffectRejected(unknown_endpoint_message(endpoint_ref))));
                };
                if !enabled {
                    return Ok(Err(EffectRejected(disabled_endpoint_message(endpoint_ref))));
                }
                let delivery_id: Option<Uuid> = sqlx::query_scalar(
                    "insert into grito_webhook_deliveries (id, subscription_id, event_id, status, created_at)
                     values ($1, $2, $3, 'PENDING', $4)
                     on conflict (subscription_id, event_id) do nothing
                     returning id",
                )
                .bind(Uuid::now_v7())
                .bind(subscription_id)
                .bind(event_id)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                counts.deliveries += u64::from(delivery_id.is_some());
                webhook_effect_json(endpoint_ref, subscription_id, delivery_id)
            }
            PlannedEffect::Event(event) => {
                let inserted = insert_event(tx, event).await?;
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
    tx: &mut Transaction<'_, Postgres>,
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
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'PENDING', 0, $10, $10)",
    )
    .bind(id)
    .bind(event_id)
    .bind(run.automation_id)
    .bind(run.id)
    .bind(&email.template_id)
    .bind(&email.to)
    .bind(&email.subject)
    .bind(&email.body_text)
    .bind(&email.body_html)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Stores an event and its fan-out inside `tx`: `Store::insert_event` and
/// the engine's emitted events both go through here. ON CONFLICT waits for a
/// concurrent insert of the same key to commit, so the select then sees the winner's row.
pub(super) async fn insert_event(tx: &mut Transaction<'_, Postgres>, event: &NewEvent) -> anyhow::Result<InsertedEvent> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into grito_events (id, event_name, user_id, source, occurred_at, payload, idempotency_key)
         values ($1, $2, $3, $4, coalesce($5, now()), $6, $7)
         on conflict (idempotency_key) do nothing
         returning id",
    )
    .bind(Uuid::now_v7())
    .bind(&event.event_name)
    .bind(event.user_id)
    .bind(&event.source)
    .bind(event.occurred_at)
    .bind(sqlx::types::Json(&event.payload))
    .bind(&event.idempotency_key)
    .fetch_optional(&mut **tx)
    .await?;

    let Some(id) = inserted else {
        let first: Uuid = sqlx::query_scalar("select id from grito_events where idempotency_key = $1")
            .bind(&event.idempotency_key)
            .fetch_one(&mut **tx)
            .await
            .context("idempotency key conflicted but its event was not found")?;
        return Ok(InsertedEvent { id: first, dedup: true, deliveries: 0 });
    };

    let deliveries = sqlx::query(
        "insert into grito_webhook_deliveries (id, subscription_id, event_id, status)
         select gen_random_uuid(), s.id, $1, 'PENDING'
         from grito_webhook_subscriptions s
         where s.enabled and $2 = any(s.event_filter)
         on conflict (subscription_id, event_id) do nothing",
    )
    .bind(id)
    .bind(&event.event_name)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(InsertedEvent { id, dedup: false, deliveries })
}

fn event_from_row(row: &PgRow) -> anyhow::Result<Event> {
    Ok(Event {
        id: row.try_get("id")?,
        event_name: row.try_get("event_name")?,
        user_id: row.try_get("user_id")?,
        source: row.try_get("source")?,
        occurred_at: row.try_get("occurred_at")?,
        payload: row.try_get("payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        processed_at: row.try_get("processed_at")?,
    })
}

fn run_from_row(row: &PgRow) -> anyhow::Result<AutomationRun> {
    Ok(AutomationRun {
        id: row.try_get("id")?,
        automation_id: row.try_get("automation_id")?,
        event_id: row.try_get("event_id")?,
        status: RunStatus::parse(row.try_get("status")?)?,
        condition_result: row.try_get("condition_result")?,
        effects: row.try_get("effects")?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        created_at: row.try_get("created_at")?,
    })
}
