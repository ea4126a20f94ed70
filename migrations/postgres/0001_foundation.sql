-- Organizations, provisioning tokens, accounts, memberships (SCIM Users), teams (SCIM Groups).
-- Timestamps are UTC microseconds since the Unix epoch, set by scimd (never by the database),
-- so both backends store, compare and page on the same integers.

create table organization (
    id          text primary key,
    slug        text not null unique,
    name        text not null,
    created_at  bigint not null,
    updated_at  bigint not null
);

create table provisioning_token (
    id               text primary key,
    organization_id  text not null references organization (id) on delete cascade,
    name             text not null,
    digest           text not null unique,   -- hex SHA-256 of the token; the token itself is never stored
    expires_at       bigint,
    revoked_at       bigint,
    last_used_at     bigint,
    created_at       bigint not null,
    updated_at       bigint not null
);
create index provisioning_token_org on provisioning_token (organization_id);

-- A person, global across organizations; survives removal from any of them.
create table account (
    id          text primary key,
    email       text,
    email_norm  text unique,
    created_at  bigint not null,
    updated_at  bigint not null
);

-- A person's membership in one organization: the SCIM User of that organization.
create table membership (
    id               text primary key,
    organization_id  text not null references organization (id) on delete cascade,
    account_id       text not null references account (id),
    user_name        text not null,
    user_name_norm   text not null,
    external_id      text,
    active           boolean not null,
    role             text not null default 'member',
    doc              jsonb not null,          -- canonical SCIM attributes (JSON)
    version          bigint not null,
    created_at       bigint not null,
    updated_at       bigint not null
);
create unique index membership_user_name on membership (organization_id, user_name_norm);
create index membership_external_id on membership (organization_id, external_id);
create index membership_created on membership (organization_id, created_at, id);
create index membership_updated on membership (organization_id, updated_at);
create index membership_account on membership (account_id);

-- A team of one organization: the SCIM Group.
create table team (
    id                 text primary key,
    organization_id    text not null references organization (id) on delete cascade,
    display_name       text not null,
    display_name_norm  text not null,
    external_id        text,
    doc                jsonb not null,
    version            bigint not null,
    created_at         bigint not null,
    updated_at         bigint not null
);
create unique index team_display_name on team (organization_id, display_name_norm);
create index team_external_id on team (organization_id, external_id);
create index team_created on team (organization_id, created_at, id);
create index team_updated on team (organization_id, updated_at);

-- Group membership as rows: adding members costs the same whatever the group's size.
create table team_member (
    team_id        text not null references team (id) on delete cascade,
    membership_id  text not null references membership (id) on delete cascade,
    created_at     bigint not null,
    updated_at     bigint not null,
    primary key (team_id, membership_id)
);
create index team_member_membership on team_member (membership_id);
