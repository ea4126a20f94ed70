-- How many Users and Groups each organization has, kept in the same transaction as every
-- create and delete, so an unfiltered list knows its totalResults without counting 100k rows.
alter table organization add column user_count integer not null default 0;
alter table organization add column group_count integer not null default 0;
update organization set
    user_count = (select count(*) from membership m where m.organization_id = organization.id),
    group_count = (select count(*) from team t where t.organization_id = organization.id);
