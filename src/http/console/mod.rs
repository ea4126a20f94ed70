//! The admin console: server-rendered pages (askama templates in `templates/`, escaping on by
//! default) for what an organization admin does with people, at `/`.
//!
//! Every action goes through the admin API's own functions: the same `access` check decides what
//! a person may do in an organization, and the same service calls (with their rules: the last
//! admin, nobody removes or deactivates themselves) do it, so the console and the API can never
//! disagree. The console only parses forms and renders the outcome, refusals included, next to
//! what they concern.
//!
//! Security: the browser session is the cookie of `service::sessions` (HttpOnly, SameSite=Lax,
//! Secure on https, sliding idle time). Every state-changing request carries the session's CSRF
//! token (a form field, or `X-CSRF-Token` for htmx's requests, which the page sets on `<body>`);
//! the sign-in and sign-up forms, which have no session yet, carry a double-submit token of their
//! own. Pages load scripts only from this server (see `edge::PAGE_CSP`).

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

mod assets;
mod audit;
mod groups;
mod invitations;
mod invite_users;
mod provisioning;
mod user_actions;
mod users;

use super::access::{self, Caller, Need};
use super::auth::{redirect, set_cookie, MaybeSession};
use super::errors::AdminError;
use super::{AppState, ClientIp};
use crate::service::sessions;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin))
        .route("/signup", get(signup_page).post(signup))
        .route("/forgot", get(forgot_page).post(forgot))
        .route("/me", get(profile_page))
        .route("/me/password", axum::routing::post(change_password))
        .route("/me/names", axum::routing::post(change_names))
        .route("/me/identities/unlink", axum::routing::post(unlink))
        .route(
            "/me/sign-out-everywhere",
            axum::routing::post(sign_out_everywhere),
        )
        .merge(assets::router())
        .merge(users::router())
        .merge(user_actions::router())
        .merge(invite_users::router())
        .merge(groups::router())
        .merge(invitations::router())
        .merge(provisioning::router())
        .merge(audit::router())
}

/// What every page's frame shows: who is signed in, the organization in view and its sections.
#[derive(Default)]
pub struct Chrome {
    /// The session's CSRF token (empty when signed out).
    pub csrf: String,
    pub email: String,
    pub org: Option<OrgNav>,
    /// Which navigation entry is the current page.
    pub section: &'static str,
    /// The assets' version, so they can be cached for a year.
    pub v: &'static str,
}

pub struct OrgNav {
    pub slug: String,
    pub name: String,
    pub admin: bool,
}

impl Chrome {
    fn signed_out() -> Self {
        Chrome {
            v: assets::version(),
            ..Default::default()
        }
    }
}

/// A page, never cached (it shows a person's data and carries their CSRF token).
pub fn page<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => {
            let mut resp = (status, Html(html)).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (StatusCode::INTERNAL_SERVER_ERROR, Html("internal error")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
    pub error: bool,
    pub link: Option<(String, String)>,
}

/// A page that says one thing, with a way on.
pub fn message(
    chrome: Chrome,
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Response {
    page(
        status,
        &MessagePage {
            chrome,
            title: title.to_owned(),
            message: text.to_owned(),
            error: status.is_client_error() || status.is_server_error(),
            link: link.map(|(a, b)| (a.to_owned(), b.to_owned())),
        },
    )
}

/// The status and message an admin API refusal carries: the console shows the same words.
pub fn refusal(e: &AdminError) -> (StatusCode, String) {
    let (status, body) = e.parts();
    let text = body["message"].as_str().unwrap_or("refused").to_owned();
    (status, text)
}

/// A signed-in person, from the session cookie; pages that need one send everyone else to `/`.
pub struct Signed {
    pub session: super::auth::BrowserSession,
    pub caller: Caller,
    pub email: String,
}

impl Signed {
    fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            csrf: self.session.csrf(),
            email: self.email.clone(),
            org: None,
            section,
            v: assets::version(),
        }
    }

    /// A form posted to one's own pages (`/me/…`), once its CSRF token is checked.
    pub fn form(&self, headers: &HeaderMap, body: &Bytes) -> Result<FormFields, Response> {
        let f = FormFields::parse(body);
        if self.csrf_ok(headers, f.get("csrf")) {
            Ok(f)
        } else {
            Err(bad_csrf(self.chrome("me")))
        }
    }

    /// Whether a state-changing request carries this session's CSRF token, as `X-CSRF-Token`
    /// (htmx) or as the form's `csrf` field.
    pub fn csrf_ok(&self, headers: &HeaderMap, field: Option<&str>) -> bool {
        let header = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        header
            .or(field)
            .is_some_and(|presented| self.session.csrf_ok(presented))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let MaybeSession(s) = MaybeSession::from_request_parts(parts, st).await?;
        let Some(session) = s else {
            return Err(redirect("/"));
        };
        let acct = match st.store.account(&session.account).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err(redirect("/")),
            Err(e) => return Err(super::invite::internal(e)),
        };
        let email = acct.email.clone();
        match access::person(st, acct, session.id.clone()).await {
            Ok(caller) => Ok(Signed {
                caller,
                email,
                session,
            }),
            Err(e) => Err(super::invite::internal(e)),
        }
    }
}

