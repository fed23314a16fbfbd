//! `AdminStore` on SQLite. Timestamps are fixed-width UTC text, so comparing
//! them as text orders them by time.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::admin::{AdminStore, AutomationChanges, EventQuery, SubscriptionChanges, SubscriptionDeletion};
use super::sqlite::{automation_from_row, event_from_row, subscription_from_row};
use super::time::to_text;
use super::{Automation, Event, SqliteStore, Subscription};

const SUBSCRIPTION_COLUMNS: &str = "id, destination_name, endpoint_url, secret, enabled, event_filter, created_at";
const AUTOMATION_COLUMNS: &str = "id, name, is_active, match_event, condition_sql, action, created_at";

#[async_trait]
impl AdminStore for SqliteStore {
    async fn get_subscription(&self, id: Uuid) -> anyhow::Result<Option<Subscription>> {
        let row = sqlx::query(&format!("select {SUBSCRIPTION_COLUMNS} from grito_webhook_subscriptions where id = ?1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    async fn update_subscription(&self, id: Uuid, changes: SubscriptionChanges) -> anyhow::Result<Option<Subscription>> {
        let filter = changes.event_filter.as_ref().map(serde_json::to_string).transpose()?;
        let row = sqlx::query(&format!(
            "update grito_webhook_subscriptions
             set destination_name = coalesce(?2, destination_name),
                 endpoint_url = coalesce(?3, endpoint_url),
                 enabled = coalesce(?4, enabled),
                 event_filter = coalesce(?5, event_filter)
             where id = ?1
             returning {SUBSCRIPTION_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(changes.destination_name)
        .bind(changes.endpoint_url)
        .bind(changes.enabled)
        .bind(filter)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    async fn set_subscription_secret(&self, id: Uuid, secret: &str) -> anyhow::Result<bool> {
        let updated = sqlx::query("update grito_webhook_subscriptions set secret = ?2 where id = ?1")
            .bind(id.to_string())
            .bind(secret)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn delete_subscription(&self, id: Uuid, force: bool) -> anyhow::Result<SubscriptionDeletion> {
        let (_turn, mut tx) = self.begin_write().await?;
        let id = id.to_string();

        let exists: Option<i64> = sqlx::query_scalar("select 1 from grito_webhook_subscriptions where id = ?1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(SubscriptionDeletion::NotFound);
        }
        let deliveries: i64 = sqlx::query_scalar("select count(*) from grito_webhook_deliveries where subscription_id = ?1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        if deliveries > 0 && !force {
            return Ok(SubscriptionDeletion::HasDeliveries(deliveries as u64));
        }

        // Attempts go with their deliveries (on delete cascade).
        let deleted = sqlx::query("delete from grito_webhook_deliveries where subscription_id = ?1")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("delete from grito_webhook_subscriptions where id = ?1").bind(&id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(SubscriptionDeletion::Deleted { deliveries: deleted })
    }

    async fn get_automation(&self, id: Uuid) -> anyhow::Result<Option<Automation>> {
        let row = sqlx::query(&format!("select {AUTOMATION_COLUMNS} from grito_automations where id = ?1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(automation_from_row).transpose()
    }

    async fn update_automation(&self, id: Uuid, changes: AutomationChanges) -> anyhow::Result<Option<Automation>> {
        let action = changes.action.as_ref().map(serde_json::to_string).transpose()?;
        let (set_condition, condition) = match changes.condition_sql {
            Some(condition) => (true, condition),
            None => (false, None),
        };
        let row = sqlx::query(&format!(
            "update grito_automations
             set name = coalesce(?2, name),
                 is_active = coalesce(?3, is_active),
                 match_event = coalesce(?4, match_event),
                 condition_sql = case when ?5 then ?6 else condition_sql end,
                 action = coalesce(?7, action)
             where id = ?1
             returning {AUTOMATION_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(changes.name)
        .bind(changes.is_active)
        .bind(changes.match_event)
        .bind(set_condition)
        .bind(condition)
        .bind(action)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(automation_from_row).transpose()
    }

    async fn delete_automation(&self, id: Uuid) -> anyhow::Result<bool> {
        let deleted = sqlx::query("delete from grito_automations where id = ?1")
            .bind(id.to_string())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_events(&self, query: &EventQuery) -> anyhow::Result<Vec<Event>> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
            "select id, event_name, user_id, source, occurred_at, payload, idempotency_key, processed_at
             from grito_events where 1 = 1",
        );
        if let Some(name) = &query.event_name {
            sql.push(" and event_name = ").push_bind(name.clone());
        }
        if let Some(user_id) = query.user_id {
            sql.push(" and user_id = ").push_bind(user_id.to_string());
        }
        if let Some(source) = &query.source {
            sql.push(" and source = ").push_bind(source.clone());
        }
        if let Some(since) = query.since {
            sql.push(" and occurred_at >= ").push_bind(to_text(since));
        }
        if let Some(until) = query.until {
            sql.push(" and occurred_at < ").push_bind(to_text(until));
        }
        if let Some(after) = query.after {
            sql.push(" and (occurred_at < ")
                .push_bind(to_text(after.occurred_at))
                .push(" or (occurred_at = ")
                .push_bind(to_text(after.occurred_at))
                .push(" and id < ")
                .push_bind(after.id.to_string())
                .push("))");
        }
        sql.push(" order by occurred_at desc, id desc limit ").push_bind(i64::from(query.limit));

        let rows = sql.build().fetch_all(self.pool()).await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn create_missing_deliveries(&self, event_id: Uuid) -> anyhow::Result<Vec<Uuid>> {
        let (_turn, mut tx) = self.begin_write().await?;

        let subscription_ids: Vec<String> = sqlx::query_scalar(
            "select s.id from grito_webhook_subscriptions s
             join grito_events e on e.id = ?1
             where s.enabled = 1
               and exists (select 1 from json_each(s.event_filter) f where f.value = e.event_name)
               and not exists (select 1 from grito_webhook_deliveries d where d.subscription_id = s.id and d.event_id = e.id)",
        )
        .bind(event_id.to_string())
        .fetch_all(&mut *tx)
        .await?;

        let now = to_text(Utc::now());
        let mut created = Vec::new();
        for subscription_id in subscription_ids {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into grito_webhook_deliveries (id, subscription_id, event_id, status, created_at)
                 values (?1, ?2, ?3, 'PENDING', ?4)",
            )
            .bind(id.to_string())
            .bind(subscription_id)
            .bind(event_id.to_string())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            created.push(id);
        }
        tx.commit().await?;
        Ok(created)
    }
}
