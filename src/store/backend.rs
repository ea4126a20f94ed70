//! The two stores, `SqliteStore` and `PgStore`: their connection pools, how each runs a read,
//! and `for_both!`, which instantiates every area's shared body (`orgs.rs`, `resources.rs`, …)
//! for both of them. Everything that differs between the databases is here or in `sql.rs`: the
//! pool types, how arguments bind, the query of a User's groups, how an email is enqueued inside
//! a transaction, and row locking (Postgres locks the row it updates with `for update`; SQLite
//! serialises every write through a single-connection write pool).

use super::pages::PageMemo;
use super::sql::Arg;
use super::sqlite_log::LogDb;
use super::sqlite_read::{self, ReadPool};
use super::sqlite_write::Writer;
use super::{PoolStats, Record, TokenInfo};
use crate::error::{Error, Result};
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Column, Pool, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Instantiates an area's body for both stores (`for_both!(orgs)` after `macro_rules! orgs`),
/// with what differs between the databases: the store, its sqlx database, the SQL dialect, the
/// row lock a read-for-update takes, the query of a User's groups, and how an email is enqueued
/// inside a transaction.
macro_rules! for_both {
    ($area:ident) => {
        $area!(
            $crate::store::backend::SqliteStore,
            ::sqlx::sqlite::Sqlite,
            $crate::store::sql::Dialect::Sqlite,
            "",
            $crate::store::backend::SQLITE_GROUPS,
            $crate::email::enqueue_sqlite
        );
        $area!(
            $crate::store::backend::PgStore,
            ::sqlx::postgres::Postgres,
            $crate::store::sql::Dialect::Postgres,
            " for update",
            $crate::store::backend::PG_GROUPS,
            $crate::email::enqueue_pg
        );
    };
}
pub(super) use for_both;

/// How long a Postgres request waits for a pooled connection before it is refused with 503.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    /// sqlx reads that stream (a large group's members) and readiness checks.
    pub(super) read: Pool<Sqlite>,
    pub(super) write: Pool<Sqlite>,
    /// Records, pages and counts (see `sqlite_read`).
    pub(super) reads: ReadPool,
    /// Provisioning-token checks only: slow queries never hold these.
    pub(super) auth: ReadPool,
    /// User creates, PATCH/PUT and deletes, committed in groups (see `sqlite_write`).
    pub(super) writer: Writer,
    /// The request log, in a file of its own (see `sqlite_log`).
    pub(super) log: LogDb,
    pub(super) pages: PageMemo,
}

pub struct PgStore {
    pub(super) read: Pool<Postgres>,
    pub(super) write: Pool<Postgres>,
    /// Provisioning-token checks only: slow queries never hold these.
    pub(super) auth: Pool<Postgres>,
    /// A User's PATCH and PUT (`update_user_at_once`), on connections that plan each statement
    /// once (see `updates_pool`).
    pub(super) updates: Pool<Postgres>,
    pub(super) pages: PageMemo,
}

/// The main Postgres pool's size.
const PG_CONNECTIONS: u32 = 16;
/// Read connections for SQLite records and pages.
const SQLITE_READERS: usize = 8;
/// Connections kept apart for provisioning-token checks.
const AUTH_CONNECTIONS: u32 = 2;
/// Connections for a User's PATCH and PUT on Postgres.
const UPDATE_CONNECTIONS: u32 = 16;

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
        let pool = pool_options(PG_CONNECTIONS)
            .connect_with(pg_options(url)?)
            .await?;
        // sqlx takes an advisory lock, so replicas starting together migrate once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            read: pool.clone(),
            write: pool,
            auth: auth_pool(url).await?,
            updates: updates_pool(url)?,
            pages: PageMemo::default(),
        })
    }
}

/// A connection idle at least this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool of up to `max` connections, each checked before use only when it sat idle for a
/// while: under load a connection comes back and goes out again within microseconds, and a ping
/// then would cost a round trip to Postgres on every query for nothing. One idle longer may
/// have been closed meanwhile (a restart, `pg_terminate_backend`, an idle timeout between the
/// two): it is pinged, and a dead one is dropped and another taken, so the request never sees it.
///
/// While Postgres is down, a request waits `PG_ACQUIRE_TIMEOUT` for a connection and is then
/// answered 503 with Retry-After (`error::database_unreachable`): long enough to ride out a pool
/// that is merely busy, short enough that clients hear back quickly. Every pool is built so.
fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// A small pool of its own for provisioning-token checks, so that slow queries holding every
/// connection of the main pool never make authentication wait.
async fn auth_pool(url: &str) -> Result<Pool<Postgres>> {
    Ok(pool_options(AUTH_CONNECTIONS)
        .connect_with(pg_options(url)?)
        .await?)
}

