//! The Users page (the organization's people: search, filters, role, active, remove) and the
//! Invite users panel (up to 20 addresses, or a CSV with a dry run first). Each action is one
//! call of the admin API's own function.

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::{capitalise, message, page, refusal, Chrome, FormFields, InOrg, Signed};
use crate::http::admin::{self, MemberChange, MAX_INVITATIONS, MAX_REMOVE};
use crate::http::AppState;
use crate::scim::schema::Kind;
use crate::store::{ListQuery, MemberQuery, Record, MEMBER_COUNT_CAP};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// People on one page of the Users table.
pub const PAGE_SIZE: i64 = 50;
/// Longest search text.
const MAX_SEARCH: usize = 200;
/// Most members a search of one or two characters tests for one page (a longer one is looked
/// up in the trigram index).
const SHORT_WALK: i64 = 5000;
/// Most groups the invite panel offers as checkboxes.
const MAX_GROUP_CHOICES: i64 = 200;
/// A CSV upload: the file (at most `csv_import::MAX_BYTES`) with the form around it, and its
/// confirmation, which carries the file back base64-encoded.
const CSV_BODY_LIMIT: usize = 2 * crate::service::csv_import::MAX_BYTES;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{slug}/users", get(users_page))
        .route("/o/{slug}/users/{id}/role", post(change_role))
        .route("/o/{slug}/users/{id}/active", post(change_active))
        .route("/o/{slug}/users/remove/confirm", post(confirm_remove))
        .route("/o/{slug}/users/remove", post(remove))
        .route("/o/{slug}/users/add", get(add_page).post(add))
        .route("/o/{slug}/invite", get(invite_page).post(invite))
        .route("/o/{slug}/invite/example.csv", get(example_csv))
        .route(
            "/o/{slug}/invite/csv",
            post(csv_check).layer(DefaultBodyLimit::max(CSV_BODY_LIMIT)),
        )
        .route(
            "/o/{slug}/invite/csv/confirm",
            post(csv_confirm).layer(DefaultBodyLimit::max(CSV_BODY_LIMIT)),
        )
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
async fn rows(st: &AppState, org: &str, recs: &[Record]) -> Result<Vec<Row>, crate::error::Error> {
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

#[derive(Template)]
#[template(path = "user_row.html")]
struct RowPartial {
    chrome: Chrome,
    slug: String,
    admin: bool,
    r: Row,
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
    signed: Signed,
    Path(slug): Path<String>,
    Query(uq): Query<UsersQuery>,
    headers: HeaderMap,
) -> Response {
    let o = match InOrg::load(&st, signed, &slug, &headers).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
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

/// A role or active change from the row's control: the admin API's `change_member_as` (its
/// rules: admins only, not deactivating oneself, never the last admin). The answer is the row
/// again, with the outcome in it; always 200, so htmx swaps it in.
async fn change(
    st: &AppState,
    signed: Signed,
    slug: &str,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    make: impl FnOnce(&FormFields) -> (MemberChange, String),
) -> Response {
    let f = FormFields::parse(body);
    let o = match InOrg::load(st, signed, slug, headers).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    if !o.signed.csrf_ok(headers, f.get("csrf")) {
        return o.bad_csrf();
    }
    let (what, done) = make(&f);
    let outcome = admin::change_member_as(st, &o.access, id, what).await;
    let (message, ok) = match outcome {
        Ok(_) => (done, true),
        Err(e) => (capitalise(&refusal(&e).1), false),
    };
    let t = &o.access.tenant;
    let rec = match st.provisioning.get(t, Kind::User, id).await {
        Ok(r) => r,
        Err(e) => {
            return message_row(&o, id, &capitalise(&refusal(&e.into()).1));
        }
    };
    match rows(st, &t.org_id, std::slice::from_ref(&rec)).await {
        Ok(mut rs) => {
            let mut r = rs.remove(0);
            r.message = Some(message);
            r.ok = ok;
            page(
                StatusCode::OK,
                &RowPartial {
                    chrome: o.chrome("users"),
                    slug: o.access.org.slug.clone(),
                    admin: o.access.admin,
                    r,
                },
            )
        }
        Err(e) => super::super::invite::internal(e),
    }
}

/// A row that only says why nothing could be shown (the member is gone, say).
fn message_row(o: &InOrg, id: &str, text: &str) -> Response {
    page(
        StatusCode::OK,
        &RowPartial {
            chrome: o.chrome("users"),
            slug: o.access.org.slug.clone(),
            admin: false,
            r: Row {
                id: id.to_owned(),
                name: String::new(),
                email: String::new(),
                label: id.to_owned(),
                role: String::new(),
                active: false,
                groups: String::new(),
                last_active: String::new(),
                managed: false,
                pending: false,
                message: Some(text.to_owned()),
                ok: false,
            },
        },
    )
}

async fn change_role(
    State(st): State<AppState>,
    signed: Signed,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&st, signed, &slug, &id, &headers, &body, |f| {
        let role = f.text("role");
        let done = format!("Role changed to {role}.");
        (
            MemberChange {
                role: Some(role),
                ..Default::default()
            },
            done,
        )
    })
    .await
}

async fn change_active(
    State(st): State<AppState>,
    signed: Signed,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&st, signed, &slug, &id, &headers, &body, |f| {
        // An unchecked checkbox sends nothing.
        let active = f.get("active") == Some("true");
        let done = if active { "Activated." } else { "Deactivated." };
        (
            MemberChange {
                active: Some(active),
                ..Default::default()
            },
            done.to_owned(),
        )
    })
    .await
}

