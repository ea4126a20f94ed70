//! The Provisioning page, for the organization's admins: the connection card (the SCIM base URL,
//! the Okta and Entra ID set-up, Test connection), the provisioning tokens (create, rotate,
//! revoke) and the SCIM request log (the last day's summary, the filtered table, one entry's
//! detail). Each action is one call of the Provisioning API's own function, so the rules (a
//! token's name and expiry, the most tokens, who may see which entries) live in one place.

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::{capitalise, message, page, refusal, AdminForm, AdminPage, Chrome, InOrg, OrgPage};
use crate::http::errors::{invalid, AdminError};
use crate::http::provisioning as api;
use crate::http::AppState;
use crate::service::render::timestamp;
use crate::service::tokens;
use crate::store::LogEntry;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;

/// Request-log entries on one page of the table.
const LOG_PAGE: i64 = 50;
/// Tokens on one page of the table (as the admin API's list).
pub const TOKEN_PAGE: i64 = 50;
/// The deepest page of tokens (every organization has far fewer).
const MAX_TOKEN_PAGES: i64 = 100_000;
/// Most query parameters the log's page reads (the rest are refused with the page).
const MAX_QUERY_KEYS: usize = 8;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{slug}/provisioning", get(provisioning_page))
        .route("/o/{slug}/provisioning/test", post(test_connection))
        .route("/o/{slug}/provisioning/tokens", post(create_token))
        .route(
            "/o/{slug}/provisioning/tokens/{id}/rotate",
            post(rotate_token),
        )
        .route(
            "/o/{slug}/provisioning/tokens/{id}/revoke",
            post(revoke_token),
        )
        .route("/o/{slug}/provisioning/log", get(log_page))
        .route("/o/{slug}/provisioning/log/{id}", get(entry_page))
}

struct TokenRow {
    id: String,
    name: String,
    status: &'static str,
    created: String,
    expires: String,
    last_used: String,
    revoked: String,
}

/// A secret shown once, just after it was made.
struct NewSecret {
    name: String,
    secret: String,
    rotated: bool,
}

struct Step {
    name: String,
    request: String,
    ok: bool,
    detail: String,
}

#[derive(Template)]
#[template(path = "provisioning.html")]
struct ProvisioningPage {
    chrome: Chrome,
    title: String,
    slug: String,
    scim_base: String,
    tokens: Vec<TokenRow>,
    /// Which tokens of how many the table shows.
    tokens_caption: String,
    tokens_prev: Option<String>,
    tokens_next: Option<String>,
    /// How long a revoked token stays listed.
    revoked_days: i64,
    max_days: i64,
    secret: Option<NewSecret>,
    notice: Option<String>,
    ok: bool,
    /// The connection test's steps, once run.
    steps: Option<Vec<Step>>,
    test_ok: bool,
    /// The revoke confirmation: the token's id and name.
    confirm: Option<(String, String)>,
    form_name: String,
    form_days: String,
}

fn when(micros: Option<i64>) -> String {
    micros.map_or_else(|| "—".to_owned(), |m| minute(timestamp(m)))
}

/// `2026-01-02T03:04:05.678Z` → `2026-01-02 03:04 UTC`.
fn minute(ts: String) -> String {
    match ts.get(..16) {
        Some(m) => format!("{} UTC", m.replace('T', " ")),
        None => ts,
    }
}

/// The Provisioning page with page `n` of the tokens (the admin API's list: oldest first, a
/// revoked token only for `--request-log-days` after its revocation).
async fn view(st: &AppState, o: &InOrg, n: i64) -> Result<ProvisioningPage, AdminError> {
    let org = &o.access.org;
    let now = st.clock.now();
    let start = (n - 1) * TOKEN_PAGE + 1;
    let (total, list) = api::token_page_as(st, &o.access, start, TOKEN_PAGE).await?;
    let shown = list.len() as i64;
    let link = |n: i64| format!("/o/{}/provisioning?page={n}#tokens-h", org.slug);
    let tokens = list
        .into_iter()
        .map(|t| TokenRow {
            status: tokens::status(&t, now),
            created: when(Some(t.created_at)),
            expires: t
                .expires_at
                .map_or_else(|| "never".to_owned(), |e| when(Some(e))),
            last_used: t
                .last_used_at
                .map_or_else(|| "never".to_owned(), |e| when(Some(e))),
            revoked: when(t.revoked_at),
            id: t.id,
            name: t.name,
        })
        .collect();
    Ok(ProvisioningPage {
        chrome: o.chrome("provisioning"),
        title: format!("Provisioning for {}", org.name),
        slug: org.slug.clone(),
        scim_base: api::scim_base_url(st),
        tokens,
        tokens_caption: match total {
            0 => "No tokens".to_owned(),
            1 if shown == 1 => "1 token".to_owned(),
            _ if shown == 0 => format!("No tokens on this page, of {total}"),
            _ => format!("Tokens {start}–{} of {total}", start + shown - 1),
        },
        tokens_prev: (n > 1).then(|| link(n - 1)),
        tokens_next: (start + shown - 1 < total).then(|| link(n + 1)),
        revoked_days: st.config.request_log.days,
        max_days: tokens::MAX_DAYS,
        secret: None,
        notice: None,
        ok: true,
        steps: None,
        test_ok: false,
        confirm: None,
        form_name: String::new(),
        form_days: String::new(),
    })
}

