//! One error type for every layer, transport-free: a [`ErrorKind`] that says what went wrong, a
//! `scimType` where RFC 7644 has one, the detail the client reads and the input at fault.
//! `http::errors` turns it into an answer (the SCIM body of RFC 7644 §3.12 or the admin API's
//! `{error, message, field}`); internal causes are logged there and never sent to the client.

use serde_json::json;

/// RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    /// RFC 9865: a cursor scimd did not issue.
    InvalidCursor,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
        }
    }
}

/// What went wrong, in the domain's words. The edges turn a kind into an answer: `http` into a
/// status and headers, the SCIM renderer into an RFC 7644 §3.12 body, the admin API into its
/// `{error, message, field}` code. Nothing here knows about the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is malformed or a value is not acceptable.
    Invalid,
    /// No credentials, or credentials that identify no one.
    Unauthorized,
    /// The caller is known but may not do this.
    Forbidden,
    /// No such resource (or endpoint) for this caller.
    NotFound,
    /// The endpoint exists but does not take this method.
    MethodNotAllowed,
    /// The change clashes with what is stored.
    Conflict(Conflict),
    /// The change would leave an organization without an active admin.
    LastAdmin,
    /// `If-Match` names a version that is no longer current.
    PreconditionFailed,
    /// More than a limit allows in one request.
    TooLarge,
    /// Over a rate limit; the client may retry after this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// A service scimd depends on (a sign-in provider) failed.
    Upstream,
    /// Not now: the database is unreachable, the request ran out of time, or a queue is full.
    /// The request may succeed when retried.
    Unavailable,
    /// A fault of scimd's own; the cause is in the log, never in an answer.
    Internal,
}

/// Which clash a [`ErrorKind::Conflict`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// A User's userName is taken in the organization.
    UserName,
    /// A Group's displayName is taken in the organization.
    GroupName,
    /// The person already has a membership (a User) in the organization.
    Membership,
    /// The email already has a pending invitation to the organization.
    Invitation,
    /// An organization with this slug exists.
    Slug,
    /// A resource is not in the state the change needs (an invitation no longer pending, a
    /// token already revoked, a bulk reference that cannot be resolved).
    State,
    /// Another unique index.
    Other,
}

impl ErrorKind {
    /// The status code RFC 7644 and RFC 9110 give this kind; SCIM error bodies carry it
    /// (RFC 7644 §3.12), inside a BulkResponse too.
    pub fn status_code(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict(_) | ErrorKind::LastAdmin => 409,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::TooLarge => 413,
            ErrorKind::RateLimited { .. } => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Upstream => 502,
            ErrorKind::Unavailable => 503,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error the client caused or must know about; `detail` tells it what to fix.
    #[error("{detail}")]
    Refused {
        kind: ErrorKind,
        scim_type: Option<ScimType>,
        detail: String,
        /// The one input at fault, when there is one (the admin API and the console name it).
        field: Option<&'static str>,
    },
    /// Anything else: logged, answered with an opaque 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Error::Refused {
            kind,
            scim_type,
            detail: detail.into(),
            field: None,
        }
    }
    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, Some(scim_type), detail)
    }
    /// 400 `invalidValue` naming the input at fault.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail).on_field(field)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, None, detail)
    }
    /// 409 `uniqueness` for a clash the caller names.
    pub fn conflict_of(which: Conflict, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Conflict(which),
            Some(ScimType::Uniqueness),
            detail,
        )
    }
    /// 409: the resource is not in the state this change needs.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::conflict_of(Conflict::State, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, None, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, None, detail)
    }
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, None, detail)
    }
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::MethodNotAllowed, None, detail)
    }
    pub fn rate_limited(retry_after_secs: u64, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::RateLimited { retry_after_secs }, None, detail)
    }
    /// A sign-in provider (or another service scimd calls) failed.
    pub fn upstream(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Upstream, None, detail)
    }
    /// 409 for a change that would leave an organization without an active admin.
    pub fn last_admin() -> Self {
        Self::new(
            ErrorKind::LastAdmin,
            None,
            "this is the organization's last active admin: it cannot be removed, deactivated or demoted \
             until another member is an active admin",
        )
    }
    /// The database cannot be reached for the moment, the request ran out of time, or a queue
    /// is full. The client is told to retry (`Retry-After`, RFC 9110 §10.2.3); a cause goes to
    /// the log, never to the client.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, None, detail)
    }
    pub fn precondition_failed() -> Self {
        Self::new(
            ErrorKind::PreconditionFailed,
            None,
            "the resource has changed since the version named in If-Match; read it again and retry",
        )
    }
    /// Names the input at fault (kept only on a refusal).
    pub fn on_field(mut self, name: &'static str) -> Self {
        if let Error::Refused { field, .. } = &mut self {
            *field = Some(name);
        }
        self
    }
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Refused { kind, .. } => *kind,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
    pub fn scim_type(&self) -> Option<ScimType> {
        match self {
            Error::Refused { scim_type, .. } => *scim_type,
            Error::Internal(_) => None,
        }
    }
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Refused { field, .. } => *field,
            Error::Internal(_) => None,
        }
    }
    /// What the client is told: the refusal's detail, or an opaque line for an internal fault.
    pub fn detail(&self) -> &str {
        match self {
            Error::Refused { detail, .. } => detail,
            Error::Internal(_) => "internal server error; the server log has the cause",
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.is_unique_violation() {
                return on_unique_violation(db.constraint(), db.message());
            }
        }
        if database_unreachable(&e) {
            tracing::warn!(error = %e, "the database is unreachable");
            return Error::unavailable(
                "the database is unreachable for the moment; retry the request shortly",
            );
        }
        Error::Internal(e.into())
    }
}

