//! The admin extension's HTTP API under `/admin/v1`: what an organization admin does by hand and
//! SCIM does not cover. JSON in and out; every refusal is `{"error": code, "message": …}` (with
//! `field` when one input is at fault). The rules (an organization keeps an active admin) are
//! the store's, so SCIM and this API enforce them alike.
//!
//! Built so far: provider admins (tokens from `scimd admin token create`) managing
//! organizations, members (list, role, activate/deactivate, remove one or many) and reading the
//! audit log; invitations (create one or a few, list, change, revoke, resend; the accept page
//! is public, in `invite.rs`). Sign-in for people and CSV import are not built yet.

use super::AppState;
use crate::error::Error;
use crate::scim::schema::{Kind, ORGANIZATION_USER, PATCH_OP};
use crate::service::Tenant;
use crate::store::{ListQuery, Org};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub const PREFIX: &str = "/admin/v1";
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
    ("get", "/orgs"),
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
    ("get", "/orgs/{slug}/invitations"),
    ("post", "/orgs/{slug}/invitations"),
    ("patch", "/orgs/{slug}/invitations/{id}"),
    ("post", "/orgs/{slug}/invitations/{id}/revoke"),
    ("post", "/orgs/{slug}/invitations/{id}/resend"),
    ("post", "/orgs/{slug}/invitations/import"),
];

pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
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
        .route_layer(middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(protected)
}

/// An admin API error: the same causes as SCIM's, in this API's JSON shape.
pub struct AdminError {
    inner: Error,
    field: Option<&'static str>,
}

impl From<Error> for AdminError {
    fn from(inner: Error) -> Self {
        AdminError { inner, field: None }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError {
        inner: Error::bad(crate::error::ScimType::InvalidValue, message),
        field: Some(field),
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.inner.status();
        let message = match &self.inner {
            Error::Scim { detail, .. } => detail.clone(),
            Error::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error; the server log has the cause".to_owned()
            }
        };
        let code = match status {
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT if message.contains("last active admin") => "last_admin",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            _ if status.is_server_error() => "internal",
            _ => "error",
        };
        let mut body = json!({"error": code, "message": message});
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"scimd-admin\""),
            );
        }
        resp
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// A provider admin, identified by the token it presented.
#[derive(Clone)]
struct Admin {
    id: String,
    name: String,
}

async fn authenticate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .unwrap_or_default();
    let found = match token.is_empty() {
        true => None,
        false => match st
            .store
            .admin_token_by_digest(&crate::token::digest(&token))
            .await
        {
            Ok(t) => t,
            Err(e) => return AdminError::from(e).into_response(),
        },
    };
    match found.filter(|t| t.revoked_at.is_none()) {
        Some(t) => {
            req.extensions_mut().insert(Admin {
                id: t.id,
                name: t.name,
            });
            next.run(req).await
        }
        None => AdminError::from(Error::unauthorized(
            "an admin token is required: Authorization: Bearer <token from `scimd admin token create`>",
        ))
        .into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn org_json(o: &Org) -> Value {
    json!({"id": o.id, "slug": o.slug, "name": o.name, "createdAt": crate::service::render::timestamp(o.created_at)})
}

async fn list_orgs(State(st): State<AppState>) -> Result<Json<Value>> {
    let orgs: Vec<Value> = st.store.list_orgs().await?.iter().map(org_json).collect();
    Ok(Json(json!({"items": orgs})))
}

#[derive(Deserialize)]
struct NewOrg {
    slug: Option<String>,
    name: Option<String>,
}

async fn create_org(
    State(st): State<AppState>,
    body: Option<Json<NewOrg>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(body)) = body else {
        return Err(invalid(
            "slug",
            "the body must be a JSON object with a slug",
        ));
    };
    let slug = body.slug.unwrap_or_default();
    crate::service::check_slug(&slug).map_err(|m| invalid("slug", m))?;
    let name = body.name.unwrap_or_else(|| slug.clone());
    let org = st.store.create_org(&slug, &name, st.clock.now()).await?;
    tracing::info!(org = %org.slug, "organization created");
    Ok((StatusCode::CREATED, Json(org_json(&org))))
}

/// The organization a path names, as the tenant its changes are made in.
async fn tenant(
    st: &AppState,
    slug: &str,
    admin: &Admin,
    req_id: Option<String>,
) -> Result<Tenant> {
    Ok(tenant_of(org(st, slug).await?, admin, req_id))
}

