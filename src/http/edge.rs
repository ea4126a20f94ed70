//! What every response passes through on its way out: error bodies in the shape of the API the
//! path belongs to, and the security headers.
//!
//! Handlers answer errors in their API's shape already. What they never see — a query string
//! axum could not parse, a body over the limit, an unknown path or method — comes from the
//! framework as plain text or as a SCIM body. So every error response whose body is not yet in
//! the right shape is rewritten here: RFC 7644 §3.12 under `/scim/v2` (and everywhere else),
//! `{error, message, field}` under `/admin/v1`. HTML error pages are left as they are.

use super::errors::refusal_body;
use super::errors::AdminError;
use super::ADMIN_PREFIX;
use crate::error::{Error, ScimType, SCIM_CONTENT_TYPE};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// The pages' Content-Security-Policy: nothing inline, nothing from elsewhere, never framed
/// (the links these pages live at carry secrets).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The pages' stylesheet, served as an asset so the CSP needs no `'unsafe-inline'`.
pub const PAGE_CSS: &str = "body{font-family:sans-serif;max-width:32rem;margin:3rem auto;\
     padding:0 1rem}label{display:block;margin:.8rem 0}input{display:block;width:100%;\
     padding:.4rem}.error{color:#b00020}\n";
pub const PAGE_CSS_PATH: &str = "/assets/page.css";

/// Longest framework error text kept as a message.
const MAX_FRAMEWORK_TEXT: usize = 1024;

/// `GET /assets/page.css`.
pub async fn page_css() -> Response {
    let mut resp = PAGE_CSS.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

/// Whether a path belongs to the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Security headers on every response (`nosniff`) and on every HTML page (the CSP, no framing,
/// no referrer: the pages' URLs hold secrets); error bodies shaped for the path's API.
pub async fn finish(req: Request, next: Next) -> Response {
    let admin = is_admin_path(req.uri().path());
    let resp = next.run(req).await;
    let mut resp = if resp.status().is_client_error() || resp.status().is_server_error() {
        shape_error(resp, admin).await
    } else {
        resp
    };
    let html = content_type(resp.headers()).starts_with("text/html");
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

fn content_type(h: &HeaderMap) -> &str {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// An error response in the shape its API promises.
async fn shape_error(resp: Response, admin: bool) -> Response {
    let ct = content_type(resp.headers()).to_owned();
    let scim = ct.starts_with(SCIM_CONTENT_TYPE);
    let shaped = if admin {
        ct.starts_with("application/json")
    } else {
        scim
    };
    if shaped || ct.starts_with("text/html") {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => Default::default(),
    };
    let status = parts.status;
    let message = if scim {
        // A SCIM error on an admin path: keep its detail.
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("detail")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    } else {
        crate::error::excerpt(String::from_utf8_lossy(&bytes).trim(), MAX_FRAMEWORK_TEXT)
    };
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned()
    } else {
        message
    };
    let scim_type = (status == StatusCode::BAD_REQUEST).then_some(ScimType::InvalidSyntax);
    let mut out = match super::errors::kind_of(status) {
        Some(kind) if admin => {
            AdminError::from(Error::new(kind, scim_type, message)).into_response()
        }
        Some(kind) => Error::new(kind, scim_type, message).into_response(),
        None => {
            let ct = if admin {
                "application/json"
            } else {
                SCIM_CONTENT_TYPE
            };
            let body = refusal_body(status, admin, scim_type, &message).to_string();
            let mut r = (status, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            r
        }
    };
    // Headers the original answer carried (Allow, Retry-After, …) stay, unless the new body
    // set its own.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !out.headers().contains_key(name)
        {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// An error answer written without the router: by the connection layer, for a request it
/// refuses before hyper parses it (a request line or header section over the limit, too many
/// open connections). The body has the shape of the API the request's path belongs to.
pub fn raw_error(status: StatusCode, path: &str, message: &str, close: bool) -> Vec<u8> {
    let admin = is_admin_path(path);
    let ct = if admin {
        "application/json"
    } else {
        SCIM_CONTENT_TYPE
    };
    let body = refusal_body(status, admin, None, message).to_string();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        head.push_str("retry-after: 1\r\n");
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_by_prefix() {
        assert!(is_admin_path("/admin/v1"));
        assert!(is_admin_path("/admin/v1/orgs"));
        assert!(!is_admin_path("/admin/v10"));
        assert!(!is_admin_path("/scim/v2/Users"));
    }

    #[test]
    fn raw_errors_are_complete_http_answers() {
        let r = raw_error(
            StatusCode::URI_TOO_LONG,
            "/scim/v2/Users?filter=x",
            "too long",
            true,
        );
        let text = String::from_utf8(r).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], "414");
        let r = raw_error(StatusCode::URI_TOO_LONG, "/admin/v1/orgs", "too long", true);
        let text = String::from_utf8(r).unwrap();
        assert!(text.contains("\"error\""), "{text}");
    }
}
