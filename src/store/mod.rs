//! Storage behind one trait with two implementations, SQLite (the default, one machine) and
//! Postgres (several stateless replicas). Both share the SQL text and the filter compiler
//! (`sql.rs`); the few dialect differences are spelled out there.

mod imp;
mod pages;
pub mod sql;
mod sqlite_log;
mod sqlite_read;
mod sqlite_write;

use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::Arc;

pub use imp::{PgStore, SqliteStore};

// Shared by both databases' write paths (`imp` for Postgres, `sqlite_write` for SQLite).

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

#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub organization_id: String,
    pub org_slug: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The token this one replaced by rotation (the old one works until it is revoked).
    pub rotated_from: Option<String>,
}

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
}

/// A provider admin token, as stored (never the token itself).
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// An invitation to join an organization, as stored (never the link secret itself).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `admin` or `member`.
    pub role: String,
    /// Team ids the membership joins on acceptance.
    pub groups: Vec<String>,
    /// `pending`, `accepted` or `revoked` (an expired invitation stays `pending`).
    pub status: String,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub invited_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new invitation holds; the caller has validated it.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub groups: Vec<String>,
    pub secret_digest: String,
    pub expires_at: i64,
}

/// A change to a pending invitation; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct InvitationChange {
    pub role: Option<String>,
    pub groups: Option<Vec<String>>,
    /// `revoked` to revoke.
    pub status: Option<String>,
    /// A new link secret's digest (resend): the old link stops working.
    pub secret_digest: Option<String>,
    pub expires_at: Option<i64>,
}

/// How an accepted invitation's account is set up: a new password (and names) for an account
/// without one, or nothing for an account whose password the caller has verified.
#[derive(Debug, Clone)]
pub struct AcceptAccount {
    pub given_name: String,
    pub family_name: String,
    /// An Argon2id PHC string; `None` when the account already has a password.
    pub password_hash: Option<String>,
}

/// Decides an update from the current record, inside the write transaction. Pure: it may refuse
/// (If-Match, mutability, PATCH errors) but does no I/O.
pub type UpdateFn<'a> = &'a (dyn Fn(&Record) -> Result<Change> + Send + Sync);

pub use crate::scim::search::{ListQuery, Sort, SortOrder};

/// Which members the console's Users page lists; each field narrows, `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct MemberQuery {
    /// Part of a name or address, matched case-insensitively, every character taken literally.
    pub search: Option<String>,
    pub active: Option<bool>,
    /// `Some(true)`: admins only; `Some(false)`: everyone else.
    pub admin: Option<bool>,
    /// A group's id: its members only (another organization's group has none here).
    pub group: Option<String>,
    /// Only members after this (created_at, id), in creation order.
    pub after: Option<(i64, String)>,
    pub count: i64,
    /// For a search of one or two characters (no trigram to look up): the most members tested
    /// for one page; 0 tests every member.
    pub short_walk: i64,
}

/// A page of the console's member list.
#[derive(Debug, Clone)]
pub struct MemberPage {
    /// How many members match: exact when nothing filters, else counted up to
    /// `MEMBER_COUNT_CAP + 1`; `None` for a search of one or two characters (not counted).
    pub total: Option<i64>,
    pub records: Vec<Record>,
    /// A short search stopped after `short_walk` members with the page not full: the last
    /// member tested, where the next page goes on.
    pub resume: Option<(i64, String)>,
}

/// Counting matches stops here: a list says "more than" past it, so a filter that matches most
/// of 100,000 members costs what one matching a thousand does.
pub const MEMBER_COUNT_CAP: i64 = 1000;

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

/// Readiness and the figures `/metrics` shows.
#[async_trait]
pub trait HealthStore: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    /// Emails waiting in the outbox, for `/metrics`.
    async fn outbox_pending(&self) -> Result<i64>;
    /// Each connection pool's use, for `/metrics`.
    async fn pool_stats(&self) -> Vec<PoolStats>;
    /// Test hook: a read that never ends by itself, run like every other read (same pool, same
    /// request deadline), so tests can show the deadline stops it and frees its connection.
    #[doc(hidden)]
    async fn endless_read(&self) -> Result<()>;
}

/// Organizations.
#[async_trait]
pub trait OrgStore: Send + Sync {
    async fn create_org(&self, slug: &str, name: &str, now: i64) -> Result<Org>;
    async fn list_orgs(&self) -> Result<Vec<Org>>;
    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>>;
    async fn org_count(&self) -> Result<i64>;
}

