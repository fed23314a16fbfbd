-- The email outbox: one row per email an automation run asked for, rendered
-- when the run is committed and sent by the mailer with retries.
create table if not exists grito_email_outbox (
  id uuid primary key,
  event_id uuid references grito_events(id) on delete set null,
  automation_id uuid references grito_automations(id) on delete set null,
  run_id uuid references grito_automation_runs(id) on delete set null,
  template_id text not null,
  "to" text not null,
  subject text not null,
  body_text text not null,
  body_html text,
  -- PENDING | SENT | FAIL
  status text not null default 'PENDING',
  attempts int not null default 0,
  -- due time for PENDING rows; a claim pushes it forward as a lease
  next_attempt_at timestamptz not null default now(),
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);

create index if not exists grito_email_outbox_due
  on grito_email_outbox (next_attempt_at)
  where status = 'PENDING';

create index if not exists grito_email_outbox_event on grito_email_outbox (event_id);
