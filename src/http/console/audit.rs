//! The Audit log page, for the organization's admins: every change made by SCIM, the admin API
//! or the console, newest first, 50 to a page, filtered by who acted, what they did and what it
//! concerned. The filters and the admin check are the admin API's own (`admin::audit_filter`,
//! `admin::audit_as`), so the page and `GET /admin/v1/orgs/{slug}/audit` list the same entries.

use super::{capitalise, page, refusal, AdminPage, Chrome, OrgPage};
use crate::http::admin::{self, invalid, AdminError};
use crate::http::AppState;
use crate::service::render::timestamp;
use crate::store::AuditEvent;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::collections::HashMap;

/// Entries on one page.
pub const AUDIT_PAGE: i64 = 50;
/// The deepest page the table goes to (older entries: narrow the filters).
pub const MAX_AUDIT_PAGES: i64 = 10_000;

/// The actions scimd records, offered in the filter (the API takes any text).
const ACTIONS: &[&str] = &[
    "User.create",
    "User.update",
    "User.delete",
    "Group.create",
    "Group.update",
    "Group.delete",
    "Invitation.create",
    "Invitation.update",
    "Invitation.resend",
    "Invitation.revoke",
    "Invitation.accept",
    "Token.create",
    "Token.rotate",
    "Token.revoke",
    "Organization.create",
];

pub fn router() -> Router<AppState> {
    Router::new().route("/o/{slug}/audit", get(audit_page))
}

#[derive(Deserialize, Default)]
struct AuditForm {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    page: Option<String>,
}

struct AuditRow {
    time: String,
    /// The stored actor, and the link that filters by it.
    actor: String,
    actor_href: String,
    /// How the page names the actor: a person's email, a provisioning token's name.
    who: String,
    action: String,
    target: String,
    target_href: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    title: String,
    slug: String,
    actor: String,
    action: String,
    target: String,
    actions: Vec<(&'static str, bool)>,
    rows: Vec<AuditRow>,
    total: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
    /// The field the error concerns, so the message sits beside it.
    field: String,
}

/// A link to the page with these filters (empty ones left out), at page `n` when not the first.
fn page_link(slug: &str, actor: &str, action: &str, target: &str, n: i64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("actor", actor), ("action", action), ("target", target)] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if n > 1 {
        s.append_pair("page", &n.to_string());
    }
    match s.finish() {
        q if q.is_empty() => format!("/o/{slug}/audit"),
        q => format!("/o/{slug}/audit?{q}"),
    }
}

/// Names for the actors on a page, looked up once each: a person by their email (they acted in
/// this organization, so it knows them), a provisioning token by its name.
async fn names(
    st: &AppState,
    org: &str,
    events: &[AuditEvent],
) -> Result<HashMap<String, String>, crate::error::Error> {
    let mut out = HashMap::new();
    for e in events {
        if out.contains_key(&e.actor) {
            continue;
        }
        let name = if let Some(id) = e.actor.strip_prefix("account:") {
            st.store.account(id).await?.map(|a| a.email)
        } else if let Some(id) = e.actor.strip_prefix("token:") {
            st.store
                .org_token(org, id)
                .await?
                .map(|t| format!("identity provider (token {:?})", t.name))
        } else if e.actor.starts_with("admin:") {
            Some("provider admin".to_owned())
        } else {
            None
        };
        out.insert(e.actor.clone(), name.unwrap_or_else(|| e.actor.clone()));
    }
    Ok(out)
}

async fn audit_page(
    State(st): State<AppState>,
    OrgPage(o): AdminPage,
    Path(slug): Path<String>,
    Query(form): Query<AuditForm>,
) -> Response {
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
    let mut view = AuditPage {
        chrome: o.chrome("audit"),
        title: format!("Audit log of {}", o.access.org.name),
        slug: o.access.org.slug.clone(),
        actor: text(&form.actor),
        action: text(&form.action),
        target: text(&form.target),
        actions: Vec::new(),
        rows: Vec::new(),
        total: 0,
        first: 0,
        last: 0,
        prev: None,
        next: None,
        error: None,
        field: String::new(),
    };
    view.actions = ACTIONS.iter().map(|a| (*a, *a == view.action)).collect();
    let listed = async {
        let n = match form.page.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_AUDIT_PAGES).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "page",
                        format!("the page must be a whole number from 1 to {MAX_AUDIT_PAGES}"),
                    )
                })?,
        };
        let filter = admin::audit_filter(
            &st,
            form.actor.clone(),
            form.action.clone(),
            form.target.clone(),
        )
        .await?;
        let start = (n - 1) * AUDIT_PAGE + 1;
        let (total, events) =
            admin::audit_as(&st, &o.access, &filter, true, start, AUDIT_PAGE).await?;
        let names = names(&st, &o.access.org.id, &events).await?;
        Ok::<_, AdminError>((n, total, events, names))
    }
    .await;
    match listed {
        Ok((n, total, events, names)) => {
            view.rows = events
                .into_iter()
                .map(|e| AuditRow {
                    time: timestamp(e.created_at),
                    who: names.get(&e.actor).cloned().unwrap_or_default(),
                    actor_href: page_link(&slug, &e.actor, "", "", 1),
                    actor: e.actor,
                    action: e.action,
                    target_href: page_link(
                        &slug,
                        "",
                        "",
                        e.target.as_deref().unwrap_or_default(),
                        1,
                    ),
                    target: e.target.unwrap_or_default(),
                    request_id: e.request_id.unwrap_or_default(),
                })
                .collect();
            view.total = total;
            view.first = (n - 1) * AUDIT_PAGE + 1;
            view.last = view.first + view.rows.len() as i64 - 1;
            let link = |n| page_link(&slug, &view.actor, &view.action, &view.target, n);
            view.prev = (n > 1).then(|| link(n - 1));
            view.next = (view.last < total && n < MAX_AUDIT_PAGES).then(|| link(n + 1));
            page(StatusCode::OK, &view)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            view.field = e.field().unwrap_or_default().to_owned();
            view.error = Some(capitalise(&text));
            page(status, &view)
        }
    }
}