#[derive(Template)]
#[template(path = "remove.html")]
struct RemovePage {
    chrome: Chrome,
    title: &'static str,
    slug: String,
    confirming: bool,
    /// `(id, label)` of each person to remove.
    people: Vec<(String, String)>,
    /// `(person, removed, message)`.
    results: Vec<(String, bool, String)>,
}

/// The ids a removal form names, checked for count; the admin role is checked by the caller.
fn removal_ids(o: &InOrg, f: &FormFields) -> Result<Vec<String>, Response> {
    let mut ids = f.all("ids");
    ids.dedup();
    let back = format!("/o/{}/users", o.access.org.slug);
    if ids.is_empty() {
        return Err(message(
            o.chrome("users"),
            StatusCode::BAD_REQUEST,
            "Nobody selected",
            "Tick the people to remove first.",
            Some((&back, "Back to Users")),
        ));
    }
    if ids.len() > MAX_REMOVE {
        return Err(message(
            o.chrome("users"),
            StatusCode::BAD_REQUEST,
            "Too many at once",
            &format!(
                "{} people selected; at most {MAX_REMOVE} at once.",
                ids.len()
            ),
            Some((&back, "Back to Users")),
        ));
    }
    Ok(ids)
}

/// How a person is named on the removal pages: name and email, or the id of one not found.
async fn label(st: &AppState, o: &InOrg, id: &str) -> String {
    match st.provisioning.get(&o.access.tenant, Kind::User, id).await {
        Ok(rec) => {
            let r = row(&rec, None);
            if r.name.is_empty() {
                r.email
            } else {
                format!("{} ({})", r.name, r.email)
            }
        }
        Err(_) => format!("Unknown person {id}"),
    }
}

