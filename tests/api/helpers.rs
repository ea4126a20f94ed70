//! Typed helpers: a fresh database per test (a temporary SQLite file, or a new Postgres
//! database), the real router driven in-process, and small request/assert helpers.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use scimd::clock::Clock;
use scimd::store::{connect, DynStore, Org};
use scimd::{router, AppState, Config};
use serde_json::{json, Value};
use sqlx::Connection;
use std::sync::Arc;
use tokio::sync::OnceCell;
use tower::ServiceExt;

/// Runs a test body once on SQLite and once on Postgres.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::TestApp::sqlite().await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::TestApp::postgres().await).await
                }
            }
        )*
    };
}

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const ORGANIZATION: &str = "urn:scimd:params:scim:schemas:extension:organization:2.0:User";

pub struct TestApp {
    pub router: Router,
    /// The state the router serves (its hashing slots, among others).
    pub state: AppState,
    pub store: DynStore,
    pub clock: Arc<Clock>,
    pub org: Org,
    pub token: String,
    pub url: String,
    _file: Option<TempFile>,
}

struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        // The main file and the request log's file beside it, each with its WAL files.
        for file in [self.0.clone(), scimd::store::request_log_file(&self.0)] {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("SCIMD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static PG_SWEEP: OnceCell<()> = OnceCell::const_new();

/// How old a test database must be before a later run drops it. Test runs from several
/// checkouts may share one server, so a run never drops a database that another run could
/// still be using.
const STALE_DATABASE_SECS: u64 = 600;

// Names test databases by the real time, which the server's Clock never sees.
#[allow(clippy::disallowed_methods)]
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Whether a test database (`scimd_t_<created unix seconds>_<uuid>`) is old enough to drop.
/// Names without a creation time come from older versions of this file and are dropped.
fn is_stale(name: &str, now: u64) -> bool {
    let rest = name.trim_start_matches("scimd_t_");
    match rest.split_once('_').map(|(secs, _)| secs.parse::<u64>()) {
        Some(Ok(created)) => now.saturating_sub(created) > STALE_DATABASE_SECS,
        _ => true,
    }
}

/// Drops the databases earlier runs left behind (tests cannot drop theirs asynchronously).
async fn sweep_old_databases(admin: &str) {
    PG_SWEEP
        .get_or_init(|| async {
            let Ok(mut conn) = sqlx::PgConnection::connect(admin).await else {
                return;
            };
            let names: Vec<(String,)> =
                sqlx::query_as("select datname from pg_database where datname like 'scimd_t_%'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_default();
            let now = unix_secs();
            for (name,) in names.into_iter().filter(|(n,)| is_stale(n, now)) {
                let _ = sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                    .execute(&mut conn)
                    .await;
            }
        })
        .await;
}

impl TestApp {
    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("scimd-test-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite:{}", path.display());
        Self::start(url, Some(TempFile(path))).await
    }

    /// A new database on the test server. Fails — never skips — when Postgres is unreachable.
    pub async fn postgres() -> Self {
        let admin = postgres_admin_url();
        sweep_old_databases(&admin).await;
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is required for the tests and is unreachable at {admin}: {e}")
            });
        let name = format!("scimd_t_{}_{}", unix_secs(), uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("create database \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.split('?').next().unwrap_or(&admin);
        let url = format!(
            "{}/{name}",
            &base[..base.rfind('/').expect("a database URL has a path")]
        );
        Self::start(url, None).await
    }

    /// An app on a database that already exists (a test's own PostgreSQL cluster, say).
    pub async fn at(url: String) -> Self {
        Self::start(url, None).await
    }

    async fn start(url: String, file: Option<TempFile>) -> Self {
        let store = connect(&url).await.expect("connect and migrate");
        let clock = Arc::new(Clock::default());
        let org = store
            .create_org("acme", "Acme", clock.now())
            .await
            .expect("create org");
        let token = scimd::token::generate();
        store
            .create_token(
                &org,
                "test",
                &scimd::token::digest(&token),
                None,
                clock.now(),
            )
            .await
            .expect("create token");
        let state = AppState::new(store.clone(), clock.clone(), Config::default());
        let router = router(state.clone());
        TestApp {
            router,
            state,
            store,
            clock,
            org,
            token,
            url,
            _file: file,
        }
    }

    /// The same app and database served with another configuration.
    pub fn configure(&mut self, change: impl FnOnce(&mut Config)) {
        let mut config = Config::default();
        change(&mut config);
        self.state = AppState::new(self.store.clone(), self.clock.clone(), config);
        self.router = router(self.state.clone());
    }

    /// Another organization in the same database, with its own token.
    pub async fn other_org(&self, slug: &str) -> (Org, String) {
        let org = self
            .store
            .create_org(slug, slug, self.clock.now())
            .await
            .expect("create org");
        let token = scimd::token::generate();
        self.store
            .create_token(
                &org,
                "test",
                &scimd::token::digest(&token),
                None,
                self.clock.now(),
            )
            .await
            .expect("create token");
        (org, token)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let uri = if ["/scim/", "/admin/", "/healthz", "/readyz", "/metrics"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            path.to_owned()
        } else {
            format!("/scim/v2{path}")
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "scim.test");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/scim+json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        Self::run(self.router.clone(), req).await
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        Self::run(self.router.clone(), req).await
    }

    async fn run(router: Router, req: Request<Body>) -> Resp {
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A request with this app's token and one extra header.
    pub async fn with_header(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        header: (&str, &str),
    ) -> Resp {
        self.send(method, path, Some(&self.token), body, &[header])
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.token), None, &[])
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&self.token), Some(&body), &[])
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(&self.token), Some(&body), &[])
            .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&self.token), Some(&body), &[])
            .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.token), None, &[])
            .await
    }

    /// Creates a user and returns its representation.
    pub async fn user(&self, user_name: &str) -> Value {
        let r = self
            .post("/Users", json!({"schemas": [USER_SCHEMA], "userName": user_name, "emails": [{"value": user_name, "primary": true}]}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    pub async fn group(&self, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = self
            .post(
                "/Groups",
                json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
}

pub fn ops(ops: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("resource has an id").to_owned()
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts an RFC 7644 §3.12 error with this status and scimType.
    pub fn assert_error(&self, status: StatusCode, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.as_u16().to_string());
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{}", self.body);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(self.headers["content-type"], "application/scim+json");
    }

    pub fn etag(&self) -> String {
        self.headers["etag"].to_str().expect("etag").to_owned()
    }

    /// The `userName` of each resource of a ListResponse, in order.
    pub fn user_names(&self) -> Vec<String> {
        self.body["Resources"]
            .as_array()
            .expect("a ListResponse")
            .iter()
            .map(|u| u["userName"].as_str().expect("a User").to_owned())
            .collect()
    }

    pub fn ids(&self) -> Vec<String> {
        self.body["Resources"]
            .as_array()
            .expect("a ListResponse")
            .iter()
            .map(id)
            .collect()
    }
}
