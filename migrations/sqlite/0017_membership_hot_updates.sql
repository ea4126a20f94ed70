-- Fewer indexes for every write of a membership (Postgres's migration 0017 explains the why:
-- there, updates can then rewrite the row in place). SQLite rewrites only the indexes whose
-- columns change: every PATCH and PUT changed updated_at's, every deactivation active's.

-- `meta.lastModified` filters read the organization's rows instead: no IdP scimd serves pages by
-- it, and it cost every update an index write.
drop index membership_updated;
-- The console's status filter walks the organization's members in page order (membership_created)
-- and stops after a page of matches.
drop index membership_active;

-- One index serves both "the memberships of this account" and "one membership per account in an
-- organization", where there were two.
drop index membership_account;
drop index membership_account_org;
create unique index membership_account_org on membership (account_id, organization_id);
