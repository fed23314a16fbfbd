-- Automation runs: at most one per (automation, event), written in the same
-- transaction as the run's effects and the event's processed_at.
create table if not exists grito_automation_runs (
  id uuid primary key,
  automation_id uuid not null references grito_automations(id) on delete cascade,
  event_id uuid not null references grito_events(id) on delete cascade,
  -- skipped (condition false) | succeeded | failed
  status text not null,
  -- null when the automation has no condition or the condition failed
  condition_result boolean,
  -- the effects carried out, as a JSON array (null unless succeeded)
  effects jsonb,
  error text,
  duration_ms bigint not null,
  created_at timestamptz not null default now(),
  unique (automation_id, event_id)
);

create index if not exists grito_automation_runs_event on grito_automation_runs (event_id);

-- Engine leases on unprocessed events. A worker that claims an event holds
-- its lease while it calls plugins outside any transaction; a worker that
-- dies leaves a lease that expires, and another worker then retries the event.
create table if not exists grito_event_claims (
  event_id uuid primary key references grito_events(id) on delete cascade,
  worker text not null,
  lease_until timestamptz not null,
  -- how many times the event has been claimed, for logs
  claims int not null default 1
);
