//! The two stores. Their bodies are one piece of code instantiated per backend by `store_impl!`:
//! the SQL text is shared (`$n` placeholders work on both), and the differences are parameters —
//! the pool types, how arguments bind, and row locking (Postgres locks the row it updates with
//! `for update`; SQLite serialises every write through a single-connection write pool).

use super::pages::{PageMemo, Position};
use super::prelude::*;
use super::sql::{
    compile_filter, compile_order, member_driver_count, member_from, member_search_test, Arg,
    Dialect, MemberDriver, Needle, Sql,
};
use super::sqlite_log::LogDb;
use super::sqlite_read::{self, ReadPool};
use super::sqlite_write::{self, Writer};
use super::PoolStats;
use super::{
    columns, new_id, shard, AcceptAccount, Account, AdminToken, Audit, AuditEvent, AuditFilter,
    Change, Enrolled, Enrolment, Flow, GroupRef, Invitation, InvitationChange, ListQuery, LogEntry,
    LogFilter, LogSummary, MemberDetail, MemberOp, MemberPage, MemberQuery, MembershipOf,
    NewCookieSession, NewInvitation, Org, Page, Record, SetupLink, TokenInfo, UpdateFn,
    COUNT_UPSERT, MEMBER_COUNT_CAP,
};
use crate::error::{Error, Result, ScimType};
use crate::scim::schema::Kind;
use async_trait::async_trait;
use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Column, Pool, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a Postgres request waits for a pooled connection before it is refused with 503.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most ids in one `in (…)` list; longer lists are sent in chunks.
const CHUNK: usize = 500;
/// One token of an organization, with the organization's slug.
const ORG_TOKEN: &str = "select t.*, o.slug as org_slug from provisioning_token t \
     join organization o on o.id = t.organization_id where t.organization_id = $1 and t.id = $2";
/// Request-log rows in one insert statement (20 parameters each: within SQLite's limit).
const LOG_CHUNK: usize = 100;

pub struct SqliteStore {
    /// sqlx reads that stream (a large group's members) and readiness checks.
    read: Pool<Sqlite>,
    write: Pool<Sqlite>,
    /// Records, pages and counts (see `sqlite_read`).
    reads: ReadPool,
    /// Provisioning-token checks only: slow queries never hold these.
    auth: ReadPool,
    /// User creates, PATCH/PUT and deletes, committed in groups (see `sqlite_write`).
    writer: Writer,
    /// The request log, in a file of its own (see `sqlite_log`).
    log: LogDb,
    pages: PageMemo,
}

pub struct PgStore {
    read: Pool<Postgres>,
    write: Pool<Postgres>,
    /// Provisioning-token checks only: slow queries never hold these.
    auth: Pool<Postgres>,
    pages: PageMemo,
}

/// The main Postgres pool's size.
const PG_CONNECTIONS: u32 = 16;
/// Read connections for SQLite records and pages.
const SQLITE_READERS: usize = 8;
/// Connections kept apart for provisioning-token checks.
const AUTH_CONNECTIONS: u32 = 2;

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Internal(anyhow::anyhow!("invalid SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // One writer: SQLite allows one write transaction at a time anyway, and a pool queue is
        // fairer and faster than writers spinning on SQLITE_BUSY.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let path = opts.get_filename().to_owned();
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(SqliteStore {
            read,
            write: write.clone(),
            reads: ReadPool::new(path.clone(), SQLITE_READERS),
            auth: ReadPool::new(path.clone(), AUTH_CONNECTIONS as usize),
            log: LogDb::open(&path).await?,
            writer: Writer::start(path, write.clone())?,
            pages: PageMemo::default(),
        })
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(PG_CONNECTIONS)
            // While Postgres is down, a request waits this long for a connection and is then
            // answered 503 with Retry-After (`error::database_unreachable`): long enough to ride
            // out a pool that is merely busy, short enough that clients hear back quickly.
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_with(pg_options(url)?)
            .await?;
        // sqlx takes an advisory lock, so replicas starting together migrate once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            read: pool.clone(),
            write: pool,
            auth: auth_pool(url).await?,
            pages: PageMemo::default(),
        })
    }
}

/// A small pool of its own for provisioning-token checks, so that slow queries holding every
/// connection of the main pool never make authentication wait.
async fn auth_pool(url: &str) -> Result<Pool<Postgres>> {
    Ok(PgPoolOptions::new()
        .max_connections(AUTH_CONNECTIONS)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_with(pg_options(url)?)
        .await?)
}

/// Connection settings for every Postgres connection. `statement_timeout` backs up the request
/// deadline (a statement never outlives the longest request), and
/// `client_connection_check_interval` (PostgreSQL 14+) makes the server notice within a second
/// that scimd dropped a connection whose request was abandoned, and cancel its statement.
fn pg_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions> {
    let timeout = format!("{}", crate::http::REQUEST_TIMEOUT.as_millis());
    Ok(sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| Error::Internal(anyhow::anyhow!("invalid Postgres URL: {e}")))?
        .options([
            ("statement_timeout", timeout.as_str()),
            ("client_connection_check_interval", "1000"),
        ]))
}

impl SqliteStore {
    /// Request-log batches go to the log's own file (`sqlite_log`): in this one they would hold
    /// the write lock every User write waits for.
    async fn log_write(&self, entries: Vec<LogEntry>, keep: i64, before: i64) -> Result<u64> {
        self.log.write(entries, keep, before).await
    }

    async fn log_prune(&self, before: i64) -> Result<u64> {
        self.log.prune(before).await
    }

    fn log_read(&self) -> &Pool<Sqlite> {
        &self.log.read
    }

    async fn page(&self, text: &str, args: &[Arg]) -> Result<(Vec<Record>, Option<(i64, i64)>)> {
        let (text, args) = (text.to_owned(), args.to_vec());
        self.reads
            .run(Arc::new(move |db| sqlite_read::page(db, &text, &args)))
            .await
    }

    async fn count_rows(&self, text: &str, args: &[Arg]) -> Result<i64> {
        let (text, args) = (text.to_owned(), args.to_vec());
        self.reads
            .run(Arc::new(move |db| sqlite_read::count(db, &text, &args)))
            .await
    }

    async fn token_lookup(&self, digest: &str) -> Result<Option<TokenInfo>> {
        let digest = digest.to_owned();
        self.auth
            .run(Arc::new(move |db| sqlite_read::token(db, &digest)))
            .await
    }

    fn pools(&self) -> Vec<PoolStats> {
        let of = |name: &'static str, (in_use, open, max): (usize, usize, usize)| PoolStats {
            name,
            in_use,
            open,
            max,
        };
        let write = (
            self.write.size() as usize - self.write.num_idle(),
            self.write.size() as usize,
            1,
        );
        vec![
            of("read", self.reads.stats()),
            of("auth", self.auth.stats()),
            of("write", write),
        ]
    }

    async fn endless(&self) -> Result<()> {
        self.reads.run(Arc::new(sqlite_read::endless)).await
    }
}

impl PgStore {
    async fn log_write(&self, entries: Vec<LogEntry>, keep: i64, before: i64) -> Result<u64> {
        self.log_write_sqlx(&entries, keep, before).await
    }

    async fn log_prune(&self, before: i64) -> Result<u64> {
        self.log_prune_sqlx(before).await
    }

    fn log_read(&self) -> &Pool<Postgres> {
        &self.read
    }

    async fn token_by_digest_sqlx(
        pool: &Pool<Postgres>,
        digest: &str,
    ) -> Result<Option<TokenInfo>> {
        sqlx::query(
            "select t.*, o.slug as org_slug from provisioning_token t join organization o on o.id = t.organization_id \
             where t.digest = $1",
        )
            .bind(digest)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(Self::token)
            .transpose()
    }

    /// Runs a page query: its records and, when it joins the counter subquery
    /// (`COUNT_SUM`), the organization's (total, changes) for the kind.
    async fn page_sqlx(
        conn: &mut sqlx::PgConnection,
        text: &str,
        args: &[Arg],
    ) -> Result<(Vec<Record>, Option<(i64, i64)>)> {
        let rows = bind_pg(sqlx::query(text), args).fetch_all(conn).await?;
        let mut counts = None;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            if counts.is_none() && row.columns().iter().any(|c| c.name() == "c_total") {
                counts = Some((row.try_get("c_total")?, row.try_get("c_changes")?));
            }
            // A left join of an empty page gives one row of nulls.
            if row
                .try_get::<Option<String>, _>("id")
                .ok()
                .flatten()
                .is_some()
            {
                records.push(Self::record(row)?);
            }
        }
        Ok((records, counts))
    }

    async fn count_rows_sqlx(
        conn: &mut sqlx::PgConnection,
        text: &str,
        args: &[Arg],
    ) -> Result<i64> {
        Ok(bind_pg(sqlx::query(text), args)
            .fetch_one(conn)
            .await?
            .try_get("n")?)
    }

    async fn page(&self, text: &str, args: &[Arg]) -> Result<(Vec<Record>, Option<(i64, i64)>)> {
        let mut conn = self.read_connection().await?;
        let out = within_deadline(Self::page_sqlx(conn.get()?, text, args)).await;
        conn.finish(out)
    }

    async fn count_rows(&self, text: &str, args: &[Arg]) -> Result<i64> {
        let mut conn = self.read_connection().await?;
        let out = within_deadline(Self::count_rows_sqlx(conn.get()?, text, args)).await;
        conn.finish(out)
    }

    /// A connection for a read, acquired within the request's deadline.
    async fn read_connection(&self) -> Result<Abandoned> {
        let conn = within_deadline(async { Ok(self.read.acquire().await?) }).await?;
        Ok(Abandoned(Some(conn)))
    }

    async fn token_lookup(&self, digest: &str) -> Result<Option<TokenInfo>> {
        Self::token_by_digest_sqlx(&self.auth, digest).await
    }

    fn pools(&self) -> Vec<PoolStats> {
        let of = |name: &'static str, p: &Pool<Postgres>, max: u32| PoolStats {
            name,
            in_use: p.size() as usize - p.num_idle(),
            open: p.size() as usize,
            max: max as usize,
        };
        vec![
            of("main", &self.read, PG_CONNECTIONS),
            of("auth", &self.auth, AUTH_CONNECTIONS),
        ]
    }

    async fn endless(&self) -> Result<()> {
        let mut conn = self.read_connection().await?;
        let c = conn.get()?;
        let out = within_deadline(async {
            sqlx::query("select pg_sleep(3600)").execute(c).await?;
            Ok(())
        })
        .await;
        conn.finish(out)
    }
}

