-- Users and Groups per organization, counted on shards: every create and delete adds to one
-- shard picked at random, in the transaction of the change, so concurrent creates (on every replica) do
-- not queue on one counter row as they did on organization.user_count / group_count (0003,
-- no longer written). An unfiltered list's totalResults is the sum of an organization's shards.
-- `changes` only grows (creates plus deletes): a list page remembers it, and a later page that
-- sees the same sum knows no resource came or went in between (flat startIndex paging).
create table resource_count (
    organization_id  text not null references organization (id) on delete cascade,
    kind             text not null check (kind in ('User', 'Group')),
    shard            bigint not null,
    n                bigint not null,
    changes          bigint not null,
    primary key (organization_id, kind, shard)
);

insert into resource_count (organization_id, kind, shard, n, changes)
select id, 'User', 0, user_count, 0 from organization;
insert into resource_count (organization_id, kind, shard, n, changes)
select id, 'Group', 0, group_count, 0 from organization;
