//! People signing in to the admin API: `login`, `logout`, `me`, changing one's password, and
//! signing up (a new account and a new organization). Passwords are set only through links sent
//! by email (invitation, account setup), so an account's password proves its address.

use super::access::Caller;
use super::errors::{invalid, AdminError};
use super::views::{self, invitation_json};
use super::{AppState, ClientIp};
use crate::error::Error;
use crate::service::credentials;
use crate::service::enrolment::{check_slug_field, enrolment, org_name, Person};
use crate::service::people::{self, Attempt, ACCESS_TOKEN_MICROS};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

type Result<T> = std::result::Result<T, AdminError>;

/// Email and password.
#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(value_type = String, required = true)]
    email: Option<String>,
    #[schema(value_type = String, required = true)]
    password: Option<String>,
}

/// 429 with `Retry-After`: too many attempts.
fn rate_limited(wait_secs: i64) -> Response {
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": "rate_limited",
            "message": format!("too many sign-in attempts; try again in {wait_secs} seconds"),
        })),
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&wait_secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// A rate-limited handler's outcome as a response: the answer, a 429, or the error.
fn answer<T: IntoResponse>(outcome: Result<std::result::Result<T, i64>>) -> Response {
    match outcome {
        Ok(Ok(resp)) => resp.into_response(),
        Ok(Err(wait)) => rate_limited(wait),
        Err(e) => e.into_response(),
    }
}

fn wrong_credentials() -> AdminError {
    Error::unauthorized("the email or password is not right").into()
}

/// Starts a session and answers with its access token and the person's memberships.
async fn signed_in(st: &AppState, account: &str) -> Result<Json<views::SignedIn>> {
    let now = st.clock.now();
    let expires_at = now + ACCESS_TOKEN_MICROS;
    let session = st.store.create_session(account, expires_at, now).await?;
    let token = st.keys().await?.issue(account, &session, now, expires_at)?;
    let me = me_view(st, account).await?;
    Ok(Json(views::SignedIn {
        account: me.account,
        memberships: me.memberships,
        access_token: token,
        token_type: views::TokenType::Bearer,
        expires_in: ACCESS_TOKEN_MICROS / 1_000_000,
    }))
}

async fn me_view(st: &AppState, account: &str) -> Result<views::Me> {
    let acct = st
        .store
        .account(account)
        .await?
        .ok_or_else(|| Error::unauthorized("the account no longer exists"))?;
    let memberships = st
        .store
        .memberships_of(account)
        .await?
        .iter()
        .map(views::MembershipView::of)
        .collect();
    Ok(views::Me {
        account: views::Account {
            id: acct.id,
            email: acct.email,
            given_name: acct.given_name,
            family_name: acct.family_name,
            last_active_at: acct.last_active_at.map(crate::service::render::timestamp),
        },
        memberships,
    })
}

/// `POST /admin/v1/login`: email and password for an access token. Attempts are counted per
/// email and per client address before the password is checked; an unknown email costs the same
/// time as a wrong password and gets the same answer.
#[utoipa::path(
    post,
    path = "/login",
    tag = "people",
    summary = "Sign in with email and password for an access token (15 minutes)",
    security(()),
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in: the account, its memberships and an access token", body = crate::http::views::SignedIn),
        (status = 400, description = "Invalid input; `field` names it (`email` or `password`)", body = crate::http::views::ErrorBody),
        (status = 401, description = "The email or password is not right (the same answer for an unknown email)", body = crate::http::views::ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts (5 per email from one client address and 50 per client address in a 15-minute window); `Retry-After` says when to try again", body = crate::http::views::ErrorBody, headers(("Retry-After" = i64, description = "Seconds until attempts are counted afresh"))),
    )
)]
pub async fn login(
    State(st): State<AppState>,
    ip: ClientIp,
    body: Option<Json<Credentials>>,
) -> Response {
    let resp = answer(try_login(&st, &ip.0, body).await);
    crate::metrics::sign_in(match resp.status() {
        StatusCode::OK => "success",
        StatusCode::TOO_MANY_REQUESTS => "limited",
        StatusCode::UNAUTHORIZED => "wrong",
        s if s.is_client_error() => "invalid",
        _ => "error",
    });
    resp
}

async fn try_login(
    st: &AppState,
    ip: &str,
    body: Option<Json<Credentials>>,
) -> Result<std::result::Result<Json<views::SignedIn>, i64>> {
    let Some(Json(c)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object with email and password",
        ));
    };
    match password_sign_in(st, ip, c.email, c.password).await? {
        Ok(account) => Ok(Ok(signed_in(st, &account).await?)),
        Err(wait) => Ok(Err(wait)),
    }
}

