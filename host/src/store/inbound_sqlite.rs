//! `InboundStore` on SQLite. Identity changes run under `BEGIN IMMEDIATE`, so
//! two writers on one file take turns.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::SqliteStore;
use super::inbound::{
    EventDraft, Identity, IdentityChange, InboundStore, NewParked, ParkOutcome, ParkedEvent,
};
use super::time::{from_text, to_text};

const PARKED_COLUMNS: &str = "id, source, identity_source, external_id, draft, reason, created_at, published_at, published_event_id";

#[async_trait]
impl InboundStore for SqliteStore {
    async fn lookup_identity(
        &self,
        source: &str,
        external_id: &str,
    ) -> anyhow::Result<Option<Uuid>> {
        let user_id: Option<String> = sqlx::query_scalar(
            "select user_id from grito_identities where source = ?1 and external_id = ?2",
        )
        .bind(source)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?;
        user_id.as_deref().map(parse_uuid).transpose()
    }

    async fn get_identity(
        &self,
        source: &str,
        external_id: &str,
    ) -> anyhow::Result<Option<Identity>> {
        let row = sqlx::query(
            "select source, external_id, user_id, created_at, updated_at
             from grito_identities where source = ?1 and external_id = ?2",
        )
        .bind(source)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Identity {
                source: row.try_get("source")?,
                external_id: row.try_get("external_id")?,
                user_id: parse_uuid(row.try_get("user_id")?)?,
                created_at: from_text(row.try_get("created_at")?)?,
                updated_at: from_text(row.try_get("updated_at")?)?,
            })
        })
        .transpose()
    }

    async fn set_identity(
        &self,
        source: &str,
        external_id: &str,
        user_id: Uuid,
        replace: bool,
    ) -> anyhow::Result<IdentityChange> {
        let (_turn, mut tx) = self.begin_write().await?;

        let existing: Option<String> = sqlx::query_scalar(
            "select user_id from grito_identities where source = ?1 and external_id = ?2",
        )
        .bind(source)
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?;
        let change = match existing.as_deref().map(parse_uuid).transpose()? {
            None => {
                sqlx::query("insert into grito_identities (source, external_id, user_id) values (?1, ?2, ?3)")
                    .bind(source)
                    .bind(external_id)
                    .bind(user_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                IdentityChange::Created
            }
            Some(existing) if existing == user_id => IdentityChange::Unchanged,
            Some(existing) if replace => {
                sqlx::query(
                    "update grito_identities set user_id = ?3, updated_at = ?4 where source = ?1 and external_id = ?2",
                )
                .bind(source)
                .bind(external_id)
                .bind(user_id.to_string())
                .bind(to_text(Utc::now()))
                .execute(&mut *tx)
                .await?;
                IdentityChange::Replaced { previous: existing }
            }
            Some(existing) => IdentityChange::Kept { existing },
        };

        tx.commit().await?;
        Ok(change)
    }

    async fn delete_identity(&self, source: &str, external_id: &str) -> anyhow::Result<bool> {
        let deleted =
            sqlx::query("delete from grito_identities where source = ?1 and external_id = ?2")
                .bind(source)
                .bind(external_id)
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }

    async fn park_event(&self, parked: NewParked) -> anyhow::Result<ParkOutcome> {
        let inserted: Option<String> = sqlx::query_scalar(
            "insert into grito_inbound_parked (id, source, identity_source, external_id, draft, idempotency_key, reason)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             on conflict (idempotency_key) do nothing
             returning id",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&parked.source)
        .bind(&parked.identity_source)
        .bind(&parked.external_id)
        .bind(serde_json::to_string(&parked.draft)?)
        .bind(&parked.draft.idempotency_key)
        .bind(&parked.reason)
        .fetch_optional(self.pool())
        .await?;
        if let Some(id) = inserted {
            return Ok(ParkOutcome {
                id: parse_uuid(&id)?,
                created: true,
            });
        }

        let id: String =
            sqlx::query_scalar("select id from grito_inbound_parked where idempotency_key = ?1")
                .bind(&parked.draft.idempotency_key)
                .fetch_one(self.pool())
                .await
                .context("parked idempotency key conflicted but its row was not found")?;
        Ok(ParkOutcome {
            id: parse_uuid(&id)?,
            created: false,
        })
    }

    async fn get_parked(&self, id: Uuid) -> anyhow::Result<Option<ParkedEvent>> {
        let row = sqlx::query(&format!(
            "select {PARKED_COLUMNS} from grito_inbound_parked where id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| parked_from_row(&row)).transpose()
    }

    async fn list_parked(
        &self,
        include_published: bool,
        limit: u32,
    ) -> anyhow::Result<Vec<ParkedEvent>> {
        let rows = sqlx::query(&format!(
            "select {PARKED_COLUMNS} from grito_inbound_parked
             where ?1 or published_at is null
             order by created_at, id
             limit ?2"
        ))
        .bind(include_published)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(parked_from_row).collect()
    }

    async fn parked_waiting_on(
        &self,
        identity_source: &str,
        external_id: &str,
    ) -> anyhow::Result<Vec<ParkedEvent>> {
        let rows = sqlx::query(&format!(
            "select {PARKED_COLUMNS} from grito_inbound_parked
             where identity_source = ?1 and external_id = ?2 and published_at is null
             order by created_at, id"
        ))
        .bind(identity_source)
        .bind(external_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(parked_from_row).collect()
    }

    async fn mark_parked_published(
        &self,
        id: Uuid,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let updated = sqlx::query(
            "update grito_inbound_parked set published_at = ?3, published_event_id = ?2
             where id = ?1 and published_at is null",
        )
        .bind(id.to_string())
        .bind(event_id.to_string())
        .bind(to_text(now))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }
}

fn parked_from_row(row: &SqliteRow) -> anyhow::Result<ParkedEvent> {
    let draft: String = row.try_get("draft")?;
    let published_at: Option<String> = row.try_get("published_at")?;
    let published_event_id: Option<String> = row.try_get("published_event_id")?;
    Ok(ParkedEvent {
        id: parse_uuid(row.try_get("id")?)?,
        source: row.try_get("source")?,
        identity_source: row.try_get("identity_source")?,
        external_id: row.try_get("external_id")?,
        draft: serde_json::from_str::<EventDraft>(&draft)
            .context("invalid draft JSON in grito_inbound_parked")?,
        reason: row.try_get("reason")?,
        created_at: from_text(row.try_get("created_at")?)?,
        published_at: published_at.as_deref().map(from_text).transpose()?,
        published_event_id: published_event_id.as_deref().map(parse_uuid).transpose()?,
    })
}

fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("invalid UUID `{text}` in the SQLite database"))
}