/// A signed-in person's rights in the organization a path names, checked by the admin API's own
/// `access`: a person who is not (or no longer) an active member gets the refusal page.
pub struct InOrg {
    pub signed: Signed,
    pub access: access::Access,
}

impl InOrg {
    pub async fn load(
        st: &AppState,
        signed: Signed,
        slug: &str,
        headers: &HeaderMap,
    ) -> Result<InOrg, Response> {
        match access::access(st, &signed.caller, slug, Need::Member, headers).await {
            Ok(access) => Ok(InOrg { signed, access }),
            Err(e) => {
                let (status, text) = refusal(&e);
                Err(message(
                    signed.chrome(""),
                    status,
                    "Not available",
                    &text,
                    Some(("/", "Your organizations")),
                ))
            }
        }
    }

    pub fn chrome(&self, section: &'static str) -> Chrome {
        let mut c = self.signed.chrome(section);
        c.org = Some(OrgNav {
            slug: self.access.org.slug.clone(),
            name: self.access.org.name.clone(),
            admin: self.access.admin,
        });
        c
    }

    /// The refusal page for an action that needs the admin role here.
    pub fn admin_only(&self) -> Option<Response> {
        (!self.access.admin).then(|| {
            message(
                self.chrome(""),
                StatusCode::FORBIDDEN,
                "Admins only",
                &format!(
                    "This needs the admin role in {}; your role there is member.",
                    self.access.org.name
                ),
                Some((
                    &format!("/o/{}/users", self.access.org.slug),
                    "Back to Users",
                )),
            )
        })
    }

    pub fn bad_csrf(&self) -> Response {
        bad_csrf(self.chrome(""))
    }
}

/// The `{slug}` of the route a request matched.
async fn path_slug(parts: &mut Parts, st: &AppState) -> Result<String, Response> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, st)
        .await
        .map_err(IntoResponse::into_response)?;
    params
        .iter()
        .find(|(name, _)| *name == "slug")
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| {
            super::invite::internal(crate::error::Error::Internal(anyhow::anyhow!(
                "no {{slug}} in the console route"
            )))
        })
}

/// An organization's page (`/o/{slug}/…`), checked before the handler runs: the session (else
/// the way to sign in), the caller's membership of the organization the path names (the admin
/// API's own `access`) and, for [`AdminPage`], the admin role. Each refusal is the page to
/// answer with.
pub struct OrgPage<const ADMIN: bool>(pub InOrg);

/// A page only an organization's admins may open.
pub type AdminPage = OrgPage<true>;
/// A page any active member may open.
pub type MemberOfPage = OrgPage<false>;

impl<const ADMIN: bool> FromRequestParts<AppState> for OrgPage<ADMIN> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let signed = Signed::from_request_parts(parts, st).await?;
        let slug = path_slug(parts, st).await?;
        let o = InOrg::load(st, signed, &slug, &parts.headers).await?;
        match o.admin_only().filter(|_| ADMIN) {
            Some(refused) => Err(refused),
            None => Ok(OrgPage(o)),
        }
    }
}

/// A form posted to an organization's pages (`/o/{slug}/…`), checked before the handler runs,
/// in this order: the session (else the way to sign in), the caller's membership of the
/// organization the path names (the admin API's own `access`), the form's CSRF token, then,
/// for [`AdminForm`], the admin role. Each refusal is the page to answer with.
pub struct OrgForm<const ADMIN: bool> {
    pub o: InOrg,
    pub f: FormFields,
}

/// A form only an organization's admins may post.
pub type AdminForm = OrgForm<true>;
/// A form any member may post: the action's own rules (the admin API's) decide the rest, and
/// its refusal is shown where the action was asked for.
pub type MemberForm = OrgForm<false>;

