//! Signing in with a provider, end to end over real HTTP: scimd listens on loopback, a real
//! OpenID Connect provider (oauth2-mock-server, `tests/oidc`) runs beside it, and the test plays
//! the browser, following every redirect by hand with a cookie jar. GitHub's user API is a small
//! stand-in served by the test itself.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::TestApp;
use axum::http::{Method, StatusCode};
use scimd::service::federation::ProviderConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

both!(
    a_verified_email_signs_in_to_a_browser_session,
    a_wrong_state_a_replay_or_an_expired_flow_is_refused,
    an_unverified_or_missing_email_is_refused,
    a_deactivated_member_loses_that_organizations_rights_at_once,
    the_subject_is_remembered_across_an_email_change,
    microsoft_tokens_must_come_from_their_own_tenant,
    github_signs_in_with_the_primary_verified_address,
);

const MINUTE: i64 = 60 * 1_000_000;

/// The OpenID Connect provider, running until dropped.
struct Provider {
    url: String,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static INSTALL: Mutex<()> = Mutex::new(());

impl Provider {
    /// Starts `tests/oidc/provider.mjs`, installing it first when it is missing (never skips).
    fn start() -> Provider {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        {
            let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
            if !dir.join("node_modules/oauth2-mock-server").exists() {
                let ok = Command::new("bash")
                    .arg(dir.join("install.sh"))
                    .status()
                    .expect("run tests/oidc/install.sh");
                assert!(ok.success(), "installing the test OIDC provider failed");
            }
        }
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the test OIDC provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the provider said {line:?}"))
            .to_owned();
        Provider { url, child }
    }
}

/// A browser: no automatic redirects, and a cookie jar for scimd's origin.
struct Browser {
    http: reqwest::Client,
    origin: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(origin: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            origin: origin.to_owned(),
            cookies: HashMap::new(),
        }
    }

