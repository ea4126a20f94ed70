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
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub const PREFIX: &str = super::ADMIN_PREFIX;
/// Most members removed in one request.
pub const MAX_REMOVE: usize = 1000;
/// Most invitations in one request; more go through the CSV import.
pub const MAX_INVITATIONS: usize = 20;

/// The admin API's operations, each with its OpenAPI description: the router and the document
/// (`/admin/v1/openapi.json`) are made from this one list, so an operation is added once, with
/// its `#[utoipa::path]` annotation. The public ones, then those that need a token.
fn operations() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let public = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .routes(routes!(super::people::login))
        .routes(routes!(super::people::signup))
        .routes(routes!(super::people::password_reset));
    let protected = OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(super::people::logout))
        .routes(routes!(super::people::me))
        .routes(routes!(super::people::change_password))
        .routes(routes!(super::people::my_invitations))
        .routes(routes!(super::people::accept_invitation))
        .routes(routes!(create_account))
        .routes(routes!(list_members, add_member))
        .routes(routes!(change_member, remove_member))
        .routes(routes!(remove_members))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, change_group, delete_group))
        .routes(routes!(audit))
        .routes(routes!(audit_of))
        .routes(routes!(list_invitations, create_invitations))
        .routes(routes!(change_invitation))
        .routes(routes!(import_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(resend_invitation))
        .merge(super::provisioning::operations());
    (public, protected)
}

pub fn router(state: AppState) -> Router<AppState> {
    let (public, protected) = operations();
    let protected = protected.route_layer(middleware::from_fn_with_state(
        state,
        super::access::authenticate,
    ));
    let (router, _) = public
        .merge(protected)
        .layer(middleware::map_response(json_refusals))
        .split_for_parts();
    router
}

/// The OpenAPI document of this API, as `/admin/v1/openapi.json` serves it: generated from the
/// operations' annotations, once.
pub fn document() -> &'static str {
    DOCUMENT.get_or_init(|| {
        let (public, protected) = operations();
        let (_, api) = public.merge(protected).split_for_parts();
        render(&api)
    })
}

static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The document as JSON. An operation without a token (`security(())`) is written with
/// `"security": []`, which overrides the document's default requirement.
fn render(api: &utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(api).unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths.values_mut().filter_map(Value::as_object_mut) {
            for o in op.values_mut() {
                if o.get("security") == Some(&json!([{}])) {
                    o["security"] = json!([]);
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
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

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This document",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document"),
    )
)]
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// The document's frame: what the operations' annotations do not say.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scimd admin API",
        version = "1",
        description = "What an organization admin does by hand and SCIM does not cover. Authenticate with `Authorization: Bearer <token>`, with one of two kinds of token: a provider admin token from `scimd admin token create`, or a person's access token (a JWT signed with HS256, from `POST /login`, working for 15 minutes or until `POST /logout` or a password change ends its session). Roles: a provider admin may do everything, in every organization. A person has the rights of their active memberships: an organization `admin` manages their organization; a `member` may read the organization's directory (`GET /orgs/{slug}/members`, `GET /orgs/{slug}/groups`) and edit only their own profile (`PATCH /orgs/{slug}/members/{id}` with givenName, familyName, displayName). Everything else is 403 `forbidden` with a message naming the role needed; a person who is not an active member of an organization gets 403 whether or not it exists. Admins cannot remove or deactivate themselves (403), and every organization keeps at least one active admin (409 `last_admin`). Errors are `{\"error\": code, \"message\": text, \"field\"?: name}`. Invitations are accepted by the invitee on the public page at `/invite/{secret}`, and a new account's password is set on the public page at `/setup/{secret}` (both outside this API, linked from emails). Without SMTP configured the server cannot send these emails, so the answers that create a link carry it (`link`, `setupLink`); with SMTP the link goes only by email."
    ),
    servers((url = "/admin/v1")),
    security(("adminToken" = [])),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// The `adminToken` security scheme every operation needs unless it says otherwise.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Either a provider admin token (from `scimd admin token create`; every right in every organization) or a person's access token (a JWT signed with HS256, from `POST /login` or `POST /me/password`, valid for 15 minutes, ended at once by `POST /logout` or a password change; the rights of the person's active memberships, or a provider admin's for an account the operator made one with `scimd admin grant`).",
            ))
            .build();
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("adminToken", SecurityScheme::Http(scheme));
    }
}

/// A page of a list: `startIndex` (from 1) and `count` (at most 1000).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Paging {
    #[serde(rename = "startIndex")]
    #[param(value_type = i64, required = false, minimum = 1, default = 1)]
    start_index: Option<i64>,
    #[param(value_type = i64, required = false, minimum = 0, maximum = 1000, default = 100)]
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
