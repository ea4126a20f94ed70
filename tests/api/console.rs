//! The console's pages in-process, as an attacker would try them: forms without the session's
//! CSRF token, a sign-in form posted from another site, a member acting as an admin, another
//! organization's people, and the headers that keep pages out of frames and scripts out.
//! (The flows themselves run in real Chromium: tests/browser.)

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::*;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine;
use serde_json::json;

both!(
    signed_out_pages_lead_to_sign_in,
    a_sign_in_form_from_another_site_is_refused,
    every_change_needs_the_session_csrf_token,
    the_provisioning_forms_need_the_session_csrf_token,
    a_member_changes_nothing_in_the_console,
    another_organizations_people_are_out_of_reach,
    a_csv_without_an_email_column_is_refused_whole,
    sign_out_ends_the_session_on_the_server,
    pages_forbid_inline_script_and_framing_and_assets_are_cached,
    a_whole_address_finds_a_member_by_any_of_their_addresses,
);

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A browser session: its cookie and its CSRF token.
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// Adds a person to acme with a role and a password; their member id.
pub(crate) async fn person(app: &TestApp, provider: &str, email: &str, role: &str) -> String {
    let r = admin(
        app,
        provider,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": email, "role": role, "givenName": "Pat", "familyName": "Doe"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    scimd::service::credentials::set_password_as_operator(&app.store, &app.clock, email, PASSWORD)
        .await
        .unwrap();
    r.body["id"].as_str().unwrap().to_owned()
}

fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

pub(crate) async fn page(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    form: &str,
) -> Resp {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    app.raw(req).await
}

pub(crate) fn text(r: &Resp) -> String {
    r.body.as_str().map(str::to_owned).unwrap_or_default()
}

/// Signs in through the sign-in page, as a browser does.
pub(crate) async fn sign_in(app: &TestApp, email: &str) -> Session {
    let form_page = page(app, Method::GET, "/signin", "", "").await;
    let form_cookie = set_cookie(&form_page, "scimd_form").unwrap();
    let token = form_cookie.split_once('=').unwrap().1.to_owned();
    assert!(
        text(&form_page).contains(&token),
        "the form carries the token"
    );
    let r = page(
        app,
        Method::POST,
        "/signin",
        &form_cookie,
        &format!(
            "form_token={token}&email={}&password={}",
            urlencode(email),
            urlencode(PASSWORD)
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let cookie = set_cookie(&r, "scimd_session").unwrap();
    let home = page(app, Method::GET, "/", &cookie, "").await;
    let csrf = home.headers["x-csrf-token"].to_str().unwrap().to_owned();
    Session { cookie, csrf }
}

pub(crate) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn role_of(app: &TestApp, provider: &str, id: &str) -> String {
    let r = admin(app, provider, Method::GET, "/orgs/acme/members", None).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn signed_out_pages_lead_to_sign_in(app: TestApp) {
    for path in ["/o/acme/users", "/o/acme/invite", "/o/acme/provisioning"] {
        let r = page(&app, Method::GET, path, "", "").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers[header::LOCATION], "/", "{path}");
    }
    let r = page(&app, Method::GET, "/", "", "").await;
    assert!(text(&r).contains("id=\"password\""), "{}", text(&r));
}

async fn a_sign_in_form_from_another_site_is_refused(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    // Right credentials, but no form token of this site's: no session starts.
    let form = format!("email=ada%40acme.test&password={}", urlencode(PASSWORD));
    let r = page(&app, Method::POST, "/signin", "", &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert!(set_cookie(&r, "scimd_session").is_none());
    let r = page(
        &app,
        Method::POST,
        "/signin",
        "scimd_form=forged",
        &format!("form_token=other&{form}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert!(set_cookie(&r, "scimd_session").is_none());
}

async fn every_change_needs_the_session_csrf_token(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let bob = person(&app, &provider, "bob@acme.test", "member").await;
    let s = sign_in(&app, "ada@acme.test").await;
    let path = format!("/o/acme/users/{bob}/role");
    for form in ["role=admin".to_owned(), "role=admin&csrf=wrong".to_owned()] {
        let r = page(&app, Method::POST, &path, &s.cookie, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
        assert!(text(&r).contains("nothing was done"), "{}", text(&r));
    }
    // Another session's token is no better.
    let other = sign_in(&app, "ada@acme.test").await;
    let form = format!("role=admin&csrf={}", other.csrf);
    let r = page(&app, Method::POST, &path, &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let form = format!("ids={bob}&csrf=nope");
    let r = page(&app, Method::POST, "/o/acme/users/remove", &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = page(
        &app,
        Method::POST,
        "/o/acme/invite",
        &s.cookie,
        "addresses=x%40y.z",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(role_of(&app, &provider, &bob).await, "member");
    assert!(
        admin(&app, &provider, Method::GET, "/orgs/acme/invitations", None)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // With the session's own token the change is made.
    let r = page(
        &app,
        Method::POST,
        &path,
        &s.cookie,
        &format!("role=admin&csrf={}", s.csrf),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("Role changed to admin."), "{}", text(&r));
    assert_eq!(role_of(&app, &provider, &bob).await, "admin");
}

async fn a_member_changes_nothing_in_the_console(app: TestApp) {
    let provider = admin_token(&app).await;
    let ada = person(&app, &provider, "ada@acme.test", "admin").await;
    person(&app, &provider, "bob@acme.test", "member").await;
    let s = sign_in(&app, "bob@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(text(&r).contains("read-only"), "{}", text(&r));
    assert!(!text(&r).contains("hx-post"), "no controls for a member");
    // Posting anyway: the admin API's own refusal, in the row; nothing changes.
    let r = page(
        &app,
        Method::POST,
        &format!("/o/acme/users/{ada}/active"),
        &s.cookie,
        &format!("csrf={}", s.csrf),
    )
    .await;
    assert!(text(&r).contains("needs the admin role"), "{}", text(&r));
    let r = admin(&app, &provider, Method::GET, "/orgs/acme/members", None).await;
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "active"));
    for path in ["/o/acme/users/remove", "/o/acme/users/remove/confirm"] {
        let form = format!("ids={ada}&csrf={}", s.csrf);
        let r = page(&app, Method::POST, path, &s.cookie, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", text(&r));
    }
    let r = page(
        &app,
        Method::POST,
        "/o/acme/invite",
        &s.cookie,
        &format!("addresses=x%40y.z&csrf={}", s.csrf),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = page(
        &app,
        Method::GET,
        "/o/acme/users?status=pending",
        &s.cookie,
        "",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "invitations are for admins"
    );
    let r = page(&app, Method::GET, "/o/acme/invitations", &s.cookie, "").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "invitations are for admins"
    );
    let form = format!("name=Sneaky&csrf={}", s.csrf);
    let r = page(&app, Method::POST, "/o/acme/groups", &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "groups are made by admins");
}

async fn another_organizations_people_are_out_of_reach(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let (_, other_token) = app.other_org("globex").await;
    let outsider = app
        .send(
            Method::POST,
            "/Users",
            Some(&other_token),
            Some(&json!({"schemas": [USER_SCHEMA], "userName": "gus@globex.test", "active": true})),
            &[],
        )
        .await;
    let outsider = id(&outsider.body);
    let s = sign_in(&app, "ada@acme.test").await;
    // Globex's pages: not a member there.
    let r = page(&app, Method::GET, "/o/globex/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!text(&r).contains("gus@globex.test"));
    let form = format!("role=admin&csrf={}", s.csrf);
    let r = page(
        &app,
        Method::POST,
        &format!("/o/globex/users/{outsider}/role"),
        &s.cookie,
        &form,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Globex's person through acme's pages: not found, and untouched.
    let r = page(
        &app,
        Method::POST,
        &format!("/o/acme/users/{outsider}/active"),
        &s.cookie,
        &format!("csrf={}", s.csrf),
    )
    .await;
    assert!(!text(&r).contains("gus@globex.test"), "{}", text(&r));
    let form = format!("ids={outsider}&csrf={}", s.csrf);
    let r = page(&app, Method::POST, "/o/acme/users/remove", &s.cookie, &form).await;
    assert!(text(&r).contains("Not removed"), "{}", text(&r));
    let still = app
        .send(
            Method::GET,
            &format!("/Users/{outsider}"),
            Some(&other_token),
            None,
            &[],
        )
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["active"], true);
}

async fn a_csv_without_an_email_column_is_refused_whole(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let s = sign_in(&app, "ada@acme.test").await;
    let b64 = |t: &str| urlencode(&base64::engine::general_purpose::STANDARD.encode(t));
    for (file, why) in [
        ("name,group membership\nx@y.z,\n", "email"),
        ("\u{0}\u{1}binary", "email"),
    ] {
        let form = format!("file={}&csrf={}", b64(file), s.csrf);
        let r = page(
            &app,
            Method::POST,
            "/o/acme/invite/csv/confirm",
            &s.cookie,
            &form,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
        assert!(text(&r).contains("nobody was invited"), "{}", text(&r));
        assert!(text(&r).contains(why), "{}", text(&r));
    }
    let r = admin(&app, &provider, Method::GET, "/orgs/acme/invitations", None).await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
}

async fn sign_out_ends_the_session_on_the_server(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let s = sign_in(&app, "ada@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let form = format!("csrf={}", s.csrf);
    let r = page(&app, Method::POST, "/auth/logout", &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The old cookie, replayed, opens nothing.
    let r = page(&app, Method::GET, "/o/acme/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

async fn pages_forbid_inline_script_and_framing_and_assets_are_cached(app: TestApp) {
    let r = page(&app, Method::GET, "/", "", "").await;
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for part in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let body = text(&r);
    assert!(!body.contains("<script>"), "no inline script");
    for (path, kind) in [
        ("/assets/htmx.min.js", "text/javascript"),
        ("/assets/console.js", "text/javascript"),
        ("/assets/console.css", "text/css"),
    ] {
        assert!(body.contains(path), "the page loads {path}");
        let a = page(&app, Method::GET, path, "", "").await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        let ct = a.headers[header::CONTENT_TYPE].to_str().unwrap();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let cache = a.headers[header::CACHE_CONTROL].to_str().unwrap();
        assert!(cache.contains("immutable"), "{path}: {cache}");
    }
}

async fn a_whole_address_finds_a_member_by_any_of_their_addresses(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    // An identity provider's user whose userName is not an address.
    let r = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "gus.g", "active": true,
                   "emails": [{"value": "Gus@Acme.test", "primary": true}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let s = sign_in(&app, "ada@acme.test").await;
    for (q, want) in [
        ("gus%40acme.test", "1 person"),
        ("ada%40acme.test", "1 person"),
        ("nobody%40acme.test", "0 people"),
        ("gus.", "1 person"),
    ] {
        let r = page(
            &app,
            Method::GET,
            &format!("/o/acme/users?q={q}"),
            &s.cookie,
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            text(&r).contains(&format!("<p id=\"total\">{want}</p>")),
            "{q}: {}",
            text(&r)
        );
    }
}

/// The organization's tokens as the admin API lists them: `(name, status)`, sorted.
async fn tokens_of(app: &TestApp, provider: &str) -> Vec<(String, String)> {
    let r = admin(app, provider, Method::GET, "/orgs/acme/tokens", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut v: Vec<(String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn the_provisioning_forms_need_the_session_csrf_token(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let s = sign_in(&app, "ada@acme.test").await;
    let other = sign_in(&app, "ada@acme.test").await;
    let listed = admin(&app, &provider, Method::GET, "/orgs/acme/tokens", None).await;
    let id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    let before = tokens_of(&app, &provider).await;
    let forms = [
        (
            "/o/acme/provisioning/tokens".to_owned(),
            "name=Sneaky&days=30",
        ),
        (format!("/o/acme/provisioning/tokens/{id}/rotate"), ""),
        (
            format!("/o/acme/provisioning/tokens/{id}/revoke"),
            "confirm=yes",
        ),
        ("/o/acme/provisioning/test".to_owned(), ""),
    ];
    for (path, fields) in &forms {
        // No token, a wrong one, and another session's.
        for csrf in [None, Some("wrong"), Some(other.csrf.as_str())] {
            let form = match csrf {
                Some(c) => format!("{fields}&csrf={c}"),
                None => (*fields).to_owned(),
            };
            let r = page(&app, Method::POST, path, &s.cookie, &form).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{path} {form}: {}",
                text(&r)
            );
            assert!(
                text(&r).contains("nothing was done"),
                "{path}: {}",
                text(&r)
            );
        }
    }
    // Nothing was created, rotated, revoked, or made and revoked by a connection test.
    assert_eq!(tokens_of(&app, &provider).await, before);
    // The same form with the session's token does what it says.
    let form = format!("name=Sneaky&days=30&csrf={}", s.csrf);
    let r = page(&app, Method::POST, &forms[0].0, &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(tokens_of(&app, &provider)
        .await
        .contains(&("Sneaky".to_owned(), "active".to_owned())));
}