impl<const ADMIN: bool> FromRequest<AppState> for OrgForm<ADMIN> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, st).await?;
        let slug = path_slug(&mut parts, st).await?;
        let headers = parts.headers.clone();
        // The route's body limit (a CSV's is larger) holds here as in any `Bytes` extractor.
        let bytes = Bytes::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(IntoResponse::into_response)?;
        let f = FormFields::parse(&bytes);
        let o = InOrg::load(st, signed, &slug, &headers).await?;
        if !o.signed.csrf_ok(&headers, f.get("csrf")) {
            return Err(o.bad_csrf());
        }
        if let Some(refused) = o.admin_only().filter(|_| ADMIN) {
            return Err(refused);
        }
        Ok(OrgForm { o, f })
    }
}

/// A form posted to one's own pages (`/me/…`): the session, then the form's CSRF token.
pub struct MeForm {
    pub signed: Signed,
    pub f: FormFields,
}

impl FromRequest<AppState> for MeForm {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, st).await?;
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(IntoResponse::into_response)?;
        let f = signed.form(&headers, &bytes)?;
        Ok(MeForm { signed, f })
    }
}

fn bad_csrf(chrome: Chrome) -> Response {
    message(
        chrome,
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form came from another page or an earlier session, so nothing was done. Go back, \
         reload the page and try again.",
        Some(("/", "Start again")),
    )
}

/// The fields of a form body (`application/x-www-form-urlencoded`), repeated names kept.
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &Bytes) -> Self {
        FormFields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

// ---- Signed out: sign-in and sign-up -------------------------------------------------------

/// The cookie of the double-submit token that the sign-in and sign-up forms carry: a page on
/// another site can post neither form, so it cannot sign a browser in to someone else's account.
const FORM_COOKIE: &str = "scimd_form";

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    chrome: Chrome,
    title: &'static str,
    providers: Vec<(String, String)>,
    email: String,
    error: Option<String>,
    /// Something done, said on the way to signing in again (a password changed, say).
    notice: Option<String>,
    form_token: String,
}

/// A fresh double-submit token, set as a cookie on the page that carries it.
fn with_form_token(st: &AppState, mut resp: Response, token: &str) -> Response {
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, FORM_COOKIE, token, "/", 3600),
    );
    resp
}

fn form_token_ok(headers: &HeaderMap, f: &FormFields) -> bool {
    let cookie = super::auth::cookie(headers, FORM_COOKIE).unwrap_or_default();
    let field = f.get("form_token").unwrap_or_default();
    !cookie.is_empty()
        && cookie.len() == field.len()
        && subtle::ConstantTimeEq::ct_eq(cookie.as_bytes(), field.as_bytes()).into()
}

/// The sign-in page (also what `/` shows to a browser without a session).
pub fn signin_view(
    st: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<String>,
) -> Response {
    signin_with(st, status, email, error, None)
}

fn signin_with(
    st: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let token = crate::token::generate();
    let view = SigninPage {
        chrome: Chrome::signed_out(),
        title: "Sign in to scimd",
        providers: st
            .federation
            .providers()
            .iter()
            .map(|p| (p.name().to_owned(), p.label.clone()))
            .collect(),
        email: email.to_owned(),
        error,
        notice,
        form_token: token.clone(),
    };
    with_form_token(st, page(status, &view), &token)
}

async fn signin_page(State(st): State<AppState>, MaybeSession(s): MaybeSession) -> Response {
    if s.is_some() {
        return redirect("/");
    }
    signin_view(&st, StatusCode::OK, "", None)
}

