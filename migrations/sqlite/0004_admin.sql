-- Provider-wide admin tokens (`scimd admin token create`): they act in every organization.
create table admin_token (
    id          text primary key,
    name        text not null,
    digest      text not null unique,   -- hex SHA-256; the token itself is never stored
    revoked_at  integer,
    created_at  integer not null,
    updated_at  integer not null
);

-- Every change made through SCIM or the admin API, written in the transaction of the change.
create table audit_event (
    id               text primary key,
    organization_id  text references organization (id) on delete cascade,
    actor            text not null,     -- 'token:<id>' (an IdP) or 'admin:<id>' (a provider admin)
    action           text not null,     -- e.g. 'User.create', 'Group.update', 'User.delete'
    target           text,              -- the resource id
    request_id       text,
    created_at       integer not null,
    updated_at       integer not null
);
create index audit_event_org on audit_event (organization_id, created_at, id);

-- Whether the role was ever assigned (by an IdP through scimd's SCIM extension, or an admin).
-- An unassigned role is a plain member and is not shown through SCIM, so an IdP can remove it.
alter table membership add column role_assigned integer not null default 0;
