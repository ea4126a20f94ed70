//! The audit log: who changed what in an organization. Every area writes its entries inside the
//! change's own transaction (`record_audit`, in `shared`); they are read here.

use super::backend::for_both;
use crate::error::Result;
use async_trait::async_trait;
use sqlx::Row;

/// Who made a change, recorded in `audit_event` in the change's own transaction.
#[derive(Debug, Clone)]
pub struct Audit {
    /// `token:<id>` for an identity provider, `admin:<id>` for a provider admin.
    pub actor: String,
    pub request_id: Option<String>,
}

/// One entry of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
}

/// Which audit-log entries to list; `None` fields do not filter. Each matches exactly.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// `account:<id>`, `token:<id>` or `admin:<id>`.
    pub actor: Option<String>,
    /// e.g. `User.update`.
    pub action: Option<String>,
    /// The resource id the entry concerns.
    pub target: Option<String>,
    /// Entries at or after this time (microseconds since the epoch).
    pub since: Option<i64>,
    /// Entries before this time (microseconds since the epoch).
    pub until: Option<i64>,
    /// Keyset paging: only entries past this one, `(created_at, id)`, in the listing's order
    /// (older ones when newest first). A page then starts there instead of at an offset.
    pub after: Option<(i64, String)>,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The organization's audit log, oldest first.
    async fn audit_events(
        &self,
        org: &str,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<AuditEvent>)> {
        self.audit_log(org, &AuditFilter::default(), false, start_index, count)
            .await
    }
    /// A page of the organization's audit log that `filter` selects, oldest first (or newest
    /// first), and how many entries match.
    async fn audit_log(
        &self,
        org: &str,
        filter: &AuditFilter,
        newest_first: bool,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<AuditEvent>)>;
}

macro_rules! audit {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        #[async_trait]
        impl AuditStore for $store {
            async fn audit_log(&self, org: &str, f: &AuditFilter, newest_first: bool, start_index: i64, count: i64) -> Result<(i64, Vec<AuditEvent>)> {
                // An empty string does not filter (no stored actor, action or target is empty);
                // the time bounds default to all of time.
                const WHERE: &str = "where organization_id = $1 and ($2 = '' or actor = $2) \
                     and ($3 = '' or action = $3) and ($4 = '' or target = $4) \
                     and created_at >= $5 and created_at < $6";
                let actor = f.actor.clone().unwrap_or_default();
                let action = f.action.clone().unwrap_or_default();
                let target = f.target.clone().unwrap_or_default();
                let since = f.since.unwrap_or(i64::MIN);
                let until = f.until.unwrap_or(i64::MAX);
                let total: i64 = sqlx::query(&format!("select count(*) as n from audit_event {WHERE}"))
                    .bind(org)
                    .bind(&actor)
                    .bind(&action)
                    .bind(&target)
                    .bind(since)
                    .bind(until)
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?;
                // Keyset paging seeks past the last entry of the previous page (the
                // (organization_id, created_at, id) index serves both orders); without a key, the
                // page starts at an offset.
                let (order, past, key, offset) = match (&f.after, newest_first) {
                    (None, true) => ("created_at desc, id desc", "<", (i64::MAX, String::new()), start_index - 1),
                    (None, false) => ("created_at, id", ">", (i64::MIN, String::new()), start_index - 1),
                    (Some(k), true) => ("created_at desc, id desc", "<", k.clone(), 0),
                    (Some(k), false) => ("created_at, id", ">", k.clone(), 0),
                };
                let rows = sqlx::query(&format!(
                    "select id, actor, action, target, request_id, created_at from audit_event {WHERE} \
                     and (created_at, id) {past} ($7, $8) order by {order} limit $9 offset $10",
                ))
                .bind(org)
                .bind(&actor)
                .bind(&action)
                .bind(&target)
                .bind(since)
                .bind(until)
                .bind(key.0)
                .bind(&key.1)
                .bind(count)
                .bind(offset)
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
    };
}

for_both!(audit);
