//! The SCIM request log: what each provisioning request asked and was answered, bodies redacted
//! and bounded, kept per organization to a count and an age. On SQLite it lives in a file of its
//! own (`sqlite_log`); on Postgres in the main database, written through sqlx.

use super::backend::{for_both, PgStore, SqliteStore};
use super::shared::placeholders;
use crate::error::Result;
use async_trait::async_trait;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::{Pool, Row};

/// One SCIM request as the request log keeps it: bodies already redacted and cut to a bound.
#[derive(Debug, Clone, Default)]
pub struct LogEntry {
    pub id: String,
    pub organization_id: String,
    pub token_id: Option<String>,
    pub token_name: Option<String>,
    pub method: String,
    pub path: String,
    pub filter: Option<String>,
    pub status: i64,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub duration_us: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The userName the request concerns (its body's, or its filter's `userName eq`).
    pub user_name: Option<String>,
    /// The User or Group the request concerns (its path's id, or the created resource's).
    pub resource_id: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
}

/// Which request-log entries to list; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only answers with status 400 and above.
    pub errors_only: bool,
    pub method: Option<String>,
    pub status: Option<i64>,
    /// A userName (case-insensitive) or a resource id.
    pub subject: Option<String>,
}

/// The request log of a period: how many requests, by status, and the commonest errors.
#[derive(Debug, Clone, Default)]
pub struct LogSummary {
    /// `(status, requests)`, by status.
    pub by_status: Vec<(i64, i64)>,
    /// `(status, scimType, detail, requests)`, the commonest first.
    pub top_errors: Vec<(i64, Option<String>, Option<String>, i64)>,
}

/// Request-log rows in one insert statement (20 parameters each: within SQLite's limit).
const LOG_CHUNK: usize = 100;

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
}

/// The SCIM request log.
#[async_trait]
pub trait RequestLogStore: Send + Sync {
    /// Stores a batch of request-log entries and, in the same transaction, keeps each of their
    /// organizations to its newest `keep` entries and none older than `before`; returns how many
    /// older entries were deleted.
    async fn write_request_log(
        &self,
        entries: Vec<LogEntry>,
        keep: i64,
        before: i64,
    ) -> Result<u64>;
    /// Deletes every organization's entries older than `before` (organizations that stopped
    /// sending requests are pruned here).
    async fn prune_request_log(&self, before: i64) -> Result<u64>;
    /// A page of the organization's entries, newest first, and how many match.
    async fn request_log(
        &self,
        org: &str,
        filter: &LogFilter,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<LogEntry>)>;
    async fn request_log_entry(&self, org: &str, id: &str) -> Result<Option<LogEntry>>;
    /// Requests since `since` by status, and the `top` commonest errors.
    async fn request_log_summary(&self, org: &str, since: i64, top: i64) -> Result<LogSummary>;
}

macro_rules! request_log {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
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
                    // Not kept as a prepared statement: every chunk size is a text of its own
                    // with up to 2,000 parameters, and sqlx caches 100 statements per
                    // connection: cached, they took the server to 108 MiB on Postgres after
                    // 100,000 creates, against 77 MiB without them and 31 MiB with the log off.
                    let mut q = sqlx::query(&text).persistent(false);
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
    };
}

for_both!(request_log);
