//! A User's create, PATCH/PUT and delete in one round trip, where each database allows it:
//! SQLite through its group-committing writer (`sqlite_write`), Postgres in one statement of
//! data-modifying CTEs. Each says when it cannot (the last-admin rule, contention, an account
//! created concurrently) and the caller then takes the locked path in `resources`.

use super::backend::{PgStore, SqliteStore, PG_GROUPS};
use super::resources::{role_after, stays_admin, ResourceStore};
use super::shared::read_columns;
use super::sqlite_write;
use super::{columns, new_id, shard, Audit, Change, Record, UpdateFn};
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use serde_json::{Map, Value};
use sqlx::types::Json;

impl SqliteStore {
    /// A User create through the group-committing writer (`sqlite_write`).
    pub(super) async fn insert_user_at_once(
        &self,
        id: &str,
        org: &str,
        doc: &Map<String, Value>,
        role: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<bool> {
        let (id, org, doc, role, audit) = (
            id.to_owned(),
            org.to_owned(),
            doc.clone(),
            role.map(str::to_owned),
            audit.clone(),
        );
        let shard = shard();
        self.writer
            .run(move |db| {
                sqlite_write::insert_user(db, &id, &org, &doc, role.as_deref(), now, &audit, shard)
            })
            .await?;
        Ok(true)
    }

    /// A User PATCH or PUT: read (no lock), decide, then a version-guarded write in the next
    /// group commit; read again when the version moved. `None` hands over to the sqlx path for
    /// a change that takes away an active admin (the last-admin rule) or after contention.
    pub(super) async fn update_user_at_once(
        &self,
        org: &str,
        id: &str,
        now: i64,
        audit: &Audit,
        decide: UpdateFn<'_>,
    ) -> Result<Option<Record>> {
        for _ in 0..3 {
            let Some(current) = self.get(org, Kind::User, id).await? else {
                return Err(Error::not_found(format!("User {id} not found")));
            };
            let Change { doc, role, .. } = decide(&current)?;
            let (was_admin, is_admin) = stays_admin(&current, role.as_deref(), &doc);
            if was_admin && !is_admin {
                return Ok(None);
            }
            let (org_, audit_) = (org.to_owned(), audit.clone());
            let write = (current.clone(), doc.clone(), role.clone());
            let done = self
                .writer
                .run(move |db| {
                    let (current, doc, role) = &write;
                    sqlite_write::update_user(
                        db,
                        &org_,
                        current,
                        doc,
                        role.as_deref(),
                        now,
                        &audit_,
                    )
                })
                .await?;
            if done {
                return Ok(Some(Record {
                    id: current.id,
                    doc,
                    groups: current.groups,
                    role: role_after(current.role, role),
                    version: current.version + 1,
                    created_at: current.created_at,
                    updated_at: now,
                }));
            }
        }
        Ok(None)
    }

    pub(super) async fn delete_at_once(
        &self,
        org: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        now: i64,
        audit: &Audit,
    ) -> Result<bool> {
        let (org, id, audit) = (org.to_owned(), id.to_owned(), audit.clone());
        let shard = shard();
        self.writer
            .run(move |db| sqlite_write::delete(db, &org, kind, &id, if_match, now, &audit, shard))
            .await?;
        Ok(true)
    }
}

impl PgStore {
    /// Postgres deletes take the locked path (they are rare next to creates and updates).
    pub(super) async fn delete_at_once(
        &self,
        _org: &str,
        _kind: Kind,
        _id: &str,
        _if_match: Option<i64>,
        _now: i64,
        _audit: &Audit,
    ) -> Result<bool> {
        Ok(false)
    }
}

/// The row of a User's PATCH or PUT, written only if its version is still the one read
/// (parameters 1 to 11; 12 to 14 are the audit entry's id, actor and request id).
macro_rules! update_user_row {
    () => {
        "with u as ( \
             update membership set user_name = $1, user_name_norm = $2, external_id = $3, active = $4, \
             doc = $5, version = version + 1, updated_at = $6, search = $11, \
             role = case when $8::text is null then role when $8 = '' then 'member' else $8 end, \
             role_assigned = case when $8::text is null then role_assigned when $8 = '' then false else true end \
             where id = $7 and organization_id = $9 and version = $10 returning id)"
    };
}

/// The row and its audit entry.
const UPDATE_USER: &str = concat!(
    update_user_row!(),
    " insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
     select $12, $9, $13, 'User.update', u.id, $14, $6, $6 from u returning target"
);

/// The row, its email rows when they changed ($15, $16), the revocation of the person's pending
/// invitation on deactivation ($17, audited under the id $18) and the audit entries.
const UPDATE_USER_IN_FULL: &str = concat!(
    update_user_row!(),
    ", d as ( \
         delete from membership_email where $15 and membership_id = (select id from u) and value_norm <> all($16::text[])), \
     i as ( \
         insert into membership_email (membership_id, value_norm, created_at, updated_at) \
         select u.id, v, $6, $6 from u, unnest($16::text[]) v where $15 on conflict do nothing), \
     r as ( \
         update invitation set status = 'revoked', updated_at = $6 \
         where $17 and organization_id = $9 and status = 'pending' and email_norm = \
         (select a.email_norm from membership mm join account a on a.id = mm.account_id where mm.id = (select id from u)) \
         returning id) \
     insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
     select $12, $9, $13, 'User.update', u.id, $14, $6, $6 from u \
     union all select $18, $9, $13, 'Invitation.revoke', r.id, $14, $6, $6 from r returning target"
);

impl PgStore {
    /// PATCH or PUT of a User in two round trips and no explicit transaction: the record is read
    /// without a lock, `decide` computes the change, and one statement writes the row (only if
    /// its version is still the one read), its email rows and the audit entry. A concurrent
    /// change in between makes the write match nothing, and the whole is tried again from the
    /// read, so `decide` (If-Match, mutability) always judges the version it replaces. `None`
    /// hands over to the locked path: for a change that takes away an active admin (the
    /// last-admin rule locks the organization row), or after repeated contention.
    pub(super) async fn update_user_at_once(
        &self,
        org: &str,
        id: &str,
        now: i64,
        audit: &Audit,
        decide: UpdateFn<'_>,
    ) -> Result<Option<Record>> {
        let read = format!(
            "select {} from membership r where r.organization_id = $1 and r.id = $2",
            read_columns(Kind::User, PG_GROUPS)
        );
        for _ in 0..3 {
            let current = match sqlx::query(&read)
                .bind(org)
                .bind(id)
                .fetch_optional(&self.updates)
                .await?
            {
                Some(row) => Self::record(&row)?,
                None => return Err(Error::not_found(format!("User {id} not found"))),
            };
            let Change { doc, role, .. } = decide(&current)?;
            let (was_admin, is_admin) = stays_admin(&current, role.as_deref(), &doc);
            if was_admin && !is_admin {
                return Ok(None);
            }
            let c = columns(Kind::User, &doc);
            let emails_changed = columns(Kind::User, &current.doc).emails != c.emails;
            // Deactivation revokes the person's pending invitation (at most one per organization
            // and address), as the locked path's `revoke_invitations_of` does.
            let revoke = columns(Kind::User, &current.doc).active && !c.active;
            // Most updates (a changed title, a PUT of the same emails) write only the row and
            // the audit entry: the shorter statement spares Postgres setting up the email and
            // invitation steps on every execution.
            let plain = !emails_changed && !revoke;
            let mut write = sqlx::query(if plain {
                UPDATE_USER
            } else {
                UPDATE_USER_IN_FULL
            })
            .bind(&c.name)
            .bind(&c.name_norm)
            .bind(&c.external_id)
            .bind(c.active)
            .bind(Json(&doc))
            .bind(now)
            .bind(id)
            .bind(role.as_deref())
            .bind(org)
            .bind(current.version)
            .bind(&c.search)
            .bind(new_id())
            .bind(&audit.actor)
            .bind(&audit.request_id);
            if !plain {
                write = write
                    .bind(emails_changed)
                    .bind(&c.emails)
                    .bind(revoke)
                    .bind(new_id());
            }
            let done = write.fetch_optional(&self.updates).await?;
            if done.is_some() {
                return Ok(Some(Record {
                    id: current.id,
                    doc,
                    groups: current.groups,
                    role: role_after(current.role, role),
                    version: current.version + 1,
                    created_at: current.created_at,
                    updated_at: now,
                }));
            }
        }
        Ok(None)
    }

