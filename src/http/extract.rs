//! Request extractors that answer in SCIM: a JSON body whose every failure is an RFC 7644 §3.12
//! error (never a framework's plain text), `If-Match` / `If-None-Match`, and the base URL.

use crate::error::{Error, ScimType};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;

/// The token in `Authorization: Bearer <token>` (the scheme in any case), or empty. With
/// `bare`, a header with no scheme at all is the token itself (Okta sends it that way).
pub fn bearer(headers: &HeaderMap, bare: bool) -> &str {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => "",
        None if bare => value,
        None => "",
    }
}

/// The request's id: the client's `X-Request-Id`, or the one the request-id layer made.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The request-id header, read and set by the router's layers.
pub const REQUEST_ID: &str = "x-request-id";

/// 413 for a request body over [`super::MAX_BODY_BYTES`].
pub fn body_too_large() -> Error {
    Error::too_large(format!(
        "the request body is larger than the limit of {} bytes",
        super::MAX_BODY_BYTES
    ))
}

/// A JSON request body (`application/scim+json` or `application/json`; lenient about others).
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                body_too_large()
            } else {
                Error::bad(
                    ScimType::InvalidSyntax,
                    format!("could not read the request body: {rej}"),
                )
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::bad(
                ScimType::InvalidSyntax,
                "the request body is empty; a JSON object is required",
            ));
        }
        serde_json::from_slice(&bytes).map(ScimJson).map_err(|e| {
            Error::bad(
                ScimType::InvalidSyntax,
                format!("the request body is not valid JSON: {e}"),
            )
        })
    }
}

fn parse_etag(v: &str) -> Option<i64> {
    let v = v.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.trim_matches('"').parse().ok()
}

/// `If-Match` (RFC 7644 §3.14): the version the client expects. `*` and absence check nothing;
/// an ETag scimd never issued can match nothing, so it is a version no record has.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let v = v.to_str().unwrap_or_default();
        if v.trim() == "*" {
            return Ok(IfMatch(None));
        }
        Ok(IfMatch(Some(
            v.split(',').find_map(parse_etag).unwrap_or(-1),
        )))
    }
}

/// `If-None-Match` on GET: answer 304 when the client's copy is current.
pub struct IfNoneMatch(pub Vec<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let v = parts
            .headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(IfNoneMatch(v.split(',').filter_map(parse_etag).collect()))
    }
}

/// The absolute SCIM base URL for `meta.location` and `$ref`: `{public origin}/scim/v2`, else
/// derived from the request's Host (and `X-Forwarded-Proto`).
pub struct BaseUrl(pub String);

impl FromRequestParts<super::AppState> for BaseUrl {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &super::AppState) -> Result<Self, Error> {
        if state.config.public_url.is_some() {
            return Ok(BaseUrl(format!(
                "{}{}",
                state.config.origin(),
                super::SCIM_PREFIX
            )));
        }
        // Without a public URL, `meta.location` follows the request: it sets no credential, and
        // a client that forges its Host only misleads itself.
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let proto = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        Ok(BaseUrl(format!("{proto}://{host}{}", super::SCIM_PREFIX)))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_etag;

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("W/\"abc\""), None);
    }
}
