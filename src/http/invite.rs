//! Invitations, the public side: the link a person gets by email (`/invite/{secret}`), a small
//! server-rendered page to accept it, and the invitation email itself. The secret is the only
//! credential; it is looked up by its digest, and every link that does not lead to an open
//! invitation (unknown, expired, revoked, already used) gets the same 404 page.

use super::AppState;
use crate::error::Error;
use crate::service::credentials::{self, Accepted, NewPassword};
use crate::store::{Invitation, Org};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

pub use crate::service::invitations::escape;
use crate::service::people::MIN_PASSWORD;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invite/{secret}", get(page).post(accept))
        .route("/setup/{secret}", get(setup_page).post(setup))
}

/// The link for a secret: `{origin}/invite/{secret}`, the origin being the configured public
/// URL's (never a request header's: a forged Host must not redirect a link to its sender).
pub fn link(st: &AppState, secret: &str) -> String {
    format!("{}/invite/{secret}", st.config.origin())
}

/// A new account-setup link (`{origin}/setup/{secret}`): its URL, for the mail, and the
/// secret's digest, for the database.
pub struct NewLink {
    pub url: String,
    digest: String,
    pub expires_at: i64,
}

impl NewLink {
    /// The link as the store writes it, with the mail that carries it.
    pub fn stored(self, email: crate::email::OutboxMessage) -> crate::store::SetupLink {
        crate::store::SetupLink {
            digest: self.digest,
            expires_at: self.expires_at,
            email,
        }
    }
}

/// A link that sets a new account's password, working for the configured link lifetime.
pub fn setup_link(st: &AppState) -> NewLink {
    new_link(st, st.config.link_ttl)
}

/// A link that resets a password: short-lived (an hour unless configured otherwise), and
/// ended by any password change.
pub fn reset_link(st: &AppState) -> NewLink {
    new_link(st, st.config.reset_ttl)
}

fn new_link(st: &AppState, ttl: i64) -> NewLink {
    let secret = crate::token::generate();
    NewLink {
        url: format!("{}/setup/{secret}", st.config.origin()),
        digest: crate::token::digest(&secret),
        expires_at: st.clock.now() + ttl,
    }
}

/// A whole page around `body` (already escaped HTML).
pub fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let doc = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"{css}\">\
         </head><body><h1>{title}</h1>{body}</body></html>\n",
        title = escape(title),
        // No inline style: the pages' CSP allows stylesheets from this server only.
        css = super::edge::PAGE_CSS_PATH,
    );
    let mut resp = (status, Html(doc)).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The one answer for every link that leads to no open invitation: it tells nothing about why.
fn gone() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "Invitation not found",
        "<p>This invitation link is not valid. It may have expired or been used already. \
         Ask the person who invited you for a new invitation.</p>",
    )
}

/// The open invitation a secret leads to.
async fn open(st: &AppState, secret: &str) -> Result<Option<(Invitation, Org)>, Error> {
    st.store
        .open_invitation(&crate::token::digest(secret), st.clock.now())
        .await
}

fn form(inv: &Invitation, org: &Org, has_password: bool, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let fields = if has_password {
        "<p>You already have an account: enter its password to join.</p>\
         <label>Password <input type=\"password\" name=\"password\" required autocomplete=\"current-password\"></label>"
            .to_owned()
    } else {
        format!(
            "<label>Given name <input name=\"given_name\" required value=\"{}\" autocomplete=\"given-name\"></label>\
             <label>Family name <input name=\"family_name\" required value=\"{}\" autocomplete=\"family-name\"></label>\
             <label>Password (at least {MIN_PASSWORD} characters) <input type=\"password\" name=\"password\" required \
             minlength=\"{MIN_PASSWORD}\" autocomplete=\"new-password\"></label>",
            escape(&inv.first_name),
            escape(&inv.last_name),
        )
    };
    format!(
        "<p>You are invited to join <strong>{org}</strong> as <strong>{email}</strong>.</p>{error}\
         <form method=\"post\">{fields}<button type=\"submit\">Join {org}</button></form>",
        org = escape(&org.name),
        email = escape(&inv.email),
    )
}

async fn has_password(st: &AppState, email: &str) -> Result<bool, Error> {
    Ok(st
        .store
        .account_by_email(email)
        .await?
        .is_some_and(|a| a.password_hash.is_some()))
}

pub fn internal(e: Error) -> Response {
    tracing::error!(error = ?e, "invitation page failed");
    html_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>The invitation could not be processed. Try again in a moment.</p>",
    )
}