/// Checks an email and password, counted per email and per client address: the account's id,
/// or how long to wait. The admin API's login and the console's sign-in page both use it.
pub async fn password_sign_in(
    st: &AppState,
    ip: &str,
    email: Option<String>,
    password: Option<String>,
) -> Result<std::result::Result<String, i64>> {
    let email = email.unwrap_or_default().trim().to_owned();
    let password = password.unwrap_or_default();
    if email.is_empty() || email.len() > 254 {
        return Err(invalid("email", "email is required"));
    }
    if password.is_empty() || password.chars().count() > people::MAX_PASSWORD {
        return Err(invalid("password", "password is required"));
    }
    let acct = st.store.account_by_email(&email).await?;
    let hash = acct.as_ref().and_then(|a| a.password_hash.clone());
    let now = st.clock.now();
    match people::attempt(&st.store, &st.hasher, &email, ip, now, &password, hash).await? {
        Attempt::Limited(wait) => return Ok(Err(wait)),
        Attempt::Wrong => {
            tracing::info!(ip, "sign-in refused: wrong email or password");
            return Err(wrong_credentials());
        }
        Attempt::Right => {}
    }
    let Some(acct) = acct else {
        return Err(wrong_credentials());
    };
    tracing::info!(account = %acct.id, ip, "signed in");
    Ok(Ok(acct.id))
}

fn person(caller: &Caller) -> Result<(&str, &str)> {
    match caller {
        Caller::Person {
            account, session, ..
        } => Ok((account, session)),
        Caller::Provider { .. } => Err(Error::forbidden(
            "this is for people signed in with an access token, not provider admin tokens",
        )
        .into()),
    }
}

