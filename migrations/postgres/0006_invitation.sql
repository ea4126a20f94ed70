-- Invitations by a provider admin: a person is asked by email to join an organization. The link
-- carries a secret stored only as its SHA-256 digest; accepting it creates the membership.
create table invitation (
    id               text primary key,
    organization_id  text not null references organization (id) on delete cascade,
    email            text not null,
    email_norm       text not null,
    first_name       text not null,
    last_name        text not null,
    role             text not null default 'member' check (role in ('admin', 'member')),
    groups           text not null default '[]',   -- JSON list of team ids
    status           text not null default 'pending' check (status in ('pending', 'accepted', 'revoked')),
    secret_digest    text not null unique,          -- hex SHA-256 of the link secret
    expires_at       bigint not null,
    accepted_at      bigint,
    invited_by       text not null,                 -- the actor, e.g. 'admin:<id>'
    created_at       bigint not null,
    updated_at       bigint not null
);
create index invitation_org on invitation (organization_id, created_at, id);
-- At most one pending invitation per person and organization.
create unique index invitation_pending on invitation (organization_id, email_norm) where status = 'pending';

-- What a person sets when accepting an invitation (Argon2id PHC string; null: no password yet).
alter table account add column password_hash text;
alter table account add column given_name text;
alter table account add column family_name text;
