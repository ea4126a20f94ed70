//! Signing in with a browser: the providers' redirect and callback, the session cookie, the
//! home page at `/` (the console's, see `console`), sign-out, and the bridge from a browser session to the admin
//! API's access token.
//!
//! - `GET /auth/{provider}/start` sends the browser to the provider, with a flow cookie.
//! - `GET /auth/{provider}/callback` (the redirect URI to register at the provider) checks the
//!   flow, signs in and sets the session cookie, then sends the browser to `/`.
//! - `POST /auth/token` hands the browser session an access token for the admin API; it needs
//!   the session's CSRF token in `X-CSRF-Token`, so a cross-site page cannot get one: the admin
//!   API itself is never authorized by a cookie.
//! - `POST /auth/logout` ends the session (a form carrying the CSRF token).

use super::invite::{internal, message_page};
use super::AppState;
use crate::error::Error;
use crate::service::federation::{self, Refusal, FLOW_COOKIE};
use crate::service::people::ACCESS_TOKEN_MICROS;
use crate::service::sessions::{self, COOKIE};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/{provider}/start", get(start))
        .route("/auth/{provider}/callback", get(callback))
        .route("/auth/token", post(token))
        .route("/auth/logout", post(logout))
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (sent on the provider's top-level redirect back
/// to us, never on cross-site subrequests or posts), and Secure whenever the site is https.
pub fn set_cookie(st: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if st.config.https() { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The redirect URI a provider sends people back to: `{public origin}/auth/{name}/callback`.
pub fn redirect_uri(st: &AppState, name: &str) -> String {
    format!("{}/auth/{name}/callback", st.config.origin())
}

/// A browser's signed-in session, from its cookie; the console's pages take it.
pub struct BrowserSession {
    pub id: String,
    pub account: String,
    secret: String,
}

impl BrowserSession {
    /// The CSRF token every form and the token endpoint must carry.
    pub fn csrf(&self) -> String {
        sessions::csrf_token(&self.secret)
    }

    pub fn csrf_ok(&self, presented: &str) -> bool {
        sessions::csrf_ok(&self.secret, presented)
    }
}

/// `Option<BrowserSession>`: a request without an open session is not an error by itself.
pub struct MaybeSession(pub Option<BrowserSession>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Some(secret) = cookie(&parts.headers, COOKIE) else {
            return Ok(MaybeSession(None));
        };
        match sessions::resolve(&st.store, &st.clock, secret, st.config.session_idle).await {
            Ok(found) => Ok(MaybeSession(found.map(|(id, account)| BrowserSession {
                id,
                account,
                secret: secret.to_owned(),
            }))),
            Err(e) => Err(internal(e)),
        }
    }
}

/// A refused sign-in, said plainly (and escaped: nothing of the provider's answer is trusted).
fn refused(status: StatusCode, message: &str) -> Response {
    message_page(
        status,
        "Sign-in refused",
        message,
        Some(("/", "Back to the sign-in page")),
    )
}

fn refusal_page(r: Refusal) -> Response {
    match r {
        Refusal::Unknown => refused(StatusCode::NOT_FOUND, "This sign-in provider is not configured."),
        Refusal::Flow => refused(
            StatusCode::BAD_REQUEST,
            "This sign-in expired, was already used, or was started in another browser. Start again.",
        ),
        Refusal::Provider(m) => refused(StatusCode::BAD_GATEWAY, &m),
        Refusal::Unverified => refused(
            StatusCode::FORBIDDEN,
            "The provider did not give a verified email address for your account, so you cannot \
             sign in with it. Verify your address with the provider (or ask its administrator to \
             send a verified one) and try again.",
        ),
        Refusal::Internal(e) if e.kind() == crate::error::ErrorKind::Upstream => {
            refused(StatusCode::BAD_GATEWAY, &e.to_string())
        }
        Refusal::Internal(e) => internal(e),
    }
}

async fn start(State(st): State<AppState>, Path(provider): Path<String>) -> Response {
    let redirect_to = redirect_uri(&st, &provider);
    match st
        .federation
        .start(&st.store, &st.clock, &provider, &redirect_to)
        .await
    {
        Ok((url, browser)) => {
            let mut resp = redirect(&url);
            let max_age = federation::FLOW_MICROS / 1_000_000;
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&st, FLOW_COOKIE, &browser, "/auth", max_age),
            );
            resp
        }
        Err(r) => refusal_page(r),
    }
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(st): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let clear_flow = set_cookie(&st, FLOW_COOKIE, "", "/auth", 0);
    let mut resp = match sign_in(&st, &provider, q, &headers).await {
        Ok(secret) => {
            let mut resp = redirect("/");
            let max_age = sessions::MAX_MICROS / 1_000_000;
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&st, COOKIE, &secret, "/", max_age),
            );
            resp
        }
        Err(r) => refusal_page(r),
    };
    resp.headers_mut().append(header::SET_COOKIE, clear_flow);
    resp
}

