//! The admin extension's HTTP API under `/admin/v1`: what an organization admin does by hand and
//! SCIM does not cover. JSON in and out; every refusal is `{"error": code, "message": …}` (with
//! `field` when one input is at fault). The rules (an organization keeps an active admin) are
//! the store's, so SCIM and this API enforce them alike.
//!
//! Callers are provider admins (tokens from `scimd admin token create`) or people signed in
//! with an access token (`people.rs`). Organization-scoped handlers take [`AdminOf`] or
//! [`MemberOf`], which check the caller's role in the path's organization before they run.

use super::views::{invitation_json, membership_json, org_json};
use super::AppState;
use crate::domain::{Email, Name, Role};
use crate::error::Error;
use crate::scim::schema::{Kind, ORGANIZATION_USER, PATCH_OP};
use crate::service::enrolment::{check_slug_field, enrolment, org_name, Person};
use crate::service::Tenant;
use crate::store::{ListQuery, Org};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub const PREFIX: &str = super::ADMIN_PREFIX;
/// Most members removed in one request.
pub const MAX_REMOVE: usize = 1000;
/// Most invitations in one request; more go through the CSV import.
pub const MAX_INVITATIONS: usize = 20;
/// The OpenAPI description of this API, served at `/admin/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("admin_openapi.json");

/// Every operation, as `(method, path)`; a test holds it, the router and the OpenAPI document
/// to the same list.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/openapi.json"),
    ("post", "/login"),
    ("post", "/signup"),
    ("post", "/password-reset"),
    ("post", "/logout"),
    ("get", "/me"),
    ("post", "/me/password"),
    ("get", "/me/invitations"),
    ("post", "/me/invitations/{id}/accept"),
    ("get", "/orgs"),
    ("post", "/accounts"),
    ("post", "/orgs"),
    ("get", "/orgs/{slug}/members"),
    ("patch", "/orgs/{slug}/members/{id}"),
    ("delete", "/orgs/{slug}/members/{id}"),
    ("post", "/orgs/{slug}/members/remove"),
    ("post", "/orgs/{slug}/members"),
    ("get", "/orgs/{slug}/groups"),
    ("post", "/orgs/{slug}/groups"),
    ("patch", "/orgs/{slug}/groups/{id}"),
    ("delete", "/orgs/{slug}/groups/{id}"),
    ("get", "/orgs/{slug}/audit"),
    ("get", "/audit"),
    ("get", "/orgs/{slug}/invitations"),
    ("post", "/orgs/{slug}/invitations"),
    ("patch", "/orgs/{slug}/invitations/{id}"),
    ("post", "/orgs/{slug}/invitations/{id}/revoke"),
    ("post", "/orgs/{slug}/invitations/{id}/resend"),
    ("post", "/orgs/{slug}/invitations/import"),
    ("get", "/orgs/{slug}/provisioning"),
    ("get", "/orgs/{slug}/tokens"),
    ("post", "/orgs/{slug}/tokens"),
    ("post", "/orgs/{slug}/tokens/{id}/revoke"),
    ("post", "/orgs/{slug}/tokens/{id}/rotate"),
    ("get", "/orgs/{slug}/request-log"),
    ("get", "/orgs/{slug}/request-log/summary"),
    ("get", "/orgs/{slug}/request-log/{id}"),
    ("post", "/orgs/{slug}/test-connection"),
];

pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
        .route("/logout", post(super::people::logout))
        .route("/me", get(super::people::me))
        .route("/me/password", post(super::people::change_password))
        .route("/me/invitations", get(super::people::my_invitations))
        .route(
            "/me/invitations/{id}/accept",
            post(super::people::accept_invitation),
        )
        .route("/accounts", post(create_account))
        .route("/orgs/{slug}/members", get(list_members).post(add_member))
        .route(
            "/orgs/{slug}/members/{id}",
            patch(change_member).delete(remove_member),
        )
        .route("/orgs/{slug}/members/remove", post(remove_members))
        .route("/orgs/{slug}/groups", get(list_groups).post(create_group))
        .route(
            "/orgs/{slug}/groups/{id}",
            patch(change_group).delete(delete_group),
        )
        .route("/orgs/{slug}/audit", get(audit))
        .route("/audit", get(audit_of))
        .route(
            "/orgs/{slug}/invitations",
            get(list_invitations).post(create_invitations),
        )
        .route("/orgs/{slug}/invitations/{id}", patch(change_invitation))
        .route("/orgs/{slug}/invitations/import", post(import_invitations))
        .route(
            "/orgs/{slug}/invitations/{id}/revoke",
            post(revoke_invitation),
        )
        .route(
            "/orgs/{slug}/invitations/{id}/resend",
            post(resend_invitation),
        )
        .merge(super::provisioning::router())
        .route_layer(middleware::from_fn_with_state(
            state,
            super::access::authenticate,
        ));
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/login", post(super::people::login))
        .route("/signup", post(super::people::signup))
        .route("/password-reset", post(super::people::password_reset))
        .merge(protected)
        .layer(middleware::map_response(json_refusals))
}

