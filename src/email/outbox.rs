//! The `email_outbox` table: enqueueing inside a caller's transaction, and the worker's few
//! statements. The SQL text is shared by both backends (`$n` placeholders work on both); only the
//! claim differs, by `for update skip locked` on Postgres.

use super::{OutboxEntry, OutboxMessage, Status};
use crate::clock::Clock;
use sqlx::postgres::{PgConnection, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Pool;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const COLUMNS: &str = "id, organization_id, to_address, subject, body_text, body_html, status, \
     attempts, next_attempt_at, last_error, claimed_until, sent_at, created_at, updated_at";

const INSERT: &str = "insert into email_outbox (id, organization_id, to_address, subject, \
     body_text, body_html, status, attempts, next_attempt_at, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7)";

/// Claims up to `$3` due rows for a lease ending at `$2`. One statement, so the claim is atomic;
/// `lock` is the backend's row locking for the subquery.
fn claim_sql(lock: &str) -> String {
    format!(
        "update email_outbox set claimed_until = $2, updated_at = $1 where id in (\
         select id from email_outbox where status = 'pending' and next_attempt_at <= $1 \
         and (claimed_until is null or claimed_until <= $1) \
         order by next_attempt_at, id limit $3{lock}) returning {COLUMNS}"
    )
}

/// Records an attempt's outcome, only while the row is still under the lease `$8` this worker
/// took: a worker whose lease ran out and was taken over must not overwrite the new holder.
/// A sent mail loses its body: it may carry a live link (an invitation, a password reset), and
/// what an operator needs afterwards is who it went to, what about, and when.
const RECORD: &str = "update email_outbox set status = $2, attempts = $3, next_attempt_at = $4, \
     last_error = $5, sent_at = $6, claimed_until = null, updated_at = $7, \
     body_text = case when $2 = 'sent' then '' else body_text end, \
     body_html = case when $2 = 'sent' then null else body_html end \
     where id = $1 and claimed_until = $8";

/// Sent rows older than the retention period go.
const PURGE: &str = "delete from email_outbox where status = 'sent' and sent_at < $1";

/// What the worker writes back after an attempt.
pub(super) struct Attempt<'a> {
    pub status: Status,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<&'a str>,
    pub sent_at: Option<i64>,
    pub now: i64,
}

