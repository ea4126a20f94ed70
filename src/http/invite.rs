//! Invitations, the public side: the link a person gets by email (`/invite/{secret}`), a small
//! server-rendered page to accept it, and the invitation email itself. The secret is the only
//! credential; it is looked up by its digest, and every link that does not lead to an open
//! invitation (unknown, expired, revoked, already used) gets the same 404 page.

use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::service::credentials::{self, Accepted, NewPassword};
use crate::store::{Invitation, Org};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

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

/// A page a link opens, outside the console (`templates/link_*.html`, escaping on).
fn respond(status: StatusCode, page: &impl askama::Template) -> Response {
    let doc = match page.render() {
        Ok(doc) => doc,
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
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

/// No inline style on these pages: their CSP allows stylesheets from this server only.
const CSS: &str = super::edge::PAGE_CSS_PATH;

#[derive(askama::Template)]
#[template(path = "link_message.html")]
struct MessagePage<'a> {
    title: &'a str,
    css: &'a str,
    text: &'a str,
    link: Option<(&'a str, &'a str)>,
}

/// A page that says one thing, with an optional link on (`(href, text)`).
pub fn message_page(
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Response {
    respond(
        status,
        &MessagePage {
            title,
            css: CSS,
            text,
            link,
        },
    )
}

#[derive(askama::Template)]
#[template(path = "link_join.html")]
struct JoinPage<'a> {
    title: &'a str,
    css: &'a str,
    org: &'a str,
    email: &'a str,
    has_password: bool,
    given: &'a str,
    family: &'a str,
    min_password: usize,
    error: Option<&'a str>,
}

#[derive(askama::Template)]
#[template(path = "link_setup.html")]
struct SetupPage<'a> {
    title: &'a str,
    css: &'a str,
    email: &'a str,
    given: &'a str,
    family: &'a str,
    min_password: usize,
    error: Option<&'a str>,
}

/// The one answer for every link that leads to no open invitation: it tells nothing about why.
fn gone() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Invitation not found",
        "This invitation link is not valid. It may have expired or been used already. \
         Ask the person who invited you for a new invitation.",
        None,
    )
}

/// The open invitation a secret leads to.
async fn open(st: &AppState, secret: &str) -> Result<Option<(Invitation, Org)>, Error> {
    st.store
        .open_invitation(&crate::token::digest(secret), st.clock.now())
        .await
}

fn join_page(
    status: StatusCode,
    inv: &Invitation,
    org: &Org,
    has_password: bool,
    error: Option<&str>,
) -> Response {
    respond(
        status,
        &JoinPage {
            title: &format!("Join {}", org.name),
            css: CSS,
            org: &org.name,
            email: &inv.email,
            has_password,
            given: &inv.first_name,
            family: &inv.last_name,
            min_password: MIN_PASSWORD,
            error,
        },
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
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The invitation could not be processed. Try again in a moment.",
        None,
    )
}

async fn page(State(st): State<AppState>, Path(secret): Path<String>) -> Response {
    let (inv, org) = match open(&st, &secret).await {
        Ok(Some(found)) => found,
        Ok(None) => return gone(),
        Err(e) => return internal(e),
    };
    match has_password(&st, &inv.email).await {
        Ok(has) => join_page(StatusCode::OK, &inv, &org, has, None),
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
        Err(e) if e.kind() == ErrorKind::NotFound => gone(),
        Err(e) if e.kind() == ErrorKind::Unavailable => busy(),
        Err(e) if matches!(e.kind(), ErrorKind::Conflict(_)) => message_page(
            StatusCode::CONFLICT,
            "Already a member",
            "You already have a membership in this organization, so this invitation is closed. \
             If your membership is switched off, ask an administrator of the organization.",
            None,
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
        join_page(StatusCode::BAD_REQUEST, &inv, &org, has, Some(message))
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
            message_page(
                StatusCode::OK,
                &format!("Welcome to {}", org.name),
                &format!("You are now a member of {}.", org.name),
                Some((
                    &format!("/o/{}/users", org.slug),
                    &format!("Open {} in the console", org.name),
                )),
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
    message_page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "This link is not valid. It may have expired or been used already. \
         Ask an administrator of your organization for a new one.",
        None,
    )
}

fn setup_form(status: StatusCode, acct: &crate::store::Account, error: Option<&str>) -> Response {
    respond(
        status,
        &SetupPage {
            title: "Set up your account",
            css: CSS,
            email: &acct.email,
            given: acct.given_name.as_deref().unwrap_or_default(),
            family: acct.family_name.as_deref().unwrap_or_default(),
            min_password: MIN_PASSWORD,
            error,
        },
    )
}

async fn setup_page(State(st): State<AppState>, Path(secret): Path<String>) -> Response {
    match st
        .store
        .open_setup(&crate::token::digest(&secret), st.clock.now())
        .await
    {
        Ok(Some(acct)) => setup_form(StatusCode::OK, &acct, None),
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
                setup_form(StatusCode::BAD_REQUEST, &acct, Some(&problem))
            }
            Ok(None) => setup_gone(),
            Err(e) => internal(e),
        };
    }
    match credentials::set_password_by_link(&st.store, &st.hasher, &st.clock, &secret, form).await {
        Ok(account) => {
            tracing::info!(account = %account, "account set up");
            message_page(
                StatusCode::OK,
                "Your account is ready",
                "Your password is set.",
                Some(("/", "Sign in to the console")),
            )
        }
        Err(e) if e.kind() == ErrorKind::NotFound => setup_gone(),
        Err(e) if e.kind() == ErrorKind::Unavailable => busy(),
        Err(e) => internal(e),
    }
}

/// Every password slot is taken: try again shortly (nothing was used up).
pub fn busy() -> Response {
    let mut resp = message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "The server is busy checking other passwords. Nothing was changed: try again in a moment.",
        None,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn text(r: Response) -> String {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn link_pages_escape_what_they_show() {
        let r = message_page(
            StatusCode::OK,
            "Welcome to <Acme>",
            "You are now a member of O'Neil & <b>co</b>.",
            Some(("/o/a\"b/users", "Open")),
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let page = text(r).await;
        assert!(
            page.contains("<h1>Welcome to &#60;Acme&#62;</h1>")
                || page.contains("<h1>Welcome to &lt;Acme&gt;</h1>"),
            "{page}"
        );
        assert!(!page.contains("<b>co</b>"), "{page}");
        assert!(!page.contains("a\"b"), "{page}");
    }
}