/// Longest plain-text refusal read back to be wrapped (axum's rejection texts are short).
const REFUSAL_BYTES: usize = 16 * 1024;

/// axum's extractors refuse a body that is not JSON or has the wrong shape (400, 415, 422) and a
/// malformed query string (400) in plain text. This API answers every refusal as
/// `{error, message}` with 400 `invalid_request` for bad input, so clients can read it.
async fn json_refusals(resp: Response) -> Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !resp.status().is_client_error() {
        return resp;
    }
    let status = match resp.status() {
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            StatusCode::BAD_REQUEST
        }
        other => other,
    };
    let bytes = axum::body::to_bytes(resp.into_body(), REFUSAL_BYTES)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned()
    } else {
        text
    };
    match super::errors::kind_of(status) {
        Some(kind) => AdminError::from(Error::new(kind, None, message)).into_response(),
        None => (
            status,
            Json(super::errors::admin_body("error", &message, None)),
        )
            .into_response(),
    }
}

pub use super::access::{access, org, Access, AdminOf, Caller, MemberOf, Need, Scoped};
pub use super::errors::{invalid, AdminError};

type Result<T> = std::result::Result<T, AdminError>;

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Every organization for a provider admin; a person's own, with their role and status.
async fn list_orgs(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>> {
    let orgs: Vec<Value> = match &caller {
        Caller::Provider { .. } => st.store.list_orgs().await?.iter().map(org_json).collect(),
        Caller::Person { account, .. } => st
            .store
            .memberships_of(account)
            .await?
            .iter()
            .map(membership_json)
            .collect(),
    };
    Ok(Json(json!({"items": orgs})))
}

#[derive(Deserialize)]
struct NewOrg {
    slug: Option<String>,
    name: Option<String>,
}

/// Creates an organization. A person who creates one becomes its admin, in the same transaction.
async fn create_org(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewOrg>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(body)) = body else {
        return Err(invalid(
            "slug",
            "the body must be a JSON object with a slug",
        ));
    };
    let slug = body.slug.unwrap_or_default();
    check_slug_field(&slug)?;
    let name = org_name(body.name, &slug)?;
    let org = match &caller {
        Caller::Provider { .. } => st.store.create_org(&slug, &name, st.clock.now()).await?,
        Caller::Person { account, .. } => {
            let acct = st
                .store
                .account(account)
                .await?
                .ok_or_else(|| Error::unauthorized("the signed-in account no longer exists"))?;
            let e = enrolment(
                &acct.email,
                acct.given_name,
                acct.family_name,
                Some((slug.clone(), name)),
                Vec::new(),
                None,
            )?;
            let audit = crate::store::Audit {
                actor: caller.actor(),
                request_id: request_id(&headers),
            };
            let done = st.store.enrol(&e, st.clock.now(), &audit).await?;
            done.founded
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("organization not created")))?
        }
    };
    tracing::info!(org = %org.slug, actor = %caller.actor(), "organization created");
    Ok((StatusCode::CREATED, Json(org_json(&org))))
}

use super::extract::request_id;

#[derive(Deserialize)]
struct Paging {
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
}

impl Paging {
    fn bounds(&self) -> (i64, i64) {
        (
            self.start_index.unwrap_or(1).max(1),
            self.count.unwrap_or(100).clamp(0, 1000),
        )
    }
}

/// Members as this organization sees them: when each last acted here. Nothing global (the
/// account's id, its activity elsewhere, whether it has a password) is shown to an organization.
async fn members_json(
    st: &AppState,
    org: &str,
    recs: &[crate::store::Record],
) -> Result<Vec<Value>> {
    let ids: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
    let details = st.store.member_details(org, &ids).await?;
    Ok(recs
        .iter()
        .map(|r| {
            let mut v = member_json(r);
            let last = details
                .iter()
                .find(|d| d.member_id == r.id)
                .and_then(|d| d.last_active_at);
            v["lastActiveAt"] = json!(last.map(crate::service::render::timestamp));
            v
        })
        .collect())
}

fn member_json(rec: &crate::store::Record) -> Value {
    let doc = &rec.doc;
    let email = doc
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|e| {
            e.iter()
                .find(|v| v["primary"] == true)
                .or_else(|| e.first())
        })
        .and_then(|v| v.get("value"))
        .cloned()
        .unwrap_or(Value::Null);
    let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
    let groups: Vec<Value> = rec
        .groups
        .iter()
        .flatten()
        .map(|g| json!({"id": g.id, "displayName": g.display}))
        .collect();
    json!({
        "id": rec.id,
        "userName": doc.get("userName"),
        "displayName": doc.get("displayName"),
        "email": email,
        "role": rec.role.as_deref().unwrap_or("member"),
        "status": if active { "active" } else { "inactive" },
        "groups": groups,
        "updatedAt": crate::service::render::timestamp(rec.updated_at),
    })
}

fn page_query(start_index: i64, count: i64) -> ListQuery {
    ListQuery {
        filter: None,
        sort: None,
        start_index,
        count,
        after: None,
    }
}