async fn signin(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormFields::parse(&body);
    let email = f.text("email");
    if !form_token_ok(&headers, &f) {
        return signin_view(
            &st,
            StatusCode::FORBIDDEN,
            &email,
            Some("This sign-in form expired. Try again.".into()),
        );
    }
    let outcome =
        super::people::password_sign_in(&st, &ip.0, Some(email.clone()), Some(f.text("password")))
            .await;
    crate::metrics::sign_in(match &outcome {
        Ok(Ok(_)) => "success",
        Ok(Err(_)) => "limited",
        Err(e) if e.kind() == crate::error::ErrorKind::Unauthorized => "wrong",
        Err(e) if e.parts().0.is_client_error() => "invalid",
        Err(_) => "error",
    });
    let account = match outcome {
        Ok(Ok(account)) => account,
        Ok(Err(wait)) => {
            return signin_view(
                &st,
                StatusCode::TOO_MANY_REQUESTS,
                &email,
                Some(format!(
                    "Too many sign-in attempts. Try again in {wait} seconds."
                )),
            )
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            return signin_view(&st, status, &email, Some(capitalise(&text)));
        }
    };
    match sessions::start(
        &st.store,
        &st.clock,
        &account,
        "password",
        st.config.session_idle,
    )
    .await
    {
        Ok(started) => {
            let mut resp = redirect("/");
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &st,
                    sessions::COOKIE,
                    &started.secret,
                    "/",
                    sessions::MAX_MICROS / 1_000_000,
                ),
            );
            h.append(header::SET_COOKIE, set_cookie(&st, FORM_COOKIE, "", "/", 0));
            resp
        }
        Err(e) => super::invite::internal(e),
    }
}

/// The admin API's messages start in lower case (they follow a field name); a page's sentence
/// starts with a capital.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[derive(Default)]
struct SignupForm {
    email: String,
    given_name: String,
    family_name: String,
    org_name: String,
    org_slug: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    chrome: Chrome,
    title: &'static str,
    form: SignupForm,
    error: Option<String>,
    done: bool,
    form_token: String,
}

fn signup_view(
    st: &AppState,
    status: StatusCode,
    form: SignupForm,
    error: Option<String>,
    done: bool,
) -> Response {
    let token = crate::token::generate();
    let view = SignupPage {
        chrome: Chrome::signed_out(),
        title: if done {
            "Check your email"
        } else {
            "Create an organization"
        },
        form,
        error,
        done,
        form_token: token.clone(),
    };
    with_form_token(st, page(status, &view), &token)
}

async fn signup_page(State(st): State<AppState>) -> Response {
    signup_view(&st, StatusCode::OK, SignupForm::default(), None, false)
}

/// Sign-up: the admin API's own (a new organization whose creator is its admin, an
/// account-setup email proving the address, the same answer whether or not it had an account).
async fn signup(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormFields::parse(&body);
    let form = SignupForm {
        email: f.text("email"),
        given_name: f.text("given_name"),
        family_name: f.text("family_name"),
        org_name: f.text("org_name"),
        org_slug: f.text("org_slug"),
    };
    if !form_token_ok(&headers, &f) {
        let e = "This form expired. Try again.".to_owned();
        return signup_view(&st, StatusCode::FORBIDDEN, form, Some(e), false);
    }
    let request = super::people::Signup {
        email: Some(form.email.clone()),
        given_name: Some(form.given_name.clone()),
        family_name: Some(form.family_name.clone()),
        organization: Some(super::people::SignupOrg {
            slug: Some(form.org_slug.trim().to_owned()),
            name: Some(form.org_name.clone()),
        }),
    };
    let request_id = super::extract::request_id(&headers);
    match super::people::sign_up(&st, &ip.0, request_id, request).await {
        Ok(Ok(())) => signup_view(&st, StatusCode::OK, SignupForm::default(), None, true),
        Ok(Err(wait)) => {
            let e = format!("Too many attempts from here. Try again in {wait} seconds.");
            signup_view(&st, StatusCode::TOO_MANY_REQUESTS, form, Some(e), false)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            signup_view(&st, status, form, Some(capitalise(&text)), false)
        }
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    title: &'static str,
    email: String,
    error: Option<String>,
    done: bool,
    form_token: String,
}

fn forgot_view(
    st: &AppState,
    status: StatusCode,
    email: String,
    error: Option<String>,
    done: bool,
) -> Response {
    let token = crate::token::generate();
    let view = ForgotPage {
        chrome: Chrome::signed_out(),
        title: "Forgot your password?",
        email,
        error,
        done,
        form_token: token.clone(),
    };
    with_form_token(st, page(status, &view), &token)
}

async fn forgot_page(State(st): State<AppState>) -> Response {
    forgot_view(&st, StatusCode::OK, String::new(), None, false)
}

/// The admin API's password reset: a link by email, and the same answer whether or not the
/// address has an account.
async fn forgot(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormFields::parse(&body);
    let email = f.text("email");
    if !form_token_ok(&headers, &f) {
        let e = "This form expired. Try again.".to_owned();
        return forgot_view(&st, StatusCode::FORBIDDEN, email, Some(e), false);
    }
    match super::people::request_reset(&st, &ip.0, &email).await {
        Ok(Ok(())) => forgot_view(&st, StatusCode::OK, String::new(), None, true),
        Ok(Err(wait)) => {
            let e = format!("Too many attempts. Try again in {wait} seconds.");
            forgot_view(&st, StatusCode::TOO_MANY_REQUESTS, email, Some(e), false)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            forgot_view(&st, status, email, Some(capitalise(&text)), false)
        }
    }
}

// ---- Signed in: the organization switcher ---------------------------------------------------

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    chrome: Chrome,
    title: &'static str,
    orgs: Vec<OrgItem>,
    /// For a provider admin: a page of every organization, `(slug, name)`, with the links to
    /// the next page and back to the first.
    all: Option<Vec<(String, String)>>,
    all_next: Option<String>,
    all_first: Option<String>,
}

