//! The admin API's answers as types, which the generated OpenAPI document
//! (`/admin/v1/openapi.json`) describes. Organizations, memberships and invitations are
//! serialized from these types (the console shows the same values); the other answers are built
//! as JSON by their handlers, and `tests/api/openapi.rs` holds every operation's real answers to
//! these schemas.

use crate::domain::InvitationStatus;
use crate::service::render::timestamp;
use crate::store::{Invitation, MembershipOf, Org};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A role in an organization.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleName {
    Admin,
    Member,
}

/// Whether a membership is switched on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ActiveState {
    Active,
    Inactive,
}

/// An invitation's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum InvitationState {
    Pending,
    Expired,
    Accepted,
    Revoked,
}

/// Whether this server sends mail.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Delivery {
    On,
    Off,
}

/// An organization.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Org)]
pub struct OrgView {
    pub id: String,
    pub slug: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl OrgView {
    pub fn of(o: &Org) -> Self {
        OrgView {
            id: o.id.clone(),
            slug: o.slug.clone(),
            name: o.name.clone(),
            created_at: timestamp(o.created_at),
        }
    }
}

/// One of a person's memberships: the organization's fields, and the person's member id, role and status there.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Membership)]
pub struct MembershipView {
    /// The organization's id
    pub id: String,
    pub slug: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The person's SCIM User id in the organization
    pub member_id: String,
    #[schema(value_type = RoleName, inline)]
    pub role: String,
    #[schema(value_type = ActiveState, inline)]
    pub status: String,
}

impl MembershipView {
    pub fn of(m: &MembershipOf) -> Self {
        let o = &m.org;
        MembershipView {
            id: o.id.clone(),
            slug: o.slug.clone(),
            name: o.name.clone(),
            created_at: timestamp(o.created_at),
            member_id: m.member_id.clone(),
            role: m.role.clone(),
            status: if m.active { "active" } else { "inactive" }.to_owned(),
        }
    }
}

/// Defines views that share fields: `shared_fields! { first { common fields } View { its own
/// fields } ... }` makes each view a struct with the common fields, then its own (`last`: its
/// own, then the common ones).
macro_rules! shared_fields {
    (@one [$($pre:tt)*] [$($post:tt)*] $(#[$attr:meta])* $name:ident { $($own:tt)* }) => {
        #[derive(Serialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        $(#[$attr])*
        pub struct $name {
            $($pre)*
            $($own)*
            $($post)*
        }
    };
    (@each $pre:tt $post:tt) => {};
    (@each $pre:tt $post:tt $(#[$attr:meta])* $name:ident { $($own:tt)* } $($rest:tt)*) => {
        shared_fields!(@one $pre $post $(#[$attr])* $name { $($own)* });
        shared_fields!(@each $pre $post $($rest)*);
    };
    (first { $($common:tt)* } $($views:tt)*) => {
        shared_fields!(@each [$($common)*] [] $($views)*);
    };
    (last { $($common:tt)* } $($views:tt)*) => {
        shared_fields!(@each [] [$($common)*] $($views)*);
    };
}

shared_fields! {
    first {
        pub id: String,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        #[schema(value_type = RoleName, inline)]
        pub role: String,
        /// Group (team) ids the member joins on acceptance
        pub groups: Vec<String>,
        #[schema(value_type = InvitationState, inline)]
        pub status: String,
        #[schema(format = DateTime)]
        pub expires_at: String,
        #[schema(format = DateTime)]
        pub accepted_at: Option<String>,
        pub invited_by: String,
        #[schema(format = DateTime)]
        pub created_at: String,
        #[schema(format = DateTime)]
        pub updated_at: String,
    }
    /// An invitation. The answers that could have mailed it carry `emailDelivery` (and, when it is `off`, `deliveryNote`).
    #[schema(as = Invitation)]
    InvitationView {
        /// Whether this server sends mail. `off`: nothing was mailed; the person sees pending invitations after signing in (GET /me/invitations) and the operator reads undelivered mail with `scimd mail list`
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Delivery, inline, required = false)]
        pub email_delivery: Option<String>,
        /// With `emailDelivery: off`, what that means, in words
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = String, required = false)]
        pub delivery_note: Option<String>,
    }

    /// One of the signed-in person's invitations, with its organization.
    #[allow(dead_code)]
    MyInvitation {
        pub organization: InvitingOrg,
    }

    /// One invitation of a list that was created; `result` is 201.
    #[allow(dead_code)]
    InvitationCreated {
        #[schema(value_type = Delivery, inline)]
        pub email_delivery: String,
        /// With `emailDelivery: off`, what that means, in words
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = String, required = false)]
        pub delivery_note: Option<String>,
        /// 201
        pub result: u16,
    }
}

