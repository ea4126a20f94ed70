//! The HTTP surface: routes, authentication, SCIM bodies and headers. Handlers hold no SQL and
//! no protocol rules; they translate between HTTP and the provisioning service.

pub mod access;
pub mod admin;
pub mod auth;
pub mod conn;
pub mod console;
mod discovery;
pub mod edge;
pub mod errors;
pub mod extract;
pub mod invite;
mod log;
pub mod people;
mod provisioning;
mod resources;
pub mod views;

use crate::clock::Clock;
use crate::error::Error;
use crate::service::ratelimit::{RateLimits, Verdict};
use crate::service::{Provisioning, Tenant};
use crate::store::DynStore;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub const SCIM_PREFIX: &str = "/scim/v2";
/// Where the admin API lives.
pub const ADMIN_PREFIX: &str = "/admin/v1";
/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub use crate::scim::search::{DEFAULT_COUNT, MAX_RESULTS};
/// Longest a request may run before the timeout layer answers 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Config {
    /// The site's public origin (e.g. `https://scim.example.com`): every link in an email starts
    /// with it and the SCIM base is `{origin}/scim/v2`. A value ending in `/scim/v2` (the form
    /// older versions took) is read as its origin. Never taken from request headers.
    pub public_url: Option<String>,
    /// Where links point without a public URL: `http://<listen address>` (only for a server whose
    /// mail stays in the outbox; `serve` refuses email without a public URL).
    pub fallback_origin: String,
    /// How long invitation and account-setup links work, in microseconds.
    pub link_ttl: i64,
    /// How long a password-reset link works, in microseconds.
    pub reset_ttl: i64,
    /// A file holding the key access tokens are signed with; without one the key is generated on
    /// first start and kept in the database (so every replica shares it).
    pub signing_key_file: Option<std::path::PathBuf>,
    /// Take the client address for rate limits from the last `X-Forwarded-For` entry (set this
    /// only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    /// Whether email is delivered (SMTP configured). Links go only by email either way; without
    /// delivery the admin API says so, people see their invitations after signing in, and the
    /// operator reads undelivered mail with `scimd mail list`.
    pub mail_configured: bool,
    /// How long a browser session lasts without use, in microseconds.
    pub session_idle: i64,
    /// The configured sign-in providers (Google, Microsoft, GitHub, a generic OIDC issuer).
    pub providers: Vec<crate::service::federation::ProviderConfig>,
    /// Most password hashes or checks run at once (default: the number of cores), and most
    /// requests waiting for one before the rest are answered 503.
    pub hash_slots: usize,
    pub hash_queue: usize,
    /// Serve `GET /metrics` on this router (off when metrics have a listener of their own).
    pub metrics_here: bool,
    /// Requests per second each provisioning token may make (`None`: no limit).
    pub token_rate_limit: Option<u32>,
    /// The SCIM request log an organization's admins read (`--request-log…`).
    pub request_log: crate::service::request_log::Settings,
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Config {
            public_url: None,
            fallback_origin: "http://127.0.0.1:8080".into(),
            link_ttl: crate::service::invitations::EXPIRY_MICROS,
            reset_ttl: crate::service::people::RESET_TTL_MICROS,
            signing_key_file: None,
            trust_forwarded_for: false,
            mail_configured: false,
            session_idle: crate::service::sessions::IDLE_MICROS,
            providers: Vec::new(),
            hash_slots: cores,
            hash_queue: 8 * cores,
            metrics_here: true,
            token_rate_limit: None,
            request_log: crate::service::request_log::Settings::default(),
        }
    }
}

impl Config {
    /// The origin links start with: the public URL's (a trailing `/scim/v2` and `/` dropped),
    /// else the fallback. Request headers play no part: a forged `Host` cannot redirect a link.
    pub fn origin(&self) -> String {
        match &self.public_url {
            Some(url) => origin_of(url),
            None => self.fallback_origin.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether the site is served over https (cookies are then `Secure`).
    pub fn https(&self) -> bool {
        self.origin().starts_with("https://")
    }
}

/// `https://host[:port][/scim/v2][/]` → `https://host[:port]`.
pub fn origin_of(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix(SCIM_PREFIX)
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_owned()
}

/// The client's address as rate limits count it: the connection's peer, or behind a trusted
/// proxy the last `X-Forwarded-For` entry; `unknown` when neither is known (in-process tests).
pub struct ClientIp(pub String);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            client_ip(
                st.config.trust_forwarded_for,
                &parts.headers,
                &parts.extensions,
            )
            .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// The client's address (see [`ClientIp`]); `None` when unknown.
pub fn client_ip(
    trust_forwarded_for: bool,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<String> {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|v| v.rsplit(',').next())
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty());
    forwarded.or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
    })
}