/// One page of an organization's Users or Groups, each shown by `show`.
async fn list_page(
    st: &AppState,
    t: &Tenant,
    kind: Kind,
    p: &Paging,
    show: impl Fn(&crate::store::Record) -> Value,
) -> Result<Json<Value>> {
    let (start_index, count) = p.bounds();
    let page = st
        .provisioning
        .list(t, kind, &page_query(start_index, count))
        .await?;
    let items: Vec<Value> = page.records.iter().map(show).collect();
    Ok(Json(
        json!({"totalResults": page.total, "startIndex": start_index, "items": items}),
    ))
}

async fn list_members(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Query(p): Query<Paging>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    let (start_index, count) = p.bounds();
    let page = st
        .provisioning
        .list(&t, Kind::User, &page_query(start_index, count))
        .await?;
    let items = members_json(&st, &t.org_id, &page.records).await?;
    Ok(Json(
        json!({"totalResults": page.total, "startIndex": start_index, "items": items}),
    ))
}

/// One member, as the list shows them.
async fn one_member(st: &AppState, t: &Tenant, id: &str) -> Result<Value> {
    let rec = st.provisioning.get(t, Kind::User, id).await?;
    Ok(members_json(st, &t.org_id, &[rec]).await?.remove(0))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    pub role: Option<String>,
    pub active: Option<bool>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
}

/// The refusal for an admin acting on their own membership.
fn not_on_yourself(what: &str) -> AdminError {
    Error::forbidden(format!(
        "an admin cannot {what} themselves; another admin of the organization can"
    ))
    .into()
}

/// Changes a member: role and active (admins only; an admin cannot deactivate themselves) and
/// profile names (admins, or the member themselves: a member edits only their own profile).
async fn change_member(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Path((_, id)): Path<(String, String)>,
    body: Option<Json<MemberChange>>,
) -> Result<Json<Value>> {
    let Some(Json(change)) = body else {
        return Err(invalid(
            "role",
            "the body must be a JSON object with role, active, givenName, familyName or displayName",
        ));
    };
    let rec = change_member_as(&st, &a, &id, change).await?;
    Ok(Json(one_member(&st, &a.tenant, &rec.id).await?))
}

/// A member change with its rules, for the admin API and the console alike.
pub async fn change_member_as(
    st: &AppState,
    a: &Access,
    id: &str,
    change: MemberChange,
) -> Result<crate::store::Record> {
    let own = a.me.as_deref() == Some(id);
    let mut value = serde_json::Map::new();
    if change.role.is_some() || change.active.is_some() {
        if !a.admin {
            return Err(Error::forbidden(format!(
                "changing a member's role or status needs the admin role in organization {:?}; your role there is member",
                a.org.slug
            ))
            .into());
        }
        if own && change.active == Some(false) {
            return Err(not_on_yourself("deactivate"));
        }
    } else if !a.admin && !own {
        return Err(Error::forbidden(format!(
            "a member may edit only their own profile; editing another member needs the admin role in organization {:?}",
            a.org.slug
        ))
        .into());
    }
    if let Some(role) = change.role {
        let role = Role::parse("role", &role)?;
        value.insert(format!("{ORGANIZATION_USER}:role"), json!(role.as_str()));
    }
    if let Some(active) = change.active {
        value.insert("active".into(), json!(active));
    }
    for (field, path, v) in [
        ("givenName", "name.givenName", change.given_name),
        ("familyName", "name.familyName", change.family_name),
        ("displayName", "displayName", change.display_name),
    ] {
        if let Some(v) = v {
            value.insert(path.into(), json!(Name::parse(field, &v)?.as_str()));
        }
    }
    if value.is_empty() {
        return Err(invalid(
            "role",
            "nothing to change: give role, active, givenName, familyName or displayName",
        ));
    }
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": value}]});
    Ok(st
        .provisioning
        .patch(&a.tenant, Kind::User, id, &patch, None)
        .await?)
}

