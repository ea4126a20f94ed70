-- The console's Users page at 100,000 members: search by part of a name or address, and the
-- status and role filters, answered from indexes instead of a walk over every member's document.

-- What a search looks in: userName, displayName, the name parts and every emails.value, joined
-- by newlines and case-folded by scimd when it writes the row (as it folds the query). Rows
-- written before this migration are folded here by SQL lower() until their next write.
alter table membership add column search text not null default '';
update membership set search = lower(concat_ws(E'\n',
    doc ->> 'userName', doc ->> 'displayName', doc #>> '{name,formatted}',
    doc #>> '{name,givenName}', doc #>> '{name,familyName}',
    (select string_agg(e ->> 'value', E'\n')
     from jsonb_array_elements(case when jsonb_typeof(doc -> 'emails') = 'array' then doc -> 'emails' else '[]'::jsonb end) e)));

-- Substring search: a trigram index (pg_trgm, a trusted extension: a database owner may create
-- it) answers `search like '%…%'` for three characters or more.
create extension if not exists pg_trgm;
create index membership_search on membership using gin (search gin_trgm_ops);

-- The status and role filters walk these in the page order (created_at, id), so the first page
-- stops after its rows.
create index membership_active on membership (organization_id, active, created_at, id);
create index membership_role on membership (organization_id, role, created_at, id);
