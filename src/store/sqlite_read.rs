//! SQLite reads without a thread hop per query. sqlx-sqlite runs every connection on its own
//! worker thread and hands each command and each row over a channel: under 32 concurrent
//! lookups a third of the server's CPU time went to the kernel waking those threads (perf on the
//! c=32 lookup). Here a read runs on rusqlite, on the thread that asks, first with a small
//! budget (`INLINE_BUDGET`): an indexed lookup or a page of 100 finishes well within it. A query
//! that runs longer is interrupted and run again on tokio's blocking pool, so that no async worker
//! is held by a slow filter. Reads are idempotent, so running one again is safe.
//!
//! Every read stops at the request's deadline (`crate::deadline`): a progress handler interrupts
//! it, so a request answered 503 gives its connection back instead of scanning on. Pools are
//! bounded (a semaphore per pool); provisioning-token checks have a pool of their own, so that
//! slow queries holding every read connection cannot starve authentication.

use super::sql::{sqlite_path, Arg};
use super::{Record, TokenInfo};
use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a read may run on the calling (async) thread before it moves to the blocking pool.
const INLINE_BUDGET: Duration = Duration::from_millis(2);
/// SQLite VM instructions between two looks at the clock (a few microseconds of work).
const PROGRESS_STEPS: i32 = 1000;
/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 128;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn nanos(at: Instant) -> u64 {
    at.saturating_duration_since(*EPOCH).as_nanos() as u64
}

/// A read connection and the instant its progress handler interrupts it at.
struct Conn {
    db: Connection,
    stop_at: Arc<AtomicU64>,
}

impl Conn {
    fn open(path: &PathBuf) -> rusqlite::Result<Conn> {
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        db.busy_timeout(Duration::from_secs(10))?;
        db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let at = stop_at.clone();
        db.progress_handler(
            PROGRESS_STEPS,
            Some(move || nanos(Instant::now()) >= at.load(Ordering::Relaxed)),
        );
        Ok(Conn { db, stop_at })
    }
}

/// Why a read failed.
pub enum ReadError {
    Sql(rusqlite::Error),
    Other(Error),
}

impl From<rusqlite::Error> for ReadError {
    fn from(e: rusqlite::Error) -> Self {
        ReadError::Sql(e)
    }
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Other(e)
    }
}

fn interrupted(e: &ReadError) -> bool {
    matches!(e, ReadError::Sql(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::OperationInterrupted)
}

pub fn too_late() -> Error {
    Error::unavailable("the request took too long and was abandoned; retry it")
}

fn internal(e: ReadError) -> Error {
    match e {
        ReadError::Sql(e) => Error::Internal(anyhow::Error::new(e).context("SQLite read")),
        ReadError::Other(e) => e,
    }
}

/// A bounded pool of read-only rusqlite connections to one database file.
pub struct ReadPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Conn>>>,
    permits: Arc<Semaphore>,
    max: usize,
    busy: Arc<AtomicUsize>,
}

type ReadFn<T> = dyn Fn(&Connection) -> Result<T, ReadError> + Send + Sync;

impl ReadPool {
    pub fn new(path: PathBuf, max: usize) -> Self {
        ReadPool {
            path,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(max)),
            max,
            busy: Arc::default(),
        }
    }

    /// (connections in use, connections open, most connections) for metrics.
    pub fn stats(&self) -> (usize, usize, usize) {
        let busy = self.busy.load(Ordering::Relaxed);
        let idle = self.idle.lock().map_or(0, |v| v.len());
        (busy, busy + idle, self.max)
    }

    /// Runs `f` on a connection of this pool, within the request's deadline.
    pub async fn run<T: Send + 'static>(&self, f: Arc<ReadFn<T>>) -> Result<T> {
        let deadline = crate::deadline::current();
        let permit = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), self.permits.clone().acquire_owned())
                .await
                .map_err(|_| too_late())?,
            None => self.permits.clone().acquire_owned().await,
        }
        .map_err(|e| Error::Internal(e.into()))?;
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => Conn::open(&self.path).map_err(|e| internal(ReadError::Sql(e)))?,
        };
        let busy = Busy::new(self.busy.clone());
        // First on this thread, with a small budget.
        let budget = Instant::now() + INLINE_BUDGET;
        let stop = deadline.map_or(budget, |d| d.min(budget));
        conn.stop_at.store(nanos(stop), Ordering::Relaxed);
        let first = f(&conn.db);
        match first {
            Err(e) if interrupted(&e) && deadline.is_none_or(|d| Instant::now() < d) => {}
            other => {
                let out = other.map_err(|e| {
                    if interrupted(&e) {
                        too_late()
                    } else {
                        internal(e)
                    }
                });
                self.give_back(conn);
                drop((busy, permit));
                return out;
            }
        }
        // Slow: on the blocking pool, up to the deadline. The connection and the permit travel
        // with the work, so they are released when the query stops, even if this request has
        // been answered (and this future dropped) in the meantime.
        let idle = self.idle.clone();
        let task = tokio::task::spawn_blocking(move || {
            conn.stop_at
                .store(deadline.map_or(u64::MAX, nanos), Ordering::Relaxed);
            let out = f(&conn.db);
            if let Ok(mut v) = idle.lock() {
                v.push(conn);
            }
            drop((busy, permit));
            out
        });
        match task.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if interrupted(&e) => Err(too_late()),
            Ok(Err(e)) => Err(internal(e)),
            Err(e) => Err(Error::Internal(e.into())),
        }
    }

    fn give_back(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
        }
    }
}

