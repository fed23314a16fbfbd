-- Identity map: which Grito user an external id (a Stripe customer, a badge
-- on an access-control device) belongs to. Shared by every inbound source.
create table if not exists grito_identities (
  source text not null,
  external_id text not null,
  user_id uuid not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (source, external_id)
);

create index if not exists grito_identities_user on grito_identities (user_id);

-- Inbound events whose user was not known when they arrived. Each row keeps
-- the event draft until the identity it waits on is mapped, then records the
-- event it became. Rows are never deleted by Grito.
create table if not exists grito_inbound_parked (
  id uuid primary key,
  -- the inbound source that sent it, for example stripe
  source text not null,
  -- the identity it waits on; external_id is null when the event named none
  identity_source text not null,
  external_id text,
  -- {event_name, source, occurred_at, payload, idempotency_key}
  draft jsonb not null,
  -- the draft's idempotency key, unique so a repeated delivery parks once
  idempotency_key text not null unique,
  reason text not null,
  created_at timestamptz not null default now(),
  published_at timestamptz,
  published_event_id uuid references grito_events(id) on delete set null
);

create index if not exists grito_inbound_parked_waiting
  on grito_inbound_parked (identity_source, external_id)
  where published_at is null;
