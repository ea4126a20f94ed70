//! The two renderers of [`Error`]: the SCIM answer (RFC 7644 §3.12 body, `application/scim+json`)
//! and the admin API's `{error, message, field}`. Both give a kind the same status and headers:
//! `WWW-Authenticate` on 401, `Retry-After` on 429 and 503. Internal causes are logged here, in
//! the request's span, and never sent.

use crate::error::{Error, ErrorKind, ScimType, RETRY_AFTER_SECS, SCIM_CONTENT_TYPE};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The HTTP status of a kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The kind of a refusal the framework or the connection layer wrote with this status, when
/// there is one; other statuses (414, 431, …) are answered as they are.
pub fn kind_of(status: StatusCode) -> Option<ErrorKind> {
    Some(match status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::Invalid,
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
        StatusCode::FORBIDDEN => ErrorKind::Forbidden,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorKind::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::TooLarge,
        StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Unavailable,
        StatusCode::INTERNAL_SERVER_ERROR => ErrorKind::Internal,
        _ => return None,
    })
}

/// The admin API's `error` code of a kind.
pub fn admin_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Invalid => "invalid_request",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict(_) => "conflict",
        ErrorKind::LastAdmin => "last_admin",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::RateLimited { .. } => "rate_limited",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal | ErrorKind::Upstream => "internal",
        ErrorKind::MethodNotAllowed | ErrorKind::PreconditionFailed => "error",
    }
}

fn log(e: &Error) {
    match e {
        Error::Refused {
            kind,
            scim_type,
            detail,
            ..
        } => {
            tracing::info!(status = kind.status_code(), scim_type = scim_type.map(|t| t.as_str()), %detail, "request refused");
        }
        Error::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
    }
}

/// `WWW-Authenticate` on 401 (naming the API's realm), `Retry-After` on 429 and 503.
fn headers_for(kind: ErrorKind, realm: &'static str, headers: &mut HeaderMap) {
    match kind {
        ErrorKind::Unauthorized => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(realm));
        }
        ErrorKind::RateLimited { retry_after_secs } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        ErrorKind::Unavailable => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        _ => {}
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        crate::metrics::scim_error(
            self.kind().status_code(),
            self.scim_type().map(ScimType::as_str),
        );
        log(&self);
        let (_, body) = self.body();
        let mut resp = (status(self.kind()), body.to_string()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        headers_for(self.kind(), "Bearer realm=\"scimd\"", headers);
        resp
    }
}

/// An admin API error: the same causes as SCIM's, in this API's JSON shape.
pub struct AdminError(pub Error);

impl From<Error> for AdminError {
    fn from(inner: Error) -> Self {
        AdminError(inner)
    }
}

/// 400 naming the input at fault.
pub fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError(Error::invalid(field, message))
}

/// The admin API's JSON body for a status, code, message and field.
pub fn admin_body(code: &str, message: &str, field: Option<&str>) -> Value {
    let mut body = json!({"error": code, "message": message});
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    body
}

/// The body of a refusal the framework or the connection layer wrote with `status`, in the
/// shape of the API it belongs to.
pub fn refusal_body(
    status: StatusCode,
    admin: bool,
    scim_type: Option<ScimType>,
    message: &str,
) -> Value {
    match (kind_of(status), admin) {
        (Some(kind), true) => admin_body(admin_code(kind), message, None),
        (None, true) => admin_body("error", message, None),
        (_, false) => crate::error::scim_body(status.as_u16(), scim_type, message),
    }
}

impl AdminError {
    pub fn kind(&self) -> ErrorKind {
        self.0.kind()
    }
    /// The input at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        self.0.field()
    }
    /// Names the input at fault.
    pub fn on_field(self, field: &'static str) -> Self {
        AdminError(self.0.on_field(field))
    }
    /// The status and JSON body this error answers with.
    pub fn parts(&self) -> (StatusCode, Value) {
        if let Error::Internal(cause) = &self.0 {
            tracing::error!(error = ?cause, "internal error");
        }
        let kind = self.0.kind();
        (
            status(kind),
            admin_body(admin_code(kind), self.0.detail(), self.0.field()),
        )
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        let mut resp = (status, Json(body)).into_response();
        headers_for(
            self.0.kind(),
            "Bearer realm=\"scimd-admin\"",
            resp.headers_mut(),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(io)] {
            let r = Error::from(e).into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::RETRY_AFTER], "5");
            assert_eq!(r.headers()[header::CONTENT_TYPE], SCIM_CONTENT_TYPE);
        }
        let admin = AdminError::from(Error::from(sqlx::Error::PoolTimedOut));
        let (status, body) = admin.parts();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "unavailable");
        assert_eq!(admin.into_response().headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn other_database_errors_are_500_without_retry_after() {
        let r = Error::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!r.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn the_last_admin_is_its_own_code_not_read_from_the_message() {
        let (status, body) = AdminError::from(Error::last_admin()).parts();
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "last_admin");
        let (_, body) =
            AdminError::from(Error::conflict("the last active admin is elsewhere")).parts();
        assert_eq!(body["error"], "conflict");
    }

    #[test]
    fn a_rate_limit_tells_when_to_retry() {
        let r = Error::rate_limited(7, "slow down").into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn every_kind_maps_back_from_its_status() {
        for kind in [
            ErrorKind::Invalid,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::MethodNotAllowed,
            ErrorKind::TooLarge,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind_of(status(kind)), Some(kind));
        }
    }
}