/// The page (its first page of tokens) with what an action changed (or why it was refused) on
/// top.
async fn after(st: &AppState, o: &InOrg, edit: impl FnOnce(&mut ProvisioningPage)) -> Response {
    match view(st, o, 1).await {
        Ok(mut v) => {
            edit(&mut v);
            page(StatusCode::OK, &v)
        }
        Err(e) => failed(o, &e),
    }
}

fn failed(o: &InOrg, e: &AdminError) -> Response {
    let (status, text) = refusal(e);
    message(
        o.chrome("provisioning"),
        status,
        "Not done",
        &capitalise(&text),
        Some((
            &format!("/o/{}/provisioning", o.access.org.slug),
            "Back to Provisioning",
        )),
    )
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<String>,
}

async fn provisioning_page(
    State(st): State<AppState>,
    OrgPage(o): AdminPage,
    Query(q): Query<PageQuery>,
) -> Response {
    let n = match q.page.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(p) => match p.parse::<i64>() {
            Ok(n) if (1..=MAX_TOKEN_PAGES).contains(&n) => n,
            _ => {
                let e = invalid(
                    "page",
                    format!("the page must be a whole number from 1 to {MAX_TOKEN_PAGES}"),
                );
                return failed(&o, &e);
            }
        },
    };
    match view(&st, &o, n).await {
        Ok(v) => page(StatusCode::OK, &v),
        Err(e) => failed(&o, &e),
    }
}

/// An expiry in days from a form: empty is none; anything else must be a whole number (the
/// service checks its range).
fn days_field(text: &str) -> Result<Option<i64>, AdminError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>().map(Some).map_err(|_| {
        invalid(
            "expiresInDays",
            format!(
                "the expiry must be a whole number of days from 1 to {}; got {t:?}",
                tokens::MAX_DAYS
            ),
        )
    })
}

async fn create_token(State(st): State<AppState>, AdminForm { o, f }: AdminForm) -> Response {
    let name = f.text("name");
    let outcome = match days_field(&f.text("days")) {
        Ok(days) => api::create_token_as(&st, &o.access, &name, days).await,
        Err(e) => Err(e),
    };
    after(&st, &o, |v| match outcome {
        Ok((t, secret)) => {
            v.secret = Some(NewSecret {
                name: t.name,
                secret,
                rotated: false,
            })
        }
        Err(e) => {
            v.notice = Some(capitalise(&refusal(&e).1));
            v.ok = false;
            v.form_name = name;
            v.form_days = f.text("days");
        }
    })
    .await
}

async fn rotate_token(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    AdminForm { o, .. }: AdminForm,
) -> Response {
    let outcome = api::rotate_token_as(&st, &o.access, &id, None).await;
    after(&st, &o, |v| match outcome {
        Ok((t, secret)) => {
            v.secret = Some(NewSecret {
                name: t.name,
                secret,
                rotated: true,
            })
        }
        Err(e) => {
            v.notice = Some(capitalise(&refusal(&e).1));
            v.ok = false;
        }
    })
    .await
}

/// Revoke asks first (`confirm` absent), then revokes (`confirm=yes`).
async fn revoke_token(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    AdminForm { o, f }: AdminForm,
) -> Response {
    if f.get("confirm") != Some("yes") {
        let name = match st.store.org_token(&o.access.org.id, &id).await {
            Ok(Some(t)) => t.name,
            Ok(None) => {
                let e: AdminError = crate::error::Error::not_found(format!(
                    "no token {id} in organization {:?}",
                    o.access.org.slug
                ))
                .into();
                return failed(&o, &e);
            }
            Err(e) => return failed(&o, &e.into()),
        };
        return after(&st, &o, |v| v.confirm = Some((id, name))).await;
    }
    let outcome = api::revoke_token_as(&st, &o.access, &id).await;
    after(&st, &o, |v| match outcome {
        Ok(t) => {
            v.notice = Some(format!(
                "The token {:?} is revoked: requests that carry it are refused from now on.",
                t.name
            ))
        }
        Err(e) => {
            v.notice = Some(capitalise(&refusal(&e).1));
            v.ok = false;
        }
    })
    .await
}

