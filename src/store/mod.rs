//! Storage behind one trait with two implementations, SQLite (the default, one machine) and
//! Postgres (several stateless replicas). Both share the SQL text and the filter compiler
//! (`sql.rs`); the few dialect differences are spelled out there and in `backend.rs`.
//!
//! The store is split by area. Each area's file declares its trait (`OrgStore`, `ResourceStore`,
//! `InvitationStore`, …), its row types, and one macro body that `backend::for_both!` turns into
//! the implementation for both stores: `orgs`, `tokens`, `request_log`, `resources` (SCIM Users
//! and Groups, with `user_writes` for their one-round-trip paths), `members` (the console's
//! list), `audit`, `invitations`, `people`, `sessions`, `identities` and `health`. What several
//! areas share is in `shared`. `Store` is every area at once, so `DynStore` reaches them all;
//! code that holds a concrete store or a generic one brings the area traits in with
//! `use crate::store::prelude::*`.

mod audit;
mod backend;
mod health;
mod identities;
mod invitations;
mod members;
mod orgs;
mod pages;
mod people;
mod request_log;
mod resources;
mod sessions;
mod shared;
pub mod sql;
mod sqlite_log;
mod sqlite_read;
mod sqlite_write;
mod tokens;
mod user_writes;

use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use serde_json::{Map, Value};
use std::sync::Arc;

pub use audit::{Audit, AuditEvent, AuditFilter, AuditStore};
pub use backend::{PgStore, SqliteStore};
pub use health::{HealthStore, PoolStats};
pub use identities::{IdentityStore, LinkedIdentity};
pub use invitations::{
    AcceptAccount, Invitation, InvitationChange, InvitationStore, NewInvitation,
};
pub use members::{MemberDetail, MemberPage, MemberQuery, MemberStore, MEMBER_COUNT_CAP};
pub use orgs::{Org, OrgStore};
pub use people::{Account, Enrolled, Enrolment, MembershipOf, PeopleStore, SetupLink};
pub use request_log::{LogEntry, LogFilter, LogSummary, RequestLogStore};
pub use resources::{Change, GroupRef, MemberOp, Page, Record, ResourceStore, UpdateFn};
pub use sessions::{Flow, NewCookieSession, SessionStore};
pub use tokens::{AdminToken, TokenInfo, TokenStore};

pub use crate::scim::search::{ListQuery, Sort, SortOrder};

/// Declares `Store`, every area's trait at once, and `prelude`, from one list of the areas.
macro_rules! whole_store {
    ($($area:ident),+) => {
        /// The whole store: every area's trait. `DynStore` callers reach every method through it.
        pub trait Store: $($area +)+ Send + Sync + 'static {}

        impl<T> Store for T where T: $($area +)+ Send + Sync + 'static {}

        /// The area traits, for code that calls the store through a concrete or generic type
        /// (`use crate::store::prelude::*`).
        pub mod prelude {
            pub use super::{Store, $($area),+};
        }
    };
}

whole_store!(
    HealthStore,
    OrgStore,
    TokenStore,
    RequestLogStore,
    ResourceStore,
    MemberStore,
    AuditStore,
    InvitationStore,
    PeopleStore,
    SessionStore,
    IdentityStore
);

// Shared by both databases' write paths (the areas' bodies, and `sqlite_write` for SQLite).

/// Counter shards per organization and kind: concurrent creates pick one at random, so with 32
/// of them two of 32 concurrent writers rarely wait for the same row lock (Postgres).
const COUNT_SHARDS: u32 = 32;

pub(crate) fn shard() -> i64 {
    i64::from(rand::random::<u32>() % COUNT_SHARDS)
}

pub(crate) const COUNT_UPSERT: &str = "insert into resource_count (organization_id, kind, shard, n, changes) values ($1, $2, $3, $4, 1) \
     on conflict (organization_id, kind, shard) do update set n = resource_count.n + excluded.n, changes = resource_count.changes + 1";

/// A new resource id: a UUIDv7, so ids sort roughly by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub type DynStore = Arc<dyn Store>;

/// On SQLite, the file that holds the SCIM request log for the main database file `main`
/// (`scimd.db` → `scimd-requests.db`, beside it; see `sqlite_log`).
pub use sqlite_log::path_beside as request_log_file;

/// Opens the database a URL names (`sqlite:…` or `postgres://…`) and applies pending migrations.
pub async fn connect(url: &str) -> Result<DynStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(Error::Internal(anyhow::anyhow!(
            "unsupported database URL {url:?}: use sqlite:PATH or postgres://…"
        )))
    }
}

/// The indexed columns a document implies.
pub(crate) struct Columns {
    pub name: String,
    pub name_norm: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub email: Option<String>,
    /// Every `emails.value`, case-folded and without repeats (Users only).
    pub emails: Vec<String>,
    /// What the console's search looks in (Users only): see `search_text`.
    pub search: String,
}

pub(crate) fn columns(kind: Kind, doc: &Map<String, Value>) -> Columns {
    let key = match kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    };
    let name = doc
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Columns {
        name_norm: name.to_lowercase(),
        name,
        external_id: doc
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        // `active` unassigned means the membership was never switched off.
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        email: account_email(doc),
        emails: {
            let mut v: Vec<String> = doc
                .get("emails")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("value").and_then(Value::as_str))
                .map(str::to_lowercase)
                .collect();
            v.sort();
            v.dedup();
            v
        },
        search: match kind {
            Kind::User => search_text(doc),
            Kind::Group => String::new(),
        },
    }
}

/// The text a member search looks in: userName, displayName, the name parts and every
/// `emails.value`, one to a line and case-folded, so a search is a substring test on one column
/// (an FTS5 trigram index on SQLite, a pg_trgm index on Postgres).
pub(crate) fn search_text(doc: &Map<String, Value>) -> String {
    let name = doc.get("name");
    let mut parts: Vec<&str> = [
        doc.get("userName"),
        doc.get("displayName"),
        name.and_then(|n| n.get("formatted")),
        name.and_then(|n| n.get("givenName")),
        name.and_then(|n| n.get("familyName")),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    .collect();
    parts.extend(
        doc.get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("value").and_then(Value::as_str)),
    );
    parts.join("\n").to_lowercase()
}

/// The email that identifies the person behind a provisioned User: the primary email, else the
/// first, else a userName that looks like an address.
fn account_email(doc: &Map<String, Value>) -> Option<String> {
    let emails = doc.get("emails").and_then(Value::as_array);
    let pick = emails.and_then(|e| {
        e.iter()
            .find(|v| v.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| e.first())
            .and_then(|v| v.get("value"))
            .and_then(Value::as_str)
    });
    pick.or_else(|| {
        doc.get("userName")
            .and_then(Value::as_str)
            .filter(|u| u.contains('@'))
    })
    .map(str::to_owned)
}