    /// Creates a User in one statement (so one round trip, and one implicit transaction): the
    /// account found by email or created, the membership, its email rows, a counter shard, the
    /// revocation of the person's pending invitation and the audit entries, as data-modifying CTEs (PostgreSQL §7.8.4). False when the account was
    /// created by a concurrent transaction that this statement's snapshot cannot see yet: then
    /// nothing was written and the caller takes the statement-by-statement path.
    pub(super) async fn insert_user_at_once(
        &self,
        id: &str,
        org: &str,
        doc: &Map<String, Value>,
        role: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<bool> {
        let c = columns(Kind::User, doc);
        let norm = c.email.as_deref().map(str::to_lowercase);
        let done = sqlx::query(
            "with new_account as ( \
                 insert into account (id, email, email_norm, created_at, updated_at) values ($1, $2, $3, $4, $4) \
                 on conflict (email_norm) do nothing returning id), \
             acct as ( \
                 select id from new_account union all select id from account where email_norm = $3 limit 1), \
             m as ( \
                 insert into membership (id, organization_id, account_id, user_name, user_name_norm, external_id, active, \
                 doc, version, created_at, updated_at, role, role_assigned, search) \
                 select $5, $6, acct.id, $7, $8, $9, $10, $11, 1, $4, $4, $12, $13, $20 from acct returning id), \
             e as ( \
                 insert into membership_email (membership_id, value_norm, created_at, updated_at) \
                 select m.id, v, $4, $4 from m, unnest($14::text[]) v), \
             c as ( \
                 insert into resource_count (organization_id, kind, shard, n, changes) select $6, 'User', $15, 1, 1 from m \
                 on conflict (organization_id, kind, shard) do update set n = resource_count.n + 1, changes = resource_count.changes + 1), \
             r as ( \
                 update invitation set status = 'revoked', updated_at = $4 \
                 where organization_id = $6 and status = 'pending' and email_norm = $3 and exists (select 1 from m) \
                 returning id) \
             insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
             select $16, $6, $17, 'User.create', m.id, $18, $4, $4 from m \
             union all select $19, $6, $17, 'Invitation.revoke', r.id, $18, $4, $4 from r returning target",
        )
        .bind(new_id())
        .bind(&c.email)
        .bind(&norm)
        .bind(now)
        .bind(id)
        .bind(org)
        .bind(&c.name)
        .bind(&c.name_norm)
        .bind(&c.external_id)
        .bind(c.active)
        .bind(Json(doc))
        .bind(role.unwrap_or("member"))
        .bind(role.is_some())
        .bind(&c.emails)
        .bind(shard())
        .bind(new_id())
        .bind(&audit.actor)
        .bind(&audit.request_id)
        // The person's pending invitation here (at most one) is revoked: they have a membership.
        .bind(new_id())
        .bind(&c.search)
        .fetch_optional(&self.write)
        .await?;
        Ok(done.is_some())
    }
}