async fn org(st: &AppState, slug: &str) -> Result<Org> {
    Ok(st
        .store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization {slug:?}")))?)
}

fn tenant_of(org: Org, admin: &Admin, req_id: Option<String>) -> Tenant {
    Tenant {
        org_id: org.id,
        org_slug: org.slug,
        actor: format!("admin:{}", admin.id),
        request_id: req_id,
    }
}

fn request_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

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

/// One page of an organization's Users or Groups, each shown by `show`.
async fn list_page(
    st: &AppState,
    t: &Tenant,
    kind: Kind,
    p: &Paging,
    show: impl Fn(&crate::store::Record) -> Value,
) -> Result<Json<Value>> {
    let (start_index, count) = p.bounds();
    let q = ListQuery {
        filter: None,
        sort: None,
        start_index,
        count,
        after: None,
    };
    let page = st.provisioning.list(t, kind, &q).await?;
    let items: Vec<Value> = page.records.iter().map(show).collect();
    Ok(Json(
        json!({"totalResults": page.total, "startIndex": start_index, "items": items}),
    ))
}

async fn list_members(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(p): Query<Paging>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    list_page(&st, &t, Kind::User, &p, member_json).await
}

#[derive(Deserialize)]
struct MemberChange {
    role: Option<String>,
    active: Option<bool>,
}

/// Changes a member's role or switches the membership on or off.
async fn change_member(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Option<Json<MemberChange>>,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    let Some(Json(change)) = body else {
        return Err(invalid(
            "role",
            "the body must be a JSON object with role and/or active",
        ));
    };
    let mut value = serde_json::Map::new();
    if let Some(role) = change.role {
        if role != "admin" && role != "member" {
            return Err(invalid(
                "role",
                format!("role must be admin or member; got {role:?}"),
            ));
        }
        value.insert(format!("{ORGANIZATION_USER}:role"), json!(role));
    }
    if let Some(active) = change.active {
        value.insert("active".into(), json!(active));
    }
    if value.is_empty() {
        return Err(invalid(
            "role",
            "nothing to change: give role and/or active",
        ));
    }
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": value}]});
    let rec = st
        .provisioning
        .patch(&t, Kind::User, &id, &patch, None)
        .await?;
    let rec = st.provisioning.get(&t, Kind::User, &rec.id).await?;
    Ok(Json(member_json(&rec)))
}

/// Removes a membership: the person's account and other memberships remain.
async fn remove_member(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    st.provisioning.delete(&t, Kind::User, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RemoveMany {
    ids: Option<Vec<String>>,
}

/// Removes many members; each is removed or refused on its own, and the answer says which.
async fn remove_members(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    headers: axum::http::HeaderMap,
    body: Option<Json<RemoveMany>>,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
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
        match st.provisioning.delete(&t, Kind::User, &id, None).await {
            Ok(()) => removed.push(id),
            Err(e) => {
                let e = AdminError::from(e).into_response();
                let status = e.status().as_u16();
                failed.push(json!({"id": id, "status": status}));
            }
        }
    }
    Ok(Json(json!({"removed": removed, "failed": failed})))
}

async fn audit(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(p): Query<Paging>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    let (start_index, count) = p.bounds();
    let (total, events) = st.store.audit_events(&t.org_id, start_index, count).await?;
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

fn invitation_json(inv: &crate::store::Invitation, now: i64) -> Value {
    let status = if inv.status == "pending" && inv.expires_at <= now {
        "expired"
    } else {
        inv.status.as_str()
    };
    let ts = crate::service::render::timestamp;
    json!({
        "id": inv.id,
        "email": inv.email,
        "firstName": inv.first_name,
        "lastName": inv.last_name,
        "role": inv.role,
        "groups": inv.groups,
        "status": status,
        "expiresAt": ts(inv.expires_at),
        "acceptedAt": inv.accepted_at.map(ts),
        "invitedBy": inv.invited_by,
        "createdAt": ts(inv.created_at),
        "updatedAt": ts(inv.updated_at),
    })
}

fn check_role(role: &Value) -> Result<String> {
    match role.as_str() {
        Some(r @ ("admin" | "member")) => Ok(r.to_owned()),
        _ => Err(invalid(
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

async fn invitee(
    st: &AppState,
    org: &str,
    v: &Value,
) -> Result<crate::service::invitations::Invitee> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            "email",
            "each invitation must be a JSON object with email, firstName and lastName",
        ));
    };
    let email = obj
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    if !crate::service::invitations::valid_email(email) {
        return Err(invalid(
            "email",
            format!("{email:?} is not a valid email address"),
        ));
    }
    let name = |key: &'static str| -> Result<String> {
        match obj.get(key).and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() && n.len() <= 200 => Ok(n.to_owned()),
            _ => Err(invalid(
                key,
                format!("{key} is required (a non-empty string)"),
            )),
        }
    };
    Ok(crate::service::invitations::Invitee {
        email: email.to_owned(),
        first_name: name("firstName")?,
        last_name: name("lastName")?,
        role: match obj.get("role") {
            None | Some(Value::Null) => "member".to_owned(),
            Some(r) => check_role(r)?,
        },
        groups: check_groups(st, org, obj.get("groups").unwrap_or(&Value::Null)).await?,
    })
}

/// Who an invitation email names as the inviter.
fn inviter(admin: &Admin) -> String {
    format!("{} (an administrator)", admin.name)
}

/// Creates one invitation (`{email, firstName, lastName, role?, groups?}`) or up to
/// [`MAX_INVITATIONS`] (`{"invitations": [...]}`). Every item is validated before any is
/// created; then each is created on its own (a 409 for one does not stop the others).
async fn create_invitations(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    headers: axum::http::HeaderMap,
    body: Option<Json<Value>>,
) -> Result<(StatusCode, Json<Value>)> {
    let org = org(&st, &slug).await?;
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
        invitees.push(invitee(&st, &org.id, item).await?);
    }
    let t = tenant_of(org.clone(), &admin, request_id(&headers));
    let audit = t.audit();
    let origin = super::invite::origin(&st, &headers);
    let inviter = inviter(&admin);
    let mut out = Vec::with_capacity(invitees.len());
    for i in invitees {
        let email = i.email.clone();
        let now = st.clock.now();
        match crate::service::invitations::invite(
            &st.store, &st.clock, &org, &inviter, &audit, i, &origin,
        )
        .await
        {
            Ok((inv, link)) => {
                let mut v = invitation_json(&inv, now);
                v["link"] = json!(link);
                if batch {
                    v["result"] = json!(201);
                }
                out.push(v);
            }
            Err(e) if !batch => return Err(e.into()),
            Err(e) => {
                let resp = AdminError::from(e).into_response();
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
                    .await
                    .unwrap_or_default();
                let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                v["result"] = json!(status);
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
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(p): Query<ImportParams>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let org = org(&st, &slug).await?;
    if body.is_empty() {
        return Err(invalid("file", "send the CSV file as the request body"));
    }
    let t = tenant_of(org.clone(), &admin, request_id(&headers));
    let audit = t.audit();
    let origin = super::invite::origin(&st, &headers);
    let report = crate::service::invitations::import_csv(
        &st.store,
        &st.clock,
        &org,
        &inviter(&admin),
        &audit,
        &body,
        &origin,
        p.dry_run.unwrap_or(false),
    )
    .await
    .map_err(|e| AdminError {
        inner: e,
        field: Some("file"),
    })?;
    Ok(Json(report.to_json()))
}

async fn list_invitations(
    State(st): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Value>> {
    let org = org(&st, &slug).await?;
    let now = st.clock.now();
    let items: Vec<Value> = st
        .store
        .list_invitations(&org.id)
        .await?
        .iter()
        .map(|i| invitation_json(i, now))
        .collect();
    Ok(Json(json!({"items": items})))
}

/// Changes a pending invitation's role and/or groups; the email cannot change (revoke and
/// invite again).
async fn change_invitation(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let org = org(&st, &slug).await?;
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
    let change = crate::store::InvitationChange {
        role: body.get("role").map(check_role).transpose()?,
        groups: match body.get("groups") {
            Some(g) => Some(check_groups(&st, &org.id, g).await?),
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
    let inv = invitation_change(&st, &org, &admin, &headers, &id, &change, None, "update").await?;
    Ok(Json(invitation_json(&inv, st.clock.now())))
}

#[allow(clippy::too_many_arguments)]
async fn invitation_change(
    st: &AppState,
    org: &Org,
    admin: &Admin,
    headers: &axum::http::HeaderMap,
    id: &str,
    change: &crate::store::InvitationChange,
    email: Option<&crate::email::OutboxMessage>,
    action: &str,
) -> Result<crate::store::Invitation> {
    let audit = crate::store::Audit {
        actor: format!("admin:{}", admin.id),
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
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let org = org(&st, &slug).await?;
    let change = crate::store::InvitationChange {
        status: Some("revoked".into()),
        ..Default::default()
    };
    let inv = invitation_change(&st, &org, &admin, &headers, &id, &change, None, "revoke").await?;
    Ok(Json(invitation_json(&inv, st.clock.now())))
}

/// Sends the invitation again with a new link (the old one stops working) and a new expiry.
async fn resend_invitation(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let org = org(&st, &slug).await?;
    let current = st
        .store
        .get_invitation(&org.id, &id)
        .await?
        .ok_or_else(|| Error::not_found(format!("invitation {id} not found")))?;
    let secret = crate::token::generate();
    let link = super::invite::link(&st, &headers, &secret);
    let msg = crate::service::invitations::email(&org, &inviter(&admin), &current, &link);
    let change = crate::store::InvitationChange {
        secret_digest: Some(crate::token::digest(&secret)),
        expires_at: Some(st.clock.now() + super::invite::EXPIRY_MICROS),
        ..Default::default()
    };
    let inv = invitation_change(
        &st,
        &org,
        &admin,
        &headers,
        &id,
        &change,
        Some(&msg),
        "resend",
    )
    .await?;
    let mut v = invitation_json(&inv, st.clock.now());
    v["link"] = json!(link);
    Ok(Json(v))
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
/// new one. The membership is the same one SCIM sees, so an IdP can take it over later.
async fn add_member(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewMember>>,
) -> Result<(StatusCode, Json<Value>)> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    let Some(Json(m)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object with an email",
        ));
    };
    let email = m.email.unwrap_or_default().trim().to_owned();
    if !crate::service::invitations::valid_email(&email) {
        return Err(invalid(
            "email",
            format!("{email:?} is not a valid email address"),
        ));
    }
    let role = check_role(&json!(m.role.as_deref().unwrap_or("member")))?;
    let mut user = json!({
        "userName": email,
        "emails": [{"value": email, "primary": true}],
        ORGANIZATION_USER: {"role": role},
    });
    if m.given_name.is_some() || m.family_name.is_some() {
        user["name"] = json!({"givenName": m.given_name, "familyName": m.family_name});
    }
    let rec = st
        .provisioning
        .create(&t, Kind::User, &user)
        .await
        .map_err(|e| match e.status() {
            StatusCode::CONFLICT => AdminError::from(Error::conflict(format!(
                "{email} is already a member of {slug}"
            ))),
            _ => AdminError::from(e),
        })?;
    let rec = st.provisioning.get(&t, Kind::User, &rec.id).await?;
    Ok((StatusCode::CREATED, Json(member_json(&rec))))
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
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(p): Query<Paging>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    list_page(&st, &t, Kind::Group, &p, |g| group_json(g, None)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    display_name: Option<String>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    add_members: Vec<String>,
    #[serde(default)]
    remove_members: Vec<String>,
}

fn member_values(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

/// Creates a team: the same data as a SCIM Group. Members must be members of the organization.
async fn create_group(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    headers: axum::http::HeaderMap,
    body: Option<Json<GroupBody>>,
) -> Result<(StatusCode, Json<Value>)> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    let Some(Json(g)) = body else {
        return Err(invalid(
            "displayName",
            "the body must be a JSON object with a displayName",
        ));
    };
    let name = g.display_name.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(invalid("displayName", "displayName is required"));
    }
    let group = json!({"displayName": name, "members": member_values(&g.members)});
    let rec = st
        .provisioning
        .create(&t, Kind::Group, &group)
        .await
        .map_err(|e| field_of(e, "members"))?;
    let members = st.store.members(&t.org_id, &rec.id).await?;
    Ok((StatusCode::CREATED, Json(group_json(&rec, Some(members)))))
}

/// A store refusal about members (unknown ids) names the field; a name clash is a conflict.
fn field_of(e: Error, field: &'static str) -> AdminError {
    let bad_request = e.status() == StatusCode::BAD_REQUEST;
    AdminError {
        inner: e,
        field: bad_request.then_some(field),
    }
}

/// Renames a team and adds or removes members, all or nothing.
async fn change_group(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Option<Json<GroupBody>>,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    let Some(Json(g)) = body else {
        return Err(invalid("displayName", "the body must be a JSON object"));
    };
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
    let rec = st
        .provisioning
        .patch(&t, Kind::Group, &id, &patch, None)
        .await
        .map_err(|e| field_of(e, "addMembers"))?;
    let members = st.store.members(&t.org_id, &rec.id).await?;
    Ok(Json(group_json(&rec, Some(members))))
}

async fn delete_group(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path((slug, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    st.provisioning.delete(&t, Kind::Group, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
