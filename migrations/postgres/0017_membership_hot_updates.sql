-- A User's PATCH and PUT rewrite its membership row. Postgres can do that in place, without
-- touching any index (a heap-only tuple update), only when no indexed column changes and the
-- row's page has room for the new version. Every update changes updated_at and a deactivation
-- changes active, and both were indexed, so every update inserted into all ten indexes of the
-- table (index maintenance was 17% of the machine under a PATCH load, with no update in place).

-- `meta.lastModified` filters read the organization's rows instead: no IdP scimd serves pages by
-- it, and it cost every update an index insert.
drop index membership_updated;
-- The console's status filter walks the organization's members in page order (membership_created)
-- and stops after a page of matches.
drop index membership_active;

-- One index serves both "the memberships of this account" and "one membership per account in an
-- organization", where there were two.
drop index membership_account;
drop index membership_account_org;
create unique index membership_account_org on membership (account_id, organization_id);

-- Room on each page for updated versions of its rows (new pages only; existing pages gain it as
-- rows move).
alter table membership set (fillfactor = 80);
