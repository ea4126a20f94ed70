-- The audit log is listed by who acted and by what it concerned (the console's Audit log page
-- and `GET /admin/v1/orgs/{slug}/audit?actor=…&target=…`): each filter reads its own index.
create index audit_event_actor on audit_event (organization_id, actor, created_at, id);
create index audit_event_target on audit_event (organization_id, target, created_at, id);
