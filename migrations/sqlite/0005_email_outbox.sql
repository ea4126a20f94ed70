-- The transactional email outbox. A row is inserted in the same transaction as the change that
-- causes the email, and the delivery worker (src/email) sends it afterwards: an email is never
-- lost, and never sent for a write that rolled back.
create table email_outbox (
    id               text primary key,
    organization_id  text references organization (id) on delete cascade,  -- null: not on behalf of an organization
    to_address       text not null,
    subject          text not null,
    body_text        text not null,
    body_html        text,
    status           text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts         integer not null default 0,
    next_attempt_at  integer not null,   -- due from then on (retries back off exponentially)
    last_error       text,
    claimed_until    integer,            -- a worker's lease; once past, another worker may take the row over
    sent_at          integer,
    created_at       integer not null,
    updated_at       integer not null
);
-- The worker's claim query: pending rows in due order. Partial, so it stays the size of the
-- backlog however many sent rows accumulate.
create index email_outbox_due on email_outbox (next_attempt_at, id) where status = 'pending';