impl InvitationView {
    /// An invitation, with `expired` for a pending one past its expiry.
    pub fn of(inv: &Invitation, now: i64) -> Self {
        let ts = timestamp;
        InvitationView {
            id: inv.id.clone(),
            email: inv.email.clone(),
            first_name: inv.first_name.clone(),
            last_name: inv.last_name.clone(),
            role: inv.role.clone(),
            groups: inv.groups.clone(),
            status: InvitationStatus::of(&inv.status, inv.expires_at, now)
                .as_str()
                .to_owned(),
            expires_at: ts(inv.expires_at),
            accepted_at: inv.accepted_at.map(ts),
            invited_by: inv.invited_by.clone(),
            created_at: ts(inv.created_at),
            updated_at: ts(inv.updated_at),
            email_delivery: None,
            delivery_note: None,
        }
    }
}

fn value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// An organization.
pub fn org_json(o: &Org) -> Value {
    value(OrgView::of(o))
}

/// One of a person's memberships, as their organization list shows it.
pub fn membership_json(m: &MembershipOf) -> Value {
    value(MembershipView::of(m))
}

/// An invitation, with `expired` for a pending one past its expiry.
pub fn invitation_json(inv: &Invitation, now: i64) -> Value {
    value(InvitationView::of(inv, now))
}

// The other answers of the admin API, as the generated OpenAPI document describes them. Their
// handlers build them as JSON; `tests/api/openapi.rs` checks every operation's real answers
// against these schemas (no field more, none of the required ones less).

/// Every refusal of the admin API.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Error)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// The error code: `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `last_admin`, `rate_limited`, `too_large`, `unavailable` or `internal`
    pub error: String,
    pub message: String,
    /// The input at fault, when one is
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub field: Option<String>,
}

/// Organizations: all of them for a provider admin; a person's memberships for a person.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct OrgList {
    pub items: Vec<OrgItem>,
}

/// An organization, or for a person one of their memberships.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OrgItem {
    Membership(MembershipView),
    Org(OrgView),
}

/// A person's account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    #[schema(format = DateTime)]
    pub last_active_at: Option<String>,
}

/// The signed-in person's account and memberships.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Me {
    pub account: Account,
    pub memberships: Vec<MembershipView>,
}

/// The token type of an access token.
#[derive(Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

/// A new session: the account, its memberships and an access token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedIn {
    pub account: Account,
    pub memberships: Vec<MembershipView>,
    /// Send as `Authorization: Bearer <accessToken>`
    pub access_token: String,
    #[schema(inline)]
    pub token_type: TokenType,
    /// Seconds the access token works (900)
    pub expires_in: i64,
}

/// The answer to a sign-up or a password-reset request, whatever the address.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckYourMail {
    pub message: String,
}

/// The organization an invitation is from.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct InvitingOrg {
    pub slug: String,
    pub name: String,
}

/// The signed-in person's pending invitations.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MyInvitations {
    pub items: Vec<MyInvitation>,
}

/// The membership an accepted invitation made.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Joined {
    pub slug: String,
    pub name: String,
    pub member_id: String,
    #[schema(value_type = RoleName, inline)]
    pub role: String,
    #[schema(value_type = ActiveState, inline)]
    pub status: String,
}

/// One membership a new account got.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct AccountMembership {
    /// The organization's slug
    pub org: String,
    pub member_id: String,
    #[schema(value_type = RoleName, inline)]
    pub role: String,
}

shared_fields! {
    last {
        #[schema(value_type = Delivery, inline)]
        pub email_delivery: String,
        /// With `emailDelivery: off`, what that means, in words
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = String, required = false)]
        pub delivery_note: Option<String>,
    }
    /// A created account and its new memberships.
    #[allow(dead_code)]
    AccountCreated {
        pub email: String,
        pub memberships: Vec<AccountMembership>,
    }
    /// The organization's invitations, oldest first, and whether the server sends mail.
    #[allow(dead_code)]
    InvitationList {
        pub items: Vec<InvitationView>,
    }
    /// Who was (or would be) invited from a CSV, and each skipped row.
    #[allow(dead_code)]
    ImportReport {
        pub dry_run: bool,
        pub invited: Vec<ImportedRow>,
        pub skipped: Vec<SkippedRow>,
    }
}

