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
mod profile;
mod provisioning;
mod signin;
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
use signin::{signin_view, signin_with};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin::signin_page).post(signin::signin))
        .route("/signup", get(signin::signup_page).post(signin::signup))
        .route("/forgot", get(signin::forgot_page).post(signin::forgot))
        .route("/me", get(profile::profile_page))
        .route(
            "/me/password",
            axum::routing::post(profile::change_password),
        )
        .route("/me/names", axum::routing::post(profile::change_names))
        .route(
            "/me/identities/unlink",
            axum::routing::post(profile::unlink),
        )
        .route(
            "/me/sign-out-everywhere",
            axum::routing::post(profile::sign_out_everywhere),
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

/// The admin API's messages start in lower case (they follow a field name); a page's sentence
/// starts with a capital.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
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