/// Removes a membership: the person's account and other memberships remain. An admin cannot
/// remove themselves.
async fn remove_member(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    remove(&st, &a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one membership, unless it is the caller's own.
pub async fn remove(st: &AppState, a: &Access, id: &str) -> Result<()> {
    if a.me.as_deref() == Some(id) {
        return Err(not_on_yourself("remove"));
    }
    Ok(st
        .provisioning
        .delete(&a.tenant, Kind::User, id, None)
        .await?)
}

#[derive(Deserialize)]
struct RemoveMany {
    ids: Option<Vec<String>>,
}

/// Removes many members; each is removed or refused on its own, and the answer says which.
async fn remove_members(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<RemoveMany>>,
) -> Result<Json<Value>> {
    let ids = body.and_then(|Json(b)| b.ids).unwrap_or_default();
    if ids.is_empty() {
        return Err(invalid("ids", "ids must list at least one member id"));
    }
    if ids.len() > MAX_REMOVE {
        return Err(invalid(
            "ids",
            format!("{} ids; at most {MAX_REMOVE} in one request", ids.len()),
        ));
    }
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for id in ids {
        match remove(&st, &a, &id).await {
            Ok(()) => removed.push(id),
            Err(e) => {
                let (status, body) = e.parts();
                failed.push(json!({"id": id, "status": status.as_u16(), "error": body["error"], "message": body["message"]}));
            }
        }
    }
    Ok(Json(json!({"removed": removed, "failed": failed})))
}

#[derive(Deserialize)]
struct AuditQuery {
    org: Option<String>,
    // Not `#[serde(flatten)] Paging`: query strings carry no types, and flatten loses the
    // conversion of numbers.
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
}

/// `GET /audit?org=SLUG`: the same log as `/orgs/{slug}/audit`. A person who is an admin of
/// exactly one organization may leave `org` out.
async fn audit_of(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let slug = match (q.org.clone(), &caller) {
        (Some(slug), _) => slug,
        (None, Caller::Person { account, .. }) => {
            let admin_of: Vec<String> = st
                .store
                .memberships_of(account)
                .await?
                .into_iter()
                .filter(|m| m.active && m.role == "admin")
                .map(|m| m.org.slug)
                .collect();
            match <[String; 1]>::try_from(admin_of) {
                Ok([slug]) => slug,
                Err(_) => {
                    return Err(invalid(
                        "org",
                        "name the organization: GET /admin/v1/audit?org=SLUG",
                    ))
                }
            }
        }
        (None, Caller::Provider { .. }) => {
            return Err(invalid(
                "org",
                "name the organization: GET /admin/v1/audit?org=SLUG",
            ))
        }
    };
    audit_page(&st, &caller, &slug, q, &headers).await
}

async fn audit(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    if q.org.is_some() {
        return Err(invalid(
            "org",
            "the path names the organization; org belongs to GET /admin/v1/audit",
        ));
    }
    audit_page(&st, &caller, &slug, q, &headers).await
}

async fn audit_page(
    st: &AppState,
    caller: &Caller,
    slug: &str,
    q: AuditQuery,
    headers: &axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let a = access(st, caller, slug, Need::Admin, headers).await?;
    let (start_index, count) = Paging {
        start_index: q.start_index,
        count: q.count,
    }
    .bounds();
    let filter = audit_filter(st, q.actor, q.action, q.target).await?;
    let (total, events) = audit_as(st, &a, &filter, false, start_index, count).await?;
    let items: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"id": e.id, "actor": e.actor, "action": e.action, "target": e.target,
                   "requestId": e.request_id, "time": crate::service::render::timestamp(e.created_at)})
        })
        .collect();
    Ok(Json(
        json!({"totalResults": total, "startIndex": start_index, "items": items}),
    ))
}

/// Longest actor, action or target an audit-log filter takes.
pub const MAX_AUDIT_FILTER: usize = 256;

/// The audit log's filters, checked: each at most [`MAX_AUDIT_FILTER`] characters, empty for
/// none. An actor may be given as a person's email address, which stands for `account:<id>`
/// (an address without an account matches nothing).
pub async fn audit_filter(
    st: &AppState,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
) -> Result<crate::store::AuditFilter> {
    let check = |field: &'static str, v: Option<String>| -> Result<Option<String>> {
        match v.map(|v| v.trim().to_owned()) {
            Some(v) if v.chars().count() > MAX_AUDIT_FILTER => Err(invalid(
                field,
                format!("{field} must be at most {MAX_AUDIT_FILTER} characters"),
            )),
            Some(v) if v.is_empty() => Ok(None),
            v => Ok(v),
        }
    };
    let actor = match check("actor", actor)? {
        Some(a) if a.contains('@') => {
            if !crate::domain::valid_email(&a) {
                return Err(invalid(
                    "actor",
                    format!("{a:?} is not a valid email address"),
                ));
            }
            // `account:` alone is no stored actor: an unknown address finds nothing.
            let id = st
                .store
                .account_by_email(&a)
                .await?
                .map(|acct| acct.id)
                .unwrap_or_default();
            Some(format!("account:{id}"))
        }
        Some(a) if !["account:", "token:", "admin:"].iter().any(|p| a.starts_with(*p)) => {
            return Err(invalid(
                "actor",
                format!("actor must be an email address, account:<id>, token:<id> or admin:<id>; got {a:?}"),
            ))
        }
        a => a,
    };
    Ok(crate::store::AuditFilter {
        actor,
        action: check("action", action)?,
        target: check("target", target)?,
    })
}

/// A page of the organization's audit log: for the admin API and the console alike, after the
/// caller's admin role there is checked.
pub async fn audit_as(
    st: &AppState,
    a: &Access,
    filter: &crate::store::AuditFilter,
    newest_first: bool,
    start_index: i64,
    count: i64,
) -> Result<(i64, Vec<crate::store::AuditEvent>)> {
    need_admin(a)?;
    Ok(st
        .store
        .audit_log(&a.org.id, filter, newest_first, start_index, count)
        .await?)
}

