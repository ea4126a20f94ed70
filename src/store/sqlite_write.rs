//! Group commit for the SQLite hot writes (User creates, User PATCH/PUT, deletes). SQLite has
//! one writer at a time; through sqlx every statement of a write was a hand-off to the driver
//! thread (BEGIN, five statements, COMMIT for a create), and every request paid a commit of its
//! own. Here one thread owns a rusqlite write connection: it takes whatever writes are waiting
//! (up to `BATCH`), runs them in one transaction, commits once, and only then answers each
//! request with its own outcome. A write that failed is answered with its own error; if the
//! commit itself fails, every write of the batch is answered with that error and none of them
//! happened.
//!
//! One write's failure (a taken userName, say) must roll back that write alone. A savepoint per
//! write gives that, but costs: FTS5 flushes its pending terms to a new segment at every
//! savepoint (and merges them later), which under the c=32 create benchmark was a fifth of the
//! writer's time. So a batch is first run without savepoints; only if one of its writes fails is
//! the whole transaction rolled back and the batch run again with a savepoint per write. Writes
//! are closures that can run twice (`Fn`): nothing of a rolled-back run remains.
//!
//! The other, rarer writes still go through sqlx's single write connection. The writer thread
//! holds that connection (acquired from its pool, unused) while it writes, so the two never
//! write at once: the pool's one connection is the write lock.

use super::{columns, Audit, Record};
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};
use std::any::Any;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// Most writes committed together.
const BATCH: usize = 64;
/// Writes waiting for the writer before callers wait to queue.
const QUEUE: usize = 1024;

type Work = Box<dyn Fn(&Connection) -> Result<Box<dyn Any + Send>> + Send>;

struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<Result<Box<dyn Any + Send>>>,
}

pub struct Writer {
    jobs: mpsc::SyncSender<Job>,
    /// The checkpointer thread runs while this lives.
    _alive: std::sync::Arc<()>,
}

/// How often the checkpointer copies the WAL's committed pages into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Checkpoints the WAL on a thread of its own, so the writer never does. With SQLite's automatic
/// checkpoint, the commit that crossed 1,000 WAL pages copied them and synced the file itself:
/// under the c=32 PATCH benchmark that was an eighth of the writer's time, with every request of
/// that batch waiting. A passive checkpoint runs beside the writer and readers without blocking
/// either; the WAL still restarts from its beginning once it has all been copied.
fn checkpointer(path: PathBuf, alive: std::sync::Weak<()>) {
    let db = match Connection::open(&path) {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, "SQLite checkpointer could not open the database; the WAL is not checkpointed");
            return;
        }
    };
    let _ = db.busy_timeout(Duration::from_secs(1));
    let mut failing = false;
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        match db.query_row("pragma wal_checkpoint(passive)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
            }
            Err(_) => {}
        }
    }
}

fn internal(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        {
            return crate::error::on_unique_violation(None, msg.as_deref().unwrap_or_default());
        }
    }
    Error::Internal(anyhow::Error::new(e).context("SQLite write"))
}

impl Writer {
    /// Starts the writer thread. `lock` is sqlx's write pool (one connection).
    pub fn start(path: PathBuf, lock: sqlx::Pool<sqlx::Sqlite>) -> Result<Writer> {
        let db = Connection::open(&path).map_err(internal)?;
        db.busy_timeout(Duration::from_secs(10)).map_err(internal)?;
        // A savepoint's journal in memory, not in a temporary file written for every write;
        // checkpoints on a thread of their own (`checkpointer`).
        db.execute_batch(
            "pragma journal_mode = wal; pragma synchronous = normal; pragma foreign_keys = on; \
             pragma temp_store = memory; pragma wal_autocheckpoint = 0",
        )
        .map_err(internal)?;
        db.set_prepared_statement_cache_capacity(64);
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let runtime = tokio::runtime::Handle::current();
        let alive = std::sync::Arc::new(());
        let watch = std::sync::Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("scimd-sqlite-checkpoint".into())
            .spawn(move || checkpointer(path, watch))
            .map_err(|e| Error::Internal(e.into()))?;
        std::thread::Builder::new()
            .name("scimd-sqlite-writer".into())
            .spawn(move || run(db, rx, runtime, lock))
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(Writer {
            jobs,
            _alive: alive,
        })
    }

