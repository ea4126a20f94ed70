//! The admin extension's HTTP API under `/admin/v1`: what an organization admin does by hand and
//! SCIM does not cover. JSON in and out; every refusal is `{"error": code, "message": …}` (with
//! `field` when one input is at fault). The rules (an organization keeps an active admin) are
//! the store's, so SCIM and this API enforce them alike.
//!
//! Callers are provider admins (tokens from `scimd admin token create`) or people signed in
//! with an access token (`people.rs`). Organization-scoped handlers take [`AdminOf`] or
//! [`MemberOf`], which check the caller's role in the path's organization before they run.

use super::extract::request_id;
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
    ("get", "/orgs/{slug}/groups/{id}"),
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
            get(get_group).patch(change_group).delete(delete_group),
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

mod audit;
mod groups;
mod invitations;
mod members;
mod orgs;

pub use audit::*;
pub use groups::*;
pub use invitations::*;
pub use members::*;
pub use orgs::*;

pub use super::access::{access, org, Access, AdminOf, Caller, MemberOf, Need, Scoped};
pub use super::errors::{invalid, AdminError};

type Result<T> = std::result::Result<T, AdminError>;

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
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

/// Refuses a caller without the admin role in the organization `a` is for (the rule of
/// `service::access`). The extractors check it for the API's routes; functions the console
/// calls too check it again themselves.
fn need_admin(a: &Access) -> Result<()> {
    let role = if a.admin { Role::Admin } else { Role::Member };
    Ok(crate::service::access::allows(
        role,
        &a.org.slug,
        Need::Admin,
    )?)
}
