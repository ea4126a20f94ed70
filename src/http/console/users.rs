//! The Users page: the organization's people, with search, the status, role and group filters,
//! and pages by keyset cursor (the row actions are in `user_actions`, the Invite users panel in
//! `invite_users`).

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::{capitalise, page, refusal, Chrome, InOrg, MemberOfPage, OrgPage};
use crate::http::AppState;
use crate::scim::schema::Kind;
use crate::store::{ListQuery, MemberQuery, Record, MEMBER_COUNT_CAP};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

/// People on one page of the Users table.
pub const PAGE_SIZE: i64 = 50;
/// Longest search text.
const MAX_SEARCH: usize = 200;
/// Most members a search of one or two characters tests for one page (a longer one is looked
/// up in the trigram index).
const SHORT_WALK: i64 = 5000;
/// Most groups the invite panel and the group filter offer.
const MAX_GROUP_CHOICES: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/o/{slug}/users", get(users_page))
}

/// One row of the Users table: a member, or (under the Pending filter) an invitation.
pub struct Row {
    pub id: String,
    pub name: String,
    pub email: String,
    /// How controls name the person (their name, else their email).
    pub label: String,
    pub role: String,
    pub active: bool,
    pub groups: String,
    pub last_active: String,
    /// Created by the identity provider (it sent an `externalId`): SCIM owns it.
    pub managed: bool,
    pub pending: bool,
    /// The outcome of an action on this row, shown in it.
    pub message: Option<String>,
    pub ok: bool,
}

