//! The Users page's actions: a row's role and active switches, removing people (one or many,
//! confirmed first) and Add user. Each is one call of the admin API's own function, so its rules
//! (admins only, nobody removes or deactivates themselves, never the last admin) hold here too.

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::users::{delivery_note, row, rows, Row};
use super::{
    capitalise, message, page, refusal, AdminForm, AdminPage, Chrome, FormFields, InOrg,
    MemberForm, OrgPage,
};
use crate::http::admin::{self, MemberChange, MAX_REMOVE};
use crate::http::AppState;
use crate::scim::schema::Kind;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{slug}/users/{id}/role", post(change_role))
        .route("/o/{slug}/users/{id}/active", post(change_active))
        .route("/o/{slug}/users/remove/confirm", post(confirm_remove))
        .route("/o/{slug}/users/remove", post(remove))
        .route("/o/{slug}/users/add", get(add_page).post(add))
}

#[derive(Template)]
#[template(path = "user_row.html")]
struct RowPartial {
    chrome: Chrome,
    slug: String,
    admin: bool,
    r: Row,
}

/// A role or active change from the row's control: the admin API's `change_member_as` (its
/// rules: admins only, not deactivating oneself, never the last admin). The answer is the row
/// again, with the outcome in it; always 200, so htmx swaps it in.
async fn change(
    st: &AppState,
    MemberForm { o, f }: MemberForm,
    id: &str,
    make: impl FnOnce(&FormFields) -> (MemberChange, String),
) -> Response {
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
    Path((_, id)): Path<(String, String)>,
    form: MemberForm,
) -> Response {
    change(&st, form, &id, |f| {
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
    Path((_, id)): Path<(String, String)>,
    form: MemberForm,
) -> Response {
    change(&st, form, &id, |f| {
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
async fn confirm_remove(State(st): State<AppState>, AdminForm { o, f }: AdminForm) -> Response {
    removal(&st, &o, &f, true).await
}

/// Step two: each person removed through the admin API's `remove`, or refused with its reason.
async fn remove(State(st): State<AppState>, AdminForm { o, f }: AdminForm) -> Response {
    removal(&st, &o, &f, false).await
}

/// The people a removal form names: listed to confirm, or removed each on its own.
async fn removal(st: &AppState, o: &InOrg, f: &FormFields, confirming: bool) -> Response {
    let ids = match removal_ids(o, f) {
        Ok(ids) => ids,
        Err(resp) => return resp,
    };
    let mut people = Vec::new();
    let mut results = Vec::new();
    for id in ids {
        let l = label(st, o, &id).await;
        if confirming {
            people.push((id, l));
            continue;
        }
        results.push(match admin::remove(st, &o.access, &id).await {
            Ok(()) => (l, true, "Removed.".to_owned()),
            Err(e) => (l, false, format!("Not removed: {}", refusal(&e).1)),
        });
    }
    page(
        StatusCode::OK,
        &RemovePage {
            chrome: o.chrome("users"),
            title: if confirming {
                "Remove people?"
            } else {
                "Removal results"
            },
            slug: o.access.org.slug.clone(),
            confirming,
            people,
            results,
        },
    )
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

async fn add_page(OrgPage(o): AdminPage) -> Response {
    page(StatusCode::OK, &add_view(&o, AddForm::default()))
}

/// "Add user": the admin API's own `add_member_as` (`POST /admin/v1/orgs/{slug}/members`). The
/// answer is the same whether or not the address had an account, as the API's is.
async fn add(
    State(st): State<AppState>,
    headers: HeaderMap,
    AdminForm { o, f }: AdminForm,
) -> Response {
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
            v.notice = Some(format!(
                "{} is now {} of {}. Someone new to this server gets an email to set up their \
                 account.",
                form.email,
                if form.role == "admin" {
                    "an admin"
                } else {
                    "a member"
                },
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