/// A group a member belongs to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct MemberGroup {
    pub id: String,
    pub display_name: Option<String>,
}

/// A member of an organization. The answer that added them carries `emailDelivery` (and, when it is `off`, `deliveryNote`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct Member {
    pub id: String,
    pub user_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = RoleName, inline)]
    pub role: String,
    /// Whether the membership is switched on
    #[schema(value_type = ActiveState, inline)]
    pub status: String,
    pub groups: Vec<MemberGroup>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// When the person last acted in this organization (never their activity elsewhere); null until they do
    #[schema(format = DateTime)]
    pub last_active_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Delivery, inline, required = false)]
    pub email_delivery: Option<String>,
    /// With `emailDelivery: off`, what that means, in words
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub delivery_note: Option<String>,
}

/// A page of members.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct MemberPage {
    pub total_results: i64,
    pub start_index: i64,
    pub items: Vec<Member>,
}

/// A member the bulk removal did not remove, and why.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RemoveFailure {
    pub id: String,
    pub status: u16,
    /// The error code, as in `Error` (`forbidden` for the caller's own membership, `last_admin`, `not_found`, ...)
    pub error: String,
    pub message: String,
}

/// What was removed and what was refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RemoveResult {
    pub removed: Vec<String>,
    pub failed: Vec<RemoveFailure>,
}

/// One entry of the audit log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditEvent {
    pub id: String,
    /// token:<id> (an identity provider), admin:<id> (a provider admin), account:<id> (a person signed in) or signup:<email> (someone signing up)
    pub actor: String,
    /// What was done, e.g. `User.create`, `User.update`, `User.delete`, `Group.update`
    pub action: String,
    /// The resource the change was about, when there is one
    pub target: Option<String>,
    pub request_id: Option<String>,
    #[schema(format = DateTime)]
    pub time: String,
}

/// A page of audit events.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditPage {
    pub total_results: i64,
    /// Without `cursor`
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, required = false)]
    pub start_index: Option<i64>,
    pub items: Vec<AuditEvent>,
    /// With `cursor`, on a full page: pass it as `cursor` for the next page
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub next_cursor: Option<String>,
}

/// One invitation of a list that was refused: the error, its status as `result`, and the address.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct InvitationRefused {
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub field: Option<String>,
    /// The error's status
    pub result: u16,
    /// The `email` as given (any JSON value, or null when there was none)
    pub email: Value,
}

/// One item of a list of invitations: the invitation or its error.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
// Only described, never built: its size does not matter.
#[allow(dead_code, clippy::large_enum_variant)]
pub enum InvitationResult {
    Created(InvitationCreated),
    Refused(InvitationRefused),
}

/// The answer to a list of invitations: each one or its error, in the order given.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct InvitationBatch {
    pub items: Vec<InvitationResult>,
}

/// The answer to `POST /orgs/{slug}/invitations`: the invitation, or for a list each one's outcome.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
// Only described, never built: its size does not matter.
#[allow(dead_code, clippy::large_enum_variant)]
pub enum InvitationsCreated {
    One(InvitationView),
    Many(InvitationBatch),
}

/// A row of a CSV import that was (or would be) invited.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ImportedRow {
    pub line: u64,
    pub email: String,
    /// The invitation's id (not on a dry run)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub id: Option<String>,
}

/// Why a CSV row was skipped.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SkipReason {
    InvalidEmail,
    UnknownGroups,
    DuplicateRow,
    AlreadyMember,
    AlreadyInvited,
    UnreadableRow,
    InternalError,
}

/// A row of a CSV import that was skipped.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SkippedRow {
    pub line: u64,
    #[schema(inline)]
    pub reason: SkipReason,
    pub message: String,
}

/// A team (SCIM Group). `members` is in the answers that create or change it, not in lists.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct Group {
    pub id: String,
    pub display_name: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Member ids (SCIM User ids)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<String>, required = false)]
    pub members: Option<Vec<String>>,
    /// How many members the group has (in lists and in GET of one group)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, required = false)]
    pub member_count: Option<i64>,
}