/// Seconds a client is asked to wait before retrying a 503 (`Retry-After`). Long enough for a
/// database restart or a failover to finish, short enough that provisioning barely stalls.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Whether an error means the database cannot be reached right now, rather than that this
/// request is wrong: no connection could be had in time, the connection broke, or Postgres is
/// shutting down, starting up or ended the session (SQLSTATE class 08 "connection exception",
/// 57P01–57P03, 53300 "too many connections"). Such a request may succeed when retried.
fn database_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Internal(e.into())
    }
}

/// The one place where a unique index becomes a 409 `uniqueness` (RFC 7644 §3.3).
/// Postgres names the index; SQLite names the columns, so both are matched.
pub(crate) fn on_unique_violation(constraint: Option<&str>, message: &str) -> Error {
    let what = constraint.unwrap_or(message);
    let (which, detail) = if what.contains("user_name") {
        (Conflict::UserName, "a User with this userName already exists in this organization (userName is unique, case-insensitively)")
    } else if what.contains("display_name") {
        (Conflict::GroupName, "a Group with this displayName already exists in this organization (displayName is unique, case-insensitively)")
    } else if what.contains("account_org") || what.contains("membership.account_id") {
        // One membership per person and organization (the person is found by the User's
        // primary email, or a userName that is an address).
        (Conflict::Membership, "a User for this person already exists in this organization: the same primary email (or userName as an address) names one person, who has one User per organization")
    } else if what.contains("invitation") {
        (
            Conflict::Invitation,
            "this email already has a pending invitation to this organization; resend or revoke it",
        )
    } else if what.contains("slug") {
        (
            Conflict::Slug,
            "an organization with this slug already exists",
        )
    } else {
        (
            Conflict::Other,
            "the resource conflicts with an existing one",
        )
    };
    Error::conflict_of(which, detail)
}

/// At most `max` bytes of `s` (cut at a character boundary, marked with `…`), for echoing what
/// a client sent inside an error message without letting the client size the answer.
pub fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

impl Error {
    /// The status and RFC 7644 §3.12 body the client gets (also inside a BulkResponse). An
    /// internal cause never enters it; the caller logs it.
    pub fn body(&self) -> (u16, serde_json::Value) {
        let status = self.kind().status_code();
        (status, scim_body(status, self.scim_type(), self.detail()))
    }
}

/// An RFC 7644 §3.12 error body.
pub fn scim_body(status: u16, scim_type: Option<ScimType>, detail: &str) -> serde_json::Value {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t.as_str());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(io)] {
            let e = Error::from(e);
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert_eq!(e.body().0, 503);
        }
    }

    #[test]
    fn other_database_errors_stay_internal() {
        let e = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(e.kind(), ErrorKind::Internal);
        let (status, body) = e.body();
        assert_eq!(status, 500);
        assert!(!body["detail"].as_str().unwrap().contains("RowNotFound"));
    }

    #[test]
    fn unique_violations_name_their_clash() {
        let e = on_unique_violation(Some("app_user_org_user_name_key"), "");
        assert_eq!(e.kind(), ErrorKind::Conflict(Conflict::UserName));
        assert_eq!(e.scim_type(), Some(ScimType::Uniqueness));
        let e = on_unique_violation(None, "UNIQUE constraint failed: organization.slug");
        assert_eq!(e.kind(), ErrorKind::Conflict(Conflict::Slug));
    }

    #[test]
    fn excerpts_cut_at_character_boundaries() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ééé", 3), "é…");
    }
}
