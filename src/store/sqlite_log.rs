//! On SQLite the SCIM request log lives in a database file of its own, beside the main one
//! (`scimd.db` → `scimd-requests.db`, migrated from `migrations/sqlite-requests`). SQLite has
//! one writer per file: in the main file, each batch of log rows (and the deletes that keep
//! every organization within its bound) held the write lock that every User create and PATCH
//! waits for, and each of its commits made the main file's readers drop their page caches. In
//! a file of its own the log's writes wait for nothing but each other (one writer connection,
//! used only by the log's background task) and the main file never sees them.

use super::{sqlite_write, LogEntry};
use crate::error::{Error, Result};
use rusqlite::{params, Connection};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection as _, Pool};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct LogDb {
    /// The log's one writer: the background task's batches and the hourly sweep.
    write: Arc<Mutex<Connection>>,
    /// The admin API's and the console's reads of the log.
    pub read: Pool<Sqlite>,
}

/// The request log's file for the main database file `main`: `<stem>-requests.db` in the same
/// directory (`scimd.db` → `scimd-requests.db`; `data` → `data-requests.db`).
pub fn path_beside(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scimd".to_owned());
    main.with_file_name(format!("{stem}-requests.db"))
}

fn internal(e: impl Into<anyhow::Error>) -> Error {
    let e: anyhow::Error = e.into();
    Error::Internal(e.context("the request log's SQLite file"))
}

impl LogDb {
    /// Opens (creating it if needed) and migrates the log's file beside `main`.
    pub async fn open(main: &Path) -> Result<LogDb> {
        let path = path_beside(main);
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = opts.connect().await?;
        sqlx::migrate!("./migrations/sqlite-requests")
            .run(&mut conn)
            .await?;
        conn.close().await?;
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts.read_only(true))
            .await?;
        let db = Connection::open(&path).map_err(internal)?;
        db.busy_timeout(Duration::from_secs(10)).map_err(internal)?;
        db.execute_batch("pragma journal_mode = wal; pragma synchronous = normal")
            .map_err(internal)?;
        Ok(LogDb {
            write: Arc::new(Mutex::new(db)),
            read,
        })
    }

    /// Runs `f` in one transaction on the log's writer connection, off the async workers.
    async fn transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.write.clone();
        tokio::task::spawn_blocking(move || {
            let db = db
                .lock()
                .map_err(|_| Error::Internal(anyhow::anyhow!("the request log writer panicked")))?;
            db.execute_batch("begin immediate").map_err(internal)?;
            match f(&db) {
                Ok(v) => {
                    if let Err(e) = db.execute_batch("commit") {
                        let _ = db.execute_batch("rollback");
                        return Err(internal(e));
                    }
                    Ok(v)
                }
                Err(e) => {
                    let _ = db.execute_batch("rollback");
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?
    }

    /// See `Store::write_request_log`.
    pub async fn write(&self, entries: Vec<LogEntry>, keep: i64, before: i64) -> Result<u64> {
        self.transaction(move |db| sqlite_write::request_log(db, &entries, keep, before))
            .await
    }

    /// See `Store::prune_request_log`.
    pub async fn prune(&self, before: i64) -> Result<u64> {
        self.transaction(move |db| {
            let done = db
                .execute(
                    "delete from request_log where created_at < ?1",
                    params![before],
                )
                .map_err(internal)?;
            if done > 0 {
                // Rare (hourly) and whole: recount rather than track per organization.
                db.execute(
                    "update request_log_count set n = (select count(*) from request_log r \
                     where r.organization_id = request_log_count.organization_id)",
                    [],
                )
                .map_err(internal)?;
            }
            Ok(done as u64)
        })
        .await
    }
}