/// The server's shared state. Axum clones it into every request (each middleware and handler
/// holds a copy), so it is one `Arc`: a clone is one reference-count increment, not one per
/// field (a dozen atomic increments and decrements per layer showed as 7% of the machine's time
/// under the c=32 lookup benchmark).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub store: DynStore,
    pub provisioning: Provisioning,
    pub clock: Arc<Clock>,
    pub config: Arc<Config>,
    /// Password hashing and checking, bounded (see `service::hashing`).
    pub hasher: Arc<crate::service::hashing::Hasher>,
    /// The configured sign-in providers.
    pub federation: Arc<crate::service::federation::Federation>,
    tokens: Arc<TokenCache>,
    keys: Arc<tokio::sync::OnceCell<crate::service::people::Keys>>,
    limits: Option<Arc<RateLimits>>,
    /// The SCIM request log's queue (`None` when the log is off).
    pub request_log: Option<Arc<crate::service::request_log::RequestLog>>,
    /// When this process last wrote each token's `last_used_at`.
    token_use: Arc<TokenUse>,
}

/// How often a token's "last used" time is written at most: a request never pays for a write.
pub const LAST_USED_EVERY_MICROS: i64 = 60_000_000;

/// When this process last wrote each token's `last_used_at`, by token id.
#[derive(Default)]
struct TokenUse(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl TokenUse {
    /// Whether a use of the token at `now` should be written (and notes that it will be).
    fn due(&self, tok: &crate::store::TokenInfo, now: i64) -> bool {
        if tok
            .last_used_at
            .is_some_and(|t| now - t < LAST_USED_EVERY_MICROS)
        {
            return false;
        }
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        if map
            .get(&tok.id)
            .is_some_and(|t| now - t < LAST_USED_EVERY_MICROS)
        {
            return false;
        }
        if map.len() >= TOKEN_CACHE_ENTRIES {
            map.retain(|_, t| now - *t < LAST_USED_EVERY_MICROS);
            if map.len() >= TOKEN_CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert(tok.id.clone(), now);
        true
    }
}

/// How long a token lookup is trusted before the database is asked again: a revoked token stops
/// working within this time on every replica (and `scimd token revoke` runs in another process,
/// so no replica could be told sooner).
pub const TOKEN_CACHE_MICROS: i64 = 2_000_000;
const TOKEN_CACHE_ENTRIES: usize = 10_000;

/// Valid tokens seen recently, by digest, with when they were read. Unknown tokens are never
/// cached, so a token created a moment ago works at once.
#[derive(Default)]
struct TokenCache(
    std::sync::RwLock<std::collections::HashMap<String, (crate::store::TokenInfo, i64)>>,
);

impl TokenCache {
    fn get(&self, digest: &str, now: i64) -> Option<crate::store::TokenInfo> {
        let map = self.0.read().ok()?;
        let (info, read_at) = map.get(digest)?;
        (now - read_at < TOKEN_CACHE_MICROS).then(|| info.clone())
    }
    fn put(&self, digest: String, info: crate::store::TokenInfo, now: i64) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= TOKEN_CACHE_ENTRIES {
                map.retain(|_, (_, read_at)| now - *read_at < TOKEN_CACHE_MICROS);
                if map.len() >= TOKEN_CACHE_ENTRIES {
                    map.clear();
                }
            }
            map.insert(digest, (info, now));
        }
    }
    /// Forgets a token at once (revoked here: this replica stops taking it immediately).
    fn forget(&self, token_id: &str) {
        if let Ok(mut map) = self.0.write() {
            map.retain(|_, (info, _)| info.id != token_id);
        }
    }
}

