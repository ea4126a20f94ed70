-- Creates through the SQLite writer (`src/store/sqlite_write.rs`) index their search text at
-- the end of their batch, all together, instead of one by one in the insert trigger. FTS5
-- writes its pending terms out as a new segment whenever a statement opens a statement
-- journal after it was written to in the transaction, which every later insert of a batch
-- did: a fifth of the writer's time went to those tiny segments and their merges.
--
-- The writer inserts such rows with `search_doc = -1` ("not indexed yet"); the trigger leaves
-- them alone, and the writer indexes them before the batch commits, so no committed row is
-- ever without its index entry. Every other insert is indexed by the trigger as before.
drop trigger membership_search_insert;
create trigger membership_search_insert after insert on membership
when new.search_doc is null begin
    insert into membership_search (search, membership_id) values (new.search, new.id);
    update membership set search_doc = last_insert_rowid() where id = new.id;
end;
create index membership_search_pending on membership (search_doc) where search_doc = -1;
