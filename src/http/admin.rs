//! The admin extension's HTTP API under `/admin/v1`: what an organization admin does by hand and
//! SCIM does not cover. JSON in and out; every refusal is `{"error": code, "message": …}` (with
//! `field` when one input is at fault). The rules (an organization keeps an active admin) are
//! the store's, so SCIM and this API enforce them alike.
//!
//! Built so far: provider admins (tokens from `scimd admin token create`) managing
//! organizations, members (list, role, activate/deactivate, remove one or many) and reading the
//! audit log. Sign-in for people, invitations and CSV import are not built yet.

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
    ("get", "/orgs/{slug}/audit"),
];

pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
        .route("/orgs/{slug}/members", get(list_members))
        .route(
            "/orgs/{slug}/members/{id}",
            patch(change_member).delete(remove_member),
        )
        .route("/orgs/{slug}/members/remove", post(remove_members))
        .route("/orgs/{slug}/audit", get(audit))
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
            req.extensions_mut().insert(Admin { id: t.id });
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
    let org = st
        .store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization {slug:?}")))?;
    Ok(Tenant {
        org_id: org.id,
        org_slug: org.slug,
        actor: format!("admin:{}", admin.id),
        request_id: req_id,
    })
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

async fn list_members(
    State(st): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(p): Query<Paging>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let t = tenant(&st, &slug, &admin, request_id(&headers)).await?;
    let (start_index, count) = p.bounds();
    let q = ListQuery {
        filter: None,
        sort: None,
        start_index,
        count,
        after: None,
    };
    let page = st.provisioning.list(&t, Kind::User, &q).await?;
    let items: Vec<Value> = page.records.iter().map(member_json).collect();
    Ok(Json(
        json!({"totalResults": page.total, "startIndex": start_index, "items": items}),
    ))
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