impl AppState {
    pub fn new(store: DynStore, clock: Arc<Clock>, config: Config) -> Self {
        let federation = crate::service::federation::Federation::new(config.providers.clone())
            .unwrap_or_else(|e| {
                // Only a TLS backend that cannot start fails here; sign-in through providers
                // is then off, and the log says why.
                tracing::error!(error = %e, "sign-in providers disabled");
                crate::service::federation::Federation::empty()
            });
        let request_log = config.request_log.enabled.then(|| {
            crate::service::request_log::RequestLog::start(
                store.clone(),
                clock.clone(),
                config.request_log.clone(),
            )
        });
        AppState(Arc::new(Shared {
            request_log,
            provisioning: Provisioning::new(store.clone(), clock.clone()),
            hasher: Arc::new(crate::service::hashing::Hasher::new(
                config.hash_slots,
                config.hash_queue,
            )),
            federation: Arc::new(federation),
            store,
            clock,
            limits: RateLimits::new(config.token_rate_limit).map(Arc::new),
            token_use: Arc::default(),
            config: Arc::new(config),
            tokens: Arc::default(),
            keys: Arc::default(),
        }))
    }

    /// Stops taking a token on this replica at once (others within `TOKEN_CACHE_MICROS`).
    pub fn forget_token(&self, token_id: &str) {
        self.tokens.forget(token_id);
    }

    /// The access-token keys, loaded once.
    pub async fn keys(&self) -> Result<&crate::service::people::Keys, Error> {
        self.keys
            .get_or_try_init(|| {
                crate::service::people::Keys::load(
                    &self.store,
                    self.config.signing_key_file.as_deref(),
                    self.clock.now(),
                )
            })
            .await
    }
}

/// The whole application, ready to serve or to drive in tests with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    crate::service::warm_up();
    crate::metrics::handle();
    let protected = resources::router()
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let scim = discovery::router()
        .merge(protected)
        .layer(middleware::from_fn_with_state(
            log::Capture::of(&state),
            log::capture,
        ));
    let mut app = Router::new()
        .nest(SCIM_PREFIX, scim)
        .nest(admin::PREFIX, admin::router(state.clone()))
        .merge(invite::router())
        .route(edge::PAGE_CSS_PATH, get(edge::page_css))
        .merge(auth::router())
        .merge(console::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if state.config.metrics_here {
        app = app.route("/metrics", get(metrics));
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn(track))
        .layer(middleware::from_fn(edge::finish))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = extract::request_id(req.headers()).unwrap_or_default();
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), route, request_id = id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// How much earlier than the answer's deadline the request's database work must stop, so
/// that a query is abandoned (and its connection freed) before the 503 goes out.
const DATABASE_MARGIN: Duration = Duration::from_millis(250);

/// Answers a request that runs past `REQUEST_TIMEOUT` with a SCIM 503 (dropping the handler's
/// future rolls back any open transaction). Its database work gets the same deadline
/// (`crate::deadline`), so a slow query stops rather than hold a connection on.
async fn deadline(req: Request, next: Next) -> Response {
    // The admin API answers in its own error shape, SCIM and everything else in SCIM's.
    let admin = req.uri().path().starts_with(admin::PREFIX);
    let work = crate::deadline::scope(REQUEST_TIMEOUT - DATABASE_MARGIN, next.run(req));
    match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                timeout_secs = REQUEST_TIMEOUT.as_secs(),
                "request timed out"
            );
            let e = Error::unavailable("the request took too long and was abandoned; retry it");
            if admin {
                admin::AdminError::from(e).into_response()
            } else {
                e.into_response()
            }
        }
    }
}

