//! SCIM resources: Users (an organization's memberships) and Groups (its teams), created,
//! read, changed, deleted and listed. A User's create, PATCH/PUT and delete first try the
//! one-round-trip paths of `user_writes`; the locked transaction here is the general path.

use super::backend::for_both;
use super::pages::Position;
use super::shared::{placeholders, read_columns, CHUNK, COUNT_SUM};
use super::sql::{compile_filter, compile_order, Arg, Sql};
use super::{columns, new_id, Audit, ListQuery};
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use async_trait::async_trait;
use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::Row;

/// A stored User (membership) or Group (team): its canonical document and bookkeeping.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub doc: Map<String, Value>,
    /// A User's groups, read in the same query as the User (always `Some` for Users).
    pub groups: Option<Vec<GroupRef>>,
    /// A User's organization role (`admin` or `member`), kept in its own column, not in `doc`;
    /// `None` when never assigned, which makes a plain member.
    pub role: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A change to a group's member rows, applied in order inside the write transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    Clear,
    Add(Vec<String>),
    Remove(Vec<String>),
}

/// What an update closure decides: the new document, and for groups the member changes.
#[derive(Debug, Clone)]
pub struct Change {
    pub doc: Map<String, Value>,
    pub members: Vec<MemberOp>,
    /// A new organization role for a User; `None` leaves it as it is, `Some("")` clears it.
    pub role: Option<String>,
}

/// Decides an update from the current record, inside the write transaction. Pure: it may refuse
/// (If-Match, mutability, PATCH errors) but does no I/O.
pub type UpdateFn<'a> = &'a (dyn Fn(&Record) -> Result<Change> + Send + Sync);

#[derive(Debug, Clone)]
pub struct Page {
    pub total: i64,
    pub records: Vec<Record>,
}

/// A group a user belongs to, for the User's derived `groups` attribute.
#[derive(Debug, Clone)]
pub struct GroupRef {
    pub id: String,
    pub display: String,
}

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "membership",
        Kind::Group => "team",
    }
}

/// Whether a User is an active admin before and after a change (the last-admin rule).
pub(super) fn stays_admin(
    current: &Record,
    role: Option<&str>,
    doc: &Map<String, Value>,
) -> (bool, bool) {
    let admin = |role: Option<&str>, doc: &Map<String, Value>| {
        role == Some("admin") && columns(Kind::User, doc).active
    };
    // `Some("")` clears the role (a plain member again).
    let after = match role {
        Some("") => None,
        Some(r) => Some(r),
        None => current.role.as_deref(),
    };
    (
        admin(current.role.as_deref(), &current.doc),
        admin(after, doc),
    )
}

/// The role a record has after a change that sets `role` (see `Change::role`).
pub(super) fn role_after(current: Option<String>, role: Option<String>) -> Option<String> {
    match role {
        Some(r) if r.is_empty() => None,
        Some(r) => Some(r),
        None => current,
    }
}

/// SCIM Users and Groups.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Creates a User or Group. For a User, the account is found by email or created; for a
    /// Group, `members` are validated against the organization and stored as rows.
    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        org: &str,
        kind: Kind,
        doc: &Map<String, Value>,
        members: &[String],
        role: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<Record>;
    async fn get(&self, org: &str, kind: Kind, id: &str) -> Result<Option<Record>>;
    /// Reads the record, lets `decide` compute the change and writes it, in one transaction.
    /// Refuses (409) a change that would leave an organization that has an active admin
    /// without one: the last active admin cannot be demoted, deactivated or removed.
    async fn update(
        &self,
        org: &str,
        kind: Kind,
        id: &str,
        now: i64,
        audit: &Audit,
        decide: UpdateFn<'_>,
    ) -> Result<Record>;
    /// Deletes; `if_match` is a version that must still be current (412 otherwise).
    async fn delete(
        &self,
        org: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        now: i64,
        audit: &Audit,
    ) -> Result<()>;
    async fn list(&self, org: &str, kind: Kind, q: &ListQuery) -> Result<Page>;
    /// Member ids of a group, in the order they were added.
    async fn members(&self, org: &str, group_id: &str) -> Result<Vec<String>>;
    /// How many members each of these groups of the organization has; a group of another
    /// organization, or none, is left out.
    async fn member_counts(&self, org: &str, groups: &[String]) -> Result<Vec<(String, i64)>>;
}

