//! The Provisioning API under `/admin/v1/orgs/{slug}`, for the organization's admins (members
//! get 403, another organization's ids 404): its SCIM connection, its provisioning tokens, its
//! SCIM request log, and a connection test that makes the requests an identity provider's
//! "Test Connection" makes.

use super::access::{Access, AdminOf, Scoped};
use super::errors::{invalid, AdminError};
use super::AppState;
use crate::error::Error;
use crate::service::tokens;
use crate::store::{LogEntry, LogFilter, TokenInfo};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use tower::ServiceExt;

type Result<T> = std::result::Result<T, AdminError>;

/// Most request-log entries in one page.
pub const MAX_LOG_PAGE: i64 = 200;
/// Most tokens in one page of the token list.
pub const MAX_TOKEN_PAGE: i64 = 200;
/// The commonest errors the summary lists.
const TOP_ERRORS: i64 = 5;
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;
/// How long the temporary token of a connection test could work if its revocation failed.
const TEST_TOKEN_MICROS: i64 = 5 * 60 * 1_000_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{slug}/provisioning", get(connection))
        .route("/orgs/{slug}/tokens", get(list_tokens).post(create_token))
        .route("/orgs/{slug}/tokens/{id}/revoke", post(revoke_token))
        .route("/orgs/{slug}/tokens/{id}/rotate", post(rotate_token))
        .route("/orgs/{slug}/request-log", get(request_log))
        .route("/orgs/{slug}/request-log/summary", get(summary))
        .route("/orgs/{slug}/request-log/{id}", get(log_entry))
        .route("/orgs/{slug}/test-connection", post(test_connection))
}

fn ts(micros: Option<i64>) -> Value {
    json!(micros.map(crate::service::render::timestamp))
}

/// A token as the list shows it: never its secret or digest.
fn token_json(t: &TokenInfo, now: i64) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "status": tokens::status(t, now),
        "createdAt": crate::service::render::timestamp(t.created_at),
        "expiresAt": ts(t.expires_at),
        "lastUsedAt": ts(t.last_used_at),
        "revokedAt": ts(t.revoked_at),
        "rotatedFrom": t.rotated_from,
    })
}

fn audit(a: &Access) -> crate::store::Audit {
    a.tenant.audit()
}

/// `GET /orgs/{slug}/provisioning`: what an identity provider is configured with, and how the
/// request log is kept.
async fn connection(State(st): State<AppState>, Scoped(a): AdminOf) -> Result<Json<Value>> {
    let s = &st.config.request_log;
    Ok(Json(json!({
        "org": a.org.slug,
        "scimBaseUrl": scim_base_url(&st),
        "requestLog": {
            "enabled": s.enabled,
            "maxRows": s.max_rows,
            "days": s.days,
            "bodyBytes": s.body_bytes,
            "readsPerSecond": s.reads_per_second,
            "dropped": st.request_log.as_ref().map_or(0, |l| l.dropped()),
        },
    })))
}

/// `GET /orgs/{slug}/tokens?startIndex=1&count=50`: the organization's tokens, oldest first.
/// A revoked token stays listed for `--request-log-days` after its revocation (as long as the
/// request log can name it), then drops out of the list.
async fn list_tokens(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let start_index = whole(&q, "startIndex", 1, i64::from(i32::MAX), 1)?;
    let count = whole(&q, "count", 0, MAX_TOKEN_PAGE, 50)?;
    let now = st.clock.now();
    let revoked_since = now - st.config.request_log.days * DAY_MICROS;
    let (total, tokens) = st
        .store
        .token_page(&a.org.id, revoked_since, start_index, count)
        .await?;
    let items: Vec<Value> = tokens.iter().map(|t| token_json(t, now)).collect();
    Ok(Json(json!({
        "totalResults": total,
        "startIndex": start_index,
        "items": items,
    })))
}

/// The whole number `field` of a query, from `lo` to `hi`; `default` when absent.
fn whole(
    q: &HashMap<String, String>,
    field: &'static str,
    lo: i64,
    hi: i64,
    default: i64,
) -> Result<i64> {
    match q.get(field) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| {
                invalid(
                    field,
                    format!("{field} must be a whole number from {lo} to {hi}; got {v:?}"),
                )
            }),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewToken {
    name: Option<String>,
    expires_in_days: Option<i64>,
}

