-- Additive indexes only: the brief's columns stay as they are.
-- On SQLite NULLs sort first in ascending order, as "nulls first" asks on PostgreSQL.

-- At most one delivery per (subscription, event), whether a subscription's
-- filter matched or a webhook action named it.
create unique index if not exists grito_webhook_deliveries_subscription_event
  on grito_webhook_deliveries (subscription_id, event_id);

-- The dispatcher's claim query: due PENDING rows in due order.
create index if not exists grito_webhook_deliveries_due
  on grito_webhook_deliveries (next_attempt_at, created_at)
  where status = 'PENDING';

create index if not exists grito_webhook_deliveries_event
  on grito_webhook_deliveries (event_id);

-- The automation engine's claim query: events not processed yet.
create index if not exists grito_events_unprocessed
  on grito_events (occurred_at)
  where processed_at is null;

create index if not exists grito_events_user_occurred
  on grito_events (user_id, occurred_at);

-- Webhook actions name a subscription by destination_name, so it must be unique.
create unique index if not exists grito_webhook_subscriptions_destination_name
  on grito_webhook_subscriptions (destination_name);

create index if not exists grito_automations_match_event
  on grito_automations (match_event)
  where is_active = 1;
