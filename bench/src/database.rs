//! A fresh database per run: a new PostgreSQL schema (dropped afterwards) or
//! a new SQLite file in a temporary folder.

use std::path::PathBuf;

use sqlx::Connection;

/// Which backend a measurement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        }
    }
}

/// A database created for one measurement. PostgreSQL schemas are dropped by `drop_now`.
pub struct FreshDatabase {
    pub backend: Backend,
    /// The `DATABASE_URL` for `grito` and for this harness.
    pub url: String,
    base_url: String,
    schema: Option<String>,
    _folder: Option<tempfile::TempDir>,
    pub sqlite_path: Option<PathBuf>,
}

impl FreshDatabase {
    /// Creates an empty schema in `postgres_base` or an empty SQLite file.
    pub async fn create(backend: Backend, postgres_base: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Postgres => {
                let schema = format!("grito_bench_{}", uuid::Uuid::new_v4().simple());
                let mut connection = sqlx::PgConnection::connect(postgres_base).await?;
                sqlx::query(&format!("create schema {schema}")).execute(&mut connection).await?;
                connection.close().await?;
                let separator = if postgres_base.contains('?') { '&' } else { '?' };
                let url = format!("{postgres_base}{separator}options=-c%20search_path%3D{schema}");
                Ok(Self { backend, url, base_url: postgres_base.to_owned(), schema: Some(schema), _folder: None, sqlite_path: None })
            }
            Backend::Sqlite => {
                let folder = tempfile::tempdir()?;
                let path = folder.path().join("grito.db");
                let url = format!("sqlite://{}", path.display());
                Ok(Self { backend, url, base_url: String::new(), schema: None, _folder: Some(folder), sqlite_path: Some(path) })
            }
        }
    }

    /// Drops the PostgreSQL schema; the SQLite folder goes with `self`.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        if let Some(schema) = &self.schema {
            let mut connection = sqlx::PgConnection::connect(&self.base_url).await?;
            sqlx::query(&format!("drop schema if exists {schema} cascade")).execute(&mut connection).await?;
            connection.close().await?;
        }
        Ok(())
    }

    /// Counts rows with a SQL `query` that returns one integer.
    pub async fn count(&self, query: &str) -> anyhow::Result<i64> {
        match self.backend {
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await?;
                let count: i64 = sqlx::query_scalar(query).fetch_one(&mut connection).await?;
                connection.close().await?;
                Ok(count)
            }
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await?;
                let count: i64 = sqlx::query_scalar(query).fetch_one(&mut connection).await?;
                connection.close().await?;
                Ok(count)
            }
        }
    }
}