/// The pool of a User's PATCH and PUT, whose two statements (the read by id, and the update
/// with its email rows, invitation and audit entry) Postgres plans once per connection instead
/// of on every execution. Its plan cache otherwise keeps choosing custom plans for the update,
/// because folding the boolean parameters away makes each custom plan look cheaper than the
/// generic one, and planning the statement then cost about a quarter of Postgres's time under
/// PATCH. Every plan of both statements is a lookup by primary key, so the generic plan is the
/// custom one. Only this pool: a filter or a page planned without its values (a `co` pattern,
/// an offset) could get a worse plan. Its connections open at the first update.
fn updates_pool(url: &str) -> Result<Pool<Postgres>> {
    Ok(pool_options(UPDATE_CONNECTIONS)
        .connect_lazy_with(pg_options(url)?.options([("plan_cache_mode", "force_generic_plan")])))
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
    pub(super) async fn page(
        &self,
        text: &str,
        args: &[Arg],
    ) -> Result<(Vec<Record>, Option<(i64, i64)>)> {
        let (text, args) = (text.to_owned(), args.to_vec());
        self.reads
            .run(Arc::new(move |db| sqlite_read::page(db, &text, &args)))
            .await
    }

    pub(super) async fn count_rows(&self, text: &str, args: &[Arg]) -> Result<i64> {
        let (text, args) = (text.to_owned(), args.to_vec());
        self.reads
            .run(Arc::new(move |db| sqlite_read::count(db, &text, &args)))
            .await
    }

    pub(super) async fn token_lookup(&self, digest: &str) -> Result<Option<TokenInfo>> {
        let digest = digest.to_owned();
        self.auth
            .run(Arc::new(move |db| sqlite_read::token(db, &digest)))
            .await
    }

    pub(super) fn pools(&self) -> Vec<PoolStats> {
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

    pub(super) async fn endless(&self) -> Result<()> {
        self.reads.run(Arc::new(sqlite_read::endless)).await
    }
}

impl PgStore {
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

    pub(super) async fn page(
        &self,
        text: &str,
        args: &[Arg],
    ) -> Result<(Vec<Record>, Option<(i64, i64)>)> {
        let mut conn = self.read_connection().await?;
        let out = within_deadline(Self::page_sqlx(conn.get()?, text, args)).await;
        conn.finish(out)
    }

    pub(super) async fn count_rows(&self, text: &str, args: &[Arg]) -> Result<i64> {
        let mut conn = self.read_connection().await?;
        let out = within_deadline(Self::count_rows_sqlx(conn.get()?, text, args)).await;
        conn.finish(out)
    }

    /// A connection for a read, acquired within the request's deadline.
    async fn read_connection(&self) -> Result<Abandoned> {
        let conn = within_deadline(async { Ok(self.read.acquire().await?) }).await?;
        Ok(Abandoned(Some(conn)))
    }

    pub(super) async fn token_lookup(&self, digest: &str) -> Result<Option<TokenInfo>> {
        Self::token_by_digest_sqlx(&self.auth, digest).await
    }

    pub(super) fn pools(&self) -> Vec<PoolStats> {
        let of = |name: &'static str, p: &Pool<Postgres>, max: u32| PoolStats {
            name,
            in_use: p.size() as usize - p.num_idle(),
            open: p.size() as usize,
            max: max as usize,
        };
        vec![
            of("main", &self.read, PG_CONNECTIONS),
            of("auth", &self.auth, AUTH_CONNECTIONS),
            of("updates", &self.updates, UPDATE_CONNECTIONS),
        ]
    }

    pub(super) async fn endless(&self) -> Result<()> {
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
pub(super) const SQLITE_GROUPS: &str = "(select json_group_array(json_array(g.id, g.display_name)) from (select t.id, t.display_name \
     from team_member tm join team t on t.id = tm.team_id where tm.membership_id = r.id order by t.display_name_norm, t.id) g)";
pub(super) const PG_GROUPS: &str = "(select coalesce(jsonb_agg(jsonb_build_array(t.id, t.display_name) order by t.display_name_norm, t.id), '[]'::jsonb) \
     from team_member tm join team t on t.id = tm.team_id where tm.membership_id = r.id)";

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> String {
        std::env::var("SCIMD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    async fn mode(pool: &Pool<Postgres>) -> String {
        sqlx::query_scalar("show plan_cache_mode")
            .fetch_one(pool)
            .await
            .expect("Postgres answers")
    }

    /// Only the PATCH and PUT pool plans its statements once: filters and pages elsewhere keep
    /// plans made with their values.
    #[tokio::test]
    async fn only_the_update_pool_forces_generic_plans() {
        assert_eq!(
            mode(&updates_pool(&url()).unwrap()).await,
            "force_generic_plan"
        );
        assert_eq!(mode(&auth_pool(&url()).await.unwrap()).await, "auto");
    }
}