    /// Runs `f` in the next batch; answers after the batch committed.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |db| f(db).map(|v| Box::new(v) as Box<dyn Any + Send>));
        let jobs = self.jobs.clone();
        let job = Job { work, reply };
        // A full queue blocks; off the async workers then.
        if let Err(mpsc::TrySendError::Full(job)) = jobs.try_send(job) {
            tokio::task::spawn_blocking(move || jobs.send(job))
                .await
                .map_err(|e| Error::Internal(e.into()))?
                .map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer stopped")))?;
        }
        let out = answer
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer stopped")))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::Internal(anyhow::anyhow!("SQLite writer: unexpected result type")))
    }
}

fn run(
    db: Connection,
    rx: mpsc::Receiver<Job>,
    runtime: tokio::runtime::Handle,
    lock: sqlx::Pool<sqlx::Sqlite>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // The write lock: sqlx's only write connection, held idle while this batch writes.
        let guard = runtime.block_on(lock.acquire());
        let outcomes = match &guard {
            Ok(_) => commit_batch(&db, &batch),
            Err(e) => Err(Error::Internal(anyhow::anyhow!("SQLite write lock: {e}"))),
        };
        // Returning a pooled connection spawns a task: done inside the runtime.
        runtime.block_on(async move { drop(guard) });
        match outcomes {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "SQLite batch commit failed");
                for job in batch {
                    let _ = job.reply.send(Err(Error::Internal(anyhow::anyhow!(
                        "the write was not committed: {e}"
                    ))));
                }
            }
        }
    }
}

type Outcome = Result<Box<dyn Any + Send>>;

/// Runs one write; a panic becomes its error, so it cannot take the writer thread (and every
/// later write) down.
fn attempt(db: &Connection, job: &Job) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(db)))
        .unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("a write panicked"))))
}

fn exec(db: &Connection, sql: &str) -> Result<()> {
    db.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(internal)
}

/// Runs the batch in one transaction and commits: first without savepoints; if a write fails,
/// again from the start with each write in its own savepoint (see the module's note).
fn commit_batch(db: &Connection, batch: &[Job]) -> Result<Vec<Outcome>> {
    exec(db, "begin immediate")?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match attempt(db, job) {
            Ok(v) => results.push(Ok(v)),
            Err(_) => break,
        }
    }
    if results.len() < batch.len() {
        // A write failed: nothing of this run is kept (after some errors SQLite has already
        // rolled the transaction back itself, and this rollback then has nothing to do).
        let _ = exec(db, "rollback");
        return commit_with_savepoints(db, batch);
    }
    finish(db, results)
}

fn commit_with_savepoints(db: &Connection, batch: &[Job]) -> Result<Vec<Outcome>> {
    exec(db, "begin immediate")?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let step = exec(db, "savepoint w").and_then(|()| {
            let out = attempt(db, job);
            if out.is_ok() {
                exec(db, "release w")?;
            } else {
                exec(db, "rollback to w")?;
                exec(db, "release w")?;
            }
            Ok(out)
        });
        match step {
            Ok(out) => results.push(out),
            Err(e) => {
                let _ = exec(db, "rollback");
                return Err(e);
            }
        }
    }
    finish(db, results)
}

