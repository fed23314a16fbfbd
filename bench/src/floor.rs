//! The ingest floor: a bare axum `POST /events` that parses the body and runs
//! one `INSERT` of the same row into `grito_events`, with the same pool size
//! as Grito's store (16 connections on PostgreSQL, 8 on SQLite) and no
//! validation, deliveries, metrics or logging.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use crate::database::{Backend, FreshDatabase};

#[derive(Clone)]
enum Pool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// A running floor server; `url` is its `POST /events` address.
pub struct FloorServer {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FloorServer {
    /// Serves the floor handler on a loopback port against `database`, which must already be migrated.
    pub async fn start(database: &FreshDatabase) -> anyhow::Result<Self> {
        let pool = match database.backend {
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(&database.url)?;
                Pool::Postgres(PgPoolOptions::new().max_connections(16).test_before_acquire(false).connect_with(options).await?)
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&database.url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10));
                Pool::Sqlite(SqlitePoolOptions::new().max_connections(8).test_before_acquire(false).connect_with(options).await?)
            }
        };
        let app = Router::new().route("/events", post(insert_event)).with_state(pool);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}/events", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, task })
    }
}

async fn insert_event(State(pool): State<Pool>, body: Bytes) -> (StatusCode, String) {
    match insert(&pool, &body).await {
        Ok(id) => (StatusCode::OK, format!(r#"{{"ok":true,"id":"{id}"}}"#)),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn insert(pool: &Pool, body: &[u8]) -> anyhow::Result<Uuid> {
    let event: serde_json::Value = serde_json::from_slice(body)?;
    let id = Uuid::now_v7();
    let event_name = event["event_name"].as_str().unwrap_or_default();
    let user_id = Uuid::parse_str(event["user_id"].as_str().unwrap_or_default())?;
    let source = event["source"].as_str().unwrap_or_default();
    let idempotency_key = event["idempotency_key"].as_str();
    match pool {
        Pool::Postgres(pool) => {
            sqlx::query(
                "insert into grito_events (id, event_name, user_id, source, occurred_at, payload, idempotency_key)
                 values ($1, $2, $3, $4, now(), $5, $6)",
            )
            .bind(id)
            .bind(event_name)
            .bind(user_id)
            .bind(source)
            .bind(&event["payload"])
            .bind(idempotency_key)
            .execute(pool)
            .await?;
        }
        Pool::Sqlite(pool) => {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            sqlx::query(
                "insert into grito_events (id, event_name, user_id, source, occurred_at, payload, idempotency_key)
                 values (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id.to_string())
            .bind(event_name)
            .bind(user_id.to_string())
            .bind(source)
            .bind(now)
            .bind(event["payload"].to_string())
            .bind(idempotency_key)
            .execute(pool)
            .await?;
        }
    }
    Ok(id)
}
