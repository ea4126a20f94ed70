-- On SQLite the SCIM request log moves to a database file of its own, beside this one
-- (`<name>-requests.db`, migrated from `migrations/sqlite-requests`): its batch writes then never
-- take this file's single write lock, which every User write needs, nor make this file's readers
-- drop their page caches. Entries logged before this migration are not carried over (the log is
-- a bounded, days-long diagnostic record).
drop table request_log_count;
drop table request_log;