fn check_role(role: &Value) -> Result<String> {
    match role.as_str() {
        Some(r) => Ok(Role::parse("role", r)?.as_str().to_owned()),
        None => Err(invalid(
            "role",
            format!("role must be admin or member; got {role}"),
        )),
    }
}

/// The group ids a body names, each a Group of the organization.
async fn check_groups(st: &AppState, org: &str, groups: &Value) -> Result<Vec<String>> {
    let ids: Vec<String> = match groups {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("groups", "groups must be a list of group ids"))?,
        _ => return Err(invalid("groups", "groups must be a list of group ids")),
    };
    for id in &ids {
        if st.store.get(org, Kind::Group, id).await?.is_none() {
            return Err(invalid(
                "groups",
                format!("no group with id {id:?} in this organization"),
            ));
        }
    }
    Ok(ids.into_iter().fold(Vec::new(), |mut v, id| {
        if !v.contains(&id) {
            v.push(id);
        }
        v
    }))
}

/// One invitation's fields, checked. Names are required of the API's invitations; the console's
/// invitations of several addresses at once carry none (as the CSV import's do).
pub async fn invitee(
    st: &AppState,
    org: &str,
    v: &Value,
    names_required: bool,
) -> Result<crate::service::invitations::Invitee> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            "email",
            "each invitation must be a JSON object with email, firstName and lastName",
        ));
    };
    let email = Email::parse(
        "email",
        obj.get("email").and_then(Value::as_str).unwrap_or_default(),
    )?;
    let name = |key: &'static str| -> Result<String> {
        match obj.get(key).and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() => Ok(Name::parse(key, n)?.into_string()),
            None | Some("") if !names_required => Ok(String::new()),
            _ => Err(invalid(
                key,
                format!("{key} is required (a non-empty string)"),
            )),
        }
    };
    Ok(crate::service::invitations::Invitee {
        email: email.into_string(),
        first_name: name("firstName")?,
        last_name: name("lastName")?,
        role: match obj.get("role") {
            None | Some(Value::Null) => "member".to_owned(),
            Some(r) => check_role(r)?,
        },
        groups: check_groups(st, org, obj.get("groups").unwrap_or(&Value::Null)).await?,
    })
}

/// Where invitation and setup links point, and how long they work.
pub fn links(st: &AppState) -> crate::service::invitations::Links {
    crate::service::invitations::Links {
        origin: st.config.origin(),
        ttl: st.config.link_ttl,
    }
}

/// Whether mail leaves the server, for answers that would have sent some: without delivery,
/// links stay in the outbox (the operator reads them with `scimd mail list`) and people find
/// their invitations after signing in (`GET /admin/v1/me/invitations`).
fn delivery(st: &AppState) -> Value {
    if st.config.mail_configured {
        json!({"emailDelivery": "on"})
    } else {
        json!({"emailDelivery": "off", "deliveryNote": DELIVERY_OFF})
    }
}

/// What an admin is told when the server sends no mail.
pub const DELIVERY_OFF: &str = "email delivery is not configured on this server: nothing was \
     mailed. The person sees pending invitations after signing in (GET /admin/v1/me/invitations); \
     the server's operator can read undelivered mail with `scimd mail list`";

/// Adds [`delivery`]'s fields to an answer.
fn with_delivery(st: &AppState, mut v: Value) -> Value {
    if let (Some(o), Value::Object(d)) = (v.as_object_mut(), delivery(st)) {
        o.extend(d);
    }
    v
}

/// Creates one invitation (`{email, firstName, lastName, role?, groups?}`) or up to
/// [`MAX_INVITATIONS`] (`{"invitations": [...]}`). Every item is validated before any is
/// created; then each is created on its own (a 409 for one does not stop the others).
async fn create_invitations(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<Value>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Access { org, tenant: t, .. } = a;
    let Some(Json(body)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object: one invitation or {\"invitations\": [...]}",
        ));
    };
    let (batch, items) = match body.get("invitations") {
        Some(Value::Array(items)) => (true, items.clone()),
        Some(_) => return Err(invalid("invitations", "invitations must be a list")),
        None => (false, vec![body]),
    };
    if items.is_empty() {
        return Err(invalid("invitations", "invitations must not be empty"));
    }
    if items.len() > MAX_INVITATIONS {
        return Err(invalid(
            "invitations",
            format!(
                "{} invitations; at most {MAX_INVITATIONS} in one request: use the CSV import for more",
                items.len()
            ),
        ));
    }
    let mut invitees = Vec::with_capacity(items.len());
    for item in &items {
        invitees.push(invitee(&st, &org.id, item, true).await?);
    }
    let audit = t.audit();
    let links = links(&st);
    let inviter = a.caller.display();
    let mut out = Vec::with_capacity(invitees.len());
    for i in invitees {
        let email = i.email.clone();
        let now = st.clock.now();
        match crate::service::invitations::invite(
            &st.store, &st.clock, &org, &inviter, &audit, i, &links,
        )
        .await
        {
            Ok((inv, _)) => {
                // The link goes only by email: no answer carries a secret that sets credentials.
                let mut v = with_delivery(&st, invitation_json(&inv, now));
                if batch {
                    v["result"] = json!(201);
                }
                out.push(v);
            }
            Err(e) if !batch => return Err(e.into()),
            Err(e) => {
                let (status, mut v) = AdminError::from(e).parts();
                v["result"] = json!(status.as_u16());
                v["email"] = json!(email);
                out.push(v);
            }
        }
    }
    if batch {
        Ok((StatusCode::CREATED, Json(json!({"items": out}))))
    } else {
        Ok((StatusCode::CREATED, Json(out.remove(0))))
    }
}

