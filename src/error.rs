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
        Error::Internal(e.into())
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
    } else if what.contains("invitation") {
        "this email already has a pending invitation to this organization; resend or revoke it"
    } else if what.contains("slug") {
        "an organization with this slug already exists"
    } else {
        "the resource conflicts with an existing one"
    };
    Error::conflict(detail)
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
        resp
    }
}
