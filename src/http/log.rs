//! Hands each SCIM request of a known organization to the request log
//! (`service::request_log`), around every SCIM route. Authentication tags the answer with the
//! organization and token ([`Tag`]); untagged answers (discovery, unknown tokens) are not
//! logged, since no organization owns them. The work here is only what the request already
//! holds: the body bytes are shared with the handler, never copied or parsed on this path.

use super::{AppState, MAX_BODY_BYTES};
use crate::service::request_log::{read_summary as read_summary_of, Captured, MAX_RESPONSE_HELD};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body as _;

/// Whose request this was, put on the answer by authentication.
#[derive(Clone, Debug)]
pub struct Tag {
    pub org_id: String,
    pub token_id: String,
    pub token_name: String,
}

/// Why a known token was refused, for the organization's log only (the caller hears less).
#[derive(Clone, Debug)]
pub struct Refusal(pub String);

/// What the capture layer needs of the state (cloned per request: a few pointers, not the
/// whole `AppState`).
#[derive(Clone)]
pub struct Capture {
    log: Option<std::sync::Arc<crate::service::request_log::RequestLog>>,
    clock: std::sync::Arc<crate::clock::Clock>,
    trust_forwarded_for: bool,
}

impl Capture {
    pub fn of(st: &AppState) -> Capture {
        Capture {
            log: st.request_log.clone(),
            clock: st.clock.clone(),
            trust_forwarded_for: st.config.trust_forwarded_for,
        }
    }
}

pub async fn capture(State(st): State<Capture>, req: Request, next: Next) -> Response {
    let Some(log) = st.log else {
        return next.run(req).await;
    };
    let started = std::time::Instant::now();
    let at = st.clock.now();
    let (parts, body) = req.into_parts();
    let too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES);
    let request_body = if too_large {
        None
    } else {
        http_body_util::Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .ok()
            .map(|c| c.to_bytes())
    };
    let Some(request_body) = request_body else {
        // The same refusal the body extractor gives, before anything is read past the limit.
        return super::extract::body_too_large().into_response();
    };
    let method = parts.method.as_str().to_owned();
    // The path as the client sent it (this layer runs inside the `/scim/v2` nest).
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let path = uri.path().to_owned();
    let query = uri.query().map(str::to_owned);
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let user_agent = header("user-agent");
    let request_id = super::extract::request_id(&parts.headers);
    let client_ip = super::client_ip(st.trust_forwarded_for, &parts.headers, &parts.extensions);
    let resp = next
        .run(Request::from_parts(parts, Body::from(request_body.clone())))
        .await;
    let Some(tag) = resp.extensions().get::<Tag>().cloned() else {
        return resp;
    };
    let refusal = resp.extensions().get::<Refusal>().map(|r| r.0.clone());
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    // Answers built in memory have an exact size; take their bytes (a cheap handle) for the log.
    let held = body
        .size_hint()
        .exact()
        .is_some_and(|n| n as usize <= MAX_RESPONSE_HELD);
    let read = method == "GET" && status < 300;
    let mut read_summary = None;
    let (body, response_body) = if held {
        match body.collect().await {
            Ok(c) if read => {
                let bytes = c.to_bytes();
                read_summary = Some(read_summary_of(&bytes));
                (Body::from(bytes), None)
            }
            Ok(c) => {
                let bytes = c.to_bytes();
                (Body::from(bytes.clone()), Some(bytes))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read an answer for the request log");
                (Body::empty(), None)
            }
        }
    } else {
        (body, None)
    };
    log.push(Captured {
        organization_id: tag.org_id,
        token_id: Some(tag.token_id),
        token_name: Some(tag.token_name),
        method,
        path,
        query,
        status,
        duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
        client_ip,
        user_agent,
        request_id,
        // Copied to their exact size: the request's bytes are a slice of the connection's read
        // buffer and the answer's carry its spare capacity, both of which the queue would
        // otherwise keep alive for up to a second.
        request_body: Bytes::copy_from_slice(&request_body),
        response_body: response_body.as_deref().map(Bytes::copy_from_slice),
        read_summary,
        note: refusal,
        at,
    });
    Response::from_parts(parts, body)
}