/// The same functions for each backend; `$lock` is the claim's row locking.
macro_rules! backend {
    ($module:ident, $db:ty, $lock:literal) => {
        mod $module {
            use super::*;

            pub async fn insert(
                conn: &mut <$db as sqlx::Database>::Connection,
                msg: &OutboxMessage,
                now: i64,
            ) -> sqlx::Result<String> {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(INSERT)
                    .bind(&id)
                    .bind(&msg.organization_id)
                    .bind(&msg.to)
                    .bind(&msg.subject)
                    .bind(&msg.text)
                    .bind(&msg.html)
                    .bind(now)
                    .execute(conn)
                    .await?;
                Ok(id)
            }

            pub async fn enqueue(
                pool: &Pool<$db>,
                msg: &OutboxMessage,
                now: i64,
            ) -> sqlx::Result<String> {
                let mut tx = pool.begin().await?;
                let id = insert(&mut tx, msg, now).await?;
                tx.commit().await?;
                Ok(id)
            }

            pub async fn claim(
                pool: &Pool<$db>,
                now: i64,
                lease: i64,
                limit: i64,
            ) -> sqlx::Result<Vec<OutboxEntry>> {
                sqlx::query_as(&claim_sql($lock))
                    .bind(now)
                    .bind(lease)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }

            pub async fn record(
                pool: &Pool<$db>,
                id: &str,
                lease: i64,
                a: &Attempt<'_>,
            ) -> sqlx::Result<bool> {
                let done = sqlx::query(RECORD)
                    .bind(id)
                    .bind(a.status.as_str())
                    .bind(a.attempts)
                    .bind(a.next_attempt_at)
                    .bind(a.last_error)
                    .bind(a.sent_at)
                    .bind(a.now)
                    .bind(lease)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            pub async fn get(pool: &Pool<$db>, id: &str) -> sqlx::Result<Option<OutboxEntry>> {
                sqlx::query_as(&format!("select {COLUMNS} from email_outbox where id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }

            pub async fn purge(pool: &Pool<$db>, before: i64) -> sqlx::Result<u64> {
                Ok(sqlx::query(PURGE).bind(before).execute(pool).await?.rows_affected())
            }

            pub async fn undelivered(pool: &Pool<$db>) -> sqlx::Result<Vec<OutboxEntry>> {
                sqlx::query_as(&format!(
                    "select {COLUMNS} from email_outbox where status <> 'sent' order by created_at, id limit 1000"
                ))
                .fetch_all(pool)
                .await
            }

            pub async fn count(pool: &Pool<$db>, status: Status) -> sqlx::Result<i64> {
                sqlx::query_scalar("select count(*) from email_outbox where status = $1")
                    .bind(status.as_str())
                    .fetch_one(pool)
                    .await
            }
        }
    };
}

backend!(sqlite, Sqlite, "");
backend!(pg, Postgres, " for update skip locked");

/// Adds `msg` to the outbox inside the caller's SQLite transaction (pass `&mut *tx`): the row
/// commits or rolls back with the caller's write. Returns the row id.
pub async fn enqueue_sqlite(
    conn: &mut SqliteConnection,
    msg: &OutboxMessage,
    now: i64,
) -> sqlx::Result<String> {
    sqlite::insert(conn, msg, now).await
}

/// [`enqueue_sqlite`] for Postgres.
pub async fn enqueue_pg(
    conn: &mut PgConnection,
    msg: &OutboxMessage,
    now: i64,
) -> sqlx::Result<String> {
    pg::insert(conn, msg, now).await
}

/// The worker's way to the database: a SQLite write pool or a Postgres pool.
///
/// Build it with [`OutboxStore::connect`] from the same URL as the store, after the store has
/// applied the migrations, or wrap pools you already have. On SQLite it is one write connection
/// beside the store's: SQLite serialises the two writers with its file lock and busy timeout.
#[derive(Debug, Clone)]
pub enum OutboxStore {
    Sqlite(Pool<Sqlite>),
    Postgres(Pool<Postgres>),
}

impl OutboxStore {
    /// Opens the database a URL names (`sqlite:…` or `postgres://…`). Does not migrate, and on
    /// SQLite does not create the file: `store::connect` does both and comes first.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(OutboxStore::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(false)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            Ok(OutboxStore::Sqlite(pool))
        } else {
            anyhow::bail!("unsupported database URL: use sqlite:PATH or postgres://…")
        }
    }

    /// Adds `msg` in a transaction of its own (tests, the CLI). Code that changes data along
    /// with the email uses [`enqueue_sqlite`] / [`enqueue_pg`] inside its own transaction.
    pub async fn enqueue(&self, msg: &OutboxMessage, now: i64) -> sqlx::Result<String> {
        match self {
            OutboxStore::Sqlite(p) => sqlite::enqueue(p, msg, now).await,
            OutboxStore::Postgres(p) => pg::enqueue(p, msg, now).await,
        }
    }

    pub async fn get(&self, id: &str) -> sqlx::Result<Option<OutboxEntry>> {
        match self {
            OutboxStore::Sqlite(p) => sqlite::get(p, id).await,
            OutboxStore::Postgres(p) => pg::get(p, id).await,
        }
    }

    /// Deletes sent rows sent before `before`; returns how many.
    pub async fn purge(&self, before: i64) -> sqlx::Result<u64> {
        match self {
            OutboxStore::Sqlite(p) => sqlite::purge(p, before).await,
            OutboxStore::Postgres(p) => pg::purge(p, before).await,
        }
    }

    /// Rows not delivered (pending or failed), oldest first, at most 1000: `scimd mail list`.
    pub async fn undelivered(&self) -> sqlx::Result<Vec<OutboxEntry>> {
        match self {
            OutboxStore::Sqlite(p) => sqlite::undelivered(p).await,
            OutboxStore::Postgres(p) => pg::undelivered(p).await,
        }
    }

    /// How many rows are in `status` (the backlog, for `Pending`).
    pub async fn count(&self, status: Status) -> sqlx::Result<i64> {
        match self {
            OutboxStore::Sqlite(p) => sqlite::count(p, status).await,
            OutboxStore::Postgres(p) => pg::count(p, status).await,
        }
    }

    /// Claims up to `limit` due rows until `lease`; no other worker gets them before then.
    pub(super) async fn claim(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<OutboxEntry>> {
        let mut rows = match self {
            OutboxStore::Sqlite(p) => sqlite::claim(p, now, lease, limit).await?,
            OutboxStore::Postgres(p) => pg::claim(p, now, lease, limit).await?,
        };
        // `returning` keeps no order.
        rows.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(rows)
    }

    /// Writes an attempt's outcome; false when the lease was lost to another worker.
    pub(super) async fn record(
        &self,
        id: &str,
        lease: i64,
        attempt: &Attempt<'_>,
    ) -> sqlx::Result<bool> {
        match self {
            OutboxStore::Sqlite(p) => sqlite::record(p, id, lease, attempt).await,
            OutboxStore::Postgres(p) => pg::record(p, id, lease, attempt).await,
        }
    }
}

/// The outbox with a clock: enqueue without handling time or transactions.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: OutboxStore,
    clock: Arc<Clock>,
}

impl Outbox {
    pub fn new(store: OutboxStore, clock: Arc<Clock>) -> Self {
        Outbox { store, clock }
    }

    /// Adds `msg` in a transaction of its own; returns the row id.
    pub async fn enqueue(&self, msg: &OutboxMessage) -> sqlx::Result<String> {
        self.store.enqueue(msg, self.clock.now()).await
    }

    pub fn store(&self) -> &OutboxStore {
        &self.store
    }
}
