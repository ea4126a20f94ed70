//! The Invitations page: every invitation of the organization with its status (pending,
//! accepted, revoked, expired), and Resend or Revoke through the admin API's own functions.
//! When the server sends no mail, the page says so plainly.

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::users::{day, group_choices, list_all, PAGE_SIZE};
use super::{capitalise, page, refusal, AdminForm, AdminPage, Chrome, InOrg, OrgPage};
use crate::http::admin;
use crate::http::AppState;
use crate::scim::schema::Kind;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

/// Invitations listed, newest first.
const SHOWN: usize = 4 * PAGE_SIZE as usize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{slug}/invitations", get(invitations_page))
        .route("/o/{slug}/invitations/{id}", post(act))
        .route("/o/{slug}/invitations/{id}/edit", get(edit_page).post(edit))
}

struct InvitationRow {
    id: String,
    email: String,
    name: String,
    role: String,
    groups: String,
    status: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "invitations.html")]
struct InvitationsPage {
    chrome: Chrome,
    title: String,
    slug: String,
    rows: Vec<InvitationRow>,
    more: bool,
    notice: Option<String>,
    ok: bool,
    delivery_note: Option<String>,
}

async fn view(st: &AppState, o: &InOrg) -> Result<InvitationsPage, crate::error::Error> {
    let org = &o.access.org;
    let now = st.clock.now();
    let groups = st.store.list(&org.id, Kind::Group, &list_all(1000)).await?;
    let group_name = |id: &String| {
        groups
            .records
            .iter()
            .find(|g| &g.id == id)
            .and_then(|g| g.doc.get("displayName").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let mut all = st.store.list_invitations(&org.id).await?;
    all.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    let more = all.len() > SHOWN;
    let rows = all
        .into_iter()
        .take(SHOWN)
        .map(|i| InvitationRow {
            status: crate::domain::InvitationStatus::of(&i.status, i.expires_at, now)
                .as_str()
                .to_owned(),
            expires: day(i.expires_at),
            groups: i
                .groups
                .iter()
                .filter_map(group_name)
                .collect::<Vec<_>>()
                .join(", "),
            name: format!("{} {}", i.first_name, i.last_name)
                .trim()
                .to_owned(),
            id: i.id,
            email: i.email,
            role: i.role,
        })
        .collect();
    Ok(InvitationsPage {
        chrome: o.chrome("invitations"),
        title: format!("Invitations of {}", org.name),
        slug: org.slug.clone(),
        rows,
        more,
        notice: None,
        ok: true,
        delivery_note: super::users::delivery_note(st),
    })
}

async fn invitations_page(State(st): State<AppState>, OrgPage(o): AdminPage) -> Response {
    match view(&st, &o).await {
        Ok(v) => page(StatusCode::OK, &v),
        Err(e) => crate::http::invite::internal(e),
    }
}

/// Resend or Revoke one invitation.
async fn act(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    AdminForm { o, f }: AdminForm,
) -> Response {
    let outcome = match f.get("action") {
        Some("resend") => admin::resend_invitation_as(&st, &o.access, &headers, &id)
            .await
            .map(|i| format!("Sent again to {}, with a new link.", i.email)),
        Some("revoke") => admin::revoke_invitation_as(&st, &o.access, &headers, &id)
            .await
            .map(|i| format!("The invitation to {} is revoked.", i.email)),
        _ => Err(admin::invalid("action", "unknown action")),
    };
    match view(&st, &o).await {
        Ok(mut v) => {
            match outcome {
                Ok(m) => v.notice = Some(m),
                Err(e) => {
                    v.notice = Some(capitalise(&refusal(&e).1));
                    v.ok = false;
                }
            }
            page(StatusCode::OK, &v)
        }
        Err(e) => crate::http::invite::internal(e),
    }
}

#[derive(Template)]
#[template(path = "invitation_edit.html")]
struct EditPage {
    chrome: Chrome,
    title: String,
    slug: String,
    id: String,
    email: String,
    role: String,
    /// `(id, name, checked)` for each group of the organization.
    groups: Vec<(String, String, bool)>,
    /// Why the invitation cannot be changed (no longer pending), instead of the form.
    closed: Option<String>,
    error: Option<String>,
    /// The field the error concerns, so the message sits beside it.
    field: String,
}

/// The form for one invitation, as it is now (or, after a refused post, as it was posted).
async fn edit_view(
    st: &AppState,
    o: &InOrg,
    id: &str,
    posted: Option<(String, Vec<String>)>,
) -> Result<Option<EditPage>, crate::error::Error> {
    let Some(inv) = st.store.get_invitation(&o.access.org.id, id).await? else {
        return Ok(None);
    };
    let status = crate::domain::InvitationStatus::of(&inv.status, inv.expires_at, st.clock.now())
        .as_str()
        .to_owned();
    let (role, checked) = posted.unwrap_or((inv.role, inv.groups));
    Ok(Some(EditPage {
        chrome: o.chrome("invitations"),
        title: format!("Change the invitation to {}", inv.email),
        slug: o.access.org.slug.clone(),
        id: inv.id,
        email: inv.email,
        role,
        groups: group_choices(st, o, &checked).await?,
        closed: (status != "pending").then(|| {
            format!(
                "This invitation is {status}: only a pending invitation can be changed.{}",
                if status == "expired" {
                    " Resend it first."
                } else {
                    ""
                }
            )
        }),
        error: None,
        field: String::new(),
    }))
}

fn not_found(o: &InOrg) -> Response {
    super::message(
        o.chrome("invitations"),
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such invitation in this organization.",
        Some((
            &format!("/o/{}/invitations", o.access.org.slug),
            "Back to Invitations",
        )),
    )
}

async fn edit_page(
    State(st): State<AppState>,
    OrgPage(o): AdminPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    match edit_view(&st, &o, &id, None).await {
        Ok(Some(v)) => page(StatusCode::OK, &v),
        Ok(None) => not_found(&o),
        Err(e) => crate::http::invite::internal(e),
    }
}

/// Saves a pending invitation's role and groups through the admin API's own
/// `change_invitation_as`; back to the Invitations page with the outcome, or the form again with
/// the refusal beside the field it concerns.
async fn edit(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    AdminForm { o, f }: AdminForm,
) -> Response {
    let role = f.text("role");
    let groups = f.all("groups");
    // Every box unticked is no groups: the form always sends the whole list.
    let changed = admin::change_invitation_as(
        &st,
        &o.access,
        &headers,
        &id,
        Some(&Value::from(role.clone())),
        Some(&Value::from(groups.clone())),
    )
    .await;
    match changed {
        Ok(inv) => match view(&st, &o).await {
            Ok(mut v) => {
                v.notice = Some(format!(
                    "The invitation to {} now gives the {} role{}.",
                    inv.email,
                    inv.role,
                    match inv.groups.len() {
                        0 => " and no groups".to_owned(),
                        1 => " and 1 group".to_owned(),
                        n => format!(" and {n} groups"),
                    }
                ));
                page(StatusCode::OK, &v)
            }
            Err(e) => crate::http::invite::internal(e),
        },
        Err(e) => {
            let (status, text) = refusal(&e);
            match edit_view(&st, &o, &id, Some((role, groups))).await {
                Ok(Some(mut v)) => {
                    v.field = e.field().unwrap_or_default().to_owned();
                    v.error = Some(capitalise(&text));
                    page(status, &v)
                }
                Ok(None) => not_found(&o),
                Err(e) => crate::http::invite::internal(e),
            }
        }
    }
}
