-- The SCIM request log's own SQLite file (`<name>-requests.db` beside the main database file;
-- see migrations/sqlite/0012_request_log_file.sql for why it is apart). The same tables as the
-- Postgres request log (migrations/postgres/0011_provisioning.sql), without the references to
-- `organization`, which lives in the main file: organizations are never deleted, and an entry
-- is only ever written for an organization that authenticated the request.

-- One row per SCIM request of an organization, written in batches off the request path and kept
-- within a bound per organization (rows and days, pruned by the writer). Bodies are stored with
-- secrets redacted and cut to a bound; the token itself is never stored, only its id and name.
create table request_log (
    id               text primary key,
    organization_id  text not null,
    token_id         text,
    token_name       text,
    method           text not null,
    path             text not null,
    filter           text,
    status           integer not null,
    scim_type        text,
    detail           text,
    duration_us      integer not null,
    client_ip        text,
    user_agent       text,
    user_name        text,              -- the userName the request concerns, when it names one
    resource_id      text,              -- the User or Group it concerns, when known
    request_body     text,
    response_body    text,
    request_id       text,
    created_at       integer not null,
    updated_at       integer not null
);
create index request_log_org on request_log (organization_id, created_at, id);

-- How many entries each organization has in the log, kept in the writing transaction: the bound
-- is then held by deleting only the oldest rows past it, never by counting or walking the rest.
create table request_log_count (
    organization_id  text primary key,
    n                integer not null,
    created_at       integer not null,
    updated_at       integer not null
);