async fn page(State(st): State<AppState>, Path(secret): Path<String>) -> Response {
    let (inv, org) = match open(&st, &secret).await {
        Ok(Some(found)) => found,
        Ok(None) => return gone(),
        Err(e) => return internal(e),
    };
    match has_password(&st, &inv.email).await {
        Ok(has) => html_page(
            StatusCode::OK,
            &format!("Join {}", org.name),
            &form(&inv, &org, has, None),
        ),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct AcceptForm {
    given_name: Option<String>,
    family_name: Option<String>,
    password: Option<String>,
}

async fn accept(
    State(st): State<AppState>,
    Path(secret): Path<String>,
    ip: super::ClientIp,
    Form(f): Form<AcceptForm>,
) -> Response {
    match try_accept(&st, &secret, &ip.0, f).await {
        Ok(resp) => resp,
        Err(e) if e.status() == StatusCode::NOT_FOUND => gone(),
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => busy(),
        Err(e) if e.status() == StatusCode::CONFLICT => html_page(
            StatusCode::CONFLICT,
            "Already a member",
            "<p>You already have a membership in this organization, so this invitation is closed. \
             If your membership is switched off, ask an administrator of the organization.</p>",
        ),
        Err(e) => internal(e),
    }
}

async fn try_accept(
    st: &AppState,
    secret: &str,
    ip: &str,
    f: AcceptForm,
) -> Result<Response, Error> {
    let Some((inv, org)) = open(st, secret).await? else {
        return Ok(gone());
    };
    let refuse = |has: bool, message: &str| {
        html_page(
            StatusCode::BAD_REQUEST,
            &format!("Join {}", org.name),
            &form(&inv, &org, has, Some(message)),
        )
    };
    let outcome = credentials::accept_by_link(
        &st.store,
        &st.hasher,
        &st.clock,
        &inv,
        ip,
        f.given_name.as_deref().unwrap_or_default(),
        f.family_name.as_deref().unwrap_or_default(),
        f.password.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok(match outcome {
        Accepted::Joined(_) => {
            tracing::info!(org = %org.slug, invitation = %inv.id, "invitation accepted");
            html_page(
                StatusCode::OK,
                &format!("Welcome to {}", org.name),
                &format!(
                    "<p>You are now a member of <strong>{}</strong>.</p>\
                     <p><a href=\"/o/{}/users\">Open {} in the console</a></p>",
                    escape(&org.name),
                    escape(&org.slug),
                    escape(&org.name)
                ),
            )
        }
        Accepted::Gone => gone(),
        Accepted::WrongPassword => refuse(true, "That password is not right."),
        Accepted::Limited(wait) => refuse(
            true,
            &format!(
                "Too many attempts. Try again in {} minutes.",
                (wait + 59) / 60
            ),
        ),
        Accepted::Invalid(problem) => refuse(false, &problem),
    })
}

/// The one answer for every setup link that is not open.
fn setup_gone() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link is not valid. It may have expired or been used already. \
         Ask an administrator of your organization for a new one.</p>",
    )
}

fn setup_form(acct: &crate::store::Account, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "<p>Choose a password for <strong>{email}</strong>.</p>{error}<form method=\"post\">\
         <label>Given name <input name=\"given_name\" required value=\"{given}\" autocomplete=\"given-name\"></label>\
         <label>Family name <input name=\"family_name\" required value=\"{family}\" autocomplete=\"family-name\"></label>\
         <label>Password (at least {MIN_PASSWORD} characters) <input type=\"password\" name=\"password\" required \
         minlength=\"{MIN_PASSWORD}\" autocomplete=\"new-password\"></label><button type=\"submit\">Save</button></form>",
        email = escape(&acct.email),
        given = escape(acct.given_name.as_deref().unwrap_or_default()),
        family = escape(acct.family_name.as_deref().unwrap_or_default()),
    )
}

async fn setup_page(State(st): State<AppState>, Path(secret): Path<String>) -> Response {
    match st
        .store
        .open_setup(&crate::token::digest(&secret), st.clock.now())
        .await
    {
        Ok(Some(acct)) => html_page(
            StatusCode::OK,
            "Set up your account",
            &setup_form(&acct, None),
        ),
        Ok(None) => setup_gone(),
        Err(e) => internal(e),
    }
}

/// Sets the account's names and password from a setup link; the link then stops working.
/// The link is claimed before the password is hashed: of concurrent posts one hashes.
async fn setup(
    State(st): State<AppState>,
    Path(secret): Path<String>,
    Form(f): Form<AcceptForm>,
) -> Response {
    let form = NewPassword {
        given_name: f.given_name.unwrap_or_default(),
        family_name: f.family_name.unwrap_or_default(),
        password: f.password.unwrap_or_default(),
    };
    if let Some(problem) = form.problem() {
        // The page again, with the names the person typed, when the link is still open.
        return match st
            .store
            .open_setup(&crate::token::digest(&secret), st.clock.now())
            .await
        {
            Ok(Some(mut acct)) => {
                acct.given_name = Some(form.given_name);
                acct.family_name = Some(form.family_name);
                html_page(
                    StatusCode::BAD_REQUEST,
                    "Set up your account",
                    &setup_form(&acct, Some(&problem)),
                )
            }
            Ok(None) => setup_gone(),
            Err(e) => internal(e),
        };
    }
    match credentials::set_password_by_link(&st.store, &st.hasher, &st.clock, &secret, form).await {
        Ok(account) => {
            tracing::info!(account = %account, "account set up");
            html_page(
                StatusCode::OK,
                "Your account is ready",
                "<p>Your password is set.</p><p><a href=\"/\">Sign in to the console</a></p>",
            )
        }
        Err(e) if e.status() == StatusCode::NOT_FOUND => setup_gone(),
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => busy(),
        Err(e) => internal(e),
    }
}

/// Every password slot is taken: try again shortly (nothing was used up).
pub fn busy() -> Response {
    let mut resp = html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "<p>The server is busy checking other passwords. Nothing was changed: try again in a moment.</p>",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">O'Neil & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }
}