/// Indexes the search text of the members this batch created (`search_doc = -1`, see
/// migration 0016), after every write of the batch: FTS5 then takes all their terms in one
/// segment at the commit.
fn index_new_members(db: &Connection) -> Result<()> {
    let pending: Vec<(String, String)> = db
        .prepare_cached("select id, search from membership where search_doc = -1")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(internal)?;
    let mut insert = db
        .prepare_cached("insert into membership_search (search, membership_id) values (?1, ?2)")
        .map_err(internal)?;
    let mut note = db
        .prepare_cached("update membership set search_doc = ?2 where id = ?1")
        .map_err(internal)?;
    for (id, search) in pending {
        let doc = insert.insert(params![search, id]).map_err(internal)?;
        note.execute(params![id, doc]).map_err(internal)?;
    }
    Ok(())
}

/// Indexes the batch's new members and commits; on any failure nothing of the batch is kept.
fn finish(db: &Connection, results: Vec<Outcome>) -> Result<Vec<Outcome>> {
    if let Err(e) = index_new_members(db) {
        let _ = exec(db, "rollback");
        return Err(e);
    }
    if let Err(e) = exec(db, "commit") {
        let _ = exec(db, "rollback");
        return Err(e);
    }
    Ok(results)
}

/// A new User, as `insert_tx` writes it through sqlx (see there): account found by email or
/// created, membership, email rows, a counter shard and the audit entry.
#[allow(clippy::too_many_arguments)]
pub fn insert_user(
    db: &Connection,
    id: &str,
    org: &str,
    doc: &Map<String, Value>,
    role: Option<&str>,
    now: i64,
    audit: &Audit,
    shard: i64,
) -> Result<()> {
    let c = columns(Kind::User, doc);
    let account = match &c.email {
        Some(email) => {
            let norm = email.to_lowercase();
            db.prepare_cached(
                "insert into account (id, email, email_norm, created_at, updated_at) values (?1, ?2, ?3, ?4, ?4) \
                 on conflict (email_norm) do nothing",
            )
            .and_then(|mut s| s.execute(params![super::new_id(), email, norm, now]))
            .map_err(internal)?;
            db.prepare_cached("select id from account where email_norm = ?1")
                .and_then(|mut s| s.query_row([&norm], |r| r.get::<_, String>(0)))
                .map_err(internal)?
        }
        None => {
            let account = super::new_id();
            db.prepare_cached(
                "insert into account (id, created_at, updated_at) values (?1, ?2, ?2)",
            )
            .and_then(|mut s| s.execute(params![account, now]))
            .map_err(internal)?;
            account
        }
    };
    let text = serde_json::to_string(doc).map_err(|e| Error::Internal(e.into()))?;
    db.prepare_cached(
        "insert into membership (id, organization_id, account_id, user_name, user_name_norm, external_id, active, \
         doc, version, created_at, updated_at, role, role_assigned, search, search_doc) \
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10, ?11, ?12, -1)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            org,
            account,
            c.name,
            c.name_norm,
            c.external_id,
            c.active,
            text,
            now,
            role.unwrap_or("member"),
            role.is_some(),
            c.search
        ])
    })
    .map_err(internal)?;
    add_emails(db, id, &c.emails, now)?;
    count(db, org, Kind::User, 1, shard)?;
    record_audit(db, org, audit, "User.create", id, now)?;
    revoke_invitations_of(db, org, id, now, audit)
}

/// Revokes the pending invitations to `org` addressed to the person behind a membership, as the
/// sqlx path's `revoke_invitations_of` does (see there): once they have a membership there, or
/// it is deactivated or removed, an old invitation must never bring them back.
fn revoke_invitations_of(
    db: &Connection,
    org: &str,
    member: &str,
    now: i64,
    audit: &Audit,
) -> Result<()> {
    let revoked: Vec<String> = db
        .prepare_cached(
            "update invitation set status = 'revoked', updated_at = ?3 where organization_id = ?1 and status = 'pending' \
             and email_norm = (select a.email_norm from membership m join account a on a.id = m.account_id where m.id = ?2) \
             returning id",
        )
        .and_then(|mut s| {
            s.query_map(params![org, member, now], |r| r.get::<_, String>(0))?
                .collect()
        })
        .map_err(internal)?;
    for id in revoked {
        record_audit(db, org, audit, "Invitation.revoke", &id, now)?;
        tracing::info!(invitation = %id, member, "pending invitation revoked: the person has a membership, or lost it");
    }
    Ok(())
}

