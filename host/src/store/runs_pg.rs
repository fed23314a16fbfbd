//! `RunStore` on PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use super::outbox::NewEmail;
use super::runs::{
    AutomationRun, CommitOutcome, EffectRejected, EventRuns, PlannedEffect, PlannedRun, RunStatus, RunStore,
    disabled_endpoint_message, email_effect_json, event_effect_json, unknown_endpoint_message, webhook_effect_json,
};
use super::{Automation, Event, InsertedEvent, NewEvent, PgStore, Subscription};

const EVENT_COLUMNS: &str = "e.id, e.event_name, e.user_id, e.source, e.occurred_at, e.payload, e.idempotency_key, e.processed_at";

#[async_trait]
impl RunStore for PgStore {
    async fn claim_events(&self, worker: &str, now: DateTime<Utc>, lease: Duration, limit: u32) -> anyhow::Result<Vec<Event>> {
        let lease_until = now + chrono::Duration::from_std(lease)?;

        // SKIP LOCKED keeps two nodes from claiming one event at the same
        // moment; the lease row then keeps it claimed after this statement
        // commits. A concurrent claim that committed after this statement's
        // snapshot is seen by ON CONFLICT, and the WHERE takes over only an
        // expired lease. One statement, so one round trip.
        let rows = sqlx::query(&format!(
            "with due as (
               select e.id
               from grito_events e
               left join grito_event_claims c on c.event_id = e.id
               where e.processed_at is null and (c.event_id is null or c.lease_until <= $1)
               order by e.occurred_at, e.id
               limit $2
               for update of e skip locked
             ), claimed as (
               insert into grito_event_claims (event_id, worker, lease_until)
               select id, $3, $4 from due
               on conflict (event_id) do update
                 set worker = excluded.worker, lease_until = excluded.lease_until,
                     claims = grito_event_claims.claims + 1
                 where grito_event_claims.lease_until <= $1
               returning event_id
             )
             select {EVENT_COLUMNS}
             from grito_events e join claimed on claimed.event_id = e.id
             order by e.occurred_at, e.id"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .bind(worker)
        .bind(lease_until)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn release_event(&self, event_id: Uuid) -> anyhow::Result<()> {
        sqlx::query("delete from grito_event_claims where event_id = $1")
            .bind(event_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn commit_batch(&self, batch: Vec<EventRuns>, now: DateTime<Utc>) -> anyhow::Result<Vec<CommitOutcome>> {
        let event_ids: Vec<Uuid> = batch.iter().map(|event| event.event_id).collect();
        let mut tx = self.pool().begin().await?;

        // Setting processed_at first locks the rows: a concurrent commit of
        // the same event waits here, then finds processed_at set and skips it.
        let open: HashSet<Uuid> = sqlx::query_scalar(
            "update grito_events set processed_at = $2 where id = any($1) and processed_at is null returning id",
        )
        .bind(&event_ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();

        let open_ids: Vec<Uuid> = event_ids.iter().copied().filter(|id| open.contains(id)).collect();
        let recorded: HashSet<(Uuid, Uuid)> =
            sqlx::query_as("select event_id, automation_id from grito_automation_runs where event_id = any($1)")
                .bind(&open_ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let endpoints = load_endpoints(&mut tx, &batch).await?;

        // Plan every row, then write each table with one statement.
        let mut rows = BatchRows::default();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut planned_runs = Vec::new();
        for EventRuns { event_id, runs } in batch {
            if !open.contains(&event_id) {
                outcomes.push(CommitOutcome::default());
                continue;
            }
            let mut outcome = CommitOutcome { committed: true, ..CommitOutcome::default() };
            for run in runs {
                if recorded.contains(&(event_id, run.automation_id)) {
                    outcome.already_recorded.push(run.automation_id);
                    continue;
                }
                let run = match rejected_effect(&run, &endpoints) {
                    Some(EffectRejected(message)) => run.failed(message),
                    None => run,
                };
                let effects = plan_effects(&mut tx, event_id, &run, &endpoints, &mut rows, &mut outcome).await?;
                planned_runs.push((outcomes.len(), event_id, run, effects));
            }
            outcomes.push(outcome);
        }

        let inserted_deliveries = rows.insert_deliveries(&mut tx, now).await?;
        for (index, event_id, run, effects) in planned_runs {
            let outcome = &mut outcomes[index];
            let effects = effects.map(|effects| {
                let described = effects.into_iter().map(|effect| effect.describe(&inserted_deliveries, outcome)).collect();
                serde_json::Value::Array(described)
            });
            rows.push_run(event_id, &run, effects.as_ref());
            outcome.runs.push(AutomationRun {
                id: run.id,
                automation_id: run.automation_id,
                event_id,
                status: run.status,
                condition_result: run.condition_result,
                effects,
                error: run.error,
                duration_ms: run.duration_ms,
                created_at: now,
            });
        }
        rows.insert_runs(&mut tx, now).await?;
        rows.insert_emails(&mut tx, now).await?;

        sqlx::query("delete from grito_event_claims where event_id = any($1)")
            .bind(&event_ids)
            .execute(&mut *tx)
            .await?;
        // Dispatchers on other nodes wake on commit, as they do for POST /events.
        if outcomes.iter().any(|outcome| outcome.deliveries > 0) {
            sqlx::query(super::deliveries_pg::NOTIFY_DELIVERIES_SQL).execute(&mut *tx).await?;
        }

        tx.commit().await?;
        Ok(outcomes)
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

/// Loads the subscriptions that the batch's webhook effects name, keyed by
/// `destination_name`, with their id and whether they are enabled.
async fn load_endpoints(tx: &mut Transaction<'static, Postgres>, batch: &[EventRuns]) -> anyhow::Result<HashMap<String, (Uuid, bool)>> {
    let names: Vec<&str> = batch
        .iter()
        .flat_map(|event| &event.runs)
        .flat_map(|run| &run.effects)
        .filter_map(|effect| match effect {
            PlannedEffect::Webhook { endpoint_ref } => Some(endpoint_ref.as_str()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Uuid, bool)> =
        sqlx::query_as("select destination_name, id, enabled from grito_webhook_subscriptions where destination_name = any($1)")
            .bind(&names)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(name, id, enabled)| (name, (id, enabled))).collect())
}

/// Finds the first webhook effect of a succeeded run whose subscription is
/// missing or disabled. The store rejects that effect, which fails the run.
fn rejected_effect(run: &PlannedRun, endpoints: &HashMap<String, (Uuid, bool)>) -> Option<EffectRejected> {
    if run.status != RunStatus::Succeeded {
        return None;
    }
    run.effects.iter().find_map(|effect| {
        let PlannedEffect::Webhook { endpoint_ref } = effect else {
            return None;
        };
        match endpoints.get(endpoint_ref) {
            None => Some(EffectRejected(unknown_endpoint_message(endpoint_ref))),
            Some((_, false)) => Some(EffectRejected(disabled_endpoint_message(endpoint_ref))),
            Some((_, true)) => None,
        }
    })
}

/// An effect of a run in the batch, with the ids it creates. A webhook's
/// description waits for the delivery insert, which may find the
/// subscription already has a delivery for the event.
enum WrittenEffect {
    Described(serde_json::Value),
    Webhook { endpoint_ref: String, subscription_id: Uuid, delivery_id: Uuid },
}

impl WrittenEffect {
    fn describe(self, inserted_deliveries: &HashSet<Uuid>, outcome: &mut CommitOutcome) -> serde_json::Value {
        match self {
            Self::Described(description) => description,
            Self::Webhook { endpoint_ref, subscription_id, delivery_id } => {
                let inserted = inserted_deliveries.contains(&delivery_id);
                outcome.deliveries += u64::from(inserted);
                webhook_effect_json(&endpoint_ref, subscription_id, inserted.then_some(delivery_id))
            }
        }
    }
}

/// Queues the rows of a run's effects in `rows`. Emitted events are stored
/// at once, because their fan-out needs the new event's id. `None` for a run
/// that did not succeed, which has no effects.
async fn plan_effects(
    tx: &mut Transaction<'static, Postgres>,
    event_id: Uuid,
    run: &PlannedRun,
    endpoints: &HashMap<String, (Uuid, bool)>,
    rows: &mut BatchRows,
    outcome: &mut CommitOutcome,
) -> anyhow::Result<Option<Vec<WrittenEffect>>> {
    if run.status != RunStatus::Succeeded {
        return Ok(None);
    }
    let mut effects = Vec::with_capacity(run.effects.len());
    for effect in &run.effects {
        let written = match effect {
            PlannedEffect::Email(email) => {
                let outbox_id = rows.push_email(event_id, run, email);
                outcome.emails += 1;
                WrittenEffect::Described(email_effect_json(outbox_id, email))
            }
            PlannedEffect::Webhook { endpoint_ref } => {
                let (subscription_id, _) = endpoints[endpoint_ref];
                let delivery_id = rows.push_delivery(subscription_id, event_id);
                WrittenEffect::Webhook { endpoint_ref: endpoint_ref.clone(), subscription_id, delivery_id }
            }
            PlannedEffect::Event(event) => {
                let inserted = insert_event(tx, event).await?;
                outcome.deliveries += inserted.deliveries;
                outcome.emitted.push((event.event_name.clone(), event.source.clone(), inserted));
                WrittenEffect::Described(event_effect_json(event, &inserted))
            }
        };
        effects.push(written);
    }
    Ok(Some(effects))
}

/// The rows of one batch, column by column, for `unnest` inserts.
#[derive(Default)]
struct BatchRows {
    delivery_ids: Vec<Uuid>,
    delivery_subscriptions: Vec<Uuid>,
    delivery_events: Vec<Uuid>,

    run_ids: Vec<Uuid>,
    run_automations: Vec<Uuid>,
    run_events: Vec<Uuid>,
    run_statuses: Vec<&'static str>,
    run_conditions: Vec<Option<bool>>,
    run_effects: Vec<Option<String>>,
    run_errors: Vec<Option<String>>,
    run_durations: Vec<i64>,

    email_ids: Vec<Uuid>,
    email_events: Vec<Uuid>,
    email_automations: Vec<Uuid>,
    email_runs: Vec<Uuid>,
    email_templates: Vec<String>,
    email_recipients: Vec<String>,
    email_subjects: Vec<String>,
    email_texts: Vec<String>,
    email_htmls: Vec<Option<String>>,
}

impl BatchRows {
    fn push_delivery(&mut self, subscription_id: Uuid, event_id: Uuid) -> Uuid {
        let id = Uuid::now_v7();
        self.delivery_ids.push(id);
        self.delivery_subscriptions.push(subscription_id);
        self.delivery_events.push(event_id);
        id
    }

    fn push_email(&mut self, event_id: Uuid, run: &PlannedRun, email: &NewEmail) -> Uuid {
        let id = Uuid::now_v7();
        self.email_ids.push(id);
        self.email_events.push(event_id);
        self.email_automations.push(run.automation_id);
        self.email_runs.push(run.id);
        self.email_templates.push(email.template_id.clone());
        self.email_recipients.push(email.to.clone());
        self.email_subjects.push(email.subject.clone());
        self.email_texts.push(email.body_text.clone());
        self.email_htmls.push(email.body_html.clone());
        id
    }

    fn push_run(&mut self, event_id: Uuid, run: &PlannedRun, effects: Option<&serde_json::Value>) {
        self.run_ids.push(run.id);
        self.run_automations.push(run.automation_id);
        self.run_events.push(event_id);
        self.run_statuses.push(run.status.as_str());
        self.run_conditions.push(run.condition_result);
        self.run_effects.push(effects.map(serde_json::Value::to_string));
        self.run_errors.push(run.error.clone());
        self.run_durations.push(run.duration_ms);
    }

    /// Inserts the webhook effects' deliveries and returns the ids of those
    /// written; a subscription that already has a delivery for the event
    /// keeps it.
    async fn insert_deliveries(&self, tx: &mut Transaction<'static, Postgres>, now: DateTime<Utc>) -> anyhow::Result<HashSet<Uuid>> {
        if self.delivery_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let inserted: Vec<Uuid> = sqlx::query_scalar(
            "insert into grito_webhook_deliveries (id, subscription_id, event_id, status, created_at)
             select d.id, d.subscription_id, d.event_id, 'PENDING', $4
             from unnest($1::uuid[], $2::uuid[], $3::uuid[]) as d(id, subscription_id, event_id)
             on conflict (subscription_id, event_id) do nothing
             returning id",
        )
        .bind(&self.delivery_ids)
        .bind(&self.delivery_subscriptions)
        .bind(&self.delivery_events)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        Ok(inserted.into_iter().collect())
    }

    async fn insert_runs(&self, tx: &mut Transaction<'static, Postgres>, now: DateTime<Utc>) -> anyhow::Result<()> {
        if self.run_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into grito_automation_runs
               (id, automation_id, event_id, status, condition_result, effects, error, duration_ms, created_at)
             select r.id, r.automation_id, r.event_id, r.status, r.condition_result, r.effects::jsonb, r.error, r.duration_ms, $9
             from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::int8[])
               as r(id, automation_id, event_id, status, condition_result, effects, error, duration_ms)",
        )
        .bind(&self.run_ids)
        .bind(&self.run_automations)
        .bind(&self.run_events)
        .bind(&self.run_statuses)
        .bind(&self.run_conditions)
        .bind(&self.run_effects)
        .bind(&self.run_errors)
        .bind(&self.run_durations)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Inserts the outbox rows; after the runs, which they reference.
    async fn insert_emails(&self, tx: &mut Transaction<'static, Postgres>, now: DateTime<Utc>) -> anyhow::Result<()> {
        if self.email_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into grito_email_outbox
               (id, event_id, automation_id, run_id, template_id, \"to\", subject, body_text, body_html,
                status, attempts, next_attempt_at, created_at)
             select m.id, m.event_id, m.automation_id, m.run_id, m.template_id, m.recipient, m.subject, m.body_text, m.body_html,
                    'PENDING', 0, $10, $10
             from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
               as m(id, event_id, automation_id, run_id, template_id, recipient, subject, body_text, body_html)",
        )
        .bind(&self.email_ids)
        .bind(&self.email_events)
        .bind(&self.email_automations)
        .bind(&self.email_runs)
        .bind(&self.email_templates)
        .bind(&self.email_recipients)
        .bind(&self.email_subjects)
        .bind(&self.email_texts)
        .bind(&self.email_htmls)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Stores one event with [`insert_events`].
pub(super) async fn insert_event(connection: &mut PgConnection, event: &NewEvent) -> anyhow::Result<InsertedEvent> {
    let mut inserted = insert_events(connection, &[event]).await?;
    inserted.pop().context("storing one event returned no result")
}

/// Stores events, their fan-out and the dispatchers' wake-up with one
/// statement, and returns one result per event, in order. The event writer
/// runs it alone for a group of requests (so it commits by itself, in one
/// round trip), and the engine runs it inside a run's transaction for
/// emitted events. The notification is sent when that transaction commits.
/// ON CONFLICT waits for a concurrent insert of the same key to commit, so
/// the lookup of a key that already existed (or came twice in `events`)
/// finds the first event's row.
pub(super) async fn insert_events(connection: &mut PgConnection, events: &[&NewEvent]) -> anyhow::Result<Vec<InsertedEvent>> {
    let mut columns = EventColumns::default();
    for event in events {
        columns.push(event)?;
    }

    let stored: Vec<(Uuid, i64)> = sqlx::query_as(
        "with input as (
           select * from unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[], $7::text[])
             with ordinality as i(id, event_name, user_id, source, occurred_at, payload, idempotency_key, position)
         ), new_events as (
           insert into grito_events (id, event_name, user_id, source, occurred_at, payload, idempotency_key)
           select id, event_name, user_id, source, coalesce(occurred_at, now()), payload::jsonb, idempotency_key
           from input order by position
           on conflict (idempotency_key) do nothing
           returning id, event_name
         ), fan_out as (
           insert into grito_webhook_deliveries (id, subscription_id, event_id, status)
           select gen_random_uuid(), s.id, n.id, 'PENDING'
           from new_events n join grito_webhook_subscriptions s on s.enabled and n.event_name = any(s.event_filter)
           on conflict (subscription_id, event_id) do nothing
           returning event_id
         ), wake as (
           select pg_notify('grito_deliveries_' || left(md5(current_schema()), 12), '')
           where exists (select 1 from fan_out)
         )
         -- wake is joined so that PostgreSQL evaluates it
         select n.id, count(f.event_id)
         from new_events n
         left join fan_out f on f.event_id = n.id
         cross join (select count(*) from wake) w
         group by n.id",
    )
    .bind(&columns.ids)
    .bind(&columns.names)
    .bind(&columns.users)
    .bind(&columns.sources)
    .bind(&columns.occurred)
    .bind(&columns.payloads)
    .bind(&columns.keys)
    .fetch_all(&mut *connection)
    .await?;
    let stored: HashMap<Uuid, i64> = stored.into_iter().collect();

    let repeated: Vec<&str> = events
        .iter()
        .zip(&columns.ids)
        .filter(|(_, id)| !stored.contains_key(id))
        .filter_map(|(event, _)| event.idempotency_key.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let existing: HashMap<String, Uuid> = if repeated.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, Uuid)>("select idempotency_key, id from grito_events where idempotency_key = any($1)")
            .bind(&repeated)
            .fetch_all(&mut *connection)
            .await?
            .into_iter()
            .collect()
    };

    events
        .iter()
        .zip(&columns.ids)
        .map(|(event, id)| match stored.get(id) {
            Some(deliveries) => Ok(InsertedEvent { id: *id, dedup: false, deliveries: *deliveries as u64 }),
            None => event
                .idempotency_key
                .as_ref()
                .and_then(|key| existing.get(key))
                .map(|first| InsertedEvent { id: *first, dedup: true, deliveries: 0 })
                .context("idempotency key conflicted but its event was not found"),
        })
        .collect()
}

/// Events, column by column, for `unnest`.
#[derive(Default)]
struct EventColumns {
    ids: Vec<Uuid>,
    names: Vec<String>,
    users: Vec<Uuid>,
    sources: Vec<String>,
    occurred: Vec<Option<DateTime<Utc>>>,
    payloads: Vec<String>,
    keys: Vec<Option<String>>,
}

impl EventColumns {
    fn push(&mut self, event: &NewEvent) -> anyhow::Result<()> {
        self.ids.push(Uuid::now_v7());
        self.names.push(event.event_name.clone());
        self.users.push(event.user_id);
        self.sources.push(event.source.clone());
        self.occurred.push(event.occurred_at);
        self.payloads.push(serde_json::to_string(&event.payload)?);
        self.keys.push(event.idempotency_key.clone());
        Ok(())
    }
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
