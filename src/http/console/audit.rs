//! The Audit log page, for the organization's admins: every change made by SCIM, the admin API
//! or the console, newest first, 50 to a page, filtered by who acted, what they did and what it
//! concerned. The filters and the admin check are the admin API's own (`admin::audit_filter`,
//! `admin::audit_as`), so the page and `GET /admin/v1/orgs/{slug}/audit` list the same entries.

use super::{capitalise, page, refusal, Chrome, InOrg, Signed};
use crate::http::admin::{self, invalid, AdminError};
use crate::http::AppState;
use crate::service::render::timestamp;
use crate::store::AuditEvent;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::collections::HashMap;

/// Entries on one page.
pub const AUDIT_PAGE: i64 = 50;
/// A day, in the microseconds scimd stores times in: the "To" date includes its whole day.
const DAY_MICROS: i64 = 86_400_000_000;

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
    /// First day shown (a date, UTC).
    from: Option<String>,
    /// Last day shown, included (a date, UTC).
    to: Option<String>,
    /// Keyset paging: the entries older than this cursor (the last entry of a page) ...
    older: Option<String>,
    /// ... or the ones just newer than this one (the first entry of a page).
    newer: Option<String>,
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
    from: String,
    to: String,
    actions: Vec<(&'static str, bool)>,
    rows: Vec<AuditRow>,
    total: i64,
    /// The first page's link, when this is not the first page.
    newest: Option<String>,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
    /// The field the error concerns, so the message sits beside it.
    field: String,
}

/// The filters a page link keeps.
#[derive(Clone, Copy)]
struct Filters<'a> {
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    from: &'a str,
    to: &'a str,
}

/// A link to the page with these filters (empty ones left out), at a keyset position
/// (`("older" | "newer", cursor)`) when not the first page.
fn page_link(slug: &str, f: Filters<'_>, at: Option<(&str, &str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("actor", f.actor),
        ("action", f.action),
        ("target", f.target),
        ("from", f.from),
        ("to", f.to),
    ] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if let Some((k, v)) = at {
        s.append_pair(k, v);
    }
    match s.finish() {
        q if q.is_empty() => format!("/o/{slug}/audit"),
        q => format!("/o/{slug}/audit?{q}"),
    }
}

/// One filter on its own: the links from an entry's actor and target.
fn only<'a>(actor: &'a str, target: &'a str) -> Filters<'a> {
    Filters {
        actor,
        action: "",
        target,
        from: "",
        to: "",
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
    signed: Signed,
    Path(slug): Path<String>,
    Query(form): Query<AuditForm>,
    headers: HeaderMap,
) -> Response {
    let o = match InOrg::admin_page(&st, signed, &slug, &headers).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
    let mut view = AuditPage {
        chrome: o.chrome("audit"),
        title: format!("Audit log of {}", o.access.org.name),
        slug: o.access.org.slug.clone(),
        actor: text(&form.actor),
        action: text(&form.action),
        target: text(&form.target),
        from: text(&form.from),
        to: text(&form.to),
        actions: Vec::new(),
        rows: Vec::new(),
        total: 0,
        newest: None,
        prev: None,
        next: None,
        error: None,
        field: String::new(),
    };
    view.actions = ACTIONS.iter().map(|a| (*a, *a == view.action)).collect();
    let listed = async {
        let mut filter = admin::audit_filter(
            &st,
            form.actor.clone(),
            form.action.clone(),
            form.target.clone(),
        )
        .await?;
        let day = |field: &'static str, v: &str| -> Result<Option<i64>, AdminError> {
            match v {
                "" => Ok(None),
                v => Ok(Some(crate::domain::parse_time(field, v)?)),
            }
        };
        filter.since = day("from", &view.from)?;
        filter.until = day("to", &view.to)?.map(|t| t.saturating_add(DAY_MICROS));
        if let (Some(s), Some(u)) = (filter.since, filter.until) {
            if s >= u {
                return Err(invalid("to", "the last day must not be before the first"));
            }
        }
        let cursor = |field: &'static str, c: &str| {
            crate::scim::search::decode_cursor(c)
                .map_err(|e| AdminError(e.on_field(field)))?
                .ok_or_else(|| invalid(field, format!("{field} needs a position")))
        };
        // One entry more than a page tells whether there is another page that way.
        let (newer, mut events, total);
        match (form.older.as_deref(), form.newer.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(invalid("newer", "page older or newer, not both at once"));
            }
            (None, Some(c)) => {
                filter.after = Some(cursor("newer", c)?);
                newer = true;
                (total, events) =
                    admin::audit_as(&st, &o.access, &filter, false, 1, AUDIT_PAGE + 1).await?;
            }
            (older, None) => {
                filter.after = older.map(|c| cursor("older", c)).transpose()?;
                newer = false;
                (total, events) =
                    admin::audit_as(&st, &o.access, &filter, true, 1, AUDIT_PAGE + 1).await?;
            }
        }
        let more = events.len() as i64 > AUDIT_PAGE;
        events.truncate(AUDIT_PAGE as usize);
        if newer {
            events.reverse();
        }
        let names = names(&st, &o.access.org.id, &events).await?;
        let first_page = form.older.is_none() && (form.newer.is_none() || (newer && !more));
        Ok::<_, AdminError>((total, events, names, newer, more, first_page))
    }
    .await;
    match listed {
        Ok((total, events, names, newer, more, first_page)) => {
            let key = |e: &AuditEvent| crate::scim::search::encode_cursor(e.created_at, &e.id);
            let (first_key, last_key) = (
                events.first().map(key).unwrap_or_default(),
                events.last().map(key).unwrap_or_default(),
            );
            view.rows = events
                .into_iter()
                .map(|e| AuditRow {
                    time: timestamp(e.created_at),
                    who: names.get(&e.actor).cloned().unwrap_or_default(),
                    actor_href: page_link(&slug, only(&e.actor, ""), None),
                    actor: e.actor,
                    action: e.action,
                    target_href: page_link(
                        &slug,
                        only("", e.target.as_deref().unwrap_or_default()),
                        None,
                    ),
                    target: e.target.unwrap_or_default(),
                    request_id: e.request_id.unwrap_or_default(),
                })
                .collect();
            view.total = total;
            let f = Filters {
                actor: &view.actor,
                action: &view.action,
                target: &view.target,
                from: &view.from,
                to: &view.to,
            };
            // Paging newer, there is always an older page (the one we came from); paging
            // older, a newer one unless this is the first page.
            let has_older = if newer { !view.rows.is_empty() } else { more };
            let has_newer = if newer { more } else { !first_page };
            view.newest = (!first_page).then(|| page_link(&slug, f, None));
            view.prev = (has_newer && !first_key.is_empty())
                .then(|| page_link(&slug, f, Some(("newer", &first_key))));
            view.next = (has_older && !last_key.is_empty())
                .then(|| page_link(&slug, f, Some(("older", &last_key))));
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