/// Provisioning tokens and provider admin tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(
        &self,
        org: &Org,
        name: &str,
        digest: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<TokenInfo>;
    async fn list_tokens(&self, org_id: &str) -> Result<Vec<TokenInfo>>;
    /// A page of the organization's tokens, oldest first, leaving out those revoked before
    /// `revoked_since`; and how many there are without the page.
    async fn token_page(
        &self,
        org_id: &str,
        revoked_since: i64,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<TokenInfo>)>;
    /// Revokes a token by id alone (the operator's CLI), recording it in its organization's
    /// audit log as `operator`; false when no unrevoked token has that id.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool>;
    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenInfo>>;
    /// Creates a token and records it in the audit log, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn create_org_token(
        &self,
        org: &Org,
        name: &str,
        digest: &str,
        expires_at: Option<i64>,
        rotated_from: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<TokenInfo>;
    /// One token of an organization (another organization's id finds nothing).
    async fn org_token(&self, org_id: &str, id: &str) -> Result<Option<TokenInfo>>;
    /// Revokes a token of the organization and records it in the audit log, in one transaction;
    /// `None` when the organization has no such token. Revoking a revoked token changes nothing.
    async fn revoke_org_token(
        &self,
        org_id: &str,
        id: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<TokenInfo>>;
    /// Notes when a token was last used (callers throttle this: not a write per request).
    async fn touch_token(&self, id: &str, now: i64) -> Result<()>;
    async fn create_admin_token(&self, name: &str, digest: &str, now: i64) -> Result<AdminToken>;
    async fn admin_token_by_digest(&self, digest: &str) -> Result<Option<AdminToken>>;
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>>;
    /// Revokes a provider admin token; false when no unrevoked token has that id.
    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool>;
    /// Adds `want` requests to a provisioning token's reservations in the one-second window
    /// starting at `window_start` (a new window starts from zero) and returns the window's total.
    async fn reserve_requests(&self, token_id: &str, window_start: i64, want: i64) -> Result<i64>;
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
}

/// The console's view of an organization's members.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// A page of an organization's members for the console, in creation order.
    async fn list_members(&self, org: &str, q: &MemberQuery) -> Result<MemberPage>;
    /// For members of an organization: when each last acted in this organization.
    async fn member_details(&self, org: &str, ids: &[String]) -> Result<Vec<MemberDetail>>;
    /// Notes that a member acted in their organization (at most once a minute is written).
    async fn touch_membership(&self, member_id: &str, now: i64) -> Result<()>;
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

/// Invitations.
#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// Creates an invitation and enqueues its email in one transaction. 409 when the email
    /// already has an active membership or a pending invitation in the organization.
    async fn create_invitation(
        &self,
        org: &str,
        inv: &NewInvitation,
        email: &crate::email::OutboxMessage,
        now: i64,
        audit: &Audit,
    ) -> Result<Invitation>;
    /// Changes a pending invitation, enqueues `email` if given and records `action` in the
    /// audit log, in one transaction. 404 when there is no such invitation, 409 when it is no
    /// longer pending.
    #[allow(clippy::too_many_arguments)]
    async fn change_invitation(
        &self,
        org: &str,
        id: &str,
        change: &InvitationChange,
        email: Option<&crate::email::OutboxMessage>,
        action: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Invitation>;
    async fn get_invitation(&self, org: &str, id: &str) -> Result<Option<Invitation>>;
    async fn list_invitations(&self, org: &str) -> Result<Vec<Invitation>>;
    /// A pending, unexpired invitation by the digest of its link secret, with its organization.
    async fn open_invitation(&self, digest: &str, now: i64) -> Result<Option<(Invitation, Org)>>;
    /// Claims the invitation (only one caller can) and creates the membership with the invited
    /// role and groups, linking or setting up the account, in one transaction. 404 when the
    /// invitation is no longer pending or has expired.
    async fn accept_invitation(
        &self,
        inv: &Invitation,
        doc: &Map<String, Value>,
        account: &AcceptAccount,
        now: i64,
        audit: &Audit,
    ) -> Result<Record>;
    /// Takes a short claim (until `until`) on a pending, unexpired invitation, so that only one
    /// of concurrent accepts hashes or checks a password; false when it is taken or not open.
    async fn claim_invitation(&self, id: &str, now: i64, until: i64) -> Result<bool>;
    /// Gives a claim back (the password was wrong, or the accept failed).
    async fn release_invitation(&self, id: &str, until: i64) -> Result<()>;
    /// Pending, unexpired invitations addressed to this email, with their organizations.
    async fn invitations_for(&self, email: &str, now: i64) -> Result<Vec<(Invitation, Org)>>;
}