/// `POST /admin/v1/logout`: ends this session; its token stops working at once.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "people",
    summary = "Sign out: ends this session; its access token stops working at once",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this is for people signed in with an access token, not provider admin tokens", body = crate::http::views::ErrorBody),
    )
)]
pub async fn logout(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode> {
    let (account, session) = person(&caller)?;
    st.store
        .revoke_sessions(account, Some(session), st.clock.now())
        .await?;
    tracing::info!(account, "signed out");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/v1/me`: the signed-in person and their memberships.
#[utoipa::path(
    get,
    path = "/me",
    tag = "people",
    summary = "The signed-in person's account and memberships",
    responses(
        (status = 200, description = "The account and its memberships", body = crate::http::views::Me),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this is for people signed in with an access token, not provider admin tokens", body = crate::http::views::ErrorBody),
    )
)]
pub async fn me(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<views::Me>> {
    let (account, _) = person(&caller)?;
    Ok(Json(me_view(&st, account).await?))
}

/// The current password and a new one.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    #[schema(value_type = String, required = true)]
    current_password: Option<String>,
    #[schema(value_type = String, required = true, min_length = 12, max_length = 1024)]
    new_password: Option<String>,
}

/// `POST /admin/v1/me/password`: the current password (counted like a sign-in) and a new one.
/// Every session of the account ends, this one too; the answer carries a new access token.
#[utoipa::path(
    post,
    path = "/me/password",
    tag = "people",
    summary = "Change one's password; every session of the account ends (this one too) and the answer carries a new access token",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed: a new session, as for sign-in", body = crate::http::views::SignedIn),
        (status = 400, description = "Invalid input; `field` is `currentPassword` (not right) or `newPassword` (12 to 1024 characters)", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this is for people signed in with an access token, not provider admin tokens", body = crate::http::views::ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts (5 per email from one client address and 50 per client address in a 15-minute window); `Retry-After` says when to try again", body = crate::http::views::ErrorBody, headers(("Retry-After" = i64, description = "Seconds until attempts are counted afresh"))),
    )
)]
pub async fn change_password(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ip: ClientIp,
    body: Option<Json<PasswordChange>>,
) -> Response {
    let run = async {
        let (account, _) = person(&caller)?;
        let Some(Json(b)) = body else {
            return Err(invalid(
                "newPassword",
                "the body must be a JSON object with currentPassword and newPassword",
            ));
        };
        match change_password_as(&st, account, &ip.0, b.current_password, b.new_password).await? {
            Ok(()) => Ok(Ok(signed_in(&st, account).await?)),
            Err(wait) => Ok(Err(wait)),
        }
    };
    answer(run.await)
}

/// A password change's work (see [`change_password`]): every session of the account ends;
/// `Err(wait)` when rate-limited. The console's profile page uses it too.
pub async fn change_password_as(
    st: &AppState,
    account: &str,
    ip: &str,
    current: Option<String>,
    new: Option<String>,
) -> Result<std::result::Result<(), i64>> {
    {
        let new = new.unwrap_or_default();
        if let Some(problem) = people::password_problem(&new) {
            return Err(invalid("newPassword", problem));
        }
        let acct = st
            .store
            .account(account)
            .await?
            .ok_or_else(|| Error::unauthorized("the account no longer exists"))?;
        let current = current.unwrap_or_default();
        let now = st.clock.now();
        match people::attempt(
            &st.store,
            &st.hasher,
            &acct.email,
            ip,
            now,
            &current,
            acct.password_hash,
        )
        .await?
        {
            Attempt::Limited(wait) => return Ok(Err(wait)),
            Attempt::Wrong => {
                return Err(invalid(
                    "currentPassword",
                    "the current password is not right",
                ))
            }
            Attempt::Right => {}
        }
        let hash = st.hasher.slot().await?.hash(new).await?;
        st.store
            .set_password(account, &hash, st.clock.now())
            .await?;
        tracing::info!(account, "password changed; every session ended");
        Ok(Ok(()))
    }
}

/// A sign-up: the person and their new organization.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Signup {
    #[schema(value_type = String, required = true, format = Email)]
    pub email: Option<String>,
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    pub given_name: Option<String>,
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    pub family_name: Option<String>,
    #[schema(value_type = SignupOrg, required = true)]
    pub organization: Option<SignupOrg>,
}

/// The organization a sign-up founds.
#[derive(Deserialize, ToSchema)]
pub struct SignupOrg {
    #[schema(value_type = String, required = true, pattern = "^[a-z0-9-]{1,63}$")]
    pub slug: Option<String>,
    /// Defaults to the slug
    #[schema(value_type = String, required = false, max_length = 200)]
    pub name: Option<String>,
}

/// `POST /admin/v1/signup`: a new organization with the person signing up as its admin, and an
/// account-setup email: following its link (proof that the address is theirs) sets the password.
/// An address that already has an account gets a mail saying so and nothing is created; the
/// answer (202) is the same either way. Counted like password resets. The link is never in the
/// answer.
#[utoipa::path(
    post,
    path = "/signup",
    tag = "people",
    summary = "Sign up: a new organization with the person as its admin, and an account-setup email whose link (`/setup/{secret}`, an HTML page) sets the password. An address that already has an account gets a mail saying so (with a link that sets a new password) and nothing is created. The answer is the same 202 either way, and the link is never in it",
    security(()),
    request_body = Signup,
    responses(
        (status = 202, description = "Accepted: check the email", body = crate::http::views::CheckYourMail),
        (status = 400, description = "Invalid input; `field` names it", body = crate::http::views::ErrorBody),
        (status = 409, description = "The organization slug is taken (answered the same for every email)", body = crate::http::views::ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests (3 mails per email and 50 requests per client address in a 15-minute window); `Retry-After` says when to try again", body = crate::http::views::ErrorBody, headers(("Retry-After" = i64, description = "Seconds until attempts are counted afresh"))),
    )
)]
pub async fn signup(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: axum::http::HeaderMap,
    body: Option<Json<Signup>>,
) -> Response {
    let run = async {
        let Some(Json(b)) = body else {
            return Err(invalid(
                "email",
                "the body must be a JSON object with email, givenName, familyName and organization {slug, name}",
            ));
        };
        let request_id = super::extract::request_id(&headers);
        Ok(sign_up(&st, &ip.0, request_id, b)
            .await?
            .map(|()| check_your_mail()))
    };
    answer(run.await)
}

/// A sign-up's work (see [`signup`]): `Err(wait)` when rate-limited. The console's sign-up page
/// uses it too.
pub async fn sign_up(
    st: &AppState,
    ip: &str,
    request_id: Option<String>,
    b: Signup,
) -> Result<std::result::Result<(), i64>> {
    {
        let p = Person::check(b.email, b.given_name, b.family_name)?;
        if p.given_name.is_none() || p.family_name.is_none() {
            let field = if p.given_name.is_none() {
                "givenName"
            } else {
                "familyName"
            };
            return Err(invalid(field, format!("{field} is required")));
        }
        let org = b.organization.unwrap_or(SignupOrg {
            slug: None,
            name: None,
        });
        let slug = org.slug.unwrap_or_default();
        check_slug_field(&slug)?;
        let name = org_name(org.name, &slug)?;
        let now = st.clock.now();
        if let Some(wait) = people::count_mail(&st.store, &p.email, ip, now).await? {
            return Ok(Err(wait));
        }
        // A taken slug is refused before anything depends on the email, so the answer never
        // differs by whether the address has an account.
        if st.store.org_by_slug(&slug).await?.is_some() {
            return Err(Error::conflict(format!(
                "an organization with slug {slug:?} already exists"
            ))
            .into());
        }
        let existing = st
            .store
            .account_by_email(&p.email)
            .await?
            .filter(|a| a.password_hash.is_some());
        if let Some(acct) = existing {
            // Nothing is created, and the answer is the one a new sign-up gets: whether an
            // address has an account is told only to that address, by mail.
            let link = super::invite::reset_link(st);
            let email = crate::service::invitations::existing_account_email(
                &acct.email,
                &name,
                &link.url,
                link.expires_at,
            );
            st.store
                .send_setup(&acct.id, &link.stored(email), now)
                .await?;
            tracing::info!(account = %acct.id, "sign-up for an existing account: mailed a sign-in hint");
            return Ok(Ok(()));
        }
        let link = super::invite::setup_link(st);
        let email = crate::service::invitations::setup_email(
            &p.email,
            "You",
            std::slice::from_ref(&name),
            &link.url,
            link.expires_at,
        );
        let setup = link.stored(email);
        let e = enrolment(
            &p.email,
            p.given_name,
            p.family_name,
            Some((slug, name)),
            Vec::new(),
            Some(setup),
        )?;
        let audit = crate::store::Audit {
            actor: format!("signup:{}", p.email.to_lowercase()),
            request_id,
        };
        let done = st.store.enrol(&e, now, &audit).await?;
        let org = done
            .founded
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("organization not created")))?;
        tracing::info!(org = %org.slug, account = %done.account_id, "signed up");
        Ok(Ok(()))
    }
}

/// The one answer to a sign-up or a password-reset request: it tells nothing about whether the
/// address has an account.
fn check_your_mail() -> (StatusCode, Json<views::CheckYourMail>) {
    (
        StatusCode::ACCEPTED,
        Json(views::CheckYourMail {
            message: "check your email: the link in it sets your password".to_owned(),
        }),
    )
}

/// The address to mail a link to.
#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    #[schema(value_type = String, required = true, format = Email)]
    email: Option<String>,
}

/// `POST /admin/v1/password-reset {email}`: mails a link that sets a new password, when the
/// address has an account. Always 202: the answer does not tell whether it has one. Also how a
/// person whose account an identity provider created gets a password.
#[utoipa::path(
    post,
    path = "/password-reset",
    tag = "people",
    summary = "Ask for a link that sets a new password. When the address belongs to an account (a member of some organization, or one with a password), the link is mailed to it; the answer is the same 202 whether or not it does. Also how someone whose account an identity provider created gets a password. Using the link ends the account's sessions",
    security(()),
    request_body = ResetRequest,
    responses(
        (status = 202, description = "Accepted: check the email", body = crate::http::views::CheckYourMail),
        (status = 400, description = "Invalid input; `field` names it", body = crate::http::views::ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests (3 mails per email and 50 requests per client address in a 15-minute window); `Retry-After` says when to try again", body = crate::http::views::ErrorBody, headers(("Retry-After" = i64, description = "Seconds until attempts are counted afresh"))),
    )
)]
pub async fn password_reset(
    State(st): State<AppState>,
    ip: ClientIp,
    body: Option<Json<ResetRequest>>,
) -> Response {
    let run = async {
        let email = body.and_then(|Json(b)| b.email).unwrap_or_default();
        Ok(request_reset(&st, &ip.0, &email)
            .await?
            .map(|()| check_your_mail()))
    };
    answer(run.await)
}

/// A password reset's work (see [`password_reset`]): `Err(wait)` when rate-limited. The
/// console's "forgot password" page uses it too.
pub async fn request_reset(
    st: &AppState,
    ip: &str,
    email: &str,
) -> Result<std::result::Result<(), i64>> {
    {
        let email = email.trim().to_owned();
        if !crate::domain::valid_email(&email) {
            return Err(invalid(
                "email",
                format!("{email:?} is not a valid email address"),
            ));
        }
        if let Some(wait) = people::count_mail(&st.store, &email, ip, st.clock.now()).await? {
            return Ok(Err(wait));
        }
        // Only an address that belongs to someone: a membership of some organization, or a
        // password. An account row with neither is a leftover, not a person.
        if let Some(acct) = st.store.account_by_email(&email).await? {
            let member = !st.store.memberships_of(&acct.id).await?.is_empty();
            if member || acct.password_hash.is_some() {
                // To the address as the account has it, not as the request spelled it.
                let link = super::invite::reset_link(st);
                let mail = crate::service::invitations::reset_email(
                    &acct.email,
                    &link.url,
                    link.expires_at,
                );
                st.store
                    .send_setup(&acct.id, &link.stored(mail), st.clock.now())
                    .await?;
                tracing::info!(account = %acct.id, "password reset mailed");
            }
        }
        Ok(Ok(()))
    }
}

/// `GET /admin/v1/me/invitations`: the pending invitations addressed to the signed-in person's
/// (verified) address, whatever organization sent them. Without email delivery, this is where
/// people find them.
#[utoipa::path(
    get,
    path = "/me/invitations",
    tag = "people",
    summary = "The pending invitations addressed to the signed-in person's verified address, from every organization",
    responses(
        (status = 200, description = "Invitations, each with its organization", body = crate::http::views::MyInvitations),
        (status = 401, description = "No valid token", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: for people, not provider admin tokens", body = crate::http::views::ErrorBody),
    )
)]
pub async fn my_invitations(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>> {
    let (account, _) = person(&caller)?;
    let now = st.clock.now();
    let items: Vec<Value> = credentials::my_invitations(&st.store, &st.clock, account)
        .await?
        .iter()
        .map(|(inv, org)| {
            let mut v = invitation_json(inv, now);
            v["organization"] = json!({"slug": org.slug, "name": org.name});
            v
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

/// `POST /admin/v1/me/invitations/{id}/accept`: joins the organization with the invited role
/// and groups. A person who already has a membership there (even a deactivated one) gets 409:
/// an invitation never adds a second membership nor switches one back on.
#[utoipa::path(
    post,
    path = "/me/invitations/{id}/accept",
    tag = "people",
    summary = "Accept one of one's invitations: the membership is created with the invited role and groups",
    params(
        ("id" = String, Path, description = "The invitation id"),
    ),
    responses(
        (status = 201, description = "Joined", body = crate::http::views::Joined),
        (status = 401, description = "No valid token", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: for people, not provider admin tokens", body = crate::http::views::ErrorBody),
        (status = 404, description = "No open invitation with this id for the person's address", body = crate::http::views::ErrorBody),
        (status = 409, description = "The person already has a membership in that organization (possibly deactivated): the invitation is closed and nothing changes", body = crate::http::views::ErrorBody),
    )
)]
pub async fn accept_invitation(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<(StatusCode, Json<views::Joined>)> {
    let (account, _) = person(&caller)?;
    let (org, rec) = credentials::accept_mine(&st.store, &st.clock, account, &id).await?;
    tracing::info!(account, org = %org.slug, member = %rec.id, "invitation accepted after sign-in");
    Ok((
        StatusCode::CREATED,
        Json(views::Joined {
            slug: org.slug,
            name: org.name,
            member_id: rec.id,
            role: rec.role.as_deref().unwrap_or("member").to_owned(),
            status: "active".to_owned(),
        }),
    ))
}

/// Sets one's own given and family names (each at most 200 characters; empty clears it). The
/// console's My profile; an organization's copy of the names (its member) is its own.
pub async fn set_names_as(
    st: &AppState,
    account: &str,
    given_name: Option<String>,
    family_name: Option<String>,
) -> Result<()> {
    let given = crate::service::enrolment::optional_name("givenName", given_name)?;
    let family = crate::service::enrolment::optional_name("familyName", family_name)?;
    st.store
        .set_account_names(account, given.as_deref(), family.as_deref(), st.clock.now())
        .await?;
    Ok(())
}

/// Unlinks one of one's own sign-in provider identities; never the last way to sign in (no
/// password and no other link). Signing in with the provider again links it again: it vouches
/// for the address.
pub async fn unlink_as(st: &AppState, account: &str, provider: &str, subject: &str) -> Result<()> {
    st.store
        .unlink_identity(account, provider, subject, st.clock.now())
        .await?;
    tracing::info!(account, provider, "provider identity unlinked");
    Ok(())
}
