-- People signing in to the admin API: the key that signs their access tokens, one session per
-- sign-in (revoked on logout and password change), failed-attempt counters for rate limits
-- (in the database, so every replica sees the same count), account-setup links, and when each
-- account was last active.
create table signing_key (
    id          text primary key check (id = 'access-token'),
    secret      text not null,   -- hex; 256 random bits, created on first use by whichever replica is first
    created_at  bigint not null
);

create table session (
    id          text primary key,
    account_id  text not null references account (id) on delete cascade,
    expires_at  bigint not null,
    revoked_at  bigint,
    created_at  bigint not null,
    updated_at  bigint not null
);
create index session_account on session (account_id);

-- A fixed window per key ('login:<email>', 'ip:<address>'): attempts in the window.
create table login_throttle (
    key           text primary key,
    window_start  bigint not null,
    attempts      bigint not null
);
create index login_throttle_window on login_throttle (window_start);

-- A link that lets a person set their account's password (accounts created by an admin, and
-- sign-ups): proves they read mail at the address. The secret is stored only as its digest.
create table account_setup (
    id             text primary key,
    account_id     text not null references account (id) on delete cascade,
    secret_digest  text not null unique,
    expires_at     bigint not null,
    used_at        bigint,
    created_at     bigint not null,
    updated_at     bigint not null
);
create index account_setup_account on account_setup (account_id);

alter table account add column last_active_at bigint;