fn add_emails(db: &Connection, id: &str, emails: &[String], now: i64) -> Result<()> {
    let mut s = db
        .prepare_cached(
            "insert into membership_email (membership_id, value_norm, created_at, updated_at) values (?1, ?2, ?3, ?3)",
        )
        .map_err(internal)?;
    for e in emails {
        s.execute(params![id, e, now]).map_err(internal)?;
    }
    Ok(())
}

fn count(db: &Connection, org: &str, kind: Kind, delta: i64, shard: i64) -> Result<()> {
    db.prepare_cached(&super::COUNT_UPSERT.replace('$', "?"))
        .and_then(|mut s| s.execute(params![org, kind.name(), shard, delta]))
        .map_err(internal)?;
    Ok(())
}

fn record_audit(
    db: &Connection,
    org: &str,
    audit: &Audit,
    action: &str,
    target: &str,
    now: i64,
) -> Result<()> {
    db.prepare_cached(
        "insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            super::new_id(),
            org,
            audit.actor,
            action,
            target,
            audit.request_id,
            now
        ])
    })
    .map_err(internal)?;
    Ok(())
}

/// Writes a changed User if its version is still `version` (false otherwise: the caller reads
/// again), with its email rows and the audit entry.
#[allow(clippy::too_many_arguments)]
pub fn update_user(
    db: &Connection,
    org: &str,
    current: &Record,
    doc: &Map<String, Value>,
    role: Option<&str>,
    now: i64,
    audit: &Audit,
) -> Result<bool> {
    let c = columns(Kind::User, doc);
    let text = serde_json::to_string(doc).map_err(|e| Error::Internal(e.into()))?;
    let n = db
        .prepare_cached(
            "update membership set user_name = ?1, user_name_norm = ?2, external_id = ?3, active = ?4, \
             doc = ?5, version = version + 1, updated_at = ?6, search = ?11, \
             role = case when ?8 is null then role when ?8 = '' then 'member' else ?8 end, \
             role_assigned = case when ?8 is null then role_assigned when ?8 = '' then 0 else 1 end \
             where id = ?7 and organization_id = ?9 and version = ?10",
        )
        .and_then(|mut s| {
            s.execute(params![
                c.name,
                c.name_norm,
                c.external_id,
                c.active,
                text,
                now,
                current.id,
                role,
                org,
                current.version,
                c.search
            ])
        })
        .map_err(internal)?;
    if n == 0 {
        return Ok(false);
    }
    if columns(Kind::User, &current.doc).emails != c.emails {
        db.prepare_cached("delete from membership_email where membership_id = ?1")
            .and_then(|mut s| s.execute([&current.id]))
            .map_err(internal)?;
        add_emails(db, &current.id, &c.emails, now)?;
    }
    if columns(Kind::User, &current.doc).active && !c.active {
        revoke_invitations_of(db, org, &current.id, now, audit)?;
    }
    record_audit(db, org, audit, "User.update", &current.id, now)?;
    Ok(true)
}

