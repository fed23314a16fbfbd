//! Group commit for incoming events on PostgreSQL.
//!
//! Every accepted event costs a commit, and on a busy server most of that
//! cost is the round trip, not the row. Requests that arrive while a write is
//! in flight are queued, and the next write stores all of them with one
//! statement: one round trip and one commit for the group. An idle server
//! writes each event alone, as soon as it arrives, so grouping adds no wait.
//! Each request still gets its answer only after its event is committed.
//!
//! When a group's statement fails, its events are written again one by one,
//! each on a fresh connection, so one event the database refuses (or a
//! connection that broke) fails only its own request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::{InsertedEvent, NewEvent};

/// Writers storing groups at the same time.
const WRITERS: usize = 4;
/// Largest group one statement stores.
const MAX_GROUP: usize = 256;
/// Requests waiting for a writer before senders wait too.
const QUEUE: usize = 4096;

struct Request {
    event: NewEvent,
    reply: oneshot::Sender<anyhow::Result<InsertedEvent>>,
}

/// The queue in front of the writers. The writers start with the first event
/// and stop when the store is dropped.
pub(super) struct EventWriter {
    pool: PgPool,
    queue: OnceLock<mpsc::Sender<Request>>,
}

impl EventWriter {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool, queue: OnceLock::new() }
    }

    /// Stores one event with its fan-out; returns after the commit.
    pub(super) async fn insert(&self, event: NewEvent) -> anyhow::Result<InsertedEvent> {
        let (reply, answer) = oneshot::channel();
        self.queue()
            .send(Request { event, reply })
            .await
            .map_err(|_| anyhow::anyhow!("the event writer has stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the event writer stopped before answering"))?
    }

    fn queue(&self) -> &mpsc::Sender<Request> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..WRITERS {
                tokio::spawn(write_groups(self.pool.clone(), receiver.clone()));
            }
            sender
        })
    }
}

/// One writer: takes whatever is queued (up to a group), stores it and
/// sends each request its result. It holds a connection only while it
/// writes, so closing the pool never waits for an idle writer.
async fn write_groups(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Request>>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        if queue.lock().await.recv_many(&mut group, MAX_GROUP).await == 0 {
            return;
        }

        let mut connection = match pool.acquire().await {
            Ok(connection) => connection,
            Err(error) => {
                let reason = format!("{error:#}");
                for request in group.drain(..) {
                    let unreachable = anyhow::Error::new(sqlx::Error::PoolTimedOut).context(reason.clone());
                    let _ = request.reply.send(Err(unreachable));
                }
                continue;
            }
        };

        let written = insert_group(&mut connection, &group).await;
        drop(connection);
        match written {
            Ok(results) => {
                for (request, result) in group.drain(..).zip(results) {
                    let _ = request.reply.send(Ok(result));
                }
            }
            Err(error) if group.len() == 1 => {
                let _ = group.remove(0).reply.send(Err(error));
            }
            Err(error) => {
                tracing::warn!(events = group.len(), error = format!("{error:#}"), "storing a group of events failed; storing each alone");
                for request in group.drain(..) {
                    let result = insert_alone(&pool, &request.event).await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}

async fn insert_alone(pool: &PgPool, event: &NewEvent) -> anyhow::Result<InsertedEvent> {
    let mut connection = pool.acquire().await?;
    super::runs_pg::insert_event(&mut connection, event).await
}

/// Stores a group with one statement and returns one result per request, in order.
/// A key that already existed (or came twice in the group) is looked up
/// afterwards, which sees the rows this statement committed.
async fn insert_group(connection: &mut sqlx::PgConnection, group: &[Request]) -> anyhow::Result<Vec<InsertedEvent>> {
    let mut columns = Columns::default();
    for request in group {
        columns.push(&request.event)?;
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

    let repeated: Vec<&str> = group
        .iter()
        .zip(&columns.ids)
        .filter(|(_, id)| !stored.contains_key(id))
        .filter_map(|(request, _)| request.event.idempotency_key.as_deref())
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

    group
        .iter()
        .zip(&columns.ids)
        .map(|(request, id)| match stored.get(id) {
            Some(deliveries) => Ok(InsertedEvent { id: *id, dedup: false, deliveries: *deliveries as u64 }),
            None => request
                .event
                .idempotency_key
                .as_ref()
                .and_then(|key| existing.get(key))
                .map(|first| InsertedEvent { id: *first, dedup: true, deliveries: 0 })
                .context("idempotency key conflicted but its event was not found"),
        })
        .collect()
}

/// A group's events, column by column, for `unnest`.
#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    names: Vec<String>,
    users: Vec<Uuid>,
    sources: Vec<String>,
    occurred: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    payloads: Vec<String>,
    keys: Vec<Option<String>>,
}

impl Columns {
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