macro_rules! resources {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
            async fn apply_members(tx: &mut sqlx::Transaction<'_, $db>, org: &str, group: &str, ops: &[MemberOp], now: i64) -> Result<()> {
                for op in ops {
                    match op {
                        MemberOp::Clear => {
                            sqlx::query("delete from team_member where team_id = $1")
                                .bind(group)
                                .execute(&mut **tx)
                                .await?;
                        }
                        MemberOp::Add(ids) => Self::add_members(tx, org, group, ids, now).await?,
                        MemberOp::Remove(ids) => {
                            for chunk in ids.chunks(CHUNK) {
                                let text = format!(
                                    "delete from team_member where team_id = $1 and membership_id in ({})",
                                    placeholders(2, chunk.len())
                                );
                                let mut q = sqlx::query(&text).bind(group);
                                for id in chunk {
                                    q = q.bind(id.as_str());
                                }
                                q.execute(&mut **tx).await?;
                            }
                        }
                    }
                }
                Ok(())
            }

            /// Every organization that has an active admin keeps one: refuses to let `id` stop
            /// being one when it is the last. On Postgres the organization row is locked first,
            /// so two admins demoting each other at once cannot both succeed.
            async fn ensure_other_admin(tx: &mut sqlx::Transaction<'_, $db>, org: &str, id: &str) -> Result<()> {
                let text = format!("select id from organization where id = $1{}", $for_update);
                sqlx::query(&text).bind(org).fetch_optional(&mut **tx).await?;
                let others: i64 = sqlx::query(
                    "select count(*) as n from membership where organization_id = $1 and role = 'admin' and active and id <> $2",
                )
                .bind(org)
                .bind(id)
                .fetch_one(&mut **tx)
                .await?
                .try_get("n")?;
                if others == 0 {
                    return Err(Error::last_admin());
                }
                Ok(())
            }

            async fn write_row(
                tx: &mut sqlx::Transaction<'_, $db>,
                kind: Kind,
                id: &str,
                old: &Map<String, Value>,
                doc: &Map<String, Value>,
                role: Option<&str>,
                now: i64,
            ) -> Result<()> {
                let c = columns(kind, doc);
                match kind {
                    Kind::User => {
                        sqlx::query(
                            "update membership set user_name = $1, user_name_norm = $2, external_id = $3, active = $4, \
                             doc = $5, version = version + 1, updated_at = $6, search = $9, \
                             role = case when $8 is null then role when $8 = '' then 'member' else $8 end, \
                             role_assigned = case when $8 is null then role_assigned when $8 = '' then false else true end where id = $7",
                        )
                        .bind(&c.name)
                        .bind(&c.name_norm)
                        .bind(&c.external_id)
                        .bind(c.active)
                        .bind(Json(doc))
                        .bind(now)
                        .bind(id)
                        .bind(role)
                        .bind(&c.search)
                        .execute(&mut **tx)
                        .await?;
                        // Most updates (deactivation, say) leave the emails alone.
                        if columns(kind, old).emails != c.emails {
                            Self::write_emails(tx, id, &c.emails, now, true).await?;
                        }
                    }
                    Kind::Group => {
                        sqlx::query(
                            "update team set display_name = $1, display_name_norm = $2, external_id = $3, \
                             doc = $4, version = version + 1, updated_at = $5 where id = $6",
                        )
                        .bind(&c.name)
                        .bind(&c.name_norm)
                        .bind(&c.external_id)
                        .bind(Json(doc))
                        .bind(now)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok(())
            }
        }

        #[async_trait]
        impl ResourceStore for $store {
            #[allow(clippy::too_many_arguments)]
            async fn insert(
                &self,
                org: &str,
                kind: Kind,
                doc: &Map<String, Value>,
                members: &[String],
                role: Option<&str>,
                now: i64,
                audit: &Audit,
            ) -> Result<Record> {
                let id = new_id();
                let fast = kind == Kind::User && self.insert_user_at_once(&id, org, doc, role, now, audit).await?;
                if !fast {
                    let mut tx = self.write.begin().await?;
                    Self::insert_tx(&mut tx, &id, org, kind, doc, members, role, now, audit).await?;
                    tx.commit().await?;
                }
                // A new User belongs to no group yet.
                let groups = (kind == Kind::User).then(Vec::new);
                let role = role.map(str::to_owned);
                Ok(Record { id, doc: doc.clone(), groups, role, version: 1, created_at: now, updated_at: now })
            }

            async fn get(&self, org: &str, kind: Kind, id: &str) -> Result<Option<Record>> {
                let text = format!(
                    "select {} from {} r where r.organization_id = $1 and r.id = $2",
                    read_columns(kind, $groups),
                    table(kind)
                );
                let (mut records, _) = self.page(&text, &[Arg::Text(org.to_owned()), Arg::Text(id.to_owned())]).await?;
                Ok(records.pop())
            }

            async fn update(&self, org: &str, kind: Kind, id: &str, now: i64, audit: &Audit, decide: UpdateFn<'_>) -> Result<Record> {
                if kind == Kind::User {
                    if let Some(rec) = self.update_user_at_once(org, id, now, audit, decide).await? {
                        return Ok(rec);
                    }
                }
                let mut tx = self.write.begin().await?;
                // The user's groups come along (an update never changes them), so the response
                // needs no second read.
                let text = format!(
                    "select {} from {} r where r.organization_id = $1 and r.id = $2{}",
                    read_columns(kind, $groups),
                    table(kind),
                    $for_update
                );
                let current = match sqlx::query(&text).bind(org).bind(id).fetch_optional(&mut *tx).await? {
                    Some(row) => Self::record(&row)?,
                    None => return Err(Error::not_found(format!("{} {id} not found", kind.name()))),
                };
                let Change { doc, members, role } = decide(&current)?;
                if kind == Kind::User {
                    let (was_admin, is_admin) = stays_admin(&current, role.as_deref(), &doc);
                    if was_admin && !is_admin {
                        Self::ensure_other_admin(&mut tx, org, id).await?;
                    }
                }
                if kind == Kind::Group && !members.is_empty() {
                    Self::apply_members(&mut tx, org, id, &members, now).await?;
                }
                if kind == Kind::User && columns(kind, &current.doc).active && !columns(kind, &doc).active {
                    Self::revoke_invitations_of(&mut tx, org, id, now, audit).await?;
                }
                Self::write_row(&mut tx, kind, id, &current.doc, &doc, role.as_deref(), now).await?;
                Self::record_audit(&mut tx, org, audit, &format!("{}.update", kind.name()), id, now).await?;
                tx.commit().await?;
                Ok(Record {
                    id: current.id,
                    doc,
                    groups: current.groups,
                    role: role_after(current.role, role),
                    version: current.version + 1,
                    created_at: current.created_at,
                    updated_at: now,
                })
            }

            async fn delete(&self, org: &str, kind: Kind, id: &str, if_match: Option<i64>, now: i64, audit: &Audit) -> Result<()> {
                if self.delete_at_once(org, kind, id, if_match, now, audit).await? {
                    return Ok(());
                }
                let mut tx = self.write.begin().await?;
                let extra = if kind == Kind::User { ", (role = 'admin' and active) as is_admin" } else { "" };
                let text = format!("select version{extra} from {} where organization_id = $1 and id = $2{}", table(kind), $for_update);
                let Some(row) = sqlx::query(&text).bind(org).bind(id).fetch_optional(&mut *tx).await? else {
                    return Err(Error::not_found(format!("{} {id} not found", kind.name())));
                };
                let version: i64 = row.try_get("version")?;
                if if_match.is_some_and(|v| v != version) {
                    return Err(Error::precondition_failed());
                }
                if kind == Kind::User && row.try_get::<bool, _>("is_admin")? {
                    Self::ensure_other_admin(&mut tx, org, id).await?;
                }
                if kind == Kind::User {
                    Self::revoke_invitations_of(&mut tx, org, id, now, audit).await?;
                }
                // Deleting a membership removes its group memberships (cascade) and never the
                // account: the person may belong to other organizations.
                let text = format!("delete from {} where id = $1", table(kind));
                sqlx::query(&text).bind(id).execute(&mut *tx).await?;
                Self::count(&mut tx, org, kind, -1).await?;
                Self::record_audit(&mut tx, org, audit, &format!("{}.delete", kind.name()), id, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list(&self, org: &str, kind: Kind, q: &ListQuery) -> Result<Page> {
                let plain = q.filter.is_none();
                let mut where_sql = Sql::new($dialect);
                where_sql.push(" where r.organization_id = ").bind(Arg::Text(org.to_owned()));
                if plain {
                    // $2: the kind, for the counter subquery that joins an unfiltered page.
                    where_sql.arg(Arg::Text(kind.name().to_owned()));
                } else if let Some(f) = &q.filter {
                    where_sql.push(" and ");
                    compile_filter(&mut where_sql, kind, f)?;
                }
                if q.count <= 0 {
                    let total = if plain {
                        self.page(COUNT_SUM, &where_sql.args).await?.1.map_or(0, |c| c.0)
                    } else {
                        self.count_rows(&format!("select count(*) as n from {} r{}", table(kind), where_sql.text), &where_sql.args).await?
                    };
                    return Ok(Page { total, records: Vec::new() });
                }
                // Flat startIndex paging (see `pages`): seek from where the previous page ended.
                let memo = (plain && q.sort.is_none() && q.after.is_none() && q.start_index > 1)
                    .then(|| self.pages.seek(org, kind, q.start_index))
                    .flatten();
                let single = at_most_one(kind, q.filter.as_ref());
                let page_text = |after: Option<(i64, &str)>, offset: i64| {
                    let mut sql = where_sql.clone();
                    if let Some((ts, id)) = after {
                        // A row-value comparison walks the (organization_id, created_at, id)
                        // index from the position: the last page costs what the first does.
                        sql.push(" and (r.created_at, r.id) > (").bind(Arg::Int(ts));
                        sql.push(", ").bind(Arg::Text(id.to_owned())).push(")");
                    }
                    if single && offset == 0 {
                        // At most one row, found by a unique index: read it at once, with no
                        // order or limit (the late lookup below pays only when rows are skipped,
                        // and with `order by … limit` Postgres may walk the creation index of
                        // the whole organization looking for the one row).
                        let text = format!("select {} from {} r{}", read_columns(kind, $groups), table(kind), sql.text);
                        return (text, sql.args);
                    }
                    let order_at = sql.text.len();
                    compile_order(&mut sql, kind, q.sort.as_ref());
                    let order = sql.text[order_at..].to_owned();
                    sql.push(" limit ").bind(Arg::Int(q.count));
                    sql.push(" offset ").bind(Arg::Int(offset));
                    // Late row lookup: the page's ids are found first (offset rows are skipped
                    // in the index alone), then only those rows are read and rendered.
                    let page = format!(
                        "select {cols} from {t} r join (select r.id as page_id from {t} r{inner}) p on p.page_id = r.id",
                        cols = read_columns(kind, $groups),
                        t = table(kind),
                        inner = sql.text,
                    );
                    let text = if plain && q.sort.is_none() {
                        // The total and change count come from the same statement, so from the
                        // same snapshot as the rows. (No window function to carry the order out
                        // of the join: in SQLite's VM that tripled a lookup's cost.)
                        format!("select c.c_total, c.c_changes, p.* from ({COUNT_SUM}) c left join ({page}) p on true order by p.created_at, p.id")
                    } else {
                        format!("{page}{order}")
                    };
                    (text, sql.args)
                };
                let cursor = q.after.as_ref().map(|(ts, id)| (*ts, id.as_str()));
                let (mut records, mut counts) = match &memo {
                    Some(pos) => {
                        let (text, args) = page_text(Some((pos.created_at, &pos.id)), 0);
                        let (records, counts) = self.page(&text, &args).await?;
                        if counts.is_some_and(|c| c.1 == pos.changes) {
                            (Some(records), counts)
                        } else {
                            // Something was created or deleted since: the position may be off.
                            self.pages.forget(org, kind, q.start_index);
                            (None, None)
                        }
                    }
                    None => (None, None),
                };
                if records.is_none() {
                    let (text, args) = page_text(cursor, q.start_index - 1);
                    let (r, c) = self.page(&text, &args).await?;
                    records = Some(r);
                    counts = c;
                }
                let records = records.unwrap_or_default();
                let n = records.len() as i64;
                if let (Some((_, changes)), Some(last)) = (counts, records.last()) {
                    if plain && q.sort.is_none() && q.after.is_none() && n == q.count {
                        self.pages.remember(org, kind, Position {
                            next_start: q.start_index + n,
                            changes,
                            created_at: last.created_at,
                            id: last.id.clone(),
                        });
                    }
                }
                let total = if let Some((total, _)) = counts {
                    total
                } else if plain {
                    // A sorted unfiltered list: the shards' sum, in a statement of its own.
                    self.page(COUNT_SUM, &where_sql.args[..2]).await?.1.map_or(0, |c| c.0)
                } else if n < q.count && (n > 0 || q.start_index == 1) && q.after.is_none() {
                    // A page that is not full ends the results: it tells the total itself.
                    q.start_index - 1 + n
                } else {
                    self.count_rows(&format!("select count(*) as n from {} r{}", table(kind), where_sql.text), &where_sql.args).await?
                };
                Ok(Page { total, records })
            }

            async fn members(&self, org: &str, group_id: &str) -> Result<Vec<String>> {
                let mut rows = sqlx::query(
                    "select tm.membership_id from team_member tm join team t on t.id = tm.team_id \
                     where tm.team_id = $1 and t.organization_id = $2 order by tm.created_at, tm.membership_id",
                )
                .bind(group_id)
                .bind(org)
                .fetch(&self.read);
                // Streamed: a 100k-member group never holds 100k driver rows at once.
                let mut ids = Vec::new();
                while let Some(row) = rows.try_next().await? {
                    ids.push(row.try_get("membership_id")?);
                }
                Ok(ids)
            }

            async fn member_counts(&self, org: &str, groups: &[String]) -> Result<Vec<(String, i64)>> {
                let mut out = Vec::with_capacity(groups.len());
                // Chunks keep each statement's parameters well under SQLite's limit.
                for chunk in groups.chunks(500) {
                    let text = format!(
                        "select t.id, count(tm.membership_id) as n from team t \
                         left join team_member tm on tm.team_id = t.id \
                         where t.organization_id = $1 and t.id in ({}) group by t.id",
                        placeholders(2, chunk.len())
                    );
                    let mut q = sqlx::query(&text).bind(org);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for row in q.fetch_all(&self.read).await? {
                        out.push((row.try_get("id")?, row.try_get("n")?));
                    }
                }
                Ok(out)
            }
        }
    };
}

for_both!(resources);

/// Whether a filter matches at most one resource through a unique index: `userName eq` (Users)
/// or `id eq`, the lookups identity providers make before every create.
fn at_most_one(kind: Kind, filter: Option<&crate::scim::filter::Filter>) -> bool {
    use crate::scim::filter::{CompareOp, Filter, Literal};
    let Some(Filter::Compare(path, CompareOp::Eq, Literal::Str(_))) = filter else {
        return false;
    };
    let core = path
        .uri
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(&kind.schema().core.id));
    core && path.sub.is_none()
        && (path.name.eq_ignore_ascii_case("id")
            || (kind == Kind::User && path.name.eq_ignore_ascii_case("userName")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unique_equality_lookups_are_read_at_once() {
        let one =
            |kind, text: &str| at_most_one(kind, Some(&crate::scim::filter::parse(text).unwrap()));
        for text in [
            r#"userName eq "a@example.com""#,
            r#"USERNAME eq "a@example.com""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
            r#"id eq "7""#,
        ] {
            assert!(one(Kind::User, text), "{text}");
        }
        assert!(one(Kind::Group, r#"id eq "7""#));
        for (kind, text) in [
            (Kind::User, r#"userName co "a""#),
            (Kind::User, r#"userName eq "a" and active eq true"#),
            (Kind::User, r#"externalId eq "a""#),
            (Kind::User, r#"emails.value eq "a@example.com""#),
            (Kind::User, r#"emails[value eq "a"]"#),
            (Kind::Group, r#"userName eq "a""#),
            (Kind::Group, r#"displayName eq "a""#),
        ] {
            assert!(!one(kind, text), "{text}");
        }
        assert!(!at_most_one(Kind::User, None));
    }
}