/// Step one of a removal (a row's Remove, or the bulk form): who would be removed, and a button.
async fn confirm_remove(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (o, f) = match InOrg::admin_form(&st, signed, &slug, &headers, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let ids = match removal_ids(&o, &f) {
        Ok(ids) => ids,
        Err(resp) => return resp,
    };
    let mut people = Vec::with_capacity(ids.len());
    for id in ids {
        let l = label(&st, &o, &id).await;
        people.push((id, l));
    }
    page(
        StatusCode::OK,
        &RemovePage {
            chrome: o.chrome("users"),
            title: "Remove people?",
            slug: o.access.org.slug.clone(),
            confirming: true,
            people,
            results: Vec::new(),
        },
    )
}

/// Step two: each person removed through the admin API's `remove`, or refused with its reason.
async fn remove(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (o, f) = match InOrg::admin_form(&st, signed, &slug, &headers, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let ids = match removal_ids(&o, &f) {
        Ok(ids) => ids,
        Err(resp) => return resp,
    };
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let l = label(&st, &o, &id).await;
        match admin::remove(&st, &o.access, &id).await {
            Ok(()) => results.push((l, true, "Removed.".to_owned())),
            Err(e) => results.push((l, false, format!("Not removed: {}", refusal(&e).1))),
        }
    }
    page(
        StatusCode::OK,
        &RemovePage {
            chrome: o.chrome("users"),
            title: "Removal results",
            slug: o.access.org.slug.clone(),
            confirming: false,
            people: Vec::new(),
            results,
        },
    )
}

// ---- Invite users ---------------------------------------------------------------------------

#[derive(Default)]
struct InviteForm {
    addresses: String,
    first_name: String,
    last_name: String,
    role: String,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    chrome: Chrome,
    title: &'static str,
    slug: String,
    max: usize,
    form: InviteForm,
    /// `(id, name, checked)`.
    groups: Vec<(String, String, bool)>,
    error: Option<String>,
    /// `(address, invited, message)`.
    results: Vec<(String, bool, String)>,
    delivery_note: Option<String>,
}

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

pub fn delivery_note(st: &AppState) -> Option<String> {
    (!st.config.mail_configured).then(|| {
        "Email delivery is not configured on this server, so nothing was mailed: people see \
         their invitations after signing in, and the server's operator can read the mail with \
         `scimd mail list`."
            .to_owned()
    })
}

async fn invite_page(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let o = match InOrg::admin_page(&st, signed, &slug, &headers).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let groups = match group_choices(&st, &o, &[]).await {
        Ok(g) => g,
        Err(e) => return super::super::invite::internal(e),
    };
    page(
        StatusCode::OK,
        &InvitePage {
            chrome: o.chrome("invite"),
            title: "Invite users",
            slug: o.access.org.slug.clone(),
            max: MAX_INVITATIONS,
            form: InviteForm::default(),
            groups,
            error: None,
            results: Vec::new(),
            delivery_note: None,
        },
    )
}

/// Splits what was typed or pasted into addresses: spaces, commas, semicolons or new lines
/// separate them; the same address twice counts once.
pub fn split_addresses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in text.split(|c: char| c.is_whitespace() || c == ',' || c == ';') {
        let a = a.trim();
        if !a.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
            out.push(a.to_owned());
        }
    }
    out
}

/// Invites each address on its own (a bad address is reported, the others are invited), through
/// the admin API's own checks (`invitee`) and the service's `invite`.
async fn invite(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (o, f) = match InOrg::admin_form(&st, signed, &slug, &headers, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let chosen = f.all("groups");
    let form = InviteForm {
        addresses: f.text("addresses"),
        first_name: f.text("first_name"),
        last_name: f.text("last_name"),
        role: f.text("role"),
    };
    let groups = match group_choices(&st, &o, &chosen).await {
        Ok(g) => g,
        Err(e) => return super::super::invite::internal(e),
    };
    let mut view = InvitePage {
        chrome: o.chrome("invite"),
        title: "Invite users",
        slug: o.access.org.slug.clone(),
        max: MAX_INVITATIONS,
        groups,
        error: None,
        results: Vec::new(),
        delivery_note: None,
        form,
    };
    let addresses = split_addresses(&view.form.addresses);
    if addresses.is_empty() {
        view.error = Some("Type at least one email address.".into());
        return page(StatusCode::BAD_REQUEST, &view);
    }
    if addresses.len() > MAX_INVITATIONS {
        view.error = Some(format!(
            "{} addresses; at most {MAX_INVITATIONS} at once. For more, upload a CSV file below.",
            addresses.len()
        ));
        return page(StatusCode::BAD_REQUEST, &view);
    }
    let one = addresses.len() == 1;
    let org = &o.access.org;
    let audit = o.access.tenant.audit();
    let links = admin::links(&st);
    let inviter = o.access.caller.display();
    for address in addresses {
        let mut item = json!({"email": address, "role": view.form.role, "groups": chosen});
        if one {
            item["firstName"] = json!(view.form.first_name);
            item["lastName"] = json!(view.form.last_name);
        }
        let outcome = match admin::invitee(&st, &org.id, &item, false).await {
            Ok(invitee) => crate::service::invitations::invite(
                &st.store, &st.clock, org, &inviter, &audit, invitee, &links,
            )
            .await
            .map(|_| ())
            .map_err(crate::http::errors::AdminError::from),
            Err(e) => Err(e),
        };
        view.results.push(match outcome {
            Ok(()) => (address, true, "Invited.".into()),
            Err(e) => (address, false, capitalise(&refusal(&e).1)),
        });
    }
    if view.results.iter().any(|r| r.1) {
        view.delivery_note = delivery_note(&st);
        view.form = InviteForm::default();
    }
    page(StatusCode::OK, &view)
}

/// A CSV to start from.
async fn example_csv() -> Response {
    let mut resp =
        "email,group membership\nada@example.com,Engineering\ngrace@example.com,Engineering;Design\n"
            .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"invite-example.csv\""),
    );
    resp
}