struct OrgItem {
    slug: String,
    name: String,
    role: String,
    active: bool,
}

/// Organizations on one page of a provider admin's switcher.
pub const ALL_ORGS_PAGE: i64 = 50;

#[derive(serde::Deserialize, Default)]
pub struct HomeQuery {
    /// The slug the previous page of every organization ended with.
    after: Option<String>,
}

/// `/`: the sign-in page, or for a signed-in person their organizations (the switcher); a
/// provider admin also pages through every organization, each of which they may open.
pub async fn home(
    State(st): State<AppState>,
    MaybeSession(s): MaybeSession,
    axum::extract::Query(q): axum::extract::Query<HomeQuery>,
) -> Response {
    let Some(s) = s else {
        return signin_view(&st, StatusCode::OK, "", None);
    };
    let (acct, memberships, provider_admin) = match (
        st.store.account(&s.account).await,
        st.store.memberships_of(&s.account).await,
        st.store.is_provider_admin(&s.account).await,
    ) {
        (Ok(Some(a)), Ok(m), Ok(p)) => (a, m, p),
        (Ok(None), _, _) => return signin_view(&st, StatusCode::OK, "", None),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return super::invite::internal(e),
    };
    let after: String = q.after.unwrap_or_default().chars().take(100).collect();
    let mut view = OrgsPage {
        chrome: Chrome {
            csrf: s.csrf(),
            email: acct.email,
            org: None,
            section: "orgs",
            v: assets::version(),
        },
        title: "Your organizations",
        orgs: memberships
            .into_iter()
            .map(|m| OrgItem {
                slug: m.org.slug,
                name: m.org.name,
                role: m.role,
                active: m.active,
            })
            .collect(),
        all: None,
        all_next: None,
        all_first: None,
    };
    if provider_admin {
        // One more than a page tells whether there is a next one.
        let mut all = match st.store.orgs_after(&after, ALL_ORGS_PAGE + 1).await {
            Ok(a) => a,
            Err(e) => return super::invite::internal(e),
        };
        if all.len() as i64 > ALL_ORGS_PAGE {
            all.truncate(ALL_ORGS_PAGE as usize);
            view.all_next = all.last().map(|o| {
                let slug: String = form_urlencoded::byte_serialize(o.slug.as_bytes()).collect();
                format!("/?after={slug}#all-orgs-h")
            });
        }
        view.all_first = (!after.is_empty()).then(|| "/#all-orgs-h".to_owned());
        view.all = Some(all.into_iter().map(|o| (o.slug, o.name)).collect());
    }
    let mut resp = page(StatusCode::OK, &view);
    // Scripts that call the admin API read the CSRF token from here, never from a cookie.
    if let Ok(v) = HeaderValue::from_str(&s.csrf()) {
        resp.headers_mut().insert("x-csrf-token", v);
    }
    resp
}

// ---- My profile -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    title: &'static str,
    name: String,
    given_name: String,
    family_name: String,
    identities: Vec<IdentityRow>,
    has_password: bool,
    notice: Option<String>,
    ok: bool,
    /// The field a refusal concerns (`given_name`, `family_name`), so it sits beside it.
    field: &'static str,
}

struct IdentityRow {
    provider: String,
    label: String,
    subject: String,
    email: String,
    last_used: String,
}

