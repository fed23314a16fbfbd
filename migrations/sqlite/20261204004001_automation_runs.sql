-- Automation runs: at most one per (automation, event), written in the same
-- transaction as the run's effects and the event's processed_at.
-- Types as in the brief's tables: TEXT uuids, TEXT UTC timestamps, TEXT JSON.
create table if not exists grito_automation_runs (
  id text primary key not null,
  automation_id text not null references grito_automations(id) on delete cascade,
  event_id text not null references grito_events(id) on delete cascade,
  -- skipped (condition false) | succeeded | failed
  status text not null,
  -- null when the automation has no condition or the condition failed
  condition_result integer,
  -- the effects carried out, as a JSON array (null unless succeeded)
  effects text check (effects is null or json_valid(effects)),
  error text,
  duration_ms integer not null,
  created_at text not null default (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
  unique (automation_id, event_id)
);

create index if not exists grito_automation_runs_event on grito_automation_runs (event_id);

-- Engine leases on unprocessed events. A worker that claims an event holds
-- its lease while it calls plugins outside any transaction; a worker that
-- dies leaves a lease that expires, and another worker then retries the event.
create table if not exists grito_event_claims (
  event_id text primary key not null references grito_events(id) on delete cascade,
  worker text not null,
  lease_until text not null,
  -- how many times the event has been claimed, for logs
  claims integer not null default 1
);
