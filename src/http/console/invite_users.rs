//! The Invite users panel: up to 20 addresses typed or pasted, each invited or refused on its
//! own, or a CSV file with a dry run first. The checks and the invitations are the admin API's
//! and the service's own (`admin::invitee`, `invitations::invite`, `invitations::import_csv`).

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::users::{delivery_note, group_choices};
use super::{
    capitalise, message, page, refusal, AdminForm, AdminPage, Chrome, InOrg, MemberOfPage, OrgPage,
};
use crate::http::admin::{self, MAX_INVITATIONS};
use crate::http::AppState;
use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

/// A CSV upload: the file (at most `csv_import::MAX_BYTES`) with the form around it, and its
/// confirmation, which carries the file back base64-encoded.
const CSV_BODY_LIMIT: usize = 2 * crate::service::csv_import::MAX_BYTES;

pub fn router() -> Router<AppState> {
    Router::new()
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

async fn invite_page(State(st): State<AppState>, OrgPage(o): AdminPage) -> Response {
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
async fn invite(State(st): State<AppState>, AdminForm { o, f }: AdminForm) -> Response {
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
    OrgPage(o): MemberOfPage,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
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
async fn csv_confirm(State(st): State<AppState>, AdminForm { o, f }: AdminForm) -> Response {
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
}