#[derive(Deserialize)]
struct ImportParams {
    dry_run: Option<bool>,
}

/// A CSV of up to 1000 people to invite (columns `email` and `group membership`): valid rows
/// are invited, every other row is reported with its line and reason; `dry_run=true` only
/// checks. The same file uploaded twice invites nobody twice.
async fn import_invitations(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Query(p): Query<ImportParams>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let Access { org, tenant: t, .. } = a;
    if body.is_empty() {
        return Err(invalid("file", "send the CSV file as the request body"));
    }
    let audit = t.audit();
    let report = crate::service::invitations::import_csv(
        &st.store,
        &st.clock,
        &org,
        &a.caller.display(),
        &audit,
        &body,
        &links(&st),
        p.dry_run.unwrap_or(false),
    )
    .await
    .map_err(|e| AdminError(e.on_field("file")))?;
    let mut report = report;
    // Links go only by email.
    for i in &mut report.invited {
        if let Some(o) = i.as_object_mut() {
            o.remove("link");
        }
    }
    Ok(Json(with_delivery(&st, report.to_json())))
}

async fn list_invitations(State(st): State<AppState>, Scoped(a): AdminOf) -> Result<Json<Value>> {
    let org = a.org;
    let now = st.clock.now();
    let items: Vec<Value> = st
        .store
        .list_invitations(&org.id)
        .await?
        .iter()
        .map(|i| invitation_json(i, now))
        .collect();
    Ok(Json(with_delivery(&st, json!({"items": items}))))
}

/// Changes a pending invitation's role and/or groups; the email cannot change (revoke and
/// invite again).
async fn change_invitation(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let Some(Json(Value::Object(body))) = body else {
        return Err(invalid(
            "role",
            "the body must be a JSON object with role and/or groups",
        ));
    };
    if body.contains_key("email") {
        return Err(invalid(
            "email",
            "an invitation's email cannot be changed: revoke it and invite the new address",
        ));
    }
    let inv =
        change_invitation_as(&st, &a, &headers, &id, body.get("role"), body.get("groups")).await?;
    Ok(Json(invitation_json(&inv, st.clock.now())))
}

/// Changes a pending invitation's role and/or groups (each a group of the organization): for the
/// admin API and the console alike. An expired invitation is refused like an accepted or revoked
/// one (resending it makes it pending again); the change is audited as `Invitation.update`.
pub async fn change_invitation_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    id: &str,
    role: Option<&Value>,
    groups: Option<&Value>,
) -> Result<crate::store::Invitation> {
    need_admin(a)?;
    let org = &a.org;
    let change = crate::store::InvitationChange {
        role: role.map(check_role).transpose()?,
        groups: match groups {
            Some(g) => Some(check_groups(st, &org.id, g).await?),
            None => None,
        },
        ..Default::default()
    };
    if change.role.is_none() && change.groups.is_none() {
        return Err(invalid(
            "role",
            "nothing to change: give role and/or groups",
        ));
    }
    let current = st
        .store
        .get_invitation(&org.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("invitation {id} not found")))?;
    if current.status == "pending" && current.expires_at <= st.clock.now() {
        return Err(Error::conflict(
            "the invitation is expired; only a pending invitation can be changed (resend it first)",
        )
        .into());
    }
    invitation_change(st, org, &a.caller, headers, id, &change, None, "update").await
}

#[allow(clippy::too_many_arguments)]
async fn invitation_change(
    st: &AppState,
    org: &Org,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    id: &str,
    change: &crate::store::InvitationChange,
    email: Option<&crate::email::OutboxMessage>,
    action: &str,
) -> Result<crate::store::Invitation> {
    let audit = crate::store::Audit {
        actor: caller.actor(),
        request_id: request_id(headers),
    };
    let inv = st
        .store
        .change_invitation(
            &org.id,
            id,
            change,
            email,
            &format!("Invitation.{action}"),
            st.clock.now(),
            &audit,
        )
        .await?;
    tracing::info!(org = %org.slug, invitation = %inv.id, action, "invitation changed");
    Ok(inv)
}

async fn revoke_invitation(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let inv = revoke_invitation_as(&st, &a, &headers, &id).await?;
    Ok(Json(invitation_json(&inv, st.clock.now())))
}

/// Revokes an invitation: for the admin API and the console alike.
pub async fn revoke_invitation_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    id: &str,
) -> Result<crate::store::Invitation> {
    let change = crate::store::InvitationChange {
        status: Some("revoked".into()),
        ..Default::default()
    };
    invitation_change(st, &a.org, &a.caller, headers, id, &change, None, "revoke").await
}

