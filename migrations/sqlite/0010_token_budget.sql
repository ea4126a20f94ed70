-- Rate limits for provisioning tokens (off unless --token-rate-limit is set): the requests each
-- token's replicas have reserved in the current one-second window. A replica reserves a chunk
-- of its budget at a time, not one row write per request.
create table token_budget (
    token_id      text primary key references provisioning_token (id) on delete cascade,
    window_start  integer not null,   -- UTC microseconds, a whole second
    used          integer not null    -- requests reserved in that window, by every replica together
);