fn str_at<'a>(doc: &'a serde_json::Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let mut v = doc.get(path[0])?;
    for p in &path[1..] {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

pub fn row(rec: &Record, last_active: Option<i64>) -> Row {
    let doc = &rec.doc;
    let email = doc
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|e| {
            e.iter()
                .find(|v| v["primary"] == true)
                .or_else(|| e.first())
        })
        .and_then(|v| v["value"].as_str())
        .or_else(|| str_at(doc, &["userName"]))
        .unwrap_or_default()
        .to_owned();
    let name = str_at(doc, &["displayName"])
        .map(str::to_owned)
        .or_else(|| str_at(doc, &["name", "formatted"]).map(str::to_owned))
        .or_else(|| {
            let parts: Vec<&str> = [
                str_at(doc, &["name", "givenName"]),
                str_at(doc, &["name", "familyName"]),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .unwrap_or_default();
    let groups = rec
        .groups
        .iter()
        .flatten()
        .map(|g| g.display.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Row {
        id: rec.id.clone(),
        label: if name.is_empty() {
            email.clone()
        } else {
            name.clone()
        },
        name,
        email,
        role: rec.role.clone().unwrap_or_else(|| "member".into()),
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        groups,
        last_active: last_active.map_or_else(|| "Never".into(), day),
        managed: doc.get("externalId").is_some_and(|v| !v.is_null()),
        pending: false,
        message: None,
        ok: true,
    }
}

/// A time as the table shows it: its day (UTC).
pub fn day(micros: i64) -> String {
    crate::service::render::timestamp(micros)
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

/// Rows for records, with when each member last acted in this organization.
pub async fn rows(
    st: &AppState,
    org: &str,
    recs: &[Record],
) -> Result<Vec<Row>, crate::error::Error> {
    let ids: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
    let details = st.store.member_details(org, &ids).await?;
    Ok(recs
        .iter()
        .map(|r| {
            let last = details
                .iter()
                .find(|d| d.member_id == r.id)
                .and_then(|d| d.last_active_at);
            row(r, last)
        })
        .collect())
}

#[derive(Deserialize, Default)]
struct UsersQuery {
    q: Option<String>,
    status: Option<String>,
    role: Option<String>,
    /// A group's id.
    group: Option<String>,
    /// The keyset cursor: `created_at.id` of the last row of the previous page.
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    title: String,
    slug: String,
    admin: bool,
    q: String,
    status: String,
    role: String,
    group: String,
    status_options: Vec<(&'static str, &'static str, bool)>,
    role_options: Vec<(&'static str, &'static str, bool)>,
    /// `(id, name, chosen)` of the organization's groups.
    group_options: Vec<(String, String, bool)>,
    /// Why the group filter was refused, shown beside it.
    group_error: Option<String>,
    rows: Vec<Row>,
    total_text: String,
    error: Option<String>,
    paged: bool,
    first_url: String,
    next_url: Option<String>,
}

/// The store's member query for the page's search and filters (the pending filter lists
/// invitations instead).
fn member_query(q: &str, status: &str, role: &str, group: &str) -> MemberQuery {
    MemberQuery {
        search: (!q.is_empty()).then(|| q.to_owned()),
        active: match status {
            "active" => Some(true),
            "inactive" => Some(false),
            _ => None,
        },
        admin: match role {
            "admin" => Some(true),
            "member" => Some(false),
            _ => None,
        },
        group: (!group.is_empty()).then(|| group.to_owned()),
        after: None,
        count: PAGE_SIZE,
        short_walk: SHORT_WALK,
    }
}

fn options(
    all: &[(&'static str, &'static str)],
    chosen: &str,
) -> Vec<(&'static str, &'static str, bool)> {
    all.iter().map(|(v, l)| (*v, *l, *v == chosen)).collect()
}

/// The page's address for its search and filters (`f`: q, status, role, group) and cursor.
fn users_url(slug: &str, f: [&str; 4], after: Option<&str>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in ["q", "status", "role", "group"].into_iter().zip(f) {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if let Some(a) = after {
        s.append_pair("after", a);
    }
    let qs = s.finish();
    if qs.is_empty() {
        format!("/o/{slug}/users")
    } else {
        format!("/o/{slug}/users?{qs}")
    }
}

async fn users_page(
    State(st): State<AppState>,
    OrgPage(o): MemberOfPage,
    Path(slug): Path<String>,
    Query(uq): Query<UsersQuery>,
) -> Response {
    // Control characters never occur in a name or an address.
    let q: String =
        uq.q.unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_SEARCH)
            .collect();
    let status = match uq.status.as_deref() {
        Some(s @ ("active" | "inactive" | "pending")) => s.to_owned(),
        _ => String::new(),
    };
    let role = match uq.role.as_deref() {
        Some(r @ ("admin" | "member")) => r.to_owned(),
        _ => String::new(),
    };
    let group: String = uq
        .group
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect();
    let after = uq.after.as_deref().and_then(cursor);
    let t = &o.access.tenant;
    let groups = match group_filter_choices(&st, &o, &group).await {
        Ok(g) => g,
        Err(e) => return super::super::invite::internal(e),
    };
    let known = group.is_empty() || groups.iter().any(|(id, _, _)| *id == group);
    let mut view = UsersPage {
        chrome: o.chrome("users"),
        title: format!("Users of {}", o.access.org.name),
        slug: o.access.org.slug.clone(),
        admin: o.access.admin,
        status_options: options(
            &[
                ("", "Any status"),
                ("active", "Active"),
                ("inactive", "Inactive"),
                ("pending", "Pending invitation"),
            ],
            &status,
        ),
        role_options: options(
            &[("", "Any role"), ("admin", "Admin"), ("member", "Member")],
            &role,
        ),
        group_options: groups,
        group_error: None,
        first_url: users_url(
            &slug,
            [&q, &status, &role, &group].map(String::as_str),
            None,
        ),
        paged: after.is_some(),
        q,
        status,
        role,
        group,
        rows: Vec::new(),
        total_text: String::new(),
        error: None,
        next_url: None,
    };
    if !known {
        view.group_error = Some("There is no such group in this organization.".into());
        return page(StatusCode::BAD_REQUEST, &view);
    }
    if view.status == "pending" {
        if !o.access.admin {
            view.error =
                Some("Pending invitations are shown to the organization's admins only.".into());
            return page(StatusCode::FORBIDDEN, &view);
        }
        match pending_rows(&st, &o.access.org.id, &view.q, &view.role, &view.group).await {
            Ok(rows) => {
                view.total_text = count_text(
                    rows.len() as i64,
                    "pending invitation",
                    "pending invitations",
                );
                view.rows = rows;
            }
            Err(e) => return super::super::invite::internal(e),
        }
        return page(StatusCode::OK, &view);
    }
    let mq = MemberQuery {
        after,
        ..member_query(&view.q, &view.status, &view.role, &view.group)
    };
    let found = async {
        let page = st.store.list_members(&t.org_id, &mq).await?;
        let rows = rows(&st, &t.org_id, &page.records).await?;
        Ok::<_, crate::error::Error>((page, rows))
    }
    .await;
    match found {
        Ok((found, rows)) => {
            let n = rows.len() as i64;
            let filtered = mq.search.is_some()
                || mq.active.is_some()
                || mq.admin.is_some()
                || mq.group.is_some();
            view.total_text = match found.total {
                // Without a filter the total is exact (the organization's counter), else it
                // stops counting past the cap.
                Some(total) if filtered && total > MEMBER_COUNT_CAP => {
                    format!("More than {MEMBER_COUNT_CAP} people")
                }
                Some(total) => count_text(total, "person", "people"),
                // A search of one or two characters, not counted.
                None if found.resume.is_some() => format!(
                    "{} among the next {SHORT_WALK} people searched (search three characters or more to search everyone at once)",
                    count_text(n, "person", "people")
                ),
                None if n == PAGE_SIZE => format!("{n} people on this page, and maybe more"),
                None if mq.after.is_none() => count_text(n, "person", "people"),
                None => format!("{} on this page", count_text(n, "person", "people")),
            };
            let next = if n == PAGE_SIZE {
                found.records.last().map(|r| (r.created_at, r.id.clone()))
            } else {
                found.resume
            };
            let f = [&view.q, &view.status, &view.role, &view.group].map(String::as_str);
            view.next_url = next.map(|(at, id)| users_url(&slug, f, Some(&format!("{at}.{id}"))));
            view.rows = rows;
            page(StatusCode::OK, &view)
        }
        Err(e) => {
            let (status, text) = refusal(&e.into());
            view.error = Some(capitalise(&text));
            page(status, &view)
        }
    }
}

/// The organization's groups for the group filter, `(id, name, chosen)`: the invite panel's
/// choices, and the chosen one wherever it falls (when it is this organization's).
async fn group_filter_choices(
    st: &AppState,
    o: &InOrg,
    chosen: &str,
) -> Result<Vec<(String, String, bool)>, crate::error::Error> {
    let mut out = group_choices(st, o, &[chosen.to_owned()]).await?;
    if !chosen.is_empty() && !out.iter().any(|g| g.2) {
        if let Some(g) = st.store.get(&o.access.org.id, Kind::Group, chosen).await? {
            let name = str_at(&g.doc, &["displayName"]).unwrap_or(&g.id).to_owned();
            out.push((g.id, name, true));
        }
    }
    Ok(out)
}

/// A keyset cursor from its `created_at.id` form; anything else starts at the first page.
pub fn cursor(text: &str) -> Option<(i64, String)> {
    let (ts, id) = text.split_once('.')?;
    Some((ts.parse::<i64>().ok()?, id.chars().take(100).collect()))
}

fn count_text(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Pending invitations as rows ("Pending" in Last active), newest first, at most a page.
async fn pending_rows(
    st: &AppState,
    org: &str,
    q: &str,
    role: &str,
    group: &str,
) -> Result<Vec<Row>, crate::error::Error> {
    let now = st.clock.now();
    let q = q.to_lowercase();
    let invitations = st.store.list_invitations(org).await?;
    let mut names = std::collections::HashMap::new();
    let groups = st
        .store
        .list(org, Kind::Group, &list_all(MAX_GROUP_CHOICES))
        .await?;
    for g in &groups.records {
        names.insert(
            g.id.clone(),
            str_at(&g.doc, &["displayName"])
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let mut out: Vec<Row> = invitations
        .into_iter()
        .filter(|i| i.status == "pending" && i.expires_at > now)
        .filter(|i| role.is_empty() || i.role == role)
        .filter(|i| group.is_empty() || i.groups.iter().any(|g| g == group))
        .filter(|i| {
            q.is_empty()
                || i.email.to_lowercase().contains(&q)
                || format!("{} {}", i.first_name, i.last_name)
                    .to_lowercase()
                    .contains(&q)
        })
        .map(|i| {
            let name = format!("{} {}", i.first_name, i.last_name)
                .trim()
                .to_owned();
            Row {
                id: i.id,
                label: if name.is_empty() {
                    i.email.clone()
                } else {
                    name.clone()
                },
                name,
                email: i.email,
                role: i.role,
                active: false,
                groups: i
                    .groups
                    .iter()
                    .filter_map(|g| names.get(g).cloned())
                    .collect::<Vec<_>>()
                    .join(", "),
                last_active: "Pending".into(),
                managed: false,
                pending: true,
                message: None,
                ok: true,
            }
        })
        .collect();
    out.reverse();
    out.truncate(PAGE_SIZE as usize);
    Ok(out)
}

pub fn list_all(count: i64) -> ListQuery {
    ListQuery {
        filter: None,
        sort: None,
        start_index: 1,
        count,
        after: None,
    }
}

/// The organization's groups (at most `MAX_GROUP_CHOICES`), `(id, name, checked)`, for the
/// invite panel's and the invitation's checkboxes.
pub async fn group_choices(
    st: &AppState,
    o: &InOrg,
    checked: &[String],
) -> Result<Vec<(String, String, bool)>, crate::error::Error> {
    let page = st
        .provisioning
        .list(&o.access.tenant, Kind::Group, &list_all(MAX_GROUP_CHOICES))
        .await?;
    Ok(page
        .records
        .iter()
        .map(|g| {
            (
                g.id.clone(),
                str_at(&g.doc, &["displayName"]).unwrap_or(&g.id).to_owned(),
                checked.contains(&g.id),
            )
        })
        .collect())
}

/// What the pages say when the server sends no mail.
pub fn delivery_note(st: &AppState) -> Option<String> {
    (!st.config.mail_configured).then(|| {
        "Email delivery is not configured on this server, so nothing was mailed: people see \
         their invitations after signing in, and the server's operator can read the mail with \
         `scimd mail list`."
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_and_filters_become_one_member_query() {
        let q = member_query("", "", "", "");
        assert_eq!(
            (q.search, q.active, q.admin, q.group),
            (None, None, None, None)
        );
        let q = member_query("Ada %_", "inactive", "member", "g1");
        assert_eq!(q.search.as_deref(), Some("Ada %_"));
        assert_eq!((q.active, q.admin), (Some(false), Some(false)));
        assert_eq!(q.group.as_deref(), Some("g1"));
        let q = member_query("", "active", "admin", "");
        assert_eq!((q.active, q.admin), (Some(true), Some(true)));
        assert_eq!(
            users_url("acme", ["a b", "", "admin", "g1"], Some("5.x")),
            "/o/acme/users?q=a+b&role=admin&group=g1&after=5.x"
        );
    }
}