async fn test_connection(State(st): State<AppState>, AdminForm { o, .. }: AdminForm) -> Response {
    let outcome = api::test_connection_as(&st, &o.access, None).await;
    after(&st, &o, |v| match outcome {
        Ok(r) => {
            v.test_ok = r["ok"] == true;
            v.steps = Some(
                r["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| Step {
                        name: s["name"].as_str().unwrap_or_default().to_owned(),
                        request: s["request"].as_str().unwrap_or_default().to_owned(),
                        ok: s["ok"] == true,
                        detail: s["detail"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            );
        }
        Err(e) => {
            v.notice = Some(capitalise(&refusal(&e).1));
            v.ok = false;
        }
    })
    .await
}

// ---- The request log ------------------------------------------------------------------------

struct LogRow {
    id: String,
    time: String,
    token: String,
    method: String,
    path: String,
    filter: String,
    status: i64,
    detail: String,
    duration: String,
    /// Where the resource a failing request concerns is found in the console.
    resource: Option<(String, String)>,
}

struct StatusCount {
    status: i64,
    requests: i64,
}

struct TopError {
    status: i64,
    scim_type: String,
    detail: String,
    requests: i64,
}

/// The filters as the form shows them again.
#[derive(Default)]
struct LogForm {
    errors: bool,
    method: String,
    status: String,
    subject: String,
}

#[derive(Template)]
#[template(path = "request_log.html")]
struct LogPage {
    chrome: Chrome,
    title: String,
    slug: String,
    enabled: bool,
    requests: i64,
    errors: i64,
    by_status: Vec<StatusCount>,
    top_errors: Vec<TopError>,
    dropped: i64,
    form: LogForm,
    rows: Vec<LogRow>,
    total: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

fn duration(us: i64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// Where the console shows what a request concerns: the person's row on the Users page (found
/// by userName), else the group's page, else a search for the id.
fn resource_link(slug: &str, e: &LogEntry) -> Option<(String, String)> {
    let q = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let kind = e.path.split('/').nth(3);
    match (&e.user_name, &e.resource_id, kind) {
        (Some(u), _, Some("Users")) => Some((
            format!("/o/{slug}/users?q={}", q(u)),
            format!("Find {u} on the Users page"),
        )),
        (_, Some(id), Some("Groups")) => Some((
            format!("/o/{slug}/groups/{}", q(id)),
            "Open the group".to_owned(),
        )),
        (_, Some(id), Some("Users")) => Some((
            format!("/o/{slug}/users?q={}", q(id)),
            format!("Find user {id} on the Users page"),
        )),
        _ => None,
    }
}

fn log_row(slug: &str, e: &LogEntry) -> LogRow {
    LogRow {
        id: e.id.clone(),
        time: timestamp(e.created_at).replace('T', " "),
        token: e.token_name.clone().unwrap_or_else(|| "—".into()),
        method: e.method.clone(),
        path: e.path.clone(),
        filter: e.filter.clone().unwrap_or_default(),
        status: e.status,
        detail: [e.scim_type.as_deref(), e.detail.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": "),
        duration: duration(e.duration_us),
        resource: (e.status >= 400).then(|| resource_link(slug, e)).flatten(),
    }
}

/// A page link that keeps the filters.
fn page_link(slug: &str, q: &HashMap<String, String>, page: i64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for k in ["errors", "method", "status", "subject"] {
        if let Some(v) = q.get(k) {
            s.append_pair(k, v);
        }
    }
    s.append_pair("page", &page.to_string());
    format!("/o/{slug}/provisioning/log?{}", s.finish())
}

async fn log_page(
    State(st): State<AppState>,
    OrgPage(o): AdminPage,
    Path(slug): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    // The form sends empty fields and `errors=on`: the admin API's query has neither.
    let mut q: HashMap<String, String> = raw
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .take(MAX_QUERY_KEYS)
        .collect();
    if q.get("errors").is_some_and(|v| v == "on") {
        q.insert("errors".into(), "true".into());
    }
    let form = LogForm {
        errors: q.get("errors").is_some_and(|v| v == "true"),
        method: q.get("method").cloned().unwrap_or_default(),
        status: q.get("status").cloned().unwrap_or_default(),
        subject: q.get("subject").cloned().unwrap_or_default(),
    };
    let page_no = match q.remove("page").map(|p| p.trim().parse::<i64>()) {
        None => Ok(1),
        Some(Ok(n)) if (1..=1_000_000).contains(&n) => Ok(n),
        Some(_) => Err(invalid(
            "page",
            "the page must be a whole number from 1 to 1000000",
        )),
    };
    let mut api_q = q.clone();
    api_q.insert("count".into(), LOG_PAGE.to_string());
    let listed = match page_no {
        Ok(n) => {
            api_q.insert("startIndex".into(), ((n - 1) * LOG_PAGE + 1).to_string());
            match api::log_query(&api_q) {
                Ok((filter, start, count)) => st
                    .store
                    .request_log(&o.access.org.id, &filter, start, count)
                    .await
                    .map(|r| (n, r))
                    .map_err(AdminError::from),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let summary = match api::summary_as(&st, &o.access).await {
        Ok(s) => s,
        Err(e) => return failed(&o, &e),
    };
    let num = |v: &Value| v.as_i64().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut view = LogPage {
        chrome: o.chrome("provisioning"),
        title: format!("SCIM request log of {}", o.access.org.name),
        slug: slug.clone(),
        enabled: st.request_log.is_some(),
        requests: num(&summary["requests"]),
        errors: num(&summary["errors"]),
        by_status: summary["byStatus"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| StatusCount {
                status: num(&s["status"]),
                requests: num(&s["requests"]),
            })
            .collect(),
        top_errors: summary["topErrors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| TopError {
                status: num(&s["status"]),
                scim_type: text(&s["scimType"]),
                detail: text(&s["detail"]),
                requests: num(&s["requests"]),
            })
            .collect(),
        dropped: num(&summary["dropped"]),
        form,
        rows: Vec::new(),
        total: 0,
        first: 0,
        last: 0,
        prev: None,
        next: None,
        error: None,
    };
    match listed {
        Ok((n, (total, entries))) => {
            let slug = &o.access.org.slug;
            view.rows = entries.iter().map(|e| log_row(slug, e)).collect();
            view.total = total;
            view.first = (n - 1) * LOG_PAGE + 1;
            view.last = view.first + view.rows.len() as i64 - 1;
            view.prev = (n > 1).then(|| page_link(slug, &q, n - 1));
            view.next = (view.last < total).then(|| page_link(slug, &q, n + 1));
            page(StatusCode::OK, &view)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            view.error = Some(capitalise(&text));
            page(status, &view)
        }
    }
}

#[derive(Template)]
#[template(path = "log_entry.html")]
struct EntryPage {
    chrome: Chrome,
    title: String,
    slug: String,
    row: LogRow,
    scim_type: String,
    error_detail: String,
    client_ip: String,
    user_agent: String,
    request_id: String,
    user_name: String,
    request_body: String,
    response_body: String,
}

/// A stored body, indented when it is JSON (it may be cut at the log's bound, then as kept).
fn pretty(body: Option<&str>) -> String {
    match body {
        None | Some("") => String::new(),
        Some(b) => serde_json::from_str::<Value>(b)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| b.to_owned()),
    }
}

async fn entry_page(
    State(st): State<AppState>,
    OrgPage(o): AdminPage,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let e = match st.store.request_log_entry(&o.access.org.id, &id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return message(
                o.chrome("provisioning"),
                StatusCode::NOT_FOUND,
                "Not found",
                &format!(
                    "No request-log entry {id} in {} (entries are kept for a while).",
                    o.access.org.name
                ),
                Some((&format!("/o/{slug}/provisioning/log"), "Back to the log")),
            )
        }
        Err(e) => return failed(&o, &e.into()),
    };
    let slug = o.access.org.slug.clone();
    let row = log_row(&slug, &e);
    page(
        StatusCode::OK,
        &EntryPage {
            chrome: o.chrome("provisioning"),
            title: format!("{} {} → {}", e.method, e.path, e.status),
            slug,
            row,
            scim_type: e.scim_type.clone().unwrap_or_default(),
            error_detail: e.detail.clone().unwrap_or_default(),
            client_ip: e.client_ip.clone().unwrap_or_default(),
            user_agent: e.user_agent.clone().unwrap_or_default(),
            request_id: e.request_id.clone().unwrap_or_default(),
            user_name: e.user_name.clone().unwrap_or_default(),
            request_body: pretty(e.request_body.as_deref()),
            response_body: pretty(e.response_body.as_deref()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_days_are_whole_numbers_or_empty() {
        assert!(matches!(days_field(" "), Ok(None)));
        assert!(matches!(days_field("30"), Ok(Some(30))));
        assert!(days_field("3.5").is_err());
        assert!(days_field("soon").is_err());
    }

    #[test]
    fn times_read_to_the_minute() {
        assert_eq!(
            minute("2026-01-02T03:04:05.678Z".into()),
            "2026-01-02 03:04 UTC"
        );
    }
}
