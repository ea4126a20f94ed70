-- emails.value is what IdPs match people by: one row per email of a membership, case-folded by
-- scimd, so `emails.value eq "…"` is an index lookup instead of a scan of every document.
create table membership_email (
    membership_id  text not null references membership (id) on delete cascade,
    value_norm     text not null,
    created_at     bigint not null,
    updated_at     bigint not null,
    primary key (membership_id, value_norm)
);
create index membership_email_value on membership_email (value_norm);

insert into membership_email (membership_id, value_norm, created_at, updated_at)
select distinct m.id, lower(e.v ->> 'value'), m.updated_at, m.updated_at
from membership m, jsonb_array_elements(case when jsonb_typeof(m.doc -> 'emails') = 'array' then m.doc -> 'emails' else '[]'::jsonb end) e(v)
where e.v ->> 'value' is not null;