#[derive(Template)]
#[template(path = "csv.html")]
struct CsvPage {
    chrome: Chrome,
    title: &'static str,
    slug: String,
    error: Option<String>,
    dry_run: bool,
    /// `(line, email)`.
    invited: Vec<(u64, String)>,
    /// `(line, reason, message)`.
    skipped: Vec<(u64, String, String)>,
    file_b64: String,
    delivery_note: Option<String>,
}

/// Runs the service's CSV import (a dry run first; then the same file for real) and shows it.
async fn run_import(st: &AppState, o: &InOrg, file: &[u8], dry_run: bool) -> Response {
    let mut view = CsvPage {
        chrome: o.chrome("invite"),
        title: if dry_run {
            "Check the CSV file"
        } else {
            "CSV import done"
        },
        slug: o.access.org.slug.clone(),
        error: None,
        dry_run,
        invited: Vec::new(),
        skipped: Vec::new(),
        file_b64: String::new(),
        delivery_note: None,
    };
    if file.is_empty() {
        view.error = Some("Choose a CSV file first.".into());
        return page(StatusCode::BAD_REQUEST, &view);
    }
    let report = crate::service::invitations::import_csv(
        &st.store,
        &st.clock,
        &o.access.org,
        &o.access.caller.display(),
        &o.access.tenant.audit(),
        file,
        &admin::links(st),
        dry_run,
    )
    .await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            view.error = Some(format!(
                "This file was not imported, nobody was invited: {}",
                refusal(&e.into()).1
            ));
            return page(StatusCode::BAD_REQUEST, &view);
        }
    };
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    view.invited = report
        .invited
        .iter()
        .map(|v| (v["line"].as_u64().unwrap_or(0), text(v, "email")))
        .collect();
    view.skipped = report
        .skipped
        .iter()
        .map(|v| {
            (
                v["line"].as_u64().unwrap_or(0),
                text(v, "reason"),
                capitalise(&text(v, "message")),
            )
        })
        .collect();
    if dry_run {
        view.file_b64 = base64::engine::general_purpose::STANDARD.encode(file);
    } else if !view.invited.is_empty() {
        view.delivery_note = delivery_note(st);
    }
    page(StatusCode::OK, &view)
}

/// The upload: a multipart form with `csrf` and `file`.
async fn csv_check(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let o = match InOrg::load(&st, signed, &slug, &headers).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let mut csrf = String::new();
    let mut file = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.bytes().await {
                    Ok(b) if name == "csrf" => csrf = String::from_utf8_lossy(&b).into_owned(),
                    Ok(b) if name == "file" => file = b.to_vec(),
                    Ok(_) => {}
                    Err(e) => return upload_refused(&o, &e.body_text()),
                }
            }
            Ok(None) => break,
            Err(e) => return upload_refused(&o, &e.body_text()),
        }
    }
    if !o.signed.csrf_ok(&headers, Some(&csrf)) {
        return o.bad_csrf();
    }
    if let Some(refused) = o.admin_only() {
        return refused;
    }
    run_import(&st, &o, &file, true).await
}

