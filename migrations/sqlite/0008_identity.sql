-- Accounts only their owner controls.
--
-- One membership per account per organization. Older versions let an identity provider create a
-- second User for the same person (another userName, the same email); each such later duplicate
-- is moved to an account of its own, with no email, so it can never sign in as the person, and
-- the oldest membership keeps the link to the account.
insert into account (id, created_at, updated_at)
select 'split-' || m.id, m.created_at, m.created_at from membership m
where exists (select 1 from membership o where o.organization_id = m.organization_id and o.account_id = m.account_id
              and (o.created_at < m.created_at or (o.created_at = m.created_at and o.id < m.id)));
update membership set account_id = 'split-' || id
where exists (select 1 from membership o where o.organization_id = membership.organization_id and o.account_id = membership.account_id
              and (o.created_at < membership.created_at or (o.created_at = membership.created_at and o.id < membership.id)));
create unique index membership_account_org on membership (organization_id, account_id);

-- When the person last acted in this organization: each organization sees its own, never the
-- account's activity elsewhere.
alter table membership add column last_active_at integer;

-- A short claim on an invitation while its password is hashed or checked, so that of many
-- concurrent accepts only one does the expensive work (and a crashed claim lapses).
alter table invitation add column claimed_until integer;

-- Browser sessions: the cookie's secret is stored only as a digest; `idle_until` slides forward
-- with use. `method` tells how the person proved who they are ('password' or a provider name).
alter table session add column cookie_digest text;
alter table session add column idle_until integer;
alter table session add column method text not null default 'password';
create unique index session_cookie on session (cookie_digest) where cookie_digest is not null;

-- A person's identity at a sign-in provider, remembered by (provider, subject): a later change of
-- email at the provider never moves it to another account.
create table federated_identity (
    provider       text not null,
    subject        text not null,
    account_id     text not null references account (id) on delete cascade,
    email          text not null,     -- the verified address it was first linked by
    last_used_at   integer,
    created_at     integer not null,
    updated_at     integer not null,
    primary key (provider, subject)
);
create index federated_identity_account on federated_identity (account_id);

-- A sign-in started at a provider and not finished yet: bound to the browser by a cookie whose
-- digest keys the row, used once, short-lived.
create table sign_in_flow (
    id              text primary key,
    browser_digest  text not null unique,   -- SHA-256 of the flow cookie's secret
    state_digest    text not null,          -- SHA-256 of the `state` sent to the provider
    provider        text not null,
    nonce           text not null,
    pkce_verifier   text not null,
    expires_at      integer not null,
    used_at         integer,
    created_at      integer not null,
    updated_at      integer not null
);
create index sign_in_flow_expires on sign_in_flow (expires_at);

-- Sent mail is purged after a retention period; this finds it without scanning the backlog.
create index email_outbox_sent on email_outbox (sent_at) where status = 'sent';
