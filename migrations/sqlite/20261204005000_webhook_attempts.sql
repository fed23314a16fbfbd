-- One row per webhook delivery attempt, written in the same transaction as
-- the delivery's new state. The brief's grito_webhook_deliveries keeps only
-- the latest error; this table keeps the history, also across reprocessing.
-- Types follow the SQLite mapping of the first migration (TEXT uuids and
-- fixed-width UTC timestamps).

create table if not exists grito_webhook_attempts (
  id text primary key not null,
  delivery_id text not null references grito_webhook_deliveries(id) on delete cascade,
  attempt integer not null,
  started_at text not null,
  duration_ms integer not null,
  response_status integer,
  response_body text,
  error text
);

create index if not exists grito_webhook_attempts_delivery
  on grito_webhook_attempts (delivery_id, started_at);

-- Listing the dead letter: FAIL rows by age.
create index if not exists grito_webhook_deliveries_status_created
  on grito_webhook_deliveries (status, created_at);