/// My profile as it is now, with an outcome (`ok` false for a refusal) when there is one.
async fn profile_view(
    st: &AppState,
    s: &Signed,
    status: StatusCode,
    notice: Option<String>,
    ok: bool,
    field: &'static str,
) -> Response {
    let account = &s.session.account;
    let (acct, identities) = match (
        st.store.account(account).await,
        st.store.identities_of(account).await,
    ) {
        (Ok(Some(a)), Ok(i)) => (a, i),
        (Ok(None), _) => return redirect("/"),
        (Err(e), _) | (_, Err(e)) => return super::invite::internal(e),
    };
    let label = |name: &str| {
        st.federation
            .provider(name)
            .map_or_else(|| name.to_owned(), |p| p.label.clone())
    };
    let given_name = acct.given_name.unwrap_or_default();
    let family_name = acct.family_name.unwrap_or_default();
    page(
        status,
        &ProfilePage {
            chrome: s.chrome("me"),
            title: "My profile",
            name: format!("{given_name} {family_name}").trim().to_owned(),
            given_name,
            family_name,
            identities: identities
                .into_iter()
                .map(|i| IdentityRow {
                    label: label(&i.provider),
                    provider: i.provider,
                    subject: i.subject,
                    email: i.email,
                    last_used: i.last_used_at.map_or_else(|| "never".into(), users::day),
                })
                .collect(),
            has_password: acct.password_hash.is_some(),
            notice,
            ok,
            field,
        },
    )
}

async fn profile_page(State(st): State<AppState>, signed: Signed) -> Response {
    profile_view(&st, &signed, StatusCode::OK, None, true, "").await
}

/// One's own names, through `people::set_names_as`.
async fn change_names(State(st): State<AppState>, MeForm { signed, f }: MeForm) -> Response {
    let saved = super::people::set_names_as(
        &st,
        &signed.session.account,
        Some(f.text("given_name")),
        Some(f.text("family_name")),
    )
    .await;
    match saved {
        Ok(()) => {
            let note = Some("Your name is saved.".to_owned());
            profile_view(&st, &signed, StatusCode::OK, note, true, "").await
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            let field = match e.field() {
                Some("givenName") => "given_name",
                Some("familyName") => "family_name",
                _ => "",
            };
            profile_view(&st, &signed, status, Some(capitalise(&text)), false, field).await
        }
    }
}

/// Unlinks one of one's own sign-in providers, through `people::unlink_as` (never the last way
/// to sign in).
async fn unlink(State(st): State<AppState>, MeForm { signed, f }: MeForm) -> Response {
    let provider = f.text("provider");
    let done =
        super::people::unlink_as(&st, &signed.session.account, &provider, &f.text("subject")).await;
    match done {
        Ok(()) => {
            let note = Some(format!(
                "{provider} is unlinked. Signing in with it again links it again, as it vouches \
                 for your address."
            ));
            profile_view(&st, &signed, StatusCode::OK, note, true, "").await
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            profile_view(&st, &signed, status, Some(capitalise(&text)), false, "").await
        }
    }
}

/// The admin API's password change: the current password (counted like a sign-in), then every
/// session of the account ends, this one too.
async fn change_password(
    State(st): State<AppState>,
    ip: ClientIp,
    MeForm { signed, f }: MeForm,
) -> Response {
    let changed = super::people::change_password_as(
        &st,
        &signed.session.account,
        &ip.0,
        Some(f.text("current_password")),
        Some(f.text("new_password")),
    )
    .await;
    match changed {
        Ok(Ok(())) => signed_out_with(
            &st,
            "Your password is changed, and every session has ended. Sign in with the new one.",
        ),
        Ok(Err(wait)) => {
            profile_view(
                &st,
                &signed,
                StatusCode::TOO_MANY_REQUESTS,
                Some(format!("Too many attempts. Try again in {wait} seconds.")),
                false,
                "",
            )
            .await
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            profile_view(&st, &signed, status, Some(capitalise(&text)), false, "").await
        }
    }
}

/// Ends every session of the account, on every replica: browsers and admin API tokens alike.
async fn sign_out_everywhere(
    State(st): State<AppState>,
    MeForm { signed, .. }: MeForm,
) -> Response {
    match st
        .store
        .revoke_sessions(&signed.session.account, None, st.clock.now())
        .await
    {
        Ok(n) => {
            tracing::info!(account = %signed.session.account, sessions = n, "signed out everywhere");
            signed_out_with(&st, "You are signed out everywhere.")
        }
        Err(e) => super::invite::internal(e),
    }
}

/// The sign-in page with a note, the session cookie cleared.
fn signed_out_with(st: &AppState, note: &str) -> Response {
    let mut resp = signin_with(st, StatusCode::OK, "", None, Some(note.to_owned()));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, sessions::COOKIE, "", "/", 0),
    );
    resp
}
