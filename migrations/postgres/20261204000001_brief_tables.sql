-- The four tables of the organization's brief, with its names, columns and
-- types unchanged. Everything Grito adds lives in later migrations.

create table if not exists grito_events (
  id uuid primary key default gen_random_uuid(),
  event_name text not null,
  user_id uuid not null,
  source text not null,
  occurred_at timestamptz not null default now(),
  payload jsonb not null,
  idempotency_key text unique,
  processed_at timestamptz
);

create table if not exists grito_webhook_subscriptions (
  id uuid primary key default gen_random_uuid(),
  destination_name text not null,
  endpoint_url text not null,
  secret text not null,
  enabled boolean not null default true,
  event_filter text[] not null,
  created_at timestamptz default now()
);

create table if not exists grito_webhook_deliveries (
  id uuid primary key default gen_random_uuid(),
  subscription_id uuid references grito_webhook_subscriptions(id),
  event_id uuid references grito_events(id),
  status text not null,
  attempt int not null default 0,
  last_error text,
  next_attempt_at timestamptz,
  created_at timestamptz default now()
);

create table if not exists grito_automations (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  is_active boolean not null default true,
  match_event text not null,
  condition_sql text,
  action jsonb not null,
  created_at timestamptz default now()
);
