//! Shared set-up for the integration tests: a fresh database on either
//! backend, and the real HTTP app served on a loopback port.
//!
//! PostgreSQL tests use `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each in a schema of its own.
//! They fail when PostgreSQL is unreachable; set `GRITO_SKIP_POSTGRES=1` to
//! skip them on a machine without it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use grito::api::{AppState, app};
use grito::signals::Signals;
use grito::store::{PgStore, SqliteStore, Store};

pub const API_KEY: &str = "test-events-key-0123456789";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// The two storage backends every storage behaviour is tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database that is dropped with this value.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    /// The `DATABASE_URL` that reaches this database, for a spawned binary.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is skipped on purpose.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("grito.db");
        let store = SqliteStore::open(&path).await.expect("SQLite opens");
        store.migrate().await.expect("SQLite migrations run");
        Self {
            store: Arc::new(store),
            backend: Backend::Sqlite,
            url: format!("sqlite://{}", path.display()),
            _dir: Some(dir),
            schema: None,
        }
    }

    pub async fn postgres() -> Option<Self> {
        if std::env::var("GRITO_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
            eprintln!("GRITO_SKIP_POSTGRES=1: skipping the PostgreSQL half of this test");
            return None;
        }
        let base = postgres_base_url();
        let schema = format!("grito_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgStore::connect(&base)
            .await
            .expect("PostgreSQL URL parses");
        sqlx::query(&format!("create schema {schema}"))
            .execute(admin.pool())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL at {base} is unreachable ({error}); start it, set TEST_DATABASE_URL, \
                     or set GRITO_SKIP_POSTGRES=1 to skip PostgreSQL tests"
                )
            });
        admin.close().await;

        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let store = PgStore::connect(&url).await.expect("PostgreSQL URL parses");
        store.migrate().await.expect("PostgreSQL migrations run");
        Some(Self {
            store: Arc::new(store),
            backend: Backend::Postgres,
            url,
            _dir: None,
            schema: Some(schema),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        // Dropping runs outside any runtime, so a short-lived one does the cleanup.
        let base = postgres_base_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = PgStore::connect(&base).await.ok()?;
                let _ = sqlx::query(&format!("drop schema if exists {schema} cascade"))
                    .execute(admin.pool())
                    .await;
                admin.close().await;
                Some(())
            })
        })
        .join();
    }
}

pub fn postgres_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The real router on a loopback port, with its state.
pub struct TestServer {
    pub address: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(store: Arc<dyn Store>) -> Self {
        Self::start_with(test_state(store)).await
    }

    /// Serves `state`, for tests that change part of [`test_state`].
    pub async fn start_with(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let address = listener.local_addr().unwrap();
        let router = app(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("test server runs");
        });
        Self {
            address,
            state,
            client: reqwest::Client::new(),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts `body` to `/events` with the right key and content type.
    pub async fn post_event(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/events"))
            .header("X-Api-Key", API_KEY)
            .json(body)
            .send()
            .await
            .expect("request reaches the test server")
    }
}

/// The app state the tests serve: test keys, Stripe not configured.
pub fn test_state(store: Arc<dyn Store>) -> AppState {
    AppState {
        store,
        signals: Arc::new(Signals::default()),
        events_api_key: API_KEY.into(),
        max_body_bytes: 1024 * 1024,
        admin_api_key: Some(ADMIN_KEY.into()),
        stripe: Arc::new(grito::stripe::StripeWebhook::disabled()),
        normalizers: Default::default(),
        admin: Default::default(),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `test` once per backend, each on a fresh database.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = support::TestDb::new(support::Backend::Sqlite)
                    .await
                    .unwrap();
                ($body)(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = support::TestDb::new(support::Backend::Postgres).await else {
                    return;
                };
                ($body)(db).await;
            }
        }
    };
}