/// People: accounts that sign in to the admin API and the console.
#[async_trait]
pub trait PeopleStore: Send + Sync {
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
    async fn account(&self, id: &str) -> Result<Option<Account>>;
    /// Every membership of an account, with its organization, role and switch.
    async fn memberships_of(&self, account_id: &str) -> Result<Vec<MembershipOf>>;
    /// Sets an account's password, revokes all its sessions and ends every open setup or reset
    /// link, in one transaction.
    async fn set_password(&self, account_id: &str, hash: &str, now: i64) -> Result<()>;
    /// Adds a person (found by email or created) to organizations with roles, optionally to a new
    /// organization they found as its admin, with an account-setup link and its email when the
    /// account has no password yet. All or nothing.
    async fn enrol(&self, e: &Enrolment, now: i64, audit: &Audit) -> Result<Enrolled>;
    /// Writes a setup link for an existing account and its email, in one transaction (password
    /// reset, or a sign-up by someone who already has an account).
    async fn send_setup(&self, account_id: &str, link: &SetupLink, now: i64) -> Result<()>;
    /// The account an open (unused, unexpired) setup link belongs to.
    async fn open_setup(&self, digest: &str, now: i64) -> Result<Option<Account>>;
    /// Claims an open setup link (a conditional update: of concurrent callers one wins) and
    /// returns its account; `None` when it is not open. Claimed before any password is hashed.
    async fn claim_setup(&self, digest: &str, now: i64) -> Result<Option<String>>;
    /// Finishes a claimed setup link: sets names and password, ends every other open link of
    /// the account and revokes its sessions, in one transaction.
    async fn finish_setup(
        &self,
        account_id: &str,
        given_name: &str,
        family_name: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<()>;
    /// The account with this email, created (with no membership) when there is none.
    async fn account_for_email(&self, email: &str, now: i64) -> Result<Account>;
    /// Sets an account's own names (`None` clears one).
    async fn set_account_names(
        &self,
        account_id: &str,
        given_name: Option<&str>,
        family_name: Option<&str>,
        now: i64,
    ) -> Result<()>;
}

/// Sessions, sign-in limits and provider sign-in flows.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The secret that signs access tokens: the stored one, or `candidate` when none is stored
    /// yet (replicas starting together agree on whichever was written first).
    async fn signing_secret(&self, candidate: &str, now: i64) -> Result<String>;
    /// Starts a session for a sign-in and marks the account active; returns the session id.
    async fn create_session(&self, account_id: &str, expires_at: i64, now: i64) -> Result<String>;
    /// Whether a session is open (not revoked, not expired); notes the account as active.
    async fn session_open(&self, id: &str, account_id: &str, now: i64) -> Result<bool>;
    /// Revokes one session, or (`only: None`) every open session of the account.
    async fn revoke_sessions(&self, account_id: &str, only: Option<&str>, now: i64) -> Result<u64>;
    /// Counts one attempt under `key` in the fixed window starting at `window_start` and returns
    /// the attempts counted in that window so far, this one included, never more than
    /// `limit + 1`: past its limit a key stops growing. Atomic across replicas.
    async fn throttle(&self, key: &str, window_start: i64, limit: i64) -> Result<i64>;
    async fn clear_throttle(&self, key: &str) -> Result<()>;
    /// Records a sign-in started at a provider (and clears flows long expired).
    async fn start_flow(&self, flow: &Flow, now: i64) -> Result<()>;
    /// Uses the flow a browser cookie names, once: `None` when unknown, used or expired.
    async fn take_flow(&self, browser_digest: &str, now: i64) -> Result<Option<Flow>>;
    /// Starts a browser session, named by the digest of its cookie's secret; returns its id.
    async fn create_cookie_session(&self, s: &NewCookieSession, now: i64) -> Result<String>;
    /// The open browser session a cookie names, as `(session id, account id)`; its idle
    /// deadline slides to `now + idle`.
    async fn cookie_session(
        &self,
        cookie_digest: &str,
        now: i64,
        idle: i64,
    ) -> Result<Option<(String, String)>>;
}

