//! Group commit for incoming events on PostgreSQL.
//!
//! Every accepted event costs a commit, and on a busy server most of that
//! cost is the round trip, not the row. Requests that arrive while a write is
//! in flight are queued, and the next write stores all of them with one
//! statement: one round trip and one commit for the group. An idle server
//! writes each event alone, as soon as it arrives, so grouping adds no wait.
//! Each request still gets its result only after its event is committed.
//!
//! When a group's statement fails, its events are written again one by one,
//! each on a fresh connection, so one event the database refuses (or a
//! connection that broke) fails only its own request.

use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

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
        answer.await.map_err(|_| anyhow::anyhow!("the event writer stopped before returning a result"))?
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

        let events: Vec<&NewEvent> = group.iter().map(|request| &request.event).collect();
        let written = super::runs_pg::insert_events(&mut connection, &events).await;
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