/// The secret is in this answer only.
fn with_secret(t: &TokenInfo, secret: &str, now: i64) -> Value {
    let mut v = token_json(t, now);
    v["token"] = json!(secret);
    v
}

async fn create_token(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<NewToken>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(b)) = body else {
        return Err(invalid(
            "name",
            "the body must be a JSON object with a name (and optionally expiresInDays)",
        ));
    };
    let (t, secret) = create_token_as(
        &st,
        &a,
        b.name.as_deref().unwrap_or_default(),
        b.expires_in_days,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(&t, &secret, st.clock.now())),
    ))
}

/// The SCIM base URL an identity provider is given.
pub fn scim_base_url(st: &AppState) -> String {
    format!("{}{}", st.config.origin(), super::SCIM_PREFIX)
}

/// Creates a token for the organization (the admin API's and the console's): its name and
/// expiry checked, the change audited; the secret is returned once.
pub async fn create_token_as(
    st: &AppState,
    a: &Access,
    name: &str,
    expires_in_days: Option<i64>,
) -> Result<(TokenInfo, String)> {
    let name = tokens::check_label(name).map_err(|m| invalid("name", format!("name {m}")))?;
    let days = tokens::check_days(expires_in_days).map_err(|m| invalid("expiresInDays", m))?;
    Ok(tokens::create(&st.store, &st.clock, &a.org, &name, days, &audit(a)).await?)
}

/// Rotates a token of the organization: a new one beside it, the secret returned once.
pub async fn rotate_token_as(
    st: &AppState,
    a: &Access,
    id: &str,
    expires_in_days: Option<i64>,
) -> Result<(TokenInfo, String)> {
    let days = tokens::check_days(expires_in_days).map_err(|m| invalid("expiresInDays", m))?;
    Ok(tokens::rotate(&st.store, &st.clock, &a.org, id, days, &audit(a)).await?)
}

/// Revokes a token of the organization; this replica stops taking it at once, others within
/// the token cache's lifetime.
pub async fn revoke_token_as(st: &AppState, a: &Access, id: &str) -> Result<TokenInfo> {
    let t = tokens::revoke(&st.store, &st.clock, &a.org, id, &audit(a)).await?;
    st.forget_token(&t.id);
    Ok(t)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Rotate {
    expires_in_days: Option<i64>,
}

async fn rotate_token(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    body: Option<Json<Rotate>>,
) -> Result<(StatusCode, Json<Value>)> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let (t, secret) = rotate_token_as(&st, &a, &id, b.expires_in_days).await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(&t, &secret, st.clock.now())),
    ))
}

async fn revoke_token(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let t = revoke_token_as(&st, &a, &id).await?;
    Ok(Json(token_json(&t, st.clock.now())))
}

/// An entry as the admin API shows it (`full`: with its client, user agent and bodies).
pub fn entry_json(e: &LogEntry, full: bool) -> Value {
    let kind = match e.path.split('/').nth(3) {
        Some("Users") => Some("User"),
        Some("Groups") => Some("Group"),
        _ => None,
    };
    let mut v = json!({
        "id": e.id,
        "time": crate::service::render::timestamp(e.created_at),
        "tokenId": e.token_id,
        "tokenName": e.token_name,
        "method": e.method,
        "path": e.path,
        "filter": e.filter,
        "status": e.status,
        "scimType": e.scim_type,
        "detail": e.detail,
        "durationMs": e.duration_us as f64 / 1000.0,
        "userName": e.user_name,
        "resource": e.resource_id.as_ref().and_then(|id| kind.map(|k| json!({"type": k, "id": id}))),
    });
    if full {
        v["clientIp"] = json!(e.client_ip);
        v["userAgent"] = json!(e.user_agent);
        v["requestId"] = json!(e.request_id);
        v["requestBody"] = json!(e.request_body);
        v["responseBody"] = json!(e.response_body);
    }
    v
}