/// Counts a connection as in use while alive.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(n: Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Busy(n)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Prepares `text` (cached) and binds `args` to its `$n` parameters.
fn prepare<'c>(
    db: &'c Connection,
    text: &str,
    args: &[Arg],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = db.prepare_cached(text)?;
    for (i, a) in args.iter().enumerate() {
        // `$n` is a named parameter to SQLite; one that the text does not use is skipped.
        let Some(at) = stmt.parameter_index(&format!("${}", i + 1))? else {
            continue;
        };
        match a {
            Arg::Text(s) => stmt.raw_bind_parameter(at, s)?,
            Arg::Int(n) => stmt.raw_bind_parameter(at, n)?,
            Arg::Float(f) => stmt.raw_bind_parameter(at, f)?,
            Arg::Bool(b) => stmt.raw_bind_parameter(at, b)?,
            Arg::Path(p) => stmt.raw_bind_parameter(at, sqlite_path(p))?,
        }
    }
    Ok(stmt)
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ReadError> {
    serde_json::from_str(text).map_err(|e| ReadError::Other(Error::Internal(e.into())))
}

/// Column positions of a record query, looked up once per statement.
struct RecordColumns {
    id: usize,
    doc: usize,
    version: usize,
    created_at: usize,
    updated_at: usize,
    role: Option<(usize, usize)>,
    groups: Option<usize>,
    counts: Option<(usize, usize)>,
}

impl RecordColumns {
    fn of(stmt: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
        let at = |name: &str| stmt.column_index(name);
        let opt = |name: &str| stmt.column_index(name).ok();
        Ok(RecordColumns {
            id: at("id")?,
            doc: at("doc")?,
            version: at("version")?,
            created_at: at("created_at")?,
            updated_at: at("updated_at")?,
            role: opt("role").zip(opt("role_assigned")),
            groups: opt("groups"),
            counts: opt("c_total").zip(opt("c_changes")),
        })
    }

    fn record(&self, row: &Row<'_>) -> Result<Record, ReadError> {
        let doc: String = row.get(self.doc)?;
        let groups = match self.groups {
            Some(i) => {
                let text: String = row.get(i)?;
                let pairs: Vec<(String, String)> = json(&text)?;
                Some(
                    pairs
                        .into_iter()
                        .map(|(id, display)| super::GroupRef { id, display })
                        .collect(),
                )
            }
            None => None,
        };
        let role = match self.role {
            Some((role, assigned)) if row.get::<_, bool>(assigned)? => Some(row.get(role)?),
            _ => None,
        };
        Ok(Record {
            id: row.get(self.id)?,
            doc: json::<Map<String, Value>>(&doc)?,
            groups,
            role,
            version: row.get(self.version)?,
            created_at: row.get(self.created_at)?,
            updated_at: row.get(self.updated_at)?,
        })
    }
}

/// A page query's records and, when it joins the counter subquery, (total, changes).
pub type PageRows = (Vec<Record>, Option<(i64, i64)>);

pub fn page(db: &Connection, text: &str, args: &[Arg]) -> Result<PageRows, ReadError> {
    let mut stmt = prepare(db, text, args)?;
    let counts_only = stmt.column_index("id").is_err();
    let cols = if counts_only {
        None
    } else {
        Some(RecordColumns::of(&stmt)?)
    };
    let count_cols = match &cols {
        Some(c) => c.counts,
        None => stmt
            .column_index("c_total")
            .ok()
            .zip(stmt.column_index("c_changes").ok()),
    };
    let mut rows = stmt.raw_query();
    let mut records = Vec::new();
    let mut counts = None;
    while let Some(row) = rows.next()? {
        if let (None, Some((t, c))) = (counts, count_cols) {
            counts = Some((row.get(t)?, row.get(c)?));
        }
        if let Some(cols) = &cols {
            // A left join of an empty page gives one row of nulls.
            if row.get::<_, Option<String>>(cols.id)?.is_some() {
                records.push(cols.record(row)?);
            }
        }
    }
    Ok((records, counts))
}

pub fn count(db: &Connection, text: &str, args: &[Arg]) -> Result<i64, ReadError> {
    let mut stmt = prepare(db, text, args)?;
    let mut rows = stmt.raw_query();
    match rows.next()? {
        Some(row) => Ok(row.get("n")?),
        None => Ok(0),
    }
}

pub fn token(db: &Connection, digest: &str) -> Result<Option<TokenInfo>, ReadError> {
    let mut stmt = db.prepare_cached(
        "select t.id, t.organization_id, o.slug as org_slug, t.name, t.created_at, t.expires_at, t.revoked_at, \
         t.last_used_at, t.rotated_from from provisioning_token t join organization o on o.id = t.organization_id where t.digest = ?1",
    )?;
    let mut rows = stmt.query([digest])?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(TokenInfo {
        id: r.get("id")?,
        organization_id: r.get("organization_id")?,
        org_slug: r.get("org_slug")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
        last_used_at: r.get("last_used_at")?,
        rotated_from: r.get("rotated_from")?,
    }))
}

/// A read that runs until interrupted: lets tests show that the deadline stops it.
pub fn endless(db: &Connection) -> Result<(), ReadError> {
    let mut stmt = db.prepare_cached(
        "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c",
    )?;
    let mut rows = stmt.raw_query();
    rows.next()?;
    Ok(())
}