/// One group, its member count and a page of its members.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct GroupDetail {
    pub id: String,
    pub display_name: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub member_count: i64,
    pub members: Vec<Member>,
    /// On a full page: pass it as `cursor` for the next page
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub next_cursor: Option<String>,
}

/// A page of groups.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct GroupPage {
    pub total_results: i64,
    pub start_index: i64,
    pub items: Vec<Group>,
}

/// How the request log is kept.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestLogSettings {
    pub enabled: bool,
    pub max_rows: i64,
    pub days: i64,
    pub body_bytes: usize,
    /// Successful reads logged one by one per second; past it they are counted (0: every read is logged)
    pub reads_per_second: u32,
    pub dropped: u64,
}

/// The organization's SCIM connection.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    pub org: String,
    pub scim_base_url: String,
    pub request_log: RequestLogSettings,
}

/// A provisioning token's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

shared_fields! {
    first {
        pub id: String,
        pub name: String,
        #[schema(value_type = TokenStatus, inline)]
        pub status: String,
        #[schema(format = DateTime)]
        pub created_at: String,
        #[schema(format = DateTime)]
        pub expires_at: Option<String>,
        /// Noted at most once a minute per token, so it may be up to a minute behind
        #[schema(format = DateTime)]
        pub last_used_at: Option<String>,
        #[schema(format = DateTime)]
        pub revoked_at: Option<String>,
        /// The token this one replaced by rotation
        pub rotated_from: Option<String>,
    }
    /// A provisioning token as listed: never its secret or digest.
    Token {}

    /// A new provisioning token, with its secret.
    #[allow(dead_code)]
    TokenWithSecret {
        /// The secret: shown in this answer only, never again
        pub token: String,
    }
}

/// A page of tokens, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct TokenPage {
    pub total_results: i64,
    pub start_index: i64,
    pub items: Vec<Token>,
}

/// The kind of resource a request concerns.
#[derive(Serialize, ToSchema)]
pub enum ResourceType {
    User,
    Group,
}

/// The User or Group a request concerns.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogResource {
    #[serde(rename = "type")]
    #[schema(inline)]
    pub kind: ResourceType,
    pub id: String,
}

shared_fields! {
    first {
        pub id: String,
        #[schema(format = DateTime)]
        pub time: String,
        pub token_id: Option<String>,
        pub token_name: Option<String>,
        pub method: String,
        /// The request path with its query, the filter aside
        pub path: String,
        pub filter: Option<String>,
        pub status: i64,
        pub scim_type: Option<String>,
        pub detail: Option<String>,
        pub duration_ms: f64,
        pub user_name: Option<String>,
        /// The User or Group the request concerns, when known
        pub resource: Option<LogResource>,
    }
    /// A SCIM request as the request log keeps it.
    LogEntry {}

    /// One request in full.
    #[allow(dead_code)]
    LogEntryDetail {
        pub client_ip: Option<String>,
        pub user_agent: Option<String>,
        pub request_id: Option<String>,
        /// Redacted (passwords, tokens, writeOnly and returned:never attributes) and cut to a bound
        pub request_body: Option<String>,
        /// Redacted and cut like the request body
        pub response_body: Option<String>,
    }
}

/// A page of the request log, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct LogPage {
    pub total_results: i64,
    pub start_index: i64,
    pub items: Vec<LogEntry>,
    pub enabled: bool,
}

/// Requests with one status.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StatusCount {
    pub status: i64,
    pub requests: i64,
}

/// One of the commonest errors.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct TopError {
    pub status: i64,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub requests: i64,
}

/// The request log's last 24 hours.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct LogSummary {
    #[schema(format = DateTime)]
    pub since: String,
    pub requests: i64,
    pub errors: i64,
    pub by_status: Vec<StatusCount>,
    pub top_errors: Vec<TopError>,
    /// Entries this server dropped since it started because its queue was full
    pub dropped: u64,
}

/// One step of the connection test.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct TestStep {
    pub name: String,
    pub request: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub detail: String,
    pub duration_ms: f64,
}

/// The connection test's outcome, step by step.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct TestResult {
    pub ok: bool,
    pub scim_base_url: String,
    pub temporary_token: bool,
    pub steps: Vec<TestStep>,
}