/// `GET /orgs/{slug}/request-log?errors=true&method=PATCH&status=409&subject=…&startIndex=1&count=50`:
/// the organization's SCIM requests, newest first (bodies only in one entry's detail).
async fn request_log(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let (filter, start_index, count) = log_query(&q)?;
    let (total, entries) = st
        .store
        .request_log(&a.org.id, &filter, start_index, count)
        .await?;
    let items: Vec<Value> = entries.iter().map(|e| entry_json(e, false)).collect();
    Ok(Json(json!({
        "totalResults": total,
        "startIndex": start_index,
        "items": items,
        "enabled": st.request_log.is_some(),
    })))
}

/// The request log's query (`errors`, `method`, `status`, `subject`, `startIndex`, `count`),
/// checked: the filter, the start index and the page size.
pub fn log_query(q: &HashMap<String, String>) -> Result<(LogFilter, i64, i64)> {
    let int =
        |field: &'static str, lo: i64, hi: i64, default: i64| whole(q, field, lo, hi, default);
    let start_index = int("startIndex", 1, i64::from(i32::MAX), 1)?;
    let count = int("count", 0, MAX_LOG_PAGE, 50)?;
    let status = match q.get("status") {
        Some(_) => Some(int("status", 100, 599, 0)?),
        None => None,
    };
    let errors_only = match q.get("errors").map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(invalid(
                "errors",
                format!("errors must be true or false; got {v:?}"),
            ))
        }
    };
    let method = match q.get("method").map(|m| m.trim().to_ascii_uppercase()) {
        None => None,
        Some(m) if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) => Some(m),
        Some(m) => {
            return Err(invalid(
                "method",
                format!("method must be GET, POST, PUT, PATCH or DELETE; got {m:?}"),
            ))
        }
    };
    let subject = match q.get("subject").map(|s| s.trim().to_owned()) {
        Some(s) if s.chars().count() > 256 => {
            return Err(invalid("subject", "subject must be at most 256 characters"))
        }
        Some(s) if !s.is_empty() => {
            crate::domain::refuse_control("subject", &s)?;
            Some(s)
        }
        _ => None,
    };
    let filter = LogFilter {
        errors_only,
        method,
        status,
        subject,
    };
    Ok((filter, start_index, count))
}

async fn log_entry(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let e = st
        .store
        .request_log_entry(&a.org.id, &id)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no request-log entry {id} in organization {:?}",
                a.org.slug
            ))
        })?;
    Ok(Json(entry_json(&e, true)))
}

/// The last 24 hours: requests and errors by status, and the commonest error details.
async fn summary(State(st): State<AppState>, Scoped(a): AdminOf) -> Result<Json<Value>> {
    Ok(Json(summary_as(&st, &a).await?))
}

/// The last 24 hours of the organization's request log, as the admin API shows it.
pub async fn summary_as(st: &AppState, a: &Access) -> Result<Value> {
    let since = st.clock.now() - DAY_MICROS;
    let s = st
        .store
        .request_log_summary(&a.org.id, since, TOP_ERRORS)
        .await?;
    let requests: i64 = s.by_status.iter().map(|(_, n)| n).sum();
    let errors: i64 = s
        .by_status
        .iter()
        .filter(|(st, _)| *st >= 400)
        .map(|(_, n)| n)
        .sum();
    Ok(json!({
        "since": crate::service::render::timestamp(since),
        "requests": requests,
        "errors": errors,
        "byStatus": s.by_status.iter().map(|(status, n)| json!({"status": status, "requests": n})).collect::<Vec<_>>(),
        "topErrors": s.top_errors.iter().map(|(status, t, d, n)| json!({"status": status, "scimType": t, "detail": d, "requests": n})).collect::<Vec<_>>(),
        "dropped": st.request_log.as_ref().map_or(0, |l| l.dropped()),
    }))
}

#[derive(Deserialize, Default)]
struct TestConnection {
    token: Option<String>,
}