/// A pooled connection that is closed, not returned to the pool, unless its read finished:
/// sqlx would otherwise wait on the abandoned statement before reusing the connection. Closing
/// it makes the server cancel the statement (`client_connection_check_interval`).
struct Abandoned(Option<sqlx::pool::PoolConnection<Postgres>>);

impl Abandoned {
    fn get(&mut self) -> Result<&mut sqlx::PgConnection> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("connection already released")))
    }

    /// Returns the connection to the pool unless the read ran out of time.
    fn finish<T>(mut self, out: Result<T>) -> Result<T> {
        if out
            .as_ref()
            .err()
            .is_none_or(|e| e.kind() != crate::error::ErrorKind::Unavailable)
        {
            drop(self.0.take());
        }
        out
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

/// Runs a Postgres read until the request's deadline.
async fn within_deadline<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match crate::deadline::current() {
        Some(d) => tokio::time::timeout_at(d.into(), f)
            .await
            .map_err(|_| sqlite_read::too_late())?,
        None => f.await,
    }
}

impl SqliteStore {
    /// A User create through the group-committing writer (`sqlite_write`).
    async fn insert_user_at_once(
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
    async fn update_user_at_once(
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
                    let (current, doc, role) = write;
                    sqlite_write::update_user(
                        db,
                        &org_,
                        &current,
                        &doc,
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

    async fn delete_at_once(
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
    async fn delete_at_once(
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

/// Whether a User is an active admin before and after a change (the last-admin rule).
fn stays_admin(current: &Record, role: Option<&str>, doc: &Map<String, Value>) -> (bool, bool) {
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
fn role_after(current: Option<String>, role: Option<String>) -> Option<String> {
    match role {
        Some(r) if r.is_empty() => None,
        Some(r) => Some(r),
        None => current,
    }
}

impl PgStore {
    /// PATCH or PUT of a User in two round trips and no explicit transaction: the record is read
    /// without a lock, `decide` computes the change, and one statement writes the row (only if
    /// its version is still the one read), its email rows and the audit entry. A concurrent
    /// change in between makes the write match nothing, and the whole is tried again from the
    /// read, so `decide` (If-Match, mutability) always judges the version it replaces. `None`
    /// hands over to the locked path: for a change that takes away an active admin (the
    /// last-admin rule locks the organization row), or after repeated contention.
    async fn update_user_at_once(
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
                .fetch_optional(&self.read)
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
            let done = sqlx::query(
                "with u as ( \
                     update membership set user_name = $1, user_name_norm = $2, external_id = $3, active = $4, \
                     doc = $5, version = version + 1, updated_at = $6, search = $18, \
                     role = case when $8::text is null then role when $8 = '' then 'member' else $8 end, \
                     role_assigned = case when $8::text is null then role_assigned when $8 = '' then false else true end \
                     where id = $7 and organization_id = $9 and version = $10 returning id), \
                 d as ( \
                     delete from membership_email where $11 and membership_id = (select id from u) and value_norm <> all($12::text[])), \
                 i as ( \
                     insert into membership_email (membership_id, value_norm, created_at, updated_at) \
                     select u.id, v, $6, $6 from u, unnest($12::text[]) v where $11 on conflict do nothing), \
                 r as ( \
                     update invitation set status = 'revoked', updated_at = $6 \
                     where $16 and organization_id = $9 and status = 'pending' and email_norm = \
                     (select a.email_norm from membership mm join account a on a.id = mm.account_id where mm.id = (select id from u)) \
                     returning id) \
                 insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
                 select $13, $9, $14, 'User.update', u.id, $15, $6, $6 from u \
                 union all select $17, $9, $14, 'Invitation.revoke', r.id, $15, $6, $6 from r returning target",
            )
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
            .bind(emails_changed)
            .bind(&c.emails)
            .bind(new_id())
            .bind(&audit.actor)
            .bind(&audit.request_id)
            // Deactivation revokes the person's pending invitation (at most one per organization
            // and address), as the locked path's `revoke_invitations_of` does.
            .bind(columns(Kind::User, &current.doc).active && !c.active)
            .bind(new_id())
            .bind(&c.search)
            .fetch_optional(&self.write)
            .await?;
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
    async fn insert_user_at_once(
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

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_pg<'q>(mut q: PgQuery<'q>, args: &[Arg]) -> PgQuery<'q> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(i) => q.bind(*i),
            Arg::Float(f) => q.bind(*f),
            Arg::Bool(b) => q.bind(*b),
            Arg::Path(p) => q.bind(p.clone()),
        };
    }
    q
}

/// A user's groups as JSON `[[id, displayName], …]`, read in the same query as the user.
const SQLITE_GROUPS: &str = "(select json_group_array(json_array(g.id, g.display_name)) from (select t.id, t.display_name \
     from team_member tm join team t on t.id = tm.team_id where tm.membership_id = r.id order by t.display_name_norm, t.id) g)";
const PG_GROUPS: &str = "(select coalesce(jsonb_agg(jsonb_build_array(t.id, t.display_name) order by t.display_name_norm, t.id), '[]'::jsonb) \
     from team_member tm join team t on t.id = tm.team_id where tm.membership_id = r.id)";

/// The columns of a record read for a response; Users carry their groups along.
fn read_columns(kind: Kind, groups: &str) -> String {
    match kind {
        Kind::User => {
            format!(
                "r.id, r.doc, r.version, r.created_at, r.updated_at, r.role, r.role_assigned, {groups} as groups"
            )
        }
        Kind::Group => "r.id, r.doc, r.version, r.created_at, r.updated_at".to_owned(),
    }
}

/// An organization's total and change count for a kind (summed over its shards), as a subquery
/// that a page query joins, so both come from the page's own snapshot.
const COUNT_SUM: &str = "select cast(coalesce(sum(n), 0) as bigint) as c_total, cast(coalesce(sum(changes), 0) as bigint) as c_changes \
     from resource_count where organization_id = $1 and kind = $2";

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "membership",
        Kind::Group => "team",
    }
}

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_members(missing: &[&String]) -> Error {
    let list: Vec<&str> = missing.iter().take(10).map(|s| s.as_str()).collect();
    Error::bad(
        ScimType::InvalidValue,
        format!(
            "members: no User with id {} in this organization{}",
            list.join(", "),
            if missing.len() > 10 {
                format!(" (and {} more)", missing.len() - 10)
            } else {
                String::new()
            }
        ),
    )
}

macro_rules! store_impl {
    ($store:ident, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
            fn record(row: &<$db as sqlx::Database>::Row) -> Result<Record> {
                let Json(doc): Json<Map<String, Value>> = row.try_get("doc")?;
                let groups = if row.columns().iter().any(|c| c.name() == "groups") {
                    let Json(pairs): Json<Vec<(String, String)>> = row.try_get("groups")?;
                    Some(pairs.into_iter().map(|(id, display)| GroupRef { id, display }).collect())
                } else {
                    None
                };
                let role = if row.columns().iter().any(|c| c.name() == "role") && row.try_get::<bool, _>("role_assigned")? {
                    Some(row.try_get("role")?)
                } else {
                    None
                };
                Ok(Record {
                    id: row.try_get("id")?,
                    doc,
                    groups,
                    role,
                    version: row.try_get("version")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn invitation(row: &<$db as sqlx::Database>::Row) -> Result<Invitation> {
                let groups: String = row.try_get("groups")?;
                Ok(Invitation {
                    id: row.try_get("id")?,
                    organization_id: row.try_get("organization_id")?,
                    email: row.try_get("email")?,
                    first_name: row.try_get("first_name")?,
                    last_name: row.try_get("last_name")?,
                    role: row.try_get("role")?,
                    groups: serde_json::from_str(&groups).map_err(|e| Error::Internal(e.into()))?,
                    status: row.try_get("status")?,
                    expires_at: row.try_get("expires_at")?,
                    accepted_at: row.try_get("accepted_at")?,
                    invited_by: row.try_get("invited_by")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn account_row(r: &<$db as sqlx::Database>::Row) -> Result<Account> {
                Ok(Account {
                    id: r.try_get("id")?,
                    email: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
                    given_name: r.try_get("given_name")?,
                    family_name: r.try_get("family_name")?,
                    password_hash: r.try_get("password_hash")?,
                    last_active_at: r.try_get("last_active_at")?,
                })
            }

            fn admin_token(r: &<$db as sqlx::Database>::Row) -> Result<AdminToken> {
                Ok(AdminToken {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    revoked_at: r.try_get("revoked_at")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            fn org(row: &<$db as sqlx::Database>::Row) -> Result<Org> {
                Ok(Org {
                    id: row.try_get("id")?,
                    slug: row.try_get("slug")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn token(row: &<$db as sqlx::Database>::Row) -> Result<TokenInfo> {
                Ok(TokenInfo {
                    id: row.try_get("id")?,
                    organization_id: row.try_get("organization_id")?,
                    org_slug: row.try_get("org_slug")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    rotated_from: row.try_get("rotated_from")?,
                })
            }

            fn log_entry(r: &<$db as sqlx::Database>::Row) -> Result<LogEntry> {
                Ok(LogEntry {
                    id: r.try_get("id")?,
                    organization_id: r.try_get("organization_id")?,
                    token_id: r.try_get("token_id")?,
                    token_name: r.try_get("token_name")?,
                    method: r.try_get("method")?,
                    path: r.try_get("path")?,
                    filter: r.try_get("filter")?,
                    status: r.try_get("status")?,
                    scim_type: r.try_get("scim_type")?,
                    detail: r.try_get("detail")?,
                    duration_us: r.try_get("duration_us")?,
                    client_ip: r.try_get("client_ip")?,
                    user_agent: r.try_get("user_agent")?,
                    user_name: r.try_get("user_name")?,
                    resource_id: r.try_get("resource_id")?,
                    request_body: r.try_get("request_body")?,
                    response_body: r.try_get("response_body")?,
                    request_id: r.try_get("request_id")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            /// Writes request-log entries through sqlx (Postgres; see `sqlite_write::request_log`
            /// for SQLite's group-committed path).
            #[allow(dead_code)]
            async fn log_write_sqlx(&self, entries: &[LogEntry], keep: i64, before: i64) -> Result<u64> {
                const COLUMNS: usize = 20;
                let mut tx = self.write.begin().await?;
                for chunk in entries.chunks(LOG_CHUNK) {
                    let rows: Vec<String> = (0..chunk.len())
                        .map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)))
                        .collect();
                    let text = format!(
                        "insert into request_log (id, organization_id, token_id, token_name, method, path, filter, status, \
                         scim_type, detail, duration_us, client_ip, user_agent, user_name, resource_id, request_body, \
                         response_body, request_id, created_at, updated_at) values {}",
                        rows.join(", ")
                    );
                    let mut q = sqlx::query(&text);
                    for e in chunk {
                        q = q
                            .bind(&e.id)
                            .bind(&e.organization_id)
                            .bind(&e.token_id)
                            .bind(&e.token_name)
                            .bind(&e.method)
                            .bind(&e.path)
                            .bind(&e.filter)
                            .bind(e.status)
                            .bind(&e.scim_type)
                            .bind(&e.detail)
                            .bind(e.duration_us)
                            .bind(&e.client_ip)
                            .bind(&e.user_agent)
                            .bind(&e.user_name)
                            .bind(&e.resource_id)
                            .bind(&e.request_body)
                            .bind(&e.response_body)
                            .bind(&e.request_id)
                            .bind(e.created_at)
                            .bind(e.created_at);
                    }
                    q.execute(&mut *tx).await?;
                }
                // Each organization's bound holds at every commit: the entries past it go in
                // the same transaction as the ones that pushed them out, found from the
                // organization's count (see `request_log_count`), oldest first.
                let mut per_org: Vec<(&str, i64)> = Vec::new();
                for e in entries {
                    match per_org.iter_mut().find(|(o, _)| *o == e.organization_id) {
                        Some((_, n)) => *n += 1,
                        None => per_org.push((&e.organization_id, 1)),
                    }
                }
                let now = entries.iter().map(|e| e.created_at).max().unwrap_or_default();
                let mut pruned = 0;
                for (org, added) in per_org {
                    let mut n: i64 = sqlx::query(
                        "insert into request_log_count (organization_id, n, created_at, updated_at) values ($1, $2, $3, $3) \
                         on conflict (organization_id) do update set n = request_log_count.n + excluded.n, \
                         updated_at = excluded.updated_at returning n",
                    )
                    .bind(org)
                    .bind(added)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                    let old = sqlx::query("delete from request_log where organization_id = $1 and created_at < $2")
                        .bind(org)
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected() as i64;
                    let over = (n - old - keep).max(0);
                    let oldest = if over > 0 {
                        sqlx::query(
                            "delete from request_log where id in (select id from request_log where organization_id = $1 \
                             order by created_at, id limit $2)",
                        )
                        .bind(org)
                        .bind(over)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected() as i64
                    } else {
                        0
                    };
                    if old + oldest > 0 {
                        n -= old + oldest;
                        sqlx::query("update request_log_count set n = $2 where organization_id = $1")
                            .bind(org)
                            .bind(n.max(0))
                            .execute(&mut *tx)
                            .await?;
                    }
                    pruned += (old + oldest) as u64;
                }
                tx.commit().await?;
                Ok(pruned)
            }

            /// Deletes request-log entries past the age bound through sqlx (Postgres; SQLite's log has
            /// a file of its own, see `sqlite_log`).
            #[allow(dead_code)]
            async fn log_prune_sqlx(&self, before: i64) -> Result<u64> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query("delete from request_log where created_at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done > 0 {
                    // Rare (hourly) and whole: recount rather than track per organization.
                    sqlx::query(
                        "update request_log_count set n = (select count(*) from request_log r \
                         where r.organization_id = request_log_count.organization_id)",
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(done)
            }

            /// Adds member rows after checking every id is a User of the organization.
            async fn add_members(tx: &mut sqlx::Transaction<'_, $db>, org: &str, group: &str, ids: &[String], now: i64) -> Result<()> {
                let mut ids: Vec<&String> = ids.iter().collect();
                ids.sort();
                ids.dedup();
                for chunk in ids.chunks(CHUNK) {
                    // By primary key only: with `organization_id = $1` as well, SQLite may
                    // walk the organization's whole index instead (26 ms at 100k users).
                    let text = format!("select id, organization_id from membership where id in ({})", placeholders(1, chunk.len()));
                    let mut q = sqlx::query(&text);
                    for id in chunk {
                        q = q.bind(id.as_str());
                    }
                    let mut found = std::collections::HashSet::with_capacity(chunk.len());
                    for row in q.fetch_all(&mut **tx).await? {
                        if row.try_get::<String, _>("organization_id")? == org {
                            found.insert(row.try_get::<String, _>("id")?);
                        }
                    }
                    let missing: Vec<&String> = chunk.iter().copied().filter(|id| !found.contains(*id)).collect();
                    if !missing.is_empty() {
                        return Err(unknown_members(&missing));
                    }
                    let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, $2, $2)", i + 3)).collect();
                    let text = format!(
                        "insert into team_member (team_id, membership_id, created_at, updated_at) values {} on conflict do nothing",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&text).bind(group).bind(now);
                    for id in chunk {
                        q = q.bind(id.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                Ok(())
            }

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

            /// Keeps `membership_email` equal to the document's emails.
            async fn write_emails(tx: &mut sqlx::Transaction<'_, $db>, id: &str, emails: &[String], now: i64, replace: bool) -> Result<()> {
                if replace {
                    sqlx::query("delete from membership_email where membership_id = $1")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                for chunk in emails.chunks(CHUNK) {
                    let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, $2, $2)", i + 3)).collect();
                    let text = format!(
                        "insert into membership_email (membership_id, value_norm, created_at, updated_at) values {}",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&text).bind(id).bind(now);
                    for e in chunk {
                        q = q.bind(e.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// A new organization; a taken slug is a 409 (see `error::on_unique_violation`).
            async fn insert_org(conn: &mut <$db as sqlx::Database>::Connection, slug: &str, name: &str, now: i64) -> Result<Org> {
                let org = Org { id: new_id(), slug: slug.to_owned(), name: name.to_owned(), created_at: now };
                sqlx::query("insert into organization (id, slug, name, created_at, updated_at) values ($1, $2, $3, $4, $4)")
                    .bind(&org.id)
                    .bind(&org.slug)
                    .bind(&org.name)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                Ok(org)
            }

            /// The id of the account with this email, created (with no membership) if none has it.
            async fn ensure_account(conn: &mut <$db as sqlx::Database>::Connection, email: &str, now: i64) -> Result<String> {
                let norm = email.to_lowercase();
                sqlx::query(
                    "insert into account (id, email, email_norm, created_at, updated_at) values ($1, $2, $3, $4, $4) \
                     on conflict (email_norm) do nothing",
                )
                .bind(new_id())
                .bind(email)
                .bind(&norm)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(sqlx::query("select id from account where email_norm = $1")
                    .bind(&norm)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get::<String, _>("id")?)
            }

            /// A setup link for an account and its email, inside `tx`.
            async fn write_setup(tx: &mut sqlx::Transaction<'_, $db>, account: &str, link: &SetupLink, now: i64) -> Result<()> {
                sqlx::query(
                    "insert into account_setup (id, account_id, secret_digest, expires_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $5)",
                )
                .bind(new_id())
                .bind(account)
                .bind(&link.digest)
                .bind(link.expires_at)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                $enqueue(&mut **tx, &link.email, now).await?;
                Ok(())
            }

            /// Revokes the pending invitations to `org` addressed to the person behind a membership:
            /// once they have a membership there (deactivated or not), or it is removed, an old
            /// invitation must never bring them back.
            async fn revoke_invitations_of(tx: &mut sqlx::Transaction<'_, $db>, org: &str, member: &str, now: i64, audit: &Audit) -> Result<()> {
                let revoked = sqlx::query(
                    "update invitation set status = 'revoked', updated_at = $3 where organization_id = $1 and status = 'pending' \
                     and email_norm = (select a.email_norm from membership m join account a on a.id = m.account_id where m.id = $2) \
                     returning id",
                )
                .bind(org)
                .bind(member)
                .bind(now)
                .fetch_all(&mut **tx)
                .await?;
                for row in revoked {
                    let id: String = row.try_get("id")?;
                    Self::record_audit(tx, org, audit, "Invitation.revoke", &id, now).await?;
                    tracing::info!(invitation = %id, member, "pending invitation revoked: the person has a membership, or lost it");
                }
                Ok(())
            }

            /// Ends every open setup and reset link of an account: any password change does.
            async fn end_links(tx: &mut sqlx::Transaction<'_, $db>, account: &str, now: i64) -> Result<()> {
                sqlx::query("update account_setup set used_at = $2, updated_at = $2 where account_id = $1 and used_at is null")
                    .bind(account)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Ends every open session of an account (its access tokens stop working).
            async fn end_sessions(tx: &mut sqlx::Transaction<'_, $db>, account: &str, now: i64) -> Result<()> {
                sqlx::query("update session set revoked_at = $2, updated_at = $2 where account_id = $1 and revoked_at is null")
                    .bind(account)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Adds `delta` (1 for a create, -1 for a delete) to one of the organization's
            /// counter shards, inside the change's transaction (see `COUNT_SHARDS`).
            async fn count(tx: &mut sqlx::Transaction<'_, $db>, org: &str, kind: Kind, delta: i64) -> Result<()> {
                sqlx::query(COUNT_UPSERT).bind(org).bind(kind.name()).bind(shard()).bind(delta).execute(&mut **tx).await?;
                Ok(())
            }

            /// Records a change in the audit log, inside the change's transaction.
            async fn record_audit(tx: &mut sqlx::Transaction<'_, $db>, org: &str, audit: &Audit, action: &str, target: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(new_id())
                .bind(org)
                .bind(&audit.actor)
                .bind(action)
                .bind(target)
                .bind(&audit.request_id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
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

            /// Creates a User or Group inside `tx`: for a User the account is found by email or
            /// created, and the organization's counter and the audit log follow.
            #[allow(clippy::too_many_arguments)]
            async fn insert_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &str,
                org: &str,
                kind: Kind,
                doc: &Map<String, Value>,
                members: &[String],
                role: Option<&str>,
                now: i64,
                audit: &Audit,
            ) -> Result<()> {
                let c = columns(kind, doc);
            match kind {
                Kind::User => {
                    // The person behind the membership: found by email, or created. The
                    // organization gets a membership, never control of the account.
                    let account_id = match &c.email {
                        Some(email) => Self::ensure_account(tx, email, now).await?,
                        None => {
                            let account = new_id();
                            sqlx::query("insert into account (id, created_at, updated_at) values ($1, $2, $2)")
                                .bind(&account)
                                .bind(now)
                                .execute(&mut **tx)
                                .await?;
                            account
                        }
                    };
                    sqlx::query(
                        "insert into membership (id, organization_id, account_id, user_name, user_name_norm, external_id, active, \
                         doc, version, created_at, updated_at, role, role_assigned, search) values ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11, $12)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(&account_id)
                    .bind(&c.name)
                    .bind(&c.name_norm)
                    .bind(&c.external_id)
                    .bind(c.active)
                    .bind(Json(doc))
                    .bind(now)
                    .bind(role.unwrap_or("member"))
                    .bind(role.is_some())
                    .bind(&c.search)
                    .execute(&mut **tx)
                    .await?;
                    Self::write_emails(tx, id, &c.emails, now, false).await?;
                    Self::revoke_invitations_of(tx, org, id, now, audit).await?;
                }
                Kind::Group => {
                    sqlx::query(
                        "insert into team (id, organization_id, display_name, display_name_norm, external_id, doc, version, \
                         created_at, updated_at) values ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(&c.name)
                    .bind(&c.name_norm)
                    .bind(&c.external_id)
                    .bind(Json(doc))
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    if !members.is_empty() {
                        Self::add_members(tx, org, id, members, now).await?;
                    }
                }
            }
            Self::count(tx, org, kind, 1).await?;
            Self::record_audit(tx, org, audit, &format!("{}.create", kind.name()), id, now).await?;
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
        impl HealthStore for $store {
            fn backend(&self) -> &'static str {
                match $dialect {
                    Dialect::Sqlite => "sqlite",
                    Dialect::Postgres => "postgres",
                }
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("select 1").execute(&self.read).await?;
                Ok(())
            }

            async fn outbox_pending(&self) -> Result<i64> {
                // Counted on the partial index of pending rows: the backlog, not the history.
                Ok(sqlx::query("select count(*) as n from email_outbox where status = 'pending'")
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?)
            }

            async fn pool_stats(&self) -> Vec<PoolStats> {
                self.pools()
            }

            async fn endless_read(&self) -> Result<()> {
                self.endless().await
            }
        }

        #[async_trait]
        impl OrgStore for $store {
            async fn create_org(&self, slug: &str, name: &str, now: i64) -> Result<Org> {
                let mut conn = self.write.acquire().await?;
                Self::insert_org(&mut conn, slug, name, now).await
            }

            async fn list_orgs(&self) -> Result<Vec<Org>> {
                sqlx::query("select id, slug, name, created_at from organization order by slug")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::org)
                    .collect()
            }

            async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
                sqlx::query("select id, slug, name, created_at from organization where slug = $1")
                    .bind(slug)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(Self::org)
                    .transpose()
            }

            async fn org_count(&self) -> Result<i64> {
                Ok(sqlx::query("select count(*) as n from organization")
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?)
            }
        }

        #[async_trait]
        impl TokenStore for $store {
            async fn create_token(&self, org: &Org, name: &str, digest: &str, expires_at: Option<i64>, now: i64) -> Result<TokenInfo> {
                let id = new_id();
                sqlx::query(
                    "insert into provisioning_token (id, organization_id, name, digest, expires_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&id)
                .bind(&org.id)
                .bind(name)
                .bind(digest)
                .bind(expires_at)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(TokenInfo {
                    id,
                    organization_id: org.id.clone(),
                    org_slug: org.slug.clone(),
                    name: name.to_owned(),
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                    last_used_at: None,
                    rotated_from: None,
                })
            }

            async fn list_tokens(&self, org_id: &str) -> Result<Vec<TokenInfo>> {
                sqlx::query(
                    "select t.*, o.slug as org_slug from provisioning_token t join organization o on o.id = t.organization_id \
                     where t.organization_id = $1 order by t.created_at, t.id",
                )
                    .bind(org_id)
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::token)
                    .collect()
            }

            async fn token_page(&self, org_id: &str, revoked_since: i64, start_index: i64, count: i64) -> Result<(i64, Vec<TokenInfo>)> {
                const WHERE: &str = "where t.organization_id = $1 and (t.revoked_at is null or t.revoked_at >= $2)";
                let total: i64 = sqlx::query(&format!("select count(*) as n from provisioning_token t {WHERE}"))
                    .bind(org_id)
                    .bind(revoked_since)
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?;
                let rows = sqlx::query(&format!(
                    "select t.*, o.slug as org_slug from provisioning_token t join organization o on o.id = t.organization_id \
                     {WHERE} order by t.created_at, t.id limit $3 offset $4"
                ))
                .bind(org_id)
                .bind(revoked_since)
                .bind(count)
                .bind(start_index - 1)
                .fetch_all(&self.read)
                .await?;
                Ok((total, rows.iter().map(Self::token).collect::<Result<_>>()?))
            }

            async fn revoke_token(&self, id: &str, now: i64) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let org: Option<String> = sqlx::query(
                    "update provisioning_token set revoked_at = $1, updated_at = $1 where id = $2 and revoked_at is null \
                     returning organization_id",
                )
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("organization_id"))
                .transpose()?;
                let Some(org) = org else {
                    return Ok(false);
                };
                let operator = Audit { actor: "operator".into(), request_id: None };
                Self::record_audit(&mut tx, &org, &operator, "Token.revoke", id, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_org_token(
                &self,
                org: &Org,
                name: &str,
                digest: &str,
                expires_at: Option<i64>,
                rotated_from: Option<&str>,
                now: i64,
                audit: &Audit,
            ) -> Result<TokenInfo> {
                let id = new_id();
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "insert into provisioning_token (id, organization_id, name, digest, expires_at, rotated_from, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&id)
                .bind(&org.id)
                .bind(name)
                .bind(digest)
                .bind(expires_at)
                .bind(rotated_from)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let action = if rotated_from.is_some() { "Token.rotate" } else { "Token.create" };
                Self::record_audit(&mut tx, &org.id, audit, action, &id, now).await?;
                tx.commit().await?;
                Ok(TokenInfo {
                    id,
                    organization_id: org.id.clone(),
                    org_slug: org.slug.clone(),
                    name: name.to_owned(),
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                    last_used_at: None,
                    rotated_from: rotated_from.map(str::to_owned),
                })
            }

            async fn org_token(&self, org_id: &str, id: &str) -> Result<Option<TokenInfo>> {
                sqlx::query(
                    ORG_TOKEN,
                )
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .as_ref()
                .map(Self::token)
                .transpose()
            }

            async fn revoke_org_token(&self, org_id: &str, id: &str, now: i64, audit: &Audit) -> Result<Option<TokenInfo>> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "update provisioning_token set revoked_at = $1, updated_at = $1 \
                     where organization_id = $2 and id = $3 and revoked_at is null",
                )
                .bind(now)
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    Self::record_audit(&mut tx, org_id, audit, "Token.revoke", id, now).await?;
                }
                let found = sqlx::query(
                    ORG_TOKEN,
                )
                .bind(org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(Self::token)
                .transpose()?;
                tx.commit().await?;
                Ok(found)
            }

            async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
                sqlx::query("update provisioning_token set last_used_at = $2 where id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenInfo>> {
                self.token_lookup(digest).await
            }

            async fn reserve_requests(&self, token_id: &str, window_start: i64, want: i64) -> Result<i64> {
                Ok(sqlx::query(
                    "insert into token_budget (token_id, window_start, used) values ($1, $2, $3) \
                     on conflict (token_id) do update set \
                     used = case when token_budget.window_start = excluded.window_start then token_budget.used + excluded.used else excluded.used end, \
                     window_start = excluded.window_start returning used",
                )
                .bind(token_id)
                .bind(window_start)
                .bind(want)
                .fetch_one(&self.write)
                .await?
                .try_get("used")?)
            }

            async fn create_admin_token(&self, name: &str, digest: &str, now: i64) -> Result<AdminToken> {
                let id = new_id();
                sqlx::query("insert into admin_token (id, name, digest, created_at, updated_at) values ($1, $2, $3, $4, $4)")
                    .bind(&id)
                    .bind(name)
                    .bind(digest)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(AdminToken { id, name: name.to_owned(), revoked_at: None, created_at: now })
            }

            async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
                sqlx::query("select id, name, revoked_at, created_at from admin_token order by created_at, id")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::admin_token)
                    .collect()
            }

            async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool> {
                Ok(sqlx::query("update admin_token set revoked_at = $2, updated_at = $2 where id = $1 and revoked_at is null")
                    .bind(id)
                    .bind(now)
                    .execute(&self.write)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn admin_token_by_digest(&self, digest: &str) -> Result<Option<AdminToken>> {
                sqlx::query("select id, name, revoked_at, created_at from admin_token where digest = $1")
                    .bind(digest)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(Self::admin_token)
                    .transpose()
            }
        }

        #[async_trait]
        impl RequestLogStore for $store {
            async fn write_request_log(&self, entries: Vec<LogEntry>, keep: i64, before: i64) -> Result<u64> {
                self.log_write(entries, keep, before).await
            }

            async fn prune_request_log(&self, before: i64) -> Result<u64> {
                self.log_prune(before).await
            }

            async fn request_log(&self, org: &str, f: &LogFilter, start_index: i64, count: i64) -> Result<(i64, Vec<LogEntry>)> {
                const WHERE: &str = "where organization_id = $1 and ($2 = 0 or status >= 400) \
                     and ($3 = '' or method = $3) and ($4 = 0 or status = $4) \
                     and ($5 = '' or lower(user_name) = lower($5) or resource_id = $5)";
                let errors = i64::from(f.errors_only);
                let method = f.method.clone().unwrap_or_default();
                let status = f.status.unwrap_or(0);
                let subject = f.subject.clone().unwrap_or_default();
                let total: i64 = sqlx::query(&format!("select count(*) as n from request_log {WHERE}"))
                    .bind(org)
                    .bind(errors)
                    .bind(&method)
                    .bind(status)
                    .bind(&subject)
                    .fetch_one(self.log_read())
                    .await?
                    .try_get("n")?;
                let rows = sqlx::query(&format!(
                    "select * from request_log {WHERE} order by created_at desc, id desc limit $6 offset $7"
                ))
                .bind(org)
                .bind(errors)
                .bind(&method)
                .bind(status)
                .bind(&subject)
                .bind(count)
                .bind(start_index - 1)
                .fetch_all(self.log_read())
                .await?;
                Ok((total, rows.iter().map(Self::log_entry).collect::<Result<_>>()?))
            }

            async fn request_log_entry(&self, org: &str, id: &str) -> Result<Option<LogEntry>> {
                sqlx::query("select * from request_log where organization_id = $1 and id = $2")
                    .bind(org)
                    .bind(id)
                    .fetch_optional(self.log_read())
                    .await?
                    .as_ref()
                    .map(Self::log_entry)
                    .transpose()
            }

            async fn request_log_summary(&self, org: &str, since: i64, top: i64) -> Result<LogSummary> {
                let mut out = LogSummary::default();
                let rows = sqlx::query(
                    "select status, count(*) as n from request_log where organization_id = $1 and created_at >= $2 \
                     group by status order by status",
                )
                .bind(org)
                .bind(since)
                .fetch_all(self.log_read())
                .await?;
                for r in rows {
                    out.by_status.push((r.try_get("status")?, r.try_get("n")?));
                }
                let rows = sqlx::query(
                    "select status, scim_type, detail, count(*) as n from request_log \
                     where organization_id = $1 and created_at >= $2 and status >= 400 \
                     group by status, scim_type, detail order by n desc, status limit $3",
                )
                .bind(org)
                .bind(since)
                .bind(top)
                .fetch_all(self.log_read())
                .await?;
                for r in rows {
                    out.top_errors.push((r.try_get("status")?, r.try_get("scim_type")?, r.try_get("detail")?, r.try_get("n")?));
                }
                Ok(out)
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
                let page_text = |after: Option<(i64, &str)>, offset: i64| {
                    let mut sql = where_sql.clone();
                    if let Some((ts, id)) = after {
                        // A row-value comparison walks the (organization_id, created_at, id)
                        // index from the position: the last page costs what the first does.
                        sql.push(" and (r.created_at, r.id) > (").bind(Arg::Int(ts));
                        sql.push(", ").bind(Arg::Text(id.to_owned())).push(")");
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
        }

        #[async_trait]
        impl MemberStore for $store {
            async fn list_members(&self, org: &str, q: &MemberQuery) -> Result<MemberPage> {
                let needle = q.search.as_deref().and_then(Needle::new);
                let short = needle.as_ref().is_some_and(|n| !n.indexed()) && q.short_walk > 0;
                // SQLite: a small set (a rare search, a small group) drives the query: its rows
                // are found and sorted. Else the walk in page order tests each member and stops
                // after a page of matches, which come often.
                let small = |sql: Sql| async move {
                    Ok::<_, Error>(self.count_rows(&sql.text, &sql.args).await? <= MEMBER_COUNT_CAP)
                };
                // A whole address: its members by the userName and email indexes, when there
                // are any under the other filters (else the substring search, which also finds
                // it inside longer addresses). Decided without the cursor, so every page of a
                // list reads it the same way.
                let exact = match needle.as_ref() {
                    Some(n) if crate::domain::valid_email(&n.folded) => {
                        let mut any = Sql::new($dialect);
                        any.push("select count(*) as n from (select 1 as one");
                        member_from(&mut any, org, q, needle.as_ref(), MemberDriver::Exact, None);
                        any.push(" limit 1) x");
                        self.count_rows(&any.text, &any.args).await? > 0
                    }
                    _ => false,
                };
                let driver = if exact {
                    MemberDriver::Exact
                } else if $dialect == Dialect::Postgres {
                    // Postgres' statistics (pg_trgm estimates a pattern's matches) already
                    // choose between these plans.
                    MemberDriver::Order
                } else if needle.as_ref().is_some_and(|n| n.indexed())
                    && small(member_driver_count(needle.as_ref(), None, MEMBER_COUNT_CAP)).await?
                {
                    MemberDriver::Search
                } else if q.group.is_some()
                    && small(member_driver_count(None, q.group.as_deref(), MEMBER_COUNT_CAP)).await?
                {
                    MemberDriver::Group
                } else {
                    MemberDriver::Order
                };
                let mut inner = Sql::new($dialect);
                if short {
                    // One or two characters: the next `short_walk` members (by the other
                    // filters) are tested, no more.
                    inner.push("select w.id as page_id from (select r.id, r.created_at, r.search");
                    member_from(&mut inner, org, q, None, driver, q.after.as_ref());
                    inner.push(" order by r.created_at, r.id limit ").bind(Arg::Int(q.short_walk));
                    inner.push(") w where ");
                    member_search_test(&mut inner, "w", needle.as_ref().map(|n| n.folded.as_str()).unwrap_or_default());
                    inner.push(" order by w.created_at, w.id");
                } else {
                    inner.push("select r.id as page_id");
                    member_from(&mut inner, org, q, needle.as_ref(), driver, q.after.as_ref());
                    inner.push(" order by r.created_at, r.id");
                }
                inner.push(" limit ").bind(Arg::Int(q.count.max(0)));
                let cols = read_columns(Kind::User, $groups);
                let text = format!(
                    "select {cols} from membership r join ({inner}) p on p.page_id = r.id order by r.created_at, r.id",
                    inner = inner.text,
                );
                let (records, _) = self.page(&text, &inner.args).await?;
                let n = records.len() as i64;
                if short {
                    let mut resume = None;
                    if n < q.count {
                        // Did the walk stop before the last member? Its last member and the
                        // one after it, if any.
                        let mut end = Sql::new($dialect);
                        end.push("select r.id as page_id");
                        member_from(&mut end, org, q, None, driver, q.after.as_ref());
                        end.push(" order by r.created_at, r.id limit 2 offset ").bind(Arg::Int(q.short_walk - 1));
                        let text = format!(
                            "select {cols} from membership r join ({inner}) p on p.page_id = r.id order by r.created_at, r.id",
                            inner = end.text,
                        );
                        let (ends, _) = self.page(&text, &end.args).await?;
                        if let [last, _] = ends.as_slice() {
                            resume = Some((last.created_at, last.id.clone()));
                        }
                    }
                    return Ok(MemberPage { total: None, records, resume });
                }
                let filtered = needle.is_some() || q.active.is_some() || q.admin.is_some() || q.group.is_some();
                let total = if !filtered {
                    let args = [Arg::Text(org.to_owned()), Arg::Text(Kind::User.name().to_owned())];
                    self.page(COUNT_SUM, &args).await?.1.map_or(0, |c| c.0)
                } else if q.after.is_none() && n < q.count {
                    n
                } else {
                    let mut count = Sql::new($dialect);
                    count.push("select count(*) as n from (select 1 as one");
                    member_from(&mut count, org, q, needle.as_ref(), driver, None);
                    count.push(" limit ").bind(Arg::Int(MEMBER_COUNT_CAP + 1)).push(") x");
                    self.count_rows(&count.text, &count.args).await?
                };
                Ok(MemberPage { total: Some(total), records, resume: None })
            }

            async fn member_details(&self, org: &str, ids: &[String]) -> Result<Vec<MemberDetail>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    // `|| ''` keeps SQLite's planner off the organization's indexes: with them it
                    // walked every member of the organization (45 ms at 100,000) instead of
                    // looking up each id by its primary key.
                    let text = format!(
                        "select m.id, m.last_active_at from membership m where m.organization_id || '' = $1 and m.id in ({})",
                        placeholders(2, chunk.len())
                    );
                    let mut q = sqlx::query(&text).bind(org);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for r in q.fetch_all(&self.read).await? {
                        out.push(MemberDetail {
                            member_id: r.try_get("id")?,
                            last_active_at: r.try_get("last_active_at")?,
                        });
                    }
                }
                Ok(out)
            }

            async fn touch_membership(&self, member_id: &str, now: i64) -> Result<()> {
                sqlx::query("update membership set last_active_at = $2 where id = $1")
                    .bind(member_id)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn audit_log(&self, org: &str, f: &AuditFilter, newest_first: bool, start_index: i64, count: i64) -> Result<(i64, Vec<AuditEvent>)> {
                // An empty string does not filter (no stored actor, action or target is empty).
                const WHERE: &str = "where organization_id = $1 and ($2 = '' or actor = $2) \
                     and ($3 = '' or action = $3) and ($4 = '' or target = $4)";
                let actor = f.actor.clone().unwrap_or_default();
                let action = f.action.clone().unwrap_or_default();
                let target = f.target.clone().unwrap_or_default();
                let total: i64 = sqlx::query(&format!("select count(*) as n from audit_event {WHERE}"))
                    .bind(org)
                    .bind(&actor)
                    .bind(&action)
                    .bind(&target)
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?;
                let order = if newest_first { "created_at desc, id desc" } else { "created_at, id" };
                let rows = sqlx::query(&format!(
                    "select id, actor, action, target, request_id, created_at from audit_event {WHERE} \
                     order by {order} limit $5 offset $6",
                ))
                .bind(org)
                .bind(&actor)
                .bind(&action)
                .bind(&target)
                .bind(count)
                .bind(start_index - 1)
                .fetch_all(&self.read)
                .await?;
                let mut events = Vec::with_capacity(rows.len());
                for r in rows {
                    events.push(AuditEvent {
                        id: r.try_get("id")?,
                        actor: r.try_get("actor")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        request_id: r.try_get("request_id")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                Ok((total, events))
            }
        }

        #[async_trait]
        impl InvitationStore for $store {
            async fn create_invitation(
                &self,
                org: &str,
                inv: &NewInvitation,
                email: &crate::email::OutboxMessage,
                now: i64,
                audit: &Audit,
            ) -> Result<Invitation> {
                let id = new_id();
                let norm = inv.email.to_lowercase();
                let mut tx = self.write.begin().await?;
                let member = sqlx::query(
                    "select m.active from membership m join account a on a.id = m.account_id \
                     where m.organization_id = $1 and a.email_norm = $2",
                )
                .bind(org)
                .bind(&norm)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(m) = member {
                    // A deactivated member is switched back on by an admin, never by an invitation.
                    return Err(Error::conflict(if m.try_get::<bool, _>("active")? {
                        format!("{} is already an active member of this organization", inv.email)
                    } else {
                        format!("{} is a deactivated member of this organization; reactivate the membership instead of inviting", inv.email)
                    }));
                }
                let groups = serde_json::to_string(&inv.groups).map_err(|e| Error::Internal(e.into()))?;
                sqlx::query(
                    "insert into invitation (id, organization_id, email, email_norm, first_name, last_name, role, groups, \
                     status, secret_digest, expires_at, invited_by, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12, $12)",
                )
                .bind(&id)
                .bind(org)
                .bind(&inv.email)
                .bind(&norm)
                .bind(&inv.first_name)
                .bind(&inv.last_name)
                .bind(&inv.role)
                .bind(&groups)
                .bind(&inv.secret_digest)
                .bind(inv.expires_at)
                .bind(&audit.actor)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                $enqueue(&mut *tx, email, now).await?;
                Self::record_audit(&mut tx, org, audit, "Invitation.create", &id, now).await?;
                tx.commit().await?;
                Ok(Invitation {
                    id,
                    organization_id: org.to_owned(),
                    email: inv.email.clone(),
                    first_name: inv.first_name.clone(),
                    last_name: inv.last_name.clone(),
                    role: inv.role.clone(),
                    groups: inv.groups.clone(),
                    status: "pending".into(),
                    expires_at: inv.expires_at,
                    accepted_at: None,
                    invited_by: audit.actor.clone(),
                    created_at: now,
                    updated_at: now,
                })
            }

            async fn change_invitation(
                &self,
                org: &str,
                id: &str,
                change: &InvitationChange,
                email: Option<&crate::email::OutboxMessage>,
                action: &str,
                now: i64,
                audit: &Audit,
            ) -> Result<Invitation> {
                let groups = change
                    .groups
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| Error::Internal(e.into()))?;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "update invitation set role = coalesce($3, role), groups = coalesce($4, groups), \
                     status = coalesce($5, status), secret_digest = coalesce($6, secret_digest), \
                     expires_at = coalesce($7, expires_at), updated_at = $8 \
                     where organization_id = $1 and id = $2 and status = 'pending' returning *",
                )
                .bind(org)
                .bind(id)
                .bind(&change.role)
                .bind(&groups)
                .bind(&change.status)
                .bind(&change.secret_digest)
                .bind(change.expires_at)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    let status: Option<String> = sqlx::query("select status from invitation where organization_id = $1 and id = $2")
                        .bind(org)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get("status"))
                        .transpose()?;
                    return Err(match status {
                        None => Error::not_found(format!("invitation {id} not found")),
                        Some(s) => Error::conflict(format!("the invitation is {s}; only a pending invitation can be changed")),
                    });
                };
                let inv = Self::invitation(&row)?;
                if let Some(msg) = email {
                    $enqueue(&mut *tx, msg, now).await?;
                }
                Self::record_audit(&mut tx, org, audit, action, id, now).await?;
                tx.commit().await?;
                Ok(inv)
            }

            async fn get_invitation(&self, org: &str, id: &str) -> Result<Option<Invitation>> {
                sqlx::query("select * from invitation where organization_id = $1 and id = $2")
                    .bind(org)
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(Self::invitation)
                    .transpose()
            }

            async fn list_invitations(&self, org: &str) -> Result<Vec<Invitation>> {
                sqlx::query("select * from invitation where organization_id = $1 order by created_at, id")
                    .bind(org)
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::invitation)
                    .collect()
            }

            async fn open_invitation(&self, digest: &str, now: i64) -> Result<Option<(Invitation, Org)>> {
                let Some(row) = sqlx::query(
                    "select * from invitation where secret_digest = $1 and status = 'pending' and expires_at > $2",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.read)
                .await?
                else {
                    return Ok(None);
                };
                let inv = Self::invitation(&row)?;
                let org = sqlx::query("select id, slug, name, created_at from organization where id = $1")
                    .bind(&inv.organization_id)
                    .fetch_one(&self.read)
                    .await?;
                Ok(Some((inv, Self::org(&org)?)))
            }

            async fn accept_invitation(
                &self,
                inv: &Invitation,
                doc: &Map<String, Value>,
                account: &AcceptAccount,
                now: i64,
                audit: &Audit,
            ) -> Result<Record> {
                let mut tx = self.write.begin().await?;
                // The claim: of any number of concurrent accepts, one updates the row.
                let claimed = sqlx::query(
                    "update invitation set status = 'accepted', accepted_at = $2, updated_at = $2 \
                     where id = $1 and status = 'pending' and expires_at > $2",
                )
                .bind(&inv.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() != 1 {
                    return Err(Error::not_found("the invitation is no longer open"));
                }
                let org = inv.organization_id.as_str();
                // One membership per account and organization: an invitation never adds a second
                // one, and never switches a deactivated one back on. It is closed instead.
                let member = sqlx::query(
                    "select m.id from membership m join account a on a.id = m.account_id \
                     where m.organization_id = $1 and a.email_norm = $2",
                )
                .bind(org)
                .bind(inv.email.to_lowercase())
                .fetch_optional(&mut *tx)
                .await?;
                if member.is_some() {
                    sqlx::query("update invitation set status = 'revoked', accepted_at = null, updated_at = $2 where id = $1")
                        .bind(&inv.id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Err(Error::conflict("you already have a membership in this organization; the invitation is closed"));
                }
                let id = new_id();
                Self::insert_tx(&mut tx, &id, org, Kind::User, doc, &[], Some(&inv.role), now, audit).await?;
                // The account the membership was linked to gets the person's names, and a
                // password when it had none (an existing password was verified by the caller).
                sqlx::query(
                    "update account set given_name = coalesce(given_name, $2), family_name = coalesce(family_name, $3), \
                     password_hash = coalesce(password_hash, $4), updated_at = $5 \
                     where id = (select account_id from membership where id = $1)",
                )
                .bind(&id)
                .bind(&account.given_name)
                .bind(&account.family_name)
                .bind(&account.password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Groups deleted since the invitation was made are skipped.
                for group in &inv.groups {
                    sqlx::query(
                        "insert into team_member (team_id, membership_id, created_at, updated_at) \
                         select id, $1, $2, $2 from team where id = $3 and organization_id = $4 on conflict do nothing",
                    )
                    .bind(&id)
                    .bind(now)
                    .bind(group)
                    .bind(org)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::record_audit(&mut tx, org, audit, "Invitation.accept", &inv.id, now).await?;
                tx.commit().await?;
                Ok(Record {
                    id,
                    doc: doc.clone(),
                    groups: None,
                    role: Some(inv.role.clone()),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                })
            }

            async fn claim_invitation(&self, id: &str, now: i64, until: i64) -> Result<bool> {
                Ok(sqlx::query(
                    "update invitation set claimed_until = $3 where id = $1 and status = 'pending' and expires_at > $2 \
                     and (claimed_until is null or claimed_until <= $2)",
                )
                .bind(id)
                .bind(now)
                .bind(until)
                .execute(&self.write)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn release_invitation(&self, id: &str, until: i64) -> Result<()> {
                sqlx::query("update invitation set claimed_until = null where id = $1 and claimed_until = $2")
                    .bind(id)
                    .bind(until)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn invitations_for(&self, email: &str, now: i64) -> Result<Vec<(Invitation, Org)>> {
                let rows = sqlx::query(
                    "select i.*, o.slug as org_slug, o.name as org_name, o.created_at as org_created_at \
                     from invitation i join organization o on o.id = i.organization_id \
                     where i.email_norm = $1 and i.status = 'pending' and i.expires_at > $2 order by i.created_at, i.id limit 100",
                )
                .bind(email.to_lowercase())
                .bind(now)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        let inv = Self::invitation(r)?;
                        let org = Org {
                            id: inv.organization_id.clone(),
                            slug: r.try_get("org_slug")?,
                            name: r.try_get("org_name")?,
                            created_at: r.try_get("org_created_at")?,
                        };
                        Ok((inv, org))
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl PeopleStore for $store {
            async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
                sqlx::query(
                    "select id, email, given_name, family_name, password_hash, last_active_at from account where email_norm = $1",
                )
                .bind(email.to_lowercase())
                .fetch_optional(&self.read)
                .await?
                .map(|r| Self::account_row(&r))
                .transpose()
            }

            async fn account(&self, id: &str) -> Result<Option<Account>> {
                sqlx::query(
                    "select id, email, given_name, family_name, password_hash, last_active_at from account where id = $1",
                )
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .map(|r| Self::account_row(&r))
                .transpose()
            }

            async fn memberships_of(&self, account_id: &str) -> Result<Vec<MembershipOf>> {
                let rows = sqlx::query(
                    "select m.id as member_id, m.role, m.role_assigned, m.active, m.last_active_at, o.id, o.slug, o.name, o.created_at \
                     from membership m join organization o on o.id = m.organization_id where m.account_id = $1 order by o.slug",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        let assigned: bool = r.try_get("role_assigned")?;
                        Ok(MembershipOf {
                            member_id: r.try_get("member_id")?,
                            org: Self::org(r)?,
                            role: if assigned { r.try_get("role")? } else { "member".to_owned() },
                            active: r.try_get("active")?,
                            last_active_at: r.try_get("last_active_at")?,
                        })
                    })
                    .collect()
            }

            async fn set_password(&self, account_id: &str, hash: &str, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query("update account set password_hash = $2, updated_at = $3 where id = $1")
                    .bind(account_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                Self::end_links(&mut tx, account_id, now).await?;
                Self::end_sessions(&mut tx, account_id, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn enrol(&self, e: &Enrolment, now: i64, audit: &Audit) -> Result<Enrolled> {
                let mut tx = self.write.begin().await?;
                let mut join = e.join.clone();
                let founded = match &e.found {
                    Some((slug, name)) => {
                        let org = Self::insert_org(&mut tx, slug, name, now).await?;
                        Self::record_audit(&mut tx, &org.id, audit, "Organization.create", &org.id, now).await?;
                        join.insert(0, (org.id.clone(), "admin".to_owned()));
                        Some(org)
                    }
                    None => None,
                };
                let mut members = Vec::with_capacity(join.len());
                for (org, role) in &join {
                    let id = new_id();
                    Self::insert_tx(&mut tx, &id, org, Kind::User, &e.doc, &[], Some(role), now, audit).await?;
                    members.push((org.clone(), id));
                }
                let account = sqlx::query("select id, password_hash from account where email_norm = $1")
                    .bind(e.email.to_lowercase())
                    .fetch_one(&mut *tx)
                    .await?;
                let account_id: String = account.try_get("id")?;
                let has_password = account.try_get::<Option<String>, _>("password_hash")?.is_some();
                sqlx::query(
                    "update account set given_name = coalesce(given_name, $2), family_name = coalesce(family_name, $3), updated_at = $4 where id = $1",
                )
                .bind(&account_id)
                .bind(&e.given_name)
                .bind(&e.family_name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let setup_sent = match (&e.setup, has_password) {
                    (Some(link), false) => {
                        Self::write_setup(&mut tx, &account_id, link, now).await?;
                        true
                    }
                    _ => false,
                };
                tx.commit().await?;
                Ok(Enrolled { account_id, founded, members, setup_sent })
            }

            async fn send_setup(&self, account_id: &str, link: &SetupLink, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                Self::write_setup(&mut tx, account_id, link, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn open_setup(&self, digest: &str, now: i64) -> Result<Option<Account>> {
                sqlx::query(
                    "select a.id, a.email, a.given_name, a.family_name, a.password_hash, a.last_active_at \
                     from account_setup s join account a on a.id = s.account_id \
                     where s.secret_digest = $1 and s.used_at is null and s.expires_at > $2",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.read)
                .await?
                .map(|r| Self::account_row(&r))
                .transpose()
            }

            async fn claim_setup(&self, digest: &str, now: i64) -> Result<Option<String>> {
                sqlx::query(
                    "update account_setup set used_at = $2, updated_at = $2 \
                     where secret_digest = $1 and used_at is null and expires_at > $2 returning account_id",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.write)
                .await?
                .map(|r| r.try_get("account_id"))
                .transpose()
                .map_err(Error::from)
            }

            async fn finish_setup(
                &self,
                account: &str,
                given_name: &str,
                family_name: &str,
                password_hash: &str,
                now: i64,
            ) -> Result<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "update account set given_name = $2, family_name = $3, password_hash = $4, updated_at = $5 where id = $1",
                )
                .bind(account)
                .bind(given_name)
                .bind(family_name)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Every other link to this account stops working, as do its sessions.
                Self::end_links(&mut tx, account, now).await?;
                Self::end_sessions(&mut tx, account, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn account_for_email(&self, email: &str, now: i64) -> Result<Account> {
                let mut conn = self.write.acquire().await?;
                let id = Self::ensure_account(&mut conn, email, now).await?;
                let row = sqlx::query(
                    "select id, email, given_name, family_name, password_hash, last_active_at from account where id = $1",
                )
                .bind(&id)
                .fetch_one(&mut *conn)
                .await?;
                Self::account_row(&row)
            }

            async fn set_account_names(&self, account_id: &str, given_name: Option<&str>, family_name: Option<&str>, now: i64) -> Result<()> {
                let done = sqlx::query("update account set given_name = $2, family_name = $3, updated_at = $4 where id = $1")
                    .bind(account_id)
                    .bind(given_name)
                    .bind(family_name)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::not_found("no such account"));
                }
                Ok(())
            }
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn signing_secret(&self, candidate: &str, now: i64) -> Result<String> {
                sqlx::query("insert into signing_key (id, secret, created_at) values ('access-token', $1, $2) on conflict (id) do nothing")
                    .bind(candidate)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(sqlx::query("select secret from signing_key where id = 'access-token'")
                    .fetch_one(&self.write)
                    .await?
                    .try_get("secret")?)
            }

            async fn create_session(&self, account_id: &str, expires_at: i64, now: i64) -> Result<String> {
                let id = new_id();
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "insert into session (id, account_id, expires_at, created_at, updated_at) values ($1, $2, $3, $4, $4)",
                )
                .bind(&id)
                .bind(account_id)
                .bind(expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Sessions long expired are cleared as new ones start: the table stays small.
                sqlx::query("delete from session where account_id = $1 and expires_at < $2")
                    .bind(account_id)
                    .bind(now - 24 * 3600 * 1_000_000)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("update account set last_active_at = $2 where id = $1")
                    .bind(account_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn session_open(&self, id: &str, account_id: &str, now: i64) -> Result<bool> {
                let open = sqlx::query(
                    "select a.last_active_at from session s join account a on a.id = s.account_id \
                     where s.id = $1 and s.account_id = $2 and s.revoked_at is null and s.expires_at > $3 \
                     and (s.idle_until is null or s.idle_until > $3)",
                )
                .bind(id)
                .bind(account_id)
                .bind(now)
                .fetch_optional(&self.read)
                .await?;
                let Some(row) = open else { return Ok(false) };
                // Activity is noted at most once a minute per account: reads stay reads.
                let last: Option<i64> = row.try_get("last_active_at")?;
                if last.is_none_or(|t| now - t > 60_000_000) {
                    sqlx::query("update account set last_active_at = $2 where id = $1")
                        .bind(account_id)
                        .bind(now)
                        .execute(&self.write)
                        .await?;
                }
                Ok(true)
            }

            async fn revoke_sessions(&self, account_id: &str, only: Option<&str>, now: i64) -> Result<u64> {
                Ok(sqlx::query(
                    "update session set revoked_at = $2, updated_at = $2 where account_id = $1 and revoked_at is null \
                     and ($3 is null or id = $3)",
                )
                .bind(account_id)
                .bind(now)
                .bind(only)
                .execute(&self.write)
                .await?
                .rows_affected())
            }

            async fn throttle(&self, key: &str, window_start: i64, limit: i64) -> Result<i64> {
                // Counts from past windows mean nothing: a key's first attempt in a window
                // clears them, so guesses over many emails cannot grow the table for good.
                let attempts = sqlx::query(
                    "insert into login_throttle (key, window_start, attempts) values ($1, $2, 1) \
                     on conflict (key) do update set \
                     attempts = case when login_throttle.window_start <> excluded.window_start then 1 \
                     when login_throttle.attempts > $3 then login_throttle.attempts else login_throttle.attempts + 1 end, \
                     window_start = excluded.window_start returning attempts",
                )
                .bind(key)
                .bind(window_start)
                .bind(limit)
                .fetch_one(&self.write)
                .await?
                .try_get::<i64, _>("attempts")?;
                if attempts == 1 {
                    sqlx::query("delete from login_throttle where window_start < $1")
                        .bind(window_start)
                        .execute(&self.write)
                        .await?;
                }
                Ok(attempts)
            }

            async fn clear_throttle(&self, key: &str) -> Result<()> {
                sqlx::query("delete from login_throttle where key = $1").bind(key).execute(&self.write).await?;
                Ok(())
            }

            async fn start_flow(&self, f: &Flow, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                // Flows long over are cleared as new ones start: the table stays small.
                sqlx::query("delete from sign_in_flow where expires_at < $1")
                    .bind(now - 3600 * 1_000_000)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "insert into sign_in_flow (id, browser_digest, state_digest, provider, nonce, pkce_verifier, expires_at, \
                     created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(&f.id)
                .bind(&f.browser_digest)
                .bind(&f.state_digest)
                .bind(&f.provider)
                .bind(&f.nonce)
                .bind(&f.pkce_verifier)
                .bind(f.expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_flow(&self, browser_digest: &str, now: i64) -> Result<Option<Flow>> {
                let row = sqlx::query(
                    "update sign_in_flow set used_at = $2, updated_at = $2 where browser_digest = $1 and used_at is null \
                     and expires_at > $2 returning id, browser_digest, state_digest, provider, nonce, pkce_verifier, expires_at",
                )
                .bind(browser_digest)
                .bind(now)
                .fetch_optional(&self.write)
                .await?;
                row.map(|r| -> Result<Flow> {
                    Ok(Flow {
                        id: r.try_get("id")?,
                        browser_digest: r.try_get("browser_digest")?,
                        state_digest: r.try_get("state_digest")?,
                        provider: r.try_get("provider")?,
                        nonce: r.try_get("nonce")?,
                        pkce_verifier: r.try_get("pkce_verifier")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn create_cookie_session(&self, c: &NewCookieSession, now: i64) -> Result<String> {
                let id = new_id();
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "insert into session (id, account_id, expires_at, cookie_digest, idle_until, method, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&id)
                .bind(&c.account_id)
                .bind(c.expires_at)
                .bind(&c.cookie_digest)
                .bind(c.idle_until)
                .bind(&c.method)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("delete from session where account_id = $1 and expires_at < $2")
                    .bind(&c.account_id)
                    .bind(now - 24 * 3600 * 1_000_000)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("update account set last_active_at = $2 where id = $1")
                    .bind(&c.account_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn cookie_session(&self, cookie_digest: &str, now: i64, idle: i64) -> Result<Option<(String, String)>> {
                let Some(row) = sqlx::query(
                    "select id, account_id, idle_until from session where cookie_digest = $1 and revoked_at is null \
                     and expires_at > $2 and idle_until > $2",
                )
                .bind(cookie_digest)
                .bind(now)
                .fetch_optional(&self.read)
                .await?
                else {
                    return Ok(None);
                };
                let (id, account): (String, String) = (row.try_get("id")?, row.try_get("account_id")?);
                // The idle deadline slides with use; written at most once a minute.
                let idle_until: i64 = row.try_get("idle_until")?;
                if now + idle - idle_until > 60_000_000 {
                    sqlx::query("update session set idle_until = $2, updated_at = $3 where id = $1")
                        .bind(&id)
                        .bind(now + idle)
                        .bind(now)
                        .execute(&self.write)
                        .await?;
                }
                Ok(Some((id, account)))
            }
        }

        #[async_trait]
        impl IdentityStore for $store {
            async fn identity_account(&self, provider: &str, subject: &str) -> Result<Option<String>> {
                sqlx::query("select account_id from federated_identity where provider = $1 and subject = $2")
                    .bind(provider)
                    .bind(subject)
                    .fetch_optional(&self.write)
                    .await?
                    .map(|r| r.try_get("account_id"))
                    .transpose()
                    .map_err(Error::from)
            }

            async fn identities_of(&self, account_id: &str) -> Result<Vec<super::LinkedIdentity>> {
                let rows = sqlx::query(
                    "select provider, subject, email, last_used_at, created_at from federated_identity \
                     where account_id = $1 order by created_at, provider, subject",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(super::LinkedIdentity {
                        provider: r.try_get("provider")?,
                        subject: r.try_get("subject")?,
                        email: r.try_get("email")?,
                        last_used_at: r.try_get("last_used_at")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                Ok(out)
            }

            async fn unlink_identity(&self, account_id: &str, provider: &str, subject: &str, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                // Writing the account's row first holds it until commit: of two unlinks of one
                // account at once, the second sees what the first left.
                let Some(row) = sqlx::query("update account set updated_at = $2 where id = $1 returning password_hash")
                    .bind(account_id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Err(Error::not_found("no such account"));
                };
                let has_password = row.try_get::<Option<String>, _>("password_hash")?.is_some();
                let linked: Vec<(String, String)> = sqlx::query("select provider, subject from federated_identity where account_id = $1")
                    .bind(account_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("provider")?, r.try_get("subject")?)))
                    .collect::<Result<_>>()?;
                if !linked.iter().any(|(p, s)| p == provider && s == subject) {
                    return Err(Error::not_found("that sign-in is not linked to your account"));
                }
                if !has_password && linked.len() == 1 {
                    return Err(Error::conflict(
                        "this is your only way to sign in: set a password first (Forgot password mails a link), then unlink it",
                    ));
                }
                sqlx::query("delete from federated_identity where account_id = $1 and provider = $2 and subject = $3")
                    .bind(account_id)
                    .bind(provider)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn link_identity(&self, provider: &str, subject: &str, account_id: &str, email: &str, now: i64) -> Result<String> {
                sqlx::query(
                    "insert into federated_identity (provider, subject, account_id, email, last_used_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $5, $5) on conflict (provider, subject) do update set last_used_at = excluded.last_used_at",
                )
                .bind(provider)
                .bind(subject)
                .bind(account_id)
                .bind(email)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(sqlx::query("select account_id from federated_identity where provider = $1 and subject = $2")
                    .bind(provider)
                    .bind(subject)
                    .fetch_one(&self.write)
                    .await?
                    .try_get("account_id")?)
            }
        }
    };
}

store_impl!(
    SqliteStore,
    Sqlite,
    Dialect::Sqlite,
    "",
    SQLITE_GROUPS,
    crate::email::enqueue_sqlite
);
store_impl!(
    PgStore,
    Postgres,
    Dialect::Postgres,
    " for update",
    PG_GROUPS,
    crate::email::enqueue_pg
);