/// The callback's work: the flow, the provider's verified identity, the account, a session.
async fn sign_in(
    st: &AppState,
    provider: &str,
    q: Callback,
    headers: &HeaderMap,
) -> Result<String, Refusal> {
    if let Some(e) = q.error {
        // The person declined, or the provider refused; the flow is used up either way.
        if let Some(b) = cookie(headers, FLOW_COOKIE) {
            let _ = st
                .store
                .take_flow(&crate::token::digest(b), st.clock.now())
                .await;
        }
        let e: String = e.chars().take(100).collect();
        return Err(Refusal::Provider(format!("The provider answered: {e}")));
    }
    let verified = st
        .federation
        .finish(
            &st.store,
            &st.clock,
            provider,
            cookie(headers, FLOW_COOKIE),
            q.state.as_deref().unwrap_or_default(),
            q.code.as_deref().unwrap_or_default(),
            &redirect_uri(st, provider),
        )
        .await?;
    let account = federation::account_for(&st.store, &st.clock, provider, &verified).await?;
    let started = sessions::start(
        &st.store,
        &st.clock,
        &account,
        provider,
        st.config.session_idle,
    )
    .await?;
    tracing::info!(provider, account = %account, session = %started.id, "signed in with a provider");
    Ok(started.secret)
}

/// `POST /auth/token`: an access token for the browser's session, for the admin API. It needs
/// the session's CSRF token in `X-CSRF-Token`: a cookie alone never gets one.
async fn token(
    State(st): State<AppState>,
    MaybeSession(s): MaybeSession,
    headers: HeaderMap,
) -> Response {
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(s) = s.filter(|s| s.csrf_ok(presented)) else {
        return super::errors::AdminError::from(Error::forbidden(
            "this needs a signed-in browser session and its CSRF token in X-CSRF-Token",
        ))
        .into_response();
    };
    let now = st.clock.now();
    let issued = async {
        st.keys()
            .await?
            .issue(&s.account, &s.id, now, now + ACCESS_TOKEN_MICROS)
    }
    .await;
    match issued {
        Ok(t) => Json(json!({
            "accessToken": t,
            "tokenType": "Bearer",
            "expiresIn": ACCESS_TOKEN_MICROS / 1_000_000,
        }))
        .into_response(),
        Err(e) => super::errors::AdminError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /auth/logout`: ends the session (and the access tokens it handed out) at once.
async fn logout(
    State(st): State<AppState>,
    MaybeSession(s): MaybeSession,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(s) = s.filter(|s| s.csrf_ok(f.csrf.as_deref().unwrap_or_default())) {
        if let Err(e) = st
            .store
            .revoke_sessions(&s.account, Some(&s.id), st.clock.now())
            .await
        {
            return internal(e);
        }
        tracing::info!(account = %s.account, "signed out");
    }
    let mut resp = redirect("/");
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, COOKIE, "", "/", 0));
    resp
}