    async fn send(
        &mut self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.origin)
        } else {
            url.to_owned()
        };
        let mut req = self.http.request(method, &url);
        if url.starts_with(&self.origin) && !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", jar.join("; "));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let resp = req.send().await.unwrap();
        if url.starts_with(&self.origin) {
            for c in resp.headers().get_all("set-cookie") {
                let c = c.to_str().unwrap();
                let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
                let (k, v) = pair.split_once('=').unwrap();
                if attrs.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Page {
            status: StatusCode::from_u16(resp.status().as_u16()).unwrap(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        self.send(reqwest::Method::GET, url, &[], None).await
    }

    /// From `/auth/{provider}/start` to the callback URL the provider redirects to, signing in
    /// at the provider as the person these claims describe.
    async fn reach_callback(&mut self, provider: &str, claims: &Value) -> String {
        let start = self.get(&format!("/auth/{provider}/start")).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        assert!(
            self.cookies.contains_key("scimd_flow"),
            "the flow is bound to this browser"
        );
        let authorize = start.location.unwrap();
        assert!(authorize.contains("code_challenge="), "PKCE: {authorize}");
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        let at_provider = self
            .get(&format!(
                "{authorize}&test_user={}",
                urlencode(&claims.to_string())
            ))
            .await;
        assert!(at_provider.status.is_redirection(), "{}", at_provider.body);
        let callback = at_provider.location.unwrap();
        assert!(
            callback.starts_with(&format!("{}/auth/{provider}/callback?", self.origin)),
            "{callback}"
        );
        callback
    }

    /// The whole sign-in; returns the callback's answer.
    async fn sign_in(&mut self, provider: &str, claims: &Value) -> Page {
        let callback = self.reach_callback(provider, claims).await;
        self.get(&callback).await
    }

    /// An access token for the admin API, through the CSRF-checked bridge.
    async fn access_token(&mut self) -> String {
        let home = self.get("/").await;
        let csrf = home.headers["x-csrf-token"].to_str().unwrap().to_owned();
        let r = self
            .send(
                reqwest::Method::POST,
                "/auth/token",
                &[("x-csrf-token", &csrf)],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        v["accessToken"].as_str().unwrap().to_owned()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Serves the app on loopback with these providers; returns its origin (the public URL).
async fn serve(app: &mut TestApp, providers: impl FnOnce(&str) -> Vec<ProviderConfig>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let list = providers(&origin);
    let public = origin.clone();
    app.configure(move |c| {
        c.public_url = Some(public);
        c.providers = list;
    });
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    origin
}

fn oidc(provider: &Provider) -> Vec<ProviderConfig> {
    vec![ProviderConfig::oidc(
        "Test SSO".into(),
        "scimd-test".into(),
        "a client secret".into(),
        provider.url.clone(),
    )]
}

fn person(sub: &str, email: &str) -> Value {
    json!({"sub": sub, "email": email, "email_verified": true})
}

async fn a_verified_email_signs_in_to_a_browser_session(mut app: TestApp) {
    let idp = Provider::start();
    let origin = serve(&mut app, |_| oidc(&idp)).await;
    let mut b = Browser::new(&origin);
    let signin = b.get("/").await;
    assert!(signin.body.contains("/auth/oidc/start"), "{}", signin.body);
    assert!(signin.body.contains("Sign in with Test SSO"));

    let done = b.sign_in("oidc", &person("u-1", "Ada@Example.com")).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/"));
    let cookie = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("scimd_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    assert!(
        !b.cookies.contains_key("scimd_flow"),
        "the flow cookie is cleared"
    );
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body
            .contains("Signed in as <strong>Ada@Example.com</strong>"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains("not a member of any organization"),
        "a new account, no organization"
    );
    // The console's scripts come from this server's /assets, never inline.
    assert!(
        home.body.matches("<script").count() == home.body.matches("<script src=\"/assets/").count(),
        "no inline script on the page"
    );

    // The admin API: never by the cookie alone, only through the CSRF-checked token endpoint.
    let me = b
        .send(reqwest::Method::GET, "/admin/v1/me", &[], None)
        .await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "a cookie is not a bearer token"
    );
    let forged = b
        .send(
            reqwest::Method::POST,
            "/auth/token",
            &[("x-csrf-token", "guess")],
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let token = b.access_token().await;
    let me = admin(&app, &token, Method::GET, "/me", None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["account"]["email"], "Ada@Example.com");

    // Signing out ends the session and the tokens it handed out, at once.
    let csrf = home.headers["x-csrf-token"].to_str().unwrap().to_owned();
    let out = b
        .send(
            reqwest::Method::POST,
            "/auth/logout",
            &[],
            Some(&[("csrf", csrf.as_str())]),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("scimd_session"));
    assert_eq!(
        admin(&app, &token, Method::GET, "/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A session idle past its limit ends too.
    b.sign_in("oidc", &person("u-1", "ada@example.com")).await;
    assert!(b.get("/").await.body.contains("Signed in as"));
    app.clock.advance(61 * MINUTE);
    assert!(
        b.get("/").await.body.contains("Sign in with"),
        "idle for an hour: signed out"
    );
}

async fn a_wrong_state_a_replay_or_an_expired_flow_is_refused(mut app: TestApp) {
    let idp = Provider::start();
    let origin = serve(&mut app, |_| oidc(&idp)).await;
    let signed_in =
        |p: &Page| p.status == StatusCode::SEE_OTHER && p.location.as_deref() == Some("/");

    // A wrong state: refused, and the flow is used up.
    let mut b = Browser::new(&origin);
    let callback = b
        .reach_callback("oidc", &person("u-2", "bo@example.com"))
        .await;
    let (head, state) = callback.split_once("state=").unwrap();
    let wrong = format!("{head}state=x{state}");
    let r = b.get(&wrong).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("Start again"), "{}", r.body);
    let r = b.get(&callback).await;
    assert!(
        !signed_in(&r),
        "the flow was used by the wrong state: {}",
        r.body
    );

    // Another browser (no flow cookie) cannot use someone's callback.
    let mut b = Browser::new(&origin);
    let callback = b
        .reach_callback("oidc", &person("u-2", "bo@example.com"))
        .await;
    let mut thief = Browser::new(&origin);
    let r = thief.get(&callback).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(!thief.cookies.contains_key("scimd_session"));

    // The right browser signs in once; the same callback again is refused.
    let mut b = Browser::new(&origin);
    let callback = b
        .reach_callback("oidc", &person("u-2", "bo@example.com"))
        .await;
    let ok = b.get(&callback).await;
    assert!(signed_in(&ok), "{}", ok.body);
    let replay = b.get(&callback).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);

    // A used code in a new flow of the same browser: the new state is right, the code is not.
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let fresh = b
        .reach_callback("oidc", &person("u-2", "bo@example.com"))
        .await;
    let new_state = fresh
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let replayed = format!("{origin}/auth/oidc/callback?code={code}&state={new_state}");
    let r = b.get(&replayed).await;
    assert!(!signed_in(&r), "a replayed code: {}", r.body);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);

    // A flow older than ten minutes is over.
    let mut b = Browser::new(&origin);
    let callback = b
        .reach_callback("oidc", &person("u-2", "bo@example.com"))
        .await;
    app.clock.advance(11 * MINUTE);
    let r = b.get(&callback).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // The person declined at the provider: said plainly, escaped.
    let mut b = Browser::new(&origin);
    b.get("/auth/oidc/start").await;
    let r = b
        .get("/auth/oidc/callback?error=%3Cscript%3Ealert(1)%3C/script%3E&state=x")
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    // Escaped as HTML entities (the templates write `&#60;`, the same as `&lt;`).
    assert!(
        r.body.contains("&lt;script&gt;") || r.body.contains("&#60;script&#62;"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<script>"));
    let r = b.get("/auth/nowhere/start").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn an_unverified_or_missing_email_is_refused(mut app: TestApp) {
    let idp = Provider::start();
    let origin = serve(&mut app, |_| oidc(&idp)).await;
    for claims in [
        json!({"sub": "u-3", "email": "cy@example.com", "email_verified": false}),
        json!({"sub": "u-3", "email": "cy@example.com"}),
        json!({"sub": "u-3", "email_verified": true}),
        json!({"sub": "u-3", "email": "<b>cy</b>", "email_verified": true}),
    ] {
        let mut b = Browser::new(&origin);
        let r = b.sign_in("oidc", &claims).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{claims}: {}", r.body);
        assert!(r.body.contains("verified email address"), "{}", r.body);
        assert!(r.body.contains("text/html") || r.body.starts_with("<!doctype html>"));
        assert!(!b.cookies.contains_key("scimd_session"));
    }
    assert!(app
        .store
        .account_by_email("cy@example.com")
        .await
        .unwrap()
        .is_none());
}

async fn a_deactivated_member_loses_that_organizations_rights_at_once(mut app: TestApp) {
    let idp = Provider::start();
    let origin = serve(&mut app, |_| oidc(&idp)).await;
    let provider = admin_token(&app).await;
    // An admin adds the person, who then signs in with the provider.
    let added = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": "dee@example.com"})),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let id = added.body["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&origin);
    b.sign_in("oidc", &person("u-4", "dee@example.com")).await;
    assert!(b.get("/").await.body.contains("Acme (member, active)"));
    let token = b.access_token().await;
    let r = admin(&app, &token, Method::GET, "/orgs/acme/members", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The identity provider deactivates the membership through SCIM.
    let off = app
        .patch(
            &format!("/Users/{id}"),
            crate::helpers::ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let r = admin(&app, &token, Method::GET, "/orgs/acme/members", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "at once: {}", r.body);
    assert!(b.get("/").await.body.contains("Acme (member, inactive)"));
    // Removed: nothing is left in acme; the account still signs in.
    app.delete(&format!("/Users/{id}")).await;
    let again = Browser::new(&origin)
        .sign_in("oidc", &person("u-4", "dee@example.com"))
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let r = admin(&app, &token, Method::GET, "/orgs/acme/groups", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

async fn the_subject_is_remembered_across_an_email_change(mut app: TestApp) {
    let idp = Provider::start();
    let origin = serve(&mut app, |_| oidc(&idp)).await;
    let mut b = Browser::new(&origin);
    b.sign_in("oidc", &person("u-5", "eve@old.example")).await;
    let first = b.access_token().await;
    let first_id =
        admin(&app, &first, Method::GET, "/me", None).await.body["account"]["id"].clone();
    // Someone else already has the new address: the identity still stays with its account.
    app.user("eve@new.example").await;
    let mut b = Browser::new(&origin);
    b.sign_in("oidc", &person("u-5", "eve@new.example")).await;
    let home = b.get("/").await;
    assert!(
        home.body
            .contains("Signed in as <strong>eve@old.example</strong>"),
        "{}",
        home.body
    );
    let token = b.access_token().await;
    let me = admin(&app, &token, Method::GET, "/me", None).await;
    assert_eq!(me.body["account"]["id"], first_id);
    assert_eq!(
        crate::tenancy::sql_count(&app, "select count(*) from federated_identity").await,
        1
    );
}

async fn microsoft_tokens_must_come_from_their_own_tenant(mut app: TestApp) {
    let idp = Provider::start();
    let template = format!("{}/ms/{{tenantid}}/v2.0", idp.url);
    let issuer = template.clone();
    let origin = serve(&mut app, |_| {
        vec![ProviderConfig::microsoft(
            "scimd-test".into(),
            "a client secret".into(),
            "common",
            Some(issuer),
        )]
    })
    .await;
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let iss = |t: &str| template.replace("{tenantid}", t);
    let good = json!({"sub": "ms-1", "tid": tid, "iss": iss(tid), "email": "fay@contoso.example", "xms_edov": true});
    let mut b = Browser::new(&origin);
    let r = b.sign_in("microsoft", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b.get("/").await.body.contains("fay@contoso.example"));

    // A token whose issuer is another tenant's than its own `tid`: refused.
    let mut other = good.clone();
    other["iss"] = json!(iss("00000000-0000-0000-0000-000000000001"));
    let r = Browser::new(&origin).sign_in("microsoft", &other).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    // Entra's email claim alone is not a verified address.
    let mut plain = good.clone();
    plain.as_object_mut().unwrap().remove("xms_edov");
    let r = Browser::new(&origin).sign_in("microsoft", &plain).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

/// GitHub's OAuth endpoints and user API, as the test's own small server.
struct Github {
    url: String,
    codes: Arc<Mutex<HashMap<String, (Value, String)>>>,
}

async fn github() -> Github {
    use axum::extract::{Form, Query, State};
    use axum::response::{IntoResponse, Redirect};
    type Codes = Arc<Mutex<HashMap<String, (Value, String)>>>;
    let codes: Codes = Arc::default();
    let authorize = |State(codes): State<Codes>, Query(q): Query<HashMap<String, String>>| async move {
        assert_eq!(q["code_challenge_method"], "S256");
        let code = uuid::Uuid::new_v4().simple().to_string();
        let user: Value = serde_json::from_str(&q["test_user"]).unwrap();
        codes
            .lock()
            .unwrap()
            .insert(code.clone(), (user, q["code_challenge"].clone()));
        Redirect::to(&format!(
            "{}?code={code}&state={}",
            q["redirect_uri"], q["state"]
        ))
    };
    let token = |State(codes): State<Codes>, Form(f): Form<HashMap<String, String>>| async move {
        use base64::Engine;
        use sha2::Digest;
        let Some((user, challenge)) = codes.lock().unwrap().remove(&f["code"]) else {
            return axum::Json(json!({"error": "bad_verification_code"})).into_response();
        };
        let verifier = f.get("code_verifier").cloned().unwrap_or_default();
        let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        assert_eq!(s256, challenge, "PKCE");
        assert_eq!(f["client_secret"], "a client secret");
        let token = format!(
            "gho_{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                user.to_string()
            )
        );
        axum::Json(
            json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
        )
        .into_response()
    };
    let user_of = |h: &axum::http::HeaderMap| -> Value {
        use base64::Engine;
        let auth = h["authorization"].to_str().unwrap();
        let t = auth.strip_prefix("Bearer gho_").unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .unwrap(),
        )
        .unwrap()
    };
    let app = axum::Router::new()
        .route("/login/oauth/authorize", axum::routing::get(authorize))
        .route("/login/oauth/access_token", axum::routing::post(token))
        .route(
            "/user",
            axum::routing::get(move |h: axum::http::HeaderMap| async move {
                let u = user_of(&h);
                axum::Json(json!({"id": u["id"], "login": u["login"]}))
            }),
        )
        .route(
            "/user/emails",
            axum::routing::get(move |h: axum::http::HeaderMap| async move {
                axum::Json(user_of(&h)["emails"].clone())
            }),
        )
        .with_state(codes.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Github { url, codes }
}

async fn github_signs_in_with_the_primary_verified_address(mut app: TestApp) {
    let gh = github().await;
    let (site, api) = (gh.url.clone(), gh.url.clone());
    let origin = serve(&mut app, |_| {
        vec![ProviderConfig::github(
            "scimd-test".into(),
            "a client secret".into(),
            Some(site),
            Some(api),
        )]
    })
    .await;
    let user = json!({"id": 4242, "login": "gus", "emails": [
        {"email": "gus@personal.example", "primary": false, "verified": true},
        {"email": "gus@corp.example", "primary": true, "verified": true},
    ]});
    let mut b = Browser::new(&origin);
    let r = b.sign_in("github", &user).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b
        .get("/")
        .await
        .body
        .contains("Signed in as <strong>gus@corp.example</strong>"));
    assert!(
        gh.codes.lock().unwrap().is_empty(),
        "the code was exchanged"
    );
    // The primary address unverified: no sign-in, even with another verified address.
    let unverified = json!({"id": 4343, "login": "hal", "emails": [
        {"email": "hal@personal.example", "primary": false, "verified": true},
        {"email": "hal@corp.example", "primary": true, "verified": false},
    ]});
    let r = Browser::new(&origin).sign_in("github", &unverified).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(app
        .store
        .account_by_email("hal@personal.example")
        .await
        .unwrap()
        .is_none());
}