/// Longest `/readyz` waits for the database: a probe must hear back before its own timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /metrics` alone, for a listener of its own (`--metrics-listen`).
pub fn metrics_router(state: AppState) -> Router {
    crate::metrics::handle();
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `GET /metrics`: Prometheus text format (see `crate::metrics`).
async fn metrics(State(st): State<AppState>) -> Response {
    let mut resp = crate::metrics::render(&st.store).await.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Counts every answered request by its route template (never the raw path: ids would make a
/// label value per resource), method and status, with its latency.
async fn track(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let resp = next.run(req).await;
    crate::metrics::request(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn readyz(State(st): State<AppState>) -> Response {
    let ping = tokio::time::timeout(READY_TIMEOUT, st.store.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
        Err(_) => {
            tracing::warn!(
                timeout_secs = READY_TIMEOUT.as_secs(),
                "database did not answer"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> Error {
    if edge::is_admin_path(uri.path()) {
        Error::not_found("no such endpoint in the admin API; /admin/v1/openapi.json lists them")
    } else {
        Error::not_found("no such endpoint; SCIM lives under /scim/v2")
    }
}

async fn method_not_allowed() -> Error {
    Error::method_not_allowed("this endpoint does not support that method")
}

/// RFC 7644 §2: `Authorization: Bearer <token>`; Okta may send the bare token.
async fn authenticate(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, Error> {
    let token = extract::bearer(req.headers(), true).to_owned();
    let token = token.as_str();
    if token.is_empty() {
        return Err(Error::unauthorized(
            "a provisioning token is required: Authorization: Bearer <token>",
        ));
    }
    let now = st.clock.now();
    let digest = crate::token::digest(token);
    let found = match st.tokens.get(&digest, now) {
        Some(hit) => Some(hit),
        None => {
            let found = st.store.token_by_digest(&digest).await?;
            if let Some(t) = &found {
                st.tokens.put(digest, t.clone(), now);
            }
            found
        }
    };
    let Some(tok) = found else {
        return Err(Error::unauthorized(
            "the provisioning token is unknown, revoked or expired",
        ));
    };
    // From here on the organization is known: the answer goes to its request log.
    let tag = log::Tag {
        org_id: tok.organization_id.clone(),
        token_id: tok.id.clone(),
        token_name: tok.name.clone(),
    };
    let tagged = |mut resp: Response| {
        resp.extensions_mut().insert(tag.clone());
        resp
    };
    if tok.revoked_at.is_some() || tok.expires_at.is_some_and(|e| e <= now) {
        let what = if tok.revoked_at.is_some() {
            "revoked"
        } else {
            "expired"
        };
        // Said to the organization's log, not to the caller: a stolen token learns nothing.
        let mut resp = Error::unauthorized("the provisioning token is unknown, revoked or expired")
            .into_response();
        resp.extensions_mut()
            .insert(log::Refusal(format!("the token {:?} is {what}", tok.name)));
        return Ok(tagged(resp));
    }
    if st.token_use.due(&tok, now) {
        let (store, id) = (st.store.clone(), tok.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id, now).await {
                tracing::warn!(error = %e, token = %id, "could not note the token's last use");
            }
        });
    }
    if let Some(limits) = &st.limits {
        if let Verdict::Limited(secs) = limits.check(&st.store, &tok.id, now).await? {
            crate::metrics::rate_limited(&tok.org_slug);
            tracing::info!(org = %tok.org_slug, token = %tok.id, "provisioning token over its rate limit");
            let resp = Error::rate_limited(
                secs,
                format!("this provisioning token made more requests than its limit of {} per second; retry after {secs} s", limits.per_second()),
            )
            .into_response();
            return Ok(tagged(resp));
        }
    }
    let request_id = extract::request_id(req.headers());
    req.extensions_mut().insert(Tenant {
        org_id: tok.organization_id,
        org_slug: tok.org_slug,
        actor: format!("token:{}", tok.id),
        request_id,
    });
    Ok(tagged(next.run(req).await))
}

/// A SCIM JSON response with the SCIM media type.
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    scim_text(status, body.to_string())
}

/// Already-serialised SCIM JSON.
pub fn scim_text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::error::SCIM_CONTENT_TYPE),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_an_origin() {
        for (given, origin) in [
            ("https://scim.example.com", "https://scim.example.com"),
            ("https://scim.example.com/", "https://scim.example.com"),
            (
                "https://scim.example.com/scim/v2",
                "https://scim.example.com",
            ),
            (
                "https://scim.example.com:8443/scim/v2/",
                "https://scim.example.com:8443",
            ),
        ] {
            assert_eq!(origin_of(given), origin, "{given}");
        }
        let mut c = Config::default();
        assert_eq!(c.origin(), "http://127.0.0.1:8080");
        assert!(!c.https(), "no Secure cookies on plain http");
        c.public_url = Some("https://scim.example.com/scim/v2".into());
        assert_eq!(c.origin(), "https://scim.example.com");
        assert!(c.https(), "Secure cookies on https");
    }
}