/// Sends the invitation again with a new link (the old one stops working) and a new expiry.
async fn resend_invitation(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let inv = resend_invitation_as(&st, &a, &headers, &id).await?;
    Ok(Json(with_delivery(
        &st,
        invitation_json(&inv, st.clock.now()),
    )))
}

/// Sends an invitation again with a new link and expiry: for the admin API and the console.
pub async fn resend_invitation_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    id: &str,
) -> Result<crate::store::Invitation> {
    let org = &a.org;
    let current = st
        .store
        .get_invitation(&org.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("invitation {id} not found")))?;
    let secret = crate::token::generate();
    let link = super::invite::link(st, &secret);
    let expires_at = st.clock.now() + st.config.link_ttl;
    let draft = crate::store::Invitation {
        expires_at,
        ..current
    };
    let msg = crate::service::invitations::email(org, &a.caller.display(), &draft, &link);
    let change = crate::store::InvitationChange {
        secret_digest: Some(crate::token::digest(&secret)),
        expires_at: Some(expires_at),
        ..Default::default()
    };
    invitation_change(
        st,
        org,
        &a.caller,
        headers,
        id,
        &change,
        Some(&msg),
        "resend",
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewMember {
    email: Option<String>,
    role: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// Adds a person to the organization with a role: their existing account (found by email) or a
/// new one, which gets an account-setup email. The membership is the same one SCIM sees, so an
/// IdP can take it over later.
async fn add_member(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewMember>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(m)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object with an email",
        ));
    };
    let id = add_member_as(
        &st,
        &a,
        &headers,
        m.role.as_deref(),
        m.email,
        m.given_name,
        m.family_name,
    )
    .await?;
    // The same answer whether or not the address already had an account or a password: that
    // is the person's business, not this organization's.
    let v = one_member(&st, &a.tenant, &id).await?;
    Ok((StatusCode::CREATED, Json(with_delivery(&st, v))))
}

/// Adds a person by email with a role (`member` when none is given): for the admin API and the
/// console alike, after the caller's admin role is checked. An existing account becomes a member
/// at once; a new one gets an account-setup email. The new member's id.
pub async fn add_member_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    role: Option<&str>,
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
) -> Result<String> {
    need_admin(a)?;
    let role = check_role(&json!(role.unwrap_or("member")))?;
    let person = Person::check(email, given_name, family_name)?;
    let done = enrol(st, &a.caller, headers, &person, vec![(a.org.clone(), role)]).await?;
    done.members
        .into_iter()
        .next()
        .map(|(_, id)| id)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("enrolment made no membership")).into())
}

/// Refuses a caller without the admin role in the organization `a` is for. The extractors
/// check it for the API's routes; functions the console calls too check it again themselves.
fn need_admin(a: &Access) -> Result<()> {
    if a.admin {
        return Ok(());
    }
    Err(Error::forbidden(format!(
        "this needs the admin role in organization {:?}; your role there is member",
        a.org.slug
    ))
    .into())
}

/// Adds a person to organizations with roles in one transaction, with an account-setup email
/// when their account has no password yet. The link goes only by email.
async fn enrol(
    st: &AppState,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    p: &Person,
    join: Vec<(Org, String)>,
) -> Result<crate::store::Enrolled> {
    let now = st.clock.now();
    let names: Vec<String> = join.iter().map(|(o, _)| o.name.clone()).collect();
    let link = super::invite::setup_link(st);
    let url = link.url.clone();
    let email = crate::service::invitations::setup_email(
        &p.email,
        &caller.display(),
        &names,
        &url,
        link.expires_at,
    );
    let setup = link.stored(email);
    let join_ids = join
        .iter()
        .map(|(o, r)| (o.id.clone(), r.clone()))
        .collect();
    let e = enrolment(
        &p.email,
        p.given_name.clone(),
        p.family_name.clone(),
        None,
        join_ids,
        Some(setup),
    )?;
    let audit = crate::store::Audit {
        actor: caller.actor(),
        request_id: request_id(headers),
    };
    let done = st
        .store
        .enrol(&e, now, &audit)
        .await
        .map_err(|e| match e.kind() {
            crate::error::ErrorKind::Conflict(_) => AdminError::from(Error::conflict_of(
                crate::error::Conflict::Membership,
                format!("{} is already a member of {}", p.email, names.join(" or ")),
            )),
            _ => AdminError::from(e),
        })?;
    tracing::info!(actor = %caller.actor(), account = %done.account_id, orgs = done.members.len(), setup = done.setup_sent, "person added");
    Ok(done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    memberships: Option<Vec<NewAccountMembership>>,
}

#[derive(Deserialize)]
struct NewAccountMembership {
    org: String,
    role: Option<String>,
}

/// Most organizations one account is created in at once.
pub const MAX_ACCOUNT_ORGS: usize = 50;

/// Creates a person's account in one or more organizations (a role for each; the caller must be
/// an admin of every one), all or nothing, with an account-setup email.
async fn create_account(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewAccount>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(b)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object with email, givenName, familyName and memberships",
        ));
    };
    let person = Person::check(b.email, b.given_name, b.family_name)?;
    let wanted = b.memberships.unwrap_or_default();
    if wanted.is_empty() || wanted.len() > MAX_ACCOUNT_ORGS {
        return Err(invalid(
            "memberships",
            format!("memberships must name 1 to {MAX_ACCOUNT_ORGS} organizations, as [{{\"org\": slug, \"role\": \"admin\"|\"member\"}}]"),
        ));
    }
    let mut join: Vec<(Org, String)> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let role = check_role(&json!(w.role.as_deref().unwrap_or("member")))?;
        let org = access(&st, &caller, &w.org, Need::Admin, &headers)
            .await?
            .org;
        if join.iter().any(|(o, _)| o.id == org.id) {
            return Err(invalid(
                "memberships",
                format!("organization {:?} is named twice", w.org),
            ));
        }
        join.push((org, role));
    }
    let done = enrol(&st, &caller, &headers, &person, join.clone()).await?;
    let members: Vec<Value> = done
        .members
        .iter()
        .zip(&join)
        .map(|((_, id), (org, role))| json!({"org": org.slug, "memberId": id, "role": role}))
        .collect();
    let v = json!({
        "email": person.email,
        "memberships": members,
    });
    Ok((StatusCode::CREATED, Json(with_delivery(&st, v))))
}