/// One request of the connection test, through the whole router (authentication, limits, the
/// request log) as an identity provider's request goes.
async fn step(
    st: &AppState,
    name: &str,
    path: &str,
    token: &str,
    expect: &str,
    check: fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    let req = Request::builder()
        .method("GET")
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, crate::error::SCIM_CONTENT_TYPE)
        .header(header::USER_AGENT, "scimd-test-connection")
        .body(Body::empty());
    let outcome = match req {
        Ok(req) => match super::router(st.clone()).oneshot(req).await {
            Ok(resp) => {
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), super::MAX_BODY_BYTES)
                    .await
                    .unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                Ok((status, body))
            }
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok((status, body)) => {
            let ok = status == StatusCode::OK && check(&body);
            let detail = if ok {
                format!("{} as expected: {expect}", status.as_u16())
            } else if let Some(d) = body.get("detail").and_then(Value::as_str) {
                format!("{}: {d}", status.as_u16())
            } else {
                format!("{}: expected {expect}", status.as_u16())
            };
            json!({"name": name, "request": format!("GET {path}"), "ok": ok, "status": status.as_u16(), "detail": detail, "durationMs": ms})
        }
        Err(e) => {
            json!({"name": name, "request": format!("GET {path}"), "ok": false, "status": null, "detail": e, "durationMs": ms})
        }
    }
}

/// `POST /orgs/{slug}/test-connection` with `{"token": …}` (a token of this organization) or
/// without (a temporary token, revoked afterwards): the requests Entra ID's "Test Connection"
/// and Okta's "Test API Credentials" make, each step's outcome.
async fn test_connection(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<TestConnection>>,
) -> Result<Json<Value>> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    Ok(Json(test_connection_as(&st, &a, b.token).await?))
}

/// The connection test (see [`test_connection`]), for the admin API and the console.
pub async fn test_connection_as(st: &AppState, a: &Access, token: Option<String>) -> Result<Value> {
    let (token, temporary) = match token.map(|t| t.trim().to_owned()) {
        Some(t) => {
            // Only this organization's tokens: another organization's is refused like an
            // unknown one, so nothing is learnt about it.
            let mine = t.len() <= 256
                && st
                    .store
                    .token_by_digest(&crate::token::digest(&t))
                    .await?
                    .is_some_and(|i| i.organization_id == a.org.id);
            if !mine {
                return Err(invalid(
                    "token",
                    format!(
                        "this is not a provisioning token of organization {:?}",
                        a.org.slug
                    ),
                ));
            }
            (t, None)
        }
        None => {
            let now = st.clock.now();
            let secret = crate::token::generate();
            let t = st
                .store
                .create_org_token(
                    &a.org,
                    "connection test (temporary)",
                    &crate::token::digest(&secret),
                    Some(now + TEST_TOKEN_MICROS),
                    None,
                    now,
                    &audit(a),
                )
                .await?;
            (secret, Some(t.id))
        }
    };
    let probe = format!(
        "scimd-test-{}@example.invalid",
        uuid::Uuid::new_v4().simple()
    );
    let filter = format!("userName eq \"{probe}\"");
    let p = super::SCIM_PREFIX;
    let users = format!(
        "{p}/Users?filter={}",
        filter
            .replace(' ', "%20")
            .replace('"', "%22")
            .replace('@', "%40")
    );
    let steps = vec![
        step(
            st,
            "Service provider configuration",
            &format!("{p}/ServiceProviderConfig"),
            &token,
            "a ServiceProviderConfig",
            |b| b.get("patch").is_some(),
        )
        .await,
        step(
            st,
            "Find a user that does not exist (Entra ID)",
            &users,
            &token,
            "an empty list",
            |b| b.get("totalResults") == Some(&json!(0)),
        )
        .await,
        step(
            st,
            "List users (Okta)",
            &format!("{p}/Users?startIndex=1&count=1"),
            &token,
            "a list",
            |b| b.get("totalResults").is_some_and(Value::is_i64),
        )
        .await,
    ];
    if let Some(id) = &temporary {
        tokens::revoke(&st.store, &st.clock, &a.org, id, &audit(a)).await?;
        st.forget_token(id);
    }
    let ok = steps.iter().all(|s| s["ok"] == true);
    Ok(json!({
        "ok": ok,
        "scimBaseUrl": format!("{}{p}", st.config.origin()),
        "temporaryToken": temporary.is_some(),
        "steps": steps,
    }))
}
