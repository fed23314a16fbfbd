-- One row per webhook delivery attempt, written in the same transaction as
-- the delivery's new state. The brief's grito_webhook_deliveries keeps only
-- the latest error; this table keeps the history, also across reprocessing.

create table if not exists grito_webhook_attempts (
  id uuid primary key,
  delivery_id uuid not null references grito_webhook_deliveries(id) on delete cascade,
  attempt int not null,
  started_at timestamptz not null,
  duration_ms bigint not null,
  response_status int,
  response_body text,
  error text
);

create index if not exists grito_webhook_attempts_delivery
  on grito_webhook_attempts (delivery_id, started_at);

-- Listing the dead letter: FAIL rows by age.
create index if not exists grito_webhook_deliveries_status_created
  on grito_webhook_deliveries (status, created_at);