fn group_json(rec: &crate::store::Record, members: Option<Vec<String>>) -> Value {
    let mut v = json!({
        "id": rec.id,
        "displayName": rec.doc.get("displayName"),
        "updatedAt": crate::service::render::timestamp(rec.updated_at),
    });
    if let Some(m) = members {
        v["members"] = json!(m);
    }
    v
}

async fn list_groups(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Query(p): Query<Paging>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    list_page(&st, &t, Kind::Group, &p, |g| group_json(g, None)).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupBody {
    pub display_name: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub add_members: Vec<String>,
    #[serde(default)]
    pub remove_members: Vec<String>,
}

fn member_values(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

/// Creates a team: the same data as a SCIM Group. Members must be members of the organization.
async fn create_group(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<GroupBody>>,
) -> Result<(StatusCode, Json<Value>)> {
    let t = a.tenant;
    let Some(Json(g)) = body else {
        return Err(invalid(
            "displayName",
            "the body must be a JSON object with a displayName",
        ));
    };
    let rec = create_group_as(&st, &t, g).await?;
    let members = st.store.members(&t.org_id, &rec.id).await?;
    Ok((StatusCode::CREATED, Json(group_json(&rec, Some(members)))))
}

/// Creates a team with its checks, for the admin API and the console alike.
pub async fn create_group_as(
    st: &AppState,
    t: &Tenant,
    g: GroupBody,
) -> Result<crate::store::Record> {
    let name = g.display_name.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(invalid("displayName", "displayName is required"));
    }
    let group = json!({"displayName": name, "members": member_values(&g.members)});
    st.provisioning
        .create(t, Kind::Group, &group)
        .await
        .map_err(|e| field_of(e, "members"))
}

/// A store refusal about members (unknown ids) names the field; a name clash is a conflict.
fn field_of(e: Error, field: &'static str) -> AdminError {
    if e.kind() == crate::error::ErrorKind::Invalid {
        AdminError(e.on_field(field))
    } else {
        AdminError(e)
    }
}

/// Renames a team and adds or removes members, all or nothing.
async fn change_group(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    body: Option<Json<GroupBody>>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    let Some(Json(g)) = body else {
        return Err(invalid("displayName", "the body must be a JSON object"));
    };
    let rec = change_group_as(&st, &t, &id, g).await?;
    let members = st.store.members(&t.org_id, &rec.id).await?;
    Ok(Json(group_json(&rec, Some(members))))
}

/// Renames a team and adds or removes members, all or nothing: for the admin API and the
/// console alike.
pub async fn change_group_as(
    st: &AppState,
    t: &Tenant,
    id: &str,
    g: GroupBody,
) -> Result<crate::store::Record> {
    let mut ops = Vec::new();
    if let Some(name) = g.display_name {
        ops.push(json!({"op": "replace", "path": "displayName", "value": name}));
    }
    if !g.add_members.is_empty() {
        ops.push(json!({"op": "add", "path": "members", "value": member_values(&g.add_members)}));
    }
    if !g.remove_members.is_empty() {
        ops.push(
            json!({"op": "remove", "path": "members", "value": member_values(&g.remove_members)}),
        );
    }
    if ops.is_empty() {
        return Err(invalid(
            "displayName",
            "nothing to change: give displayName, addMembers or removeMembers",
        ));
    }
    let patch = json!({"schemas": [PATCH_OP], "Operations": ops});
    st.provisioning
        .patch(t, Kind::Group, id, &patch, None)
        .await
        .map_err(|e| field_of(e, "addMembers"))
}

async fn delete_group(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let t = a.tenant;
    st.provisioning.delete(&t, Kind::Group, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
