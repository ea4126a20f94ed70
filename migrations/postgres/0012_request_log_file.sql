-- On SQLite this migration moves the SCIM request log to a database file of its own (see
-- migrations/sqlite/0012_request_log_file.sql). Postgres has no single write lock for the log's
-- writes to contend for, so the log stays in this database and nothing changes here.
select 1;
