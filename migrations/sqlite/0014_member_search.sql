-- The console's Users page at 100,000 members: search by part of a name or address, and the
-- status and role filters, answered from indexes instead of a walk over every member's document.

-- What a search looks in: userName, displayName, the name parts and every emails.value, joined
-- by newlines and case-folded by scimd when it writes the row (Unicode-aware, as it folds the
-- query). Rows written before this migration are folded here by SQL lower(), which folds ASCII
-- only, until their next write.
alter table membership add column search text not null default '';
update membership set search = lower(
    coalesce(json_extract(doc, '$.userName'), '') || char(10) ||
    coalesce(json_extract(doc, '$.displayName'), '') || char(10) ||
    coalesce(json_extract(doc, '$.name.formatted'), '') || char(10) ||
    coalesce(json_extract(doc, '$.name.givenName'), '') || char(10) ||
    coalesce(json_extract(doc, '$.name.familyName'), '') || char(10) ||
    coalesce((select group_concat(json_extract(e.value, '$.value'), char(10))
              from json_each(doc, '$.emails') e where json_type(e.value, '$.value') = 'text'), ''));

-- Substring search: an FTS5 index of trigrams (SQLite 3.34+), exact case because `search` is
-- folded already. It keeps its own rowids, noted in `search_doc`: a table without an INTEGER
-- PRIMARY KEY may see its rowids change on VACUUM, so they cannot key the index. Triggers keep
-- it in step with every write, in the writing transaction.
alter table membership add column search_doc integer;
create virtual table membership_search using fts5(search, membership_id unindexed, tokenize = 'trigram case_sensitive 1');
insert into membership_search (rowid, search, membership_id) select rowid, search, id from membership;
update membership set search_doc = rowid;

create trigger membership_search_insert after insert on membership begin
    insert into membership_search (search, membership_id) values (new.search, new.id);
    update membership set search_doc = last_insert_rowid() where id = new.id;
end;
create trigger membership_search_update after update of search on membership
when old.search is not new.search begin
    update membership_search set search = new.search where rowid = new.search_doc;
end;
create trigger membership_search_delete after delete on membership begin
    delete from membership_search where rowid = old.search_doc;
end;

-- The status and role filters walk these in the page order (created_at, id), so the first page
-- stops after its rows.
create index membership_active on membership (organization_id, active, created_at, id);
create index membership_role on membership (organization_id, role, created_at, id);