/// Deletes a User or Group (412 on a stale `if_match`, 409 for the last active admin).
#[allow(clippy::too_many_arguments)]
pub fn delete(
    db: &Connection,
    org: &str,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
    now: i64,
    audit: &Audit,
    shard: i64,
) -> Result<()> {
    let table = match kind {
        Kind::User => "membership",
        Kind::Group => "team",
    };
    let extra = if kind == Kind::User {
        ", (role = 'admin' and active) as is_admin"
    } else {
        ", 0 as is_admin"
    };
    let row = db
        .prepare_cached(&format!(
            "select version{extra} from {table} where organization_id = ?1 and id = ?2"
        ))
        .and_then(|mut s| {
            s.query_row([org, id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?))
            })
            .optional()
        })
        .map_err(internal)?;
    let Some((version, is_admin)) = row else {
        return Err(Error::not_found(format!("{} {id} not found", kind.name())));
    };
    if if_match.is_some_and(|v| v != version) {
        return Err(Error::precondition_failed());
    }
    if is_admin {
        let others: i64 = db
            .prepare_cached(
                "select count(*) from membership where organization_id = ?1 and role = 'admin' and active and id <> ?2",
            )
            .and_then(|mut s| s.query_row([org, id], |r| r.get(0)))
            .map_err(internal)?;
        if others == 0 {
            return Err(Error::last_admin());
        }
    }
    if kind == Kind::User {
        revoke_invitations_of(db, org, id, now, audit)?;
    }
    db.prepare_cached(&format!("delete from {table} where id = ?1"))
        .and_then(|mut s| s.execute([id]))
        .map_err(internal)?;
    count(db, org, kind, -1, shard)?;
    record_audit(db, org, audit, &format!("{}.delete", kind.name()), id, now)
}

/// Writes a batch of request-log entries and keeps each of their organizations within its
/// bound (see `Store::write_request_log`), inside the caller's transaction on the request log's
/// own file (`sqlite_log`).
pub fn request_log(
    db: &Connection,
    entries: &[super::LogEntry],
    keep: i64,
    before: i64,
) -> Result<u64> {
    let mut insert = db
        .prepare_cached(
            "insert into request_log (id, organization_id, token_id, token_name, method, path, filter, status, \
             scim_type, detail, duration_us, client_ip, user_agent, user_name, resource_id, request_body, \
             response_body, request_id, created_at, updated_at) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?19)",
        )
        .map_err(internal)?;
    for e in entries {
        insert
            .execute(params![
                e.id,
                e.organization_id,
                e.token_id,
                e.token_name,
                e.method,
                e.path,
                e.filter,
                e.status,
                e.scim_type,
                e.detail,
                e.duration_us,
                e.client_ip,
                e.user_agent,
                e.user_name,
                e.resource_id,
                e.request_body,
                e.response_body,
                e.request_id,
                e.created_at,
            ])
            .map_err(internal)?;
    }
    let mut per_org: Vec<(&str, i64)> = Vec::new();
    for e in entries {
        match per_org.iter_mut().find(|(o, _)| *o == e.organization_id) {
            Some((_, n)) => *n += 1,
            None => per_org.push((&e.organization_id, 1)),
        }
    }
    let now = entries
        .iter()
        .map(|e| e.created_at)
        .max()
        .unwrap_or_default();
    let mut pruned = 0;
    for (org, added) in per_org {
        let mut n: i64 = db
            .prepare_cached(
                "insert into request_log_count (organization_id, n, created_at, updated_at) values (?1, ?2, ?3, ?3) \
                 on conflict (organization_id) do update set n = request_log_count.n + excluded.n, \
                 updated_at = excluded.updated_at returning n",
            )
            .map_err(internal)?
            .query_row(params![org, added, now], |r| r.get(0))
            .map_err(internal)?;
        let old = db
            .prepare_cached(
                "delete from request_log where organization_id = ?1 and created_at < ?2",
            )
            .map_err(internal)?
            .execute(params![org, before])
            .map_err(internal)? as i64;
        let over = (n - old - keep).max(0);
        let oldest = if over > 0 {
            db.prepare_cached(
                "delete from request_log where id in (select id from request_log where organization_id = ?1 \
                 order by created_at, id limit ?2)",
            )
            .map_err(internal)?
            .execute(params![org, over])
            .map_err(internal)? as i64
        } else {
            0
        };
        if old + oldest > 0 {
            n -= old + oldest;
            db.prepare_cached("update request_log_count set n = ?2 where organization_id = ?1")
                .map_err(internal)?
                .execute(params![org, n.max(0)])
                .map_err(internal)?;
        }
        pruned += (old + oldest) as u64;
    }
    Ok(pruned)
}