/// Provider identities linked to accounts.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The account a provider identity is linked to.
    async fn identity_account(&self, provider: &str, subject: &str) -> Result<Option<String>>;
    /// The provider identities linked to an account, oldest first.
    async fn identities_of(&self, account_id: &str) -> Result<Vec<LinkedIdentity>>;
    /// Unlinks a provider identity from an account, in one transaction that holds the account's
    /// row (so two unlinks at once cannot remove both last ways in): 404 when the account has no
    /// such link, 409 when it is the account's last way to sign in (no password, no other link).
    async fn unlink_identity(
        &self,
        account_id: &str,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> Result<()>;
    /// Links a provider identity to an account unless it is linked already; returns the account
    /// it is linked to (the first link wins, so concurrent first sign-ins agree).
    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        account_id: &str,
        email: &str,
        now: i64,
    ) -> Result<String>;
}

/// The whole store: every area's trait. `DynStore` callers reach every method through it.
pub trait Store:
    HealthStore
    + OrgStore
    + TokenStore
    + RequestLogStore
    + ResourceStore
    + MemberStore
    + AuditStore
    + InvitationStore
    + PeopleStore
    + SessionStore
    + IdentityStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: HealthStore
        + OrgStore
        + TokenStore
        + RequestLogStore
        + ResourceStore
        + MemberStore
        + AuditStore
        + InvitationStore
        + PeopleStore
        + SessionStore
        + IdentityStore
        + Send
        + Sync
        + 'static
{
}

/// The area traits, for code that calls the store through a concrete or generic type
/// (`use crate::store::prelude::*`).
pub mod prelude {
    pub use super::{
        AuditStore, HealthStore, IdentityStore, InvitationStore, MemberStore, OrgStore,
        PeopleStore, RequestLogStore, ResourceStore, SessionStore, Store, TokenStore,
    };
}

/// A sign-in provider's identity linked to an account.
#[derive(Debug, Clone)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    /// The verified address it was first linked by.
    pub email: String,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

/// A sign-in at a provider, between the redirect there and the callback.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub browser_digest: String,
    pub state_digest: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at: i64,
}

/// A browser session to start.
#[derive(Debug, Clone)]
pub struct NewCookieSession {
    pub account_id: String,
    pub cookie_digest: String,
    /// `password`, or the provider's name.
    pub method: String,
    /// The latest it may last, used or not.
    pub expires_at: i64,
    pub idle_until: i64,
}

/// A person's account, as sign-in and profile need it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub password_hash: Option<String>,
    pub last_active_at: Option<i64>,
}

/// One of an account's memberships.
#[derive(Debug, Clone)]
pub struct MembershipOf {
    pub member_id: String,
    pub org: Org,
    pub role: String,
    pub active: bool,
    /// When the person last acted in this organization.
    pub last_active_at: Option<i64>,
}

/// What `enrol` writes: the membership document (a SCIM User whose email names the person),
/// the organizations and roles, a new organization to found, and the account-setup link.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub email: String,
    pub doc: Map<String, Value>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `(slug, name)` of an organization to create, with the person as its admin.
    pub found: Option<(String, String)>,
    /// `(organization id, role)` for each existing organization to join.
    pub join: Vec<(String, String)>,
    pub setup: Option<SetupLink>,
}

#[derive(Debug, Clone)]
pub struct SetupLink {
    pub digest: String,
    pub expires_at: i64,
    pub email: crate::email::OutboxMessage,
}

#[derive(Debug, Clone)]
pub struct Enrolled {
    pub account_id: String,
    pub founded: Option<Org>,
    /// `(organization id, member id)` for each membership created.
    pub members: Vec<(String, String)>,
    /// Whether the setup link was written (only for an account without a password). Never shown
    /// to the organization: it would tell whether the address has a password.
    pub setup_sent: bool,
}

/// What an organization sees of a member beyond the SCIM document: only its own view.
#[derive(Debug, Clone)]
pub struct MemberDetail {
    pub member_id: String,
    /// When the person last acted in this organization (never their activity elsewhere).
    pub last_active_at: Option<i64>,
}

pub type DynStore = Arc<dyn Store>;

/// How much of one connection pool is in use.
#[derive(Debug, Clone)]
pub struct PoolStats {
    /// `read`, `auth` and `write` (SQLite); `main` and `auth` (Postgres).
    pub name: &'static str,
    pub in_use: usize,
    pub open: usize,
    pub max: usize,
}

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
