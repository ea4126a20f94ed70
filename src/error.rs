//! One error type for the whole request path and its one mapping to an HTTP response.
//!
//! Every client-facing failure is an RFC 7644 §3.12 error body with the right `scimType`.
//! Internal causes are logged inside the request span and never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error the client caused or must know about; `detail` tells it what to fix.
    #[error("{detail}")]
    Scim {
        status: StatusCode,
        scim_type: Option<ScimType>,
        detail: String,
    },
    /// Anything else: logged, answered with an opaque 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(status: StatusCode, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Error::Scim {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some(ScimType::Uniqueness), detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, None, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }
    /// 503: the database cannot be reached for the moment. The client is told to retry
    /// (`Retry-After`, RFC 9110 §10.2.3); the cause goes to the log, never to the client.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, None, detail)
    }
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            "the resource has changed since the version named in If-Match; read it again and retry",
        )
    }
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Scim { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    pub fn scim_type(&self) -> Option<ScimType> {
        match self {
            Error::Scim { scim_type, .. } => *scim_type,
            Error::Internal(_) => None,
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
    let detail = if what.contains("user_name") {
        "a User with this userName already exists in this organization (userName is unique, case-insensitively)"
    } else if what.contains("display_name") {
        "a Group with this displayName already exists in this organization (displayName is unique, case-insensitively)"
    } else if what.contains("account_org") || what.contains("membership.account_id") {
        // One membership per person and organization (the person is found by the User's
        // primary email, or a userName that is an address).
        "a User for this person already exists in this organization: the same primary email (or userName as an address) names one person, who has one User per organization"
    } else if what.contains("invitation") {
        "this email already has a pending invitation to this organization; resend or revoke it"
    } else if what.contains("slug") {
        "an organization with this slug already exists"
    } else {
        "the resource conflicts with an existing one"
    };
    Error::conflict(detail)
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
    pub fn body(&self) -> (StatusCode, serde_json::Value) {
        let (status, scim_type, detail) = match self {
            Error::Scim {
                status,
                scim_type,
                detail,
            } => (*status, *scim_type, detail.as_str()),
            Error::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal server error; the server log has the cause",
            ),
        };
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": status.as_u16().to_string(),
            "detail": detail,
        });
        if let Some(t) = scim_type {
            body["scimType"] = json!(t.as_str());
        }
        (status, body)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        crate::metrics::scim_error(
            self.status().as_u16(),
            self.scim_type().map(ScimType::as_str),
        );
        match &self {
            Error::Scim {
                status,
                scim_type,
                detail,
            } => {
                tracing::info!(status = status.as_u16(), scim_type = scim_type.map(|t| t.as_str()), %detail, "request refused");
            }
            Error::Internal(e) => tracing::error!(error = ?e, "internal error"),
        }
        let (status, body) = self.body();
        let mut resp = (status, body.to_string()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: Error) -> Response {
        e.into_response()
    }

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(io)] {
            let r = answer(Error::from(e));
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::RETRY_AFTER], "5");
            assert_eq!(r.headers()[header::CONTENT_TYPE], SCIM_CONTENT_TYPE);
        }
        let admin = crate::http::admin::AdminError::from(Error::from(sqlx::Error::PoolTimedOut));
        let (status, body) = admin.parts();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "unavailable");
        assert_eq!(admin.into_response().headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn other_database_errors_stay_internal() {
        let r = answer(Error::from(sqlx::Error::RowNotFound));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!r.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn excerpts_cut_at_character_boundaries() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ééé", 3), "é…");
    }
}
