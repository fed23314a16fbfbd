-- The email outbox: one row per email an automation run asked for, rendered
-- when the run is committed and sent by the mailer with retries.
create table if not exists grito_email_outbox (
  id text primary key not null,
  event_id text references grito_events(id) on delete set null,
  automation_id text references grito_automations(id) on delete set null,
  run_id text references grito_automation_runs(id) on delete set null,
  template_id text not null,
  "to" text not null,
  subject text not null,
  body_text text not null,
  body_html text,
  -- PENDING | SENT | FAIL
  status text not null default 'PENDING',
  attempts integer not null default 0,
  -- due time for PENDING rows; a claim pushes it forward as a lease
  next_attempt_at text not null default (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
  last_error text,
  created_at text not null default (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
  sent_at text
);

create index if not exists grito_email_outbox_due
  on grito_email_outbox (next_attempt_at)
  where status = 'PENDING';

create index if not exists grito_email_outbox_event on grito_email_outbox (event_id);
