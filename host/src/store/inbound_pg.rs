//! `InboundStore` on PostgreSQL.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PgStore;
use super::inbound::{
    EventDraft, Identity, IdentityChange, InboundStore, NewParked, ParkOutcome, ParkedEvent,
};

const PARKED_COLUMNS: &str = "id, source, identity_source, external_id, draft, reason, created_at, published_at, published_event_id";

#[async_trait]
impl InboundStore for PgStore {
    async fn lookup_identity(
        &self,
        source: &str,
        external_id: &str,
    ) -> anyhow::Result<Option<Uuid>> {
        let user_id = sqlx::query_scalar(
            "select user_id from grito_identities where source = $1 and external_id = $2",
        )
        .bind(source)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(user_id)
    }

    async fn get_identity(
        &self,
        source: &str,
        external_id: &str,
    ) -> anyhow::Result<Option<Identity>> {
        let row = sqlx::query(
            "select source, external_id, user_id, created_at, updated_at
             from grito_identities where source = $1 and external_id = $2",
        )
        .bind(source)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Identity {
                source: row.try_get("source")?,
                external_id: row.try_get("external_id")?,
                user_id: row.try_get("user_id")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
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
        let mut tx = self.pool().begin().await?;

        let created = sqlx::query(
            "insert into grito_identities (source, external_id, user_id) values ($1, $2, $3)
             on conflict (source, external_id) do nothing",
        )
        .bind(source)
        .bind(external_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 1 {
            tx.commit().await?;
            return Ok(IdentityChange::Created);
        }

        let existing: Uuid = sqlx::query_scalar(
            "select user_id from grito_identities where source = $1 and external_id = $2 for update",
        )
        .bind(source)
        .bind(external_id)
        .fetch_one(&mut *tx)
        .await
        .context("identity conflicted but its row was not found")?;
        let change = if existing == user_id {
            IdentityChange::Unchanged
        } else if replace {
            sqlx::query(
                "update grito_identities set user_id = $3, updated_at = now() where source = $1 and external_id = $2",
            )
            .bind(source)
            .bind(external_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            IdentityChange::Replaced { previous: existing }
        } else {
            IdentityChange::Kept { existing }
        };

        tx.commit().await?;
        Ok(change)
    }

    async fn delete_identity(&self, source: &str, external_id: &str) -> anyhow::Result<bool> {
        let deleted =
            sqlx::query("delete from grito_identities where source = $1 and external_id = $2")
                .bind(source)
                .bind(external_id)
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }

    async fn park_event(&self, parked: NewParked) -> anyhow::Result<ParkOutcome> {
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "insert into grito_inbound_parked (id, source, identity_source, external_id, draft, idempotency_key, reason)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (idempotency_key) do nothing
             returning id",
        )
        .bind(Uuid::now_v7())
        .bind(&parked.source)
        .bind(&parked.identity_source)
        .bind(&parked.external_id)
        .bind(sqlx::types::Json(&parked.draft))
        .bind(&parked.draft.idempotency_key)
        .bind(&parked.reason)
        .fetch_optional(self.pool())
        .await?;
        if let Some(id) = inserted {
            return Ok(ParkOutcome { id, created: true });
        }

        let id =
            sqlx::query_scalar("select id from grito_inbound_parked where idempotency_key = $1")
                .bind(&parked.draft.idempotency_key)
                .fetch_one(self.pool())
                .await
                .context("parked idempotency key conflicted but its row was not found")?;
        Ok(ParkOutcome { id, created: false })
    }

    async fn get_parked(&self, id: Uuid) -> anyhow::Result<Option<ParkedEvent>> {
        let row = sqlx::query(&format!(
            "select {PARKED_COLUMNS} from grito_inbound_parked where id = $1"
        ))
        .bind(id)
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
             where $1 or published_at is null
             order by created_at, id
             limit $2"
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
             where identity_source = $1 and external_id = $2 and published_at is null
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
            "update grito_inbound_parked set published_at = $3, published_event_id = $2
             where id = $1 and published_at is null",
        )
        .bind(id)
        .bind(event_id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }
}

fn parked_from_row(row: &PgRow) -> anyhow::Result<ParkedEvent> {
    let draft: sqlx::types::Json<EventDraft> = row.try_get("draft")?;
    Ok(ParkedEvent {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        identity_source: row.try_get("identity_source")?,
        external_id: row.try_get("external_id")?,
        draft: draft.0,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        published_at: row.try_get("published_at")?,
        published_event_id: row.try_get("published_event_id")?,
    })
}
