//! Invitations, the public side: the link a person gets by email (`/invite/{secret}`), a small
//! server-rendered page to accept it, and the invitation email itself. The secret is the only
//! credential; it is looked up by its digest, and every link that does not lead to an open
//! invitation (unknown, expired, revoked, already used) gets the same 404 page.

use super::AppState;
use crate::error::Error;
use crate::scim::schema::Kind;
use crate::store::{AcceptAccount, Audit, Invitation, Org};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

pub use crate::service::invitations::escape;
use crate::service::people::{self, MIN_PASSWORD};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invite/{secret}", get(page).post(accept))
        .route("/setup/{secret}", get(setup_page).post(setup))
}

/// The link for a secret: `{origin}/invite/{secret}`, the origin being the configured public
/// URL's, else the request's Host (and `X-Forwarded-Proto`), as for SCIM's base URL.
pub fn link(st: &AppState, headers: &HeaderMap, secret: &str) -> String {
    format!("{}/invite/{secret}", origin(st, headers))
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

pub fn setup_link(st: &AppState, headers: &HeaderMap) -> NewLink {
    let secret = crate::token::generate();
    NewLink {
        url: format!("{}/setup/{secret}", origin(st, headers)),
        digest: crate::token::digest(&secret),
        expires_at: st.clock.now() + st.config.link_ttl,
    }
}

pub fn origin(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &st.config.public_url {
        // `https://host[:port]/scim/v2` → `https://host[:port]`.
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let end = url[after_scheme..]
            .find('/')
            .map_or(url.len(), |i| after_scheme + i);
        return url[..end].to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// A whole page around `body` (already escaped HTML).
fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
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

fn internal(e: Error) -> Response {
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
        Err(e) if e.status() == StatusCode::CONFLICT => html_page(
            StatusCode::CONFLICT,
            "Already a member",
            "<p>You are already a member of this organization.</p>",
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
    let password = f.password.unwrap_or_default();
    let existing = st
        .store
        .account_by_email(&inv.email)
        .await?
        .filter(|a| a.password_hash.is_some());
    let refuse = |has: bool, message: &str| {
        html_page(
            StatusCode::BAD_REQUEST,
            &format!("Join {}", org.name),
            &form(&inv, &org, has, Some(message)),
        )
    };
    let account = match existing {
        Some(acct) => {
            // The same limits as signing in: the link does not open a way to guess passwords.
            let now = st.clock.now();
            let hash = acct.password_hash.clone();
            match people::attempt(&st.store, &inv.email, ip, now, &password, hash).await? {
                people::Attempt::Limited(wait) => {
                    return Ok(refuse(
                        true,
                        &format!(
                            "Too many attempts. Try again in {} minutes.",
                            (wait + 59) / 60
                        ),
                    ))
                }
                people::Attempt::Wrong => return Ok(refuse(true, "That password is not right.")),
                people::Attempt::Right => {}
            }
            // The person's own names, as they gave them, over the inviter's spelling.
            AcceptAccount {
                given_name: acct.given_name.unwrap_or_else(|| inv.first_name.clone()),
                family_name: acct.family_name.unwrap_or_else(|| inv.last_name.clone()),
                password_hash: None,
            }
        }
        None => {
            let given = f.given_name.unwrap_or_default().trim().to_owned();
            let family = f.family_name.unwrap_or_default().trim().to_owned();
            if given.is_empty() || family.is_empty() {
                return Ok(refuse(false, "Enter your given name and family name."));
            }
            if let Some(problem) = people::password_problem(&password) {
                return Ok(refuse(false, &capitalized(&problem)));
            }
            let hash = people::blocking(move || people::hash_password(&password)).await??;
            AcceptAccount {
                given_name: given,
                family_name: family,
                password_hash: Some(hash),
            }
        }
    };
    let body = json!({
        "userName": inv.email,
        "name": {"givenName": account.given_name, "familyName": account.family_name},
        "displayName": format!("{} {}", account.given_name, account.family_name),
        "emails": [{"value": inv.email, "primary": true}],
        "active": true,
    });
    let doc = crate::scim::resource::normalize(Kind::User.schema(), &body)?;
    let audit = Audit {
        actor: format!("invitation:{}", inv.id),
        request_id: None,
    };
    let rec = st
        .store
        .accept_invitation(&inv, &doc, &account, st.clock.now(), &audit)
        .await?;
    tracing::info!(org = %org.slug, invitation = %inv.id, member = %rec.id, "invitation accepted");
    Ok(html_page(
        StatusCode::OK,
        &format!("Welcome to {}", org.name),
        &format!(
            "<p>You are now a member of <strong>{}</strong>.</p>",
            escape(&org.name)
        ),
    ))
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
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
async fn setup(
    State(st): State<AppState>,
    Path(secret): Path<String>,
    Form(f): Form<AcceptForm>,
) -> Response {
    let digest = crate::token::digest(&secret);
    let acct = match st.store.open_setup(&digest, st.clock.now()).await {
        Ok(Some(acct)) => acct,
        Ok(None) => return setup_gone(),
        Err(e) => return internal(e),
    };
    let given = f.given_name.unwrap_or_default().trim().to_owned();
    let family = f.family_name.unwrap_or_default().trim().to_owned();
    let password = f.password.unwrap_or_default();
    let problem = if given.is_empty() || family.is_empty() {
        Some("Enter your given name and family name.".to_owned())
    } else {
        people::password_problem(&password).map(|p| capitalized(&p))
    };
    if let Some(problem) = problem {
        return html_page(
            StatusCode::BAD_REQUEST,
            "Set up your account",
            &setup_form(&acct, Some(&problem)),
        );
    }
    let hash = match people::blocking(move || people::hash_password(&password)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) | Err(e) => return internal(e),
    };
    match st
        .store
        .complete_setup(&digest, &given, &family, &hash, st.clock.now())
        .await
    {
        Ok(()) => {
            tracing::info!(account = %acct.id, "account set up");
            html_page(
                StatusCode::OK,
                "Your account is ready",
                "<p>Your password is set. You can now sign in.</p>",
            )
        }
        Err(e) if e.status() == StatusCode::NOT_FOUND => setup_gone(),
        Err(e) => internal(e),
    }
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