fn upload_refused(o: &InOrg, why: &str) -> Response {
    message(
        o.chrome("invite"),
        StatusCode::BAD_REQUEST,
        "Upload failed",
        &format!("The file could not be read, nobody was invited: {why}"),
        Some((
            &format!("/o/{}/invite", o.access.org.slug),
            "Back to Invite users",
        )),
    )
}

/// The confirmation: the checked file again, now invited for real.
async fn csv_confirm(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (o, f) = match InOrg::admin_form(&st, signed, &slug, &headers, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Ok(file) = base64::engine::general_purpose::STANDARD.decode(f.text("file")) else {
        return upload_refused(
            &o,
            "the confirmation carried no readable file; upload it again",
        );
    };
    run_import(&st, &o, &file, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_on_spaces_commas_and_lines() {
        assert_eq!(
            split_addresses("a@x.io, b@x.io\nc@x.io;  d@x.io\r\nA@X.io"),
            ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
        );
        assert!(split_addresses(" ,\n ").is_empty());
    }

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

#[derive(Default)]
struct AddForm {
    email: String,
    given_name: String,
    family_name: String,
    role: String,
}

#[derive(Template)]
#[template(path = "add_user.html")]
struct AddPage {
    chrome: Chrome,
    title: String,
    slug: String,
    form: AddForm,
    notice: Option<String>,
    delivery_note: Option<String>,
    error: Option<String>,
    /// The field the error concerns (`email`, `given_name`, `family_name`, `role`), so the
    /// message sits beside it; empty for the page.
    field: &'static str,
}

fn add_view(o: &InOrg, form: AddForm) -> AddPage {
    AddPage {
        chrome: o.chrome("users"),
        title: format!("Add a user to {}", o.access.org.name),
        slug: o.access.org.slug.clone(),
        form,
        notice: None,
        delivery_note: None,
        error: None,
        field: "",
    }
}

async fn add_page(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let o = match InOrg::admin_page(&st, signed, &slug, &headers).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    page(StatusCode::OK, &add_view(&o, AddForm::default()))
}

/// "Add user": the admin API's own `add_member_as` (`POST /admin/v1/orgs/{slug}/members`). The
/// answer is the same whether or not the address had an account, as the API's is.
async fn add(
    State(st): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (o, f) = match InOrg::admin_form(&st, signed, &slug, &headers, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = AddForm {
        email: f.text("email").trim().to_owned(),
        given_name: f.text("given_name"),
        family_name: f.text("family_name"),
        role: f.text("role"),
    };
    let added = admin::add_member_as(
        &st,
        &o.access,
        &headers,
        (!form.role.is_empty()).then_some(form.role.as_str()),
        Some(form.email.clone()),
        Some(form.given_name.clone()),
        Some(form.family_name.clone()),
    )
    .await;
    match added {
        Ok(_) => {
            let mut v = add_view(&o, AddForm::default());
            v.notice =
                Some(format!(
                "{} is now a {} of {}. Someone new to this server gets an email to set up their \
                 account.",
                form.email,
                if form.role == "admin" { "admin" } else { "member" },
                o.access.org.name
            ));
            v.delivery_note = delivery_note(&st);
            page(StatusCode::OK, &v)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            let mut v = add_view(&o, form);
            v.field = match (e.field(), status) {
                (Some("givenName"), _) => "given_name",
                (Some("familyName"), _) => "family_name",
                (Some("role"), _) => "role",
                // "Already a member" is about the address.
                (Some("email"), _) => "email",
                (None, s) if s == StatusCode::CONFLICT => "email",
                _ => "",
            };
            v.error = Some(capitalise(&text));
            page(status, &v)
        }
    }
}
