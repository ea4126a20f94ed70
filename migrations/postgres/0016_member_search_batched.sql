-- On SQLite this migration lets the batched writer index new members' search text at the end
-- of each batch (see migrations/sqlite/0016_member_search_batched.sql). Postgres indexes it
-- with a trigram index that needs no such help, so nothing changes here.
select 1;
