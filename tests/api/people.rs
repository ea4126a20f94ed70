//! People in the admin API: signing up, setting a password from an emailed link, signing in and
//! out, access tokens and their revocation, rate limits, and what each role may do.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::email::{worker, Sink};
use crate::helpers::{Resp, TestApp};
use crate::invitations::form_encode;
use crate::tenancy::sql_count;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

both!(
    signup_then_set_password_from_the_mail_then_sign_in_and_out,
    roles_decide_what_a_person_may_do,
    deactivation_and_removal_take_rights_away_at_once,
    admins_cannot_remove_or_deactivate_themselves,
    sign_in_is_rate_limited_per_email,
    sign_in_is_rate_limited_per_address,
    concurrent_wrong_passwords_stay_within_the_limit,
    password_change_ends_every_session,
    access_tokens_expire_and_cannot_be_forged,
    accounts_are_created_in_several_organizations_at_once,
    a_person_who_creates_an_organization_is_its_admin,
    link_lifetime_is_configurable,
    accept_page_limits_password_attempts,
    signup_with_an_existing_account_creates_nothing_and_says_so_by_mail,
    password_reset_mails_a_link_and_tells_nothing,
    links_go_only_by_email_when_mail_is_configured,
    a_configured_key_file_signs_access_tokens,
);

pub(crate) const PASSWORD: &str = "a long enough password";
const MINUTE: i64 = 60 * 1_000_000;

pub(crate) async fn public(
    app: &TestApp,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Resp {
    app.send(
        Method::POST,
        &format!("/admin/v1{path}"),
        None,
        Some(&body),
        headers,
    )
    .await
}

pub(crate) async fn login(app: &TestApp, email: &str, password: &str) -> Resp {
    public(
        app,
        "/login",
        json!({"email": email, "password": password}),
        &[],
    )
    .await
}

pub(crate) async fn login_token(app: &TestApp, email: &str) -> String {
    let r = login(app, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["accessToken"].as_str().unwrap().to_owned()
}

/// Posts the form of a page (`/setup/…` or `/invite/…`) a link leads to.
pub(crate) async fn post_form(app: &TestApp, link: &str, fields: &[(&str, &str)]) -> Resp {
    let path = &link[link.find("/setup/").or(link.find("/invite/")).unwrap()..];
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "scim.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form_encode(fields)))
        .unwrap();
    app.raw(req).await
}

pub(crate) async fn set_password(app: &TestApp, link: &str, password: &str) -> Resp {
    post_form(
        app,
        link,
        &[
            ("given_name", "Pat"),
            ("family_name", "Example"),
            ("password", password),
        ],
    )
    .await
}

/// A person with a password and these memberships (`[{"org": slug, "role": …}]`), created by
/// a provider admin; returns their access token.
pub(crate) async fn person(
    app: &TestApp,
    provider: &str,
    email: &str,
    memberships: Value,
) -> String {
    let r = admin(
        app,
        provider,
        Method::POST,
        "/accounts",
        Some(json!({"email": email, "givenName": "Pat", "familyName": "Example", "memberships": memberships})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The link reaches the person the way it reaches anyone: by mail.
    let link = mailed_link(app, email, "/setup/").await;
    let set = set_password(app, &link, PASSWORD).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    login_token(app, email).await
}

pub(crate) async fn acme_admin(app: &TestApp, provider: &str, email: &str) -> String {
    person(
        app,
        provider,
        email,
        json!([{"org": "acme", "role": "admin"}]),
    )
    .await
}

pub(crate) async fn acme_member(app: &TestApp, provider: &str, email: &str) -> String {
    person(app, provider, email, json!([{"org": "acme"}])).await
}

/// The claims of an access token, unchecked.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The member id of `email` in an organization, from the members list.
pub(crate) async fn member_id(app: &TestApp, token: &str, slug: &str, email: &str) -> String {
    let r = admin(
        app,
        token,
        Method::GET,
        &format!("/orgs/{slug}/members"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .unwrap_or_else(|| panic!("{email} in {}", r.body))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn assert_forbidden(r: &Resp, needs: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"], "forbidden", "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains(needs), "{message:?} should say {needs:?}");
}

/// The first link under `prefix` in a delivered mail. Quoted-printable bodies break long lines
/// with a soft line break (`=` CRLF, RFC 2045 §6.7), which is undone first.
pub(crate) fn link_in(data: &str, prefix: &str) -> String {
    let data = data.replace("=\r\n", "");
    let at = data
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} in {data}"));
    data[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c))
        .collect()
}

async fn signup_then_set_password_from_the_mail_then_sign_in_and_out(mut app: TestApp) {
    app.configure(|c| c.mail_configured = true);
    let r = public(
        &app,
        "/signup",
        json!({"email": "Founder@Example.com", "givenName": "Fran", "familyName": "Founder",
               "organization": {"slug": "startup", "name": "Startup Inc"}}),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert!(
        !r.body.to_string().contains("/setup/"),
        "the link only goes by mail: {}",
        r.body
    );
    // No password yet: signing in fails until the link from the mail is used.
    assert_eq!(
        login(&app, "founder@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );

    let sink = Sink::start().await;
    let (w, _) = worker(&app, sink.port).await;
    assert_eq!(w.deliver_due().await.unwrap(), 1);
    let mail = sink.received();
    assert_eq!(mail[0].to, vec!["Founder@Example.com".to_owned()]);
    assert!(mail[0].data.contains("Startup Inc"), "{}", mail[0].data);
    let link = link_in(&mail[0].data, "http://127.0.0.1:8080/setup/");

    let page = app
        .raw(
            Request::builder()
                .uri(&link[link.find("/setup/").unwrap()..])
                .header("host", "scim.test")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.as_str().unwrap().contains("Fran"),
        "names prefilled"
    );
    let short = set_password(&app, &link, "short").await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.as_str().unwrap().contains("at least 12"));
    let ok = set_password(&app, &link, PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let again = set_password(&app, &link, "another long password").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "a link works once");

    assert_eq!(
        login(&app, "founder@example.com", "wrong password!!")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = login(&app, "founder@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tokenType"], "Bearer");
    assert_eq!(r.body["expiresIn"], 900);
    assert_eq!(r.body["memberships"][0]["slug"], "startup");
    assert_eq!(r.body["memberships"][0]["role"], "admin");
    let token = r.body["accessToken"].as_str().unwrap().to_owned();

    let me = admin(&app, &token, Method::GET, "/me", None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["account"]["email"], "Founder@Example.com");
    assert!(me.body["account"]["lastActiveAt"].is_string());
    let members = admin(&app, &token, Method::GET, "/orgs/startup/members", None).await;
    assert_eq!(members.status, StatusCode::OK, "{}", members.body);
    assert_eq!(members.body["items"][0]["role"], "admin");
    assert_eq!(members.body["items"][0]["status"], "active");
    assert!(members.body["items"][0]["lastActiveAt"].is_string());

    let out = admin(&app, &token, Method::POST, "/logout", None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let after = admin(&app, &token, Method::GET, "/me", None).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "logout ends the token at once"
    );
}

async fn roles_decide_what_a_person_may_do(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    app.other_org("gamma").await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    let pat = person(
        &app,
        &provider,
        "pat@example.com",
        json!([{"org": "acme", "role": "member"}, {"org": "beta", "role": "admin"}]),
    )
    .await;
    let boss_id = member_id(&app, &boss, "acme", "boss@example.com").await;
    let pat_id = member_id(&app, &pat, "acme", "pat@example.com").await;

    // A member reads the directory of their organization...
    for path in ["/orgs/acme/members", "/orgs/acme/groups"] {
        let r = admin(&app, &pat, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    // ...edits their own profile only...
    let own = admin(
        &app,
        &pat,
        Method::PATCH,
        &format!("/orgs/acme/members/{pat_id}"),
        Some(json!({"givenName": "Patricia", "displayName": "Patricia E."})),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["displayName"], "Patricia E.");
    let other = admin(
        &app,
        &pat,
        Method::PATCH,
        &format!("/orgs/acme/members/{boss_id}"),
        Some(json!({"givenName": "Mallory"})),
    )
    .await;
    assert_forbidden(&other, "only their own profile");
    let promote = admin(
        &app,
        &pat,
        Method::PATCH,
        &format!("/orgs/acme/members/{pat_id}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_forbidden(&promote, "admin role");
    // ...and nothing an admin does.
    for (method, path, body) in [
        (
            Method::POST,
            "/orgs/acme/groups",
            Some(json!({"displayName": "X"})),
        ),
        (Method::GET, "/orgs/acme/audit", None),
        (Method::GET, "/orgs/acme/invitations", None),
        (
            Method::POST,
            "/orgs/acme/invitations",
            Some(json!({"email": "x@example.com", "firstName": "X", "lastName": "Y"})),
        ),
        (
            Method::POST,
            "/orgs/acme/members",
            Some(json!({"email": "x@example.com"})),
        ),
        (
            Method::DELETE,
            &format!("/orgs/acme/members/{boss_id}") as &str,
            None,
        ),
    ] {
        let r = admin(&app, &pat, method.clone(), path, body).await;
        assert_forbidden(&r, "needs the admin role in organization \"acme\"");
    }
    // The same person is an admin in beta, with an admin's rights there.
    let g = admin(
        &app,
        &pat,
        Method::POST,
        "/orgs/beta/groups",
        Some(json!({"displayName": "Beta team"})),
    )
    .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    // No rights where they are not a member, and the answer is the same for a missing org.
    let gamma = admin(&app, &pat, Method::GET, "/orgs/gamma/members", None).await;
    assert_forbidden(&gamma, "not an active member");
    let missing = admin(&app, &pat, Method::GET, "/orgs/nowhere/members", None).await;
    assert_forbidden(&missing, "not an active member");
    // A person sees only their own organizations.
    let orgs = admin(&app, &pat, Method::GET, "/orgs", None).await;
    let slugs: Vec<&str> = orgs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme", "beta"], "{}", orgs.body);
    // The admin of acme does what admins do: promote pat.
    let promoted = admin(
        &app,
        &boss,
        Method::PATCH,
        &format!("/orgs/acme/members/{pat_id}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(promoted.body["role"], "admin");
    let audit = admin(&app, &pat, Method::GET, "/orgs/acme/audit", None).await;
    assert_eq!(audit.status, StatusCode::OK, "now an admin: {}", audit.body);
    // The same log at /audit: pat is an admin of two organizations now, so it must be named.
    let unnamed = admin(&app, &pat, Method::GET, "/audit", None).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{}", unnamed.body);
    assert_eq!(unnamed.body["field"], "org");
    let named = admin(&app, &pat, Method::GET, "/audit?org=acme&count=2", None).await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.body);
    assert_eq!(named.body["totalResults"], audit.body["totalResults"]);
    assert_eq!(named.body["items"].as_array().unwrap().len(), 2);
    let boss_log = admin(&app, &boss, Method::GET, "/audit", None).await;
    assert_eq!(
        boss_log.body["totalResults"], audit.body["totalResults"],
        "boss is an admin of acme alone"
    );
    let beta_by_boss = admin(&app, &boss, Method::GET, "/audit?org=beta", None).await;
    assert_forbidden(&beta_by_boss, "admin role in organization \"beta\"");
    let actors: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(
        actors.iter().any(|a| a.starts_with("account:")),
        "people are named in the audit log: {actors:?}"
    );
}

async fn deactivation_and_removal_take_rights_away_at_once(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    let pat = person(
        &app,
        &provider,
        "pat@example.com",
        json!([{"org": "acme", "role": "member"}, {"org": "beta", "role": "member"}]),
    )
    .await;
    let pat_id = member_id(&app, &boss, "acme", "pat@example.com").await;
    let path = format!("/orgs/acme/members/{pat_id}");

    let off = admin(
        &app,
        &boss,
        Method::PATCH,
        &path,
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.body["status"], "inactive");
    let r = admin(&app, &pat, Method::GET, "/orgs/acme/members", None).await;
    assert_forbidden(&r, "not an active member");
    let beta = admin(&app, &pat, Method::GET, "/orgs/beta/members", None).await;
    assert_eq!(
        beta.status,
        StatusCode::OK,
        "other memberships keep their rights"
    );

    let on = admin(
        &app,
        &boss,
        Method::PATCH,
        &path,
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(on.body["status"], "active", "{}", on.body);
    assert_eq!(
        admin(&app, &pat, Method::GET, "/orgs/acme/members", None)
            .await
            .status,
        StatusCode::OK
    );

    let gone = admin(&app, &boss, Method::DELETE, &path, None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let r = admin(&app, &pat, Method::GET, "/orgs/acme/members", None).await;
    assert_forbidden(&r, "not an active member");
    // Removal takes the membership only: the account still signs in, with its other membership.
    let again = login(&app, "pat@example.com", PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let orgs: Vec<&str> = again.body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slug"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, ["beta"]);
}

async fn admins_cannot_remove_or_deactivate_themselves(app: TestApp) {
    let provider = admin_token(&app).await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    let other = acme_admin(&app, &provider, "other@example.com").await;
    let boss_id = member_id(&app, &boss, "acme", "boss@example.com").await;
    let other_id = member_id(&app, &boss, "acme", "other@example.com").await;
    let path = format!("/orgs/acme/members/{boss_id}");

    let off = admin(
        &app,
        &boss,
        Method::PATCH,
        &path,
        Some(json!({"active": false})),
    )
    .await;
    assert_forbidden(&off, "cannot deactivate themselves");
    let rm = admin(&app, &boss, Method::DELETE, &path, None).await;
    assert_forbidden(&rm, "cannot remove themselves");
    let many = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/members/remove",
        Some(json!({"ids": [boss_id]})),
    )
    .await;
    assert_eq!(many.status, StatusCode::OK, "{}", many.body);
    assert_eq!(many.body["removed"], json!([]));
    assert_eq!(many.body["failed"][0]["status"], 403, "{}", many.body);
    assert_eq!(many.body["failed"][0]["error"], "forbidden");
    // Still an admin, still active, still there.
    let me = admin(&app, &boss, Method::GET, "/me", None).await;
    assert_eq!(me.body["memberships"][0]["role"], "admin");
    assert_eq!(me.body["memberships"][0]["status"], "active");
    // Another admin may do it; then the last admin is kept by the organization rule.
    let r = admin(&app, &other, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let last = admin(
        &app,
        &provider,
        Method::PATCH,
        &format!("/orgs/acme/members/{other_id}"),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.body);
    assert_eq!(last.body["error"], "last_admin");
}

async fn sign_in_is_rate_limited_per_email(app: TestApp) {
    let provider = admin_token(&app).await;
    acme_member(&app, &provider, "pat@example.com").await;
    // The successful sign-in above cleared the count; five wrong passwords are answered...
    for _ in 0..5 {
        let r = login(&app, "pat@example.com", "wrong password!!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // ...then even the right one waits for the window to pass.
    let r = login(&app, "PAT@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.body["error"], "rate_limited");
    let wait: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60 + 1).contains(&wait), "{wait}");
    // Unknown emails are counted the same way and answered like wrong passwords.
    let unknown = login(&app, "nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.body["message"],
        "the email or password is not right"
    );
    let counted = sql_count(&app, "select count(*) from login_throttle").await;
    assert!(counted >= 3, "pat, nobody and the address: {counted}");
    app.clock.advance(15 * MINUTE + 1);
    assert_eq!(
        login(&app, "pat@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    // The new window's first attempt cleared the old window's counts.
    assert_eq!(
        sql_count(&app, "select count(*) from login_throttle").await,
        1,
        "only the address's count of this window remains"
    );
}

async fn a_configured_key_file_signs_access_tokens(mut app: TestApp) {
    let file = std::env::temp_dir().join(format!("scimd-key-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, [42u8; 48]).unwrap();
    let path = file.clone();
    app.configure(|c| c.signing_key_file = Some(path));
    let provider = admin_token(&app).await;
    let token = acme_member(&app, &provider, "pat@example.com").await;
    let claims = claims_of(&token);
    let with_file_key = scimd::service::people::Keys::from_secret(&[42u8; 48])
        .issue(
            claims["sub"].as_str().unwrap(),
            claims["sid"].as_str().unwrap(),
            app.clock.now(),
            app.clock.now() + 10 * MINUTE,
        )
        .unwrap();
    let r = admin(&app, &with_file_key, Method::GET, "/me", None).await;
    assert_eq!(r.status, StatusCode::OK, "the file's key signs: {}", r.body);
    let stored = sql_count(&app, "select count(*) from signing_key").await;
    assert_eq!(stored, 0, "no key is generated into the database");
    std::fs::remove_file(file).unwrap();
}

async fn sign_in_is_rate_limited_per_address(mut app: TestApp) {
    app.configure(|c| c.trust_forwarded_for = true);
    let provider = admin_token(&app).await;
    acme_member(&app, &provider, "pat@example.com").await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    // The setup above signed in from no address; 50 wrong attempts from one address, spread
    // over many emails, exhaust that address.
    for i in 0..50 {
        let r = public(
            &app,
            "/login",
            json!({"email": format!("guess{i}@example.com"), "password": "wrong password!!"}),
            &from("10.0.0.1, 192.0.2.7"),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            r.body
        );
    }
    let body = json!({"email": "pat@example.com", "password": PASSWORD});
    let blocked = public(&app, "/login", body.clone(), &from("10.0.0.9, 192.0.2.7")).await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the last hop counts"
    );
    let elsewhere = public(&app, "/login", body, &from("192.0.2.8")).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
}

async fn concurrent_wrong_passwords_stay_within_the_limit(app: TestApp) {
    let provider = admin_token(&app).await;
    acme_member(&app, &provider, "pat@example.com").await;
    let tries = (0..16).map(|_| login(&app, "pat@example.com", "wrong password!!"));
    let results = futures::future::join_all(tries).await;
    let refused = results
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let limited = results
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        (refused, limited),
        (5, 11),
        "exactly five passwords are checked"
    );
}

async fn password_change_ends_every_session(app: TestApp) {
    let provider = admin_token(&app).await;
    let first = acme_member(&app, &provider, "pat@example.com").await;
    let second = login_token(&app, "pat@example.com").await;
    let change = |token: String, current: &'static str, new: &'static str| {
        let app = &app;
        async move {
            admin(
                app,
                &token,
                Method::POST,
                "/me/password",
                Some(json!({"currentPassword": current, "newPassword": new})),
            )
            .await
        }
    };
    let wrong = change(first.clone(), "not my password!", "a brand new password").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert_eq!(wrong.body["field"], "currentPassword");
    let short = change(first.clone(), PASSWORD, "short").await;
    assert_eq!(short.body["field"], "newPassword", "{}", short.body);
    let ok = change(first.clone(), PASSWORD, "a brand new password").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let fresh = ok.body["accessToken"].as_str().unwrap().to_owned();
    for old in [&first, &second] {
        let r = admin(&app, old, Method::GET, "/me", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "old sessions end");
    }
    assert_eq!(
        admin(&app, &fresh, Method::GET, "/me", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        login(&app, "pat@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "pat@example.com", "a brand new password")
            .await
            .status,
        StatusCode::OK
    );
    // Provider tokens have no password to change.
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/me/password",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn access_tokens_expire_and_cannot_be_forged(app: TestApp) {
    let provider = admin_token(&app).await;
    let token = acme_member(&app, &provider, "pat@example.com").await;
    // Another key signs a token for the same account and session: refused.
    let parts: Vec<&str> = token.split('.').collect();
    let claims = claims_of(&token);
    let forged = scimd::service::people::Keys::from_secret(&[1; 32])
        .issue(
            claims["sub"].as_str().unwrap(),
            claims["sid"].as_str().unwrap(),
            app.clock.now(),
            app.clock.now() + 10 * MINUTE,
        )
        .unwrap();
    assert_eq!(
        admin(&app, &forged, Method::GET, "/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    assert_eq!(
        admin(&app, &tampered, Method::GET, "/me", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin(&app, &token, Method::GET, "/me", None).await.status,
        StatusCode::OK
    );
    app.clock.advance(15 * MINUTE);
    assert_eq!(
        admin(&app, &token, Method::GET, "/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "expired after 15 minutes"
    );
}

async fn accounts_are_created_in_several_organizations_at_once(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    // An admin of acme alone cannot create an account in beta: nothing is written.
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/accounts",
        Some(
            json!({"email": "new@example.com", "memberships": [{"org": "acme"}, {"org": "beta"}]}),
        ),
    )
    .await;
    assert_forbidden(&r, "admin role in organization \"beta\"");
    assert!(app
        .store
        .account_by_email("new@example.com")
        .await
        .unwrap()
        .is_none());
    let twice = admin(
        &app,
        &provider,
        Method::POST,
        "/accounts",
        Some(
            json!({"email": "new@example.com", "memberships": [{"org": "acme"}, {"org": "acme"}]}),
        ),
    )
    .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.body);
    assert_eq!(twice.body["field"], "memberships");

    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/accounts",
        Some(
            json!({"email": "new@example.com", "givenName": "Nia", "familyName": "New",
                    "memberships": [{"org": "acme", "role": "admin"}, {"org": "beta"}]}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("setupEmailSent").is_none(), "{}", r.body);
    assert!(r.body.get("accountId").is_none(), "{}", r.body);
    assert_eq!(r.body["emailDelivery"], "off", "{}", r.body);
    assert_eq!(r.body["memberships"][0]["role"], "admin");
    assert_eq!(r.body["memberships"][1]["role"], "member");
    let link = mailed_link(&app, "new@example.com", "/setup/").await;
    let new_id = r.body["memberships"][0]["memberId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = member(&app, &boss, &new_id).await;
    assert_eq!(before["status"], "active", "{before}");
    assert!(before["lastActiveAt"].is_null());
    assert_eq!(
        set_password(&app, &link, PASSWORD).await.status,
        StatusCode::OK
    );
    let nia = login_token(&app, "new@example.com").await;
    let signed_in = member(&app, &boss, &new_id).await;
    assert!(
        signed_in["lastActiveAt"].is_null(),
        "signing in is not acting in acme: {signed_in}"
    );
    member(&app, &nia, &new_id).await;
    let active = member(&app, &boss, &new_id).await;
    assert_eq!(active["status"], "active", "{active}");
    assert!(active["lastActiveAt"].is_string(), "{active}");
    // Adding the same person again is a conflict; the existing membership is untouched.
    let again = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/beta/members",
        Some(json!({"email": "NEW@example.com"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    // Added to a third organization: the account has a password, so no setup mail.
    app.other_org("gamma").await;
    let added = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/gamma/members",
        Some(json!({"email": "new@example.com", "role": "admin"})),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert!(added.body.get("setupEmailSent").is_none());
    assert_eq!(added.body["role"], "admin");
    let mail = deliver(&app).await;
    assert!(
        !mail.iter().any(|m| m.to == ["new@example.com"]),
        "the account has a password, so no setup mail: {mail:?}"
    );
}

/// A member of acme as the members list shows them.
async fn member(app: &TestApp, token: &str, id: &str) -> Value {
    let list = admin(app, token, Method::GET, "/orgs/acme/members", None).await;
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} in {}", list.body))
}

async fn a_person_who_creates_an_organization_is_its_admin(app: TestApp) {
    let provider = admin_token(&app).await;
    let pat = acme_member(&app, &provider, "pat@example.com").await;
    let r = admin(
        &app,
        &pat,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "pats-org", "name": "Pat's org"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let me = admin(&app, &pat, Method::GET, "/me", None).await;
    let roles: Vec<(&str, &str)> = me.body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["slug"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("acme", "member"), ("pats-org", "admin")]);
    let taken = admin(
        &app,
        &pat,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "pats-org"})),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    // The founder is the organization's last admin, so the rule holds from the start.
    let id = member_id(&app, &pat, "pats-org", "pat@example.com").await;
    let demote = admin(
        &app,
        &provider,
        Method::PATCH,
        &format!("/orgs/pats-org/members/{id}"),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(demote.body["error"], "last_admin", "{}", demote.body);
}

async fn link_lifetime_is_configurable(mut app: TestApp) {
    app.configure(|c| c.link_ttl = 60 * MINUTE);
    let provider = admin_token(&app).await;
    let now = app.clock.now();
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/invitations",
        Some(json!({"email": "dana@example.com", "firstName": "Dana", "lastName": "S"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let expires = time::OffsetDateTime::parse(
        r.body["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let micros = i64::try_from(expires.unix_timestamp_nanos() / 1000).unwrap();
    assert!(
        (micros - now - 60 * MINUTE).abs() < MINUTE,
        "an hour, not a week"
    );
    let setup = admin(
        &app,
        &provider,
        Method::POST,
        "/accounts",
        Some(json!({"email": "sam@example.com", "memberships": [{"org": "acme"}]})),
    )
    .await;
    assert_eq!(setup.status, StatusCode::CREATED, "{}", setup.body);
    let mail = deliver(&app).await;
    let setup_link = link_to(&mail, "sam@example.com", "/setup/");
    let link = link_to(&mail, "dana@example.com", "/invite/");
    app.clock.advance(61 * MINUTE);
    let accepted = post_form(
        &app,
        &link,
        &[
            ("given_name", "Dana"),
            ("family_name", "S"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(accepted.status, StatusCode::NOT_FOUND, "expired");
    assert_eq!(
        set_password(&app, &setup_link, PASSWORD).await.status,
        StatusCode::NOT_FOUND,
        "setup links expire too"
    );
}

async fn accept_page_limits_password_attempts(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    person(&app, &provider, "pat@example.com", json!([{"org": "beta"}])).await;
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/invitations",
        Some(json!({"email": "pat@example.com", "firstName": "Pat", "lastName": "E"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "pat@example.com", "/invite/").await;
    for _ in 0..5 {
        let wrong = post_form(&app, &link, &[("password", "not my password!")]).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        assert!(wrong.body.as_str().unwrap().contains("not right"));
    }
    let limited = post_form(&app, &link, &[("password", PASSWORD)]).await;
    assert_eq!(limited.status, StatusCode::BAD_REQUEST);
    assert!(
        limited.body.as_str().unwrap().contains("Too many attempts"),
        "{}",
        limited.body
    );
    // The same count guards sign-in.
    assert_eq!(
        login(&app, "pat@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.clock.advance(15 * MINUTE);
    let ok = post_form(&app, &link, &[("password", PASSWORD)]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

async fn signup(app: &TestApp, email: &str, slug: &str) -> Resp {
    public(
        app,
        "/signup",
        json!({"email": email, "givenName": "P", "familyName": "E", "organization": {"slug": slug}}),
        &[],
    )
    .await
}

/// The newest link under `path` (`/setup/` or `/invite/`) mailed to `to`: the outbox is
/// delivered to a loopback SMTP sink, as a person's mail server would receive it.
pub(crate) async fn mailed_link(app: &TestApp, to: &str, path: &str) -> String {
    link_to(&deliver(app).await, to, path)
}

/// The newest link under `path` in the mail to `to` among `mail`.
pub(crate) fn link_to(mail: &[crate::sink::Received], to: &str, path: &str) -> String {
    let m = mail
        .iter()
        .rev()
        .find(|m| {
            m.to.iter().any(|t| t.eq_ignore_ascii_case(to))
                && m.data.replace("=\r\n", "").contains(path)
        })
        .unwrap_or_else(|| panic!("no mail to {to} with {path} in {mail:?}"));
    let data = m.data.replace("=\r\n", "");
    let at = data.find(path).unwrap();
    let start = data[..at].rfind("http").unwrap();
    link_in(&data, &data[start..at + path.len()])
}

/// Delivers the outbox to a fresh sink and returns what it received.
pub(crate) async fn deliver(app: &TestApp) -> Vec<crate::sink::Received> {
    let sink = Sink::start().await;
    let (w, _) = worker(app, sink.port).await;
    w.deliver_due().await.unwrap();
    sink.received()
}

async fn signup_with_an_existing_account_creates_nothing_and_says_so_by_mail(mut app: TestApp) {
    let provider = admin_token(&app).await;
    acme_member(&app, &provider, "pat@example.com").await;
    app.configure(|c| c.mail_configured = true);
    deliver(&app).await; // the setup mail of pat's account
    let existing = signup(&app, "Pat@example.com", "pat-co").await;
    let new = signup(&app, "new@example.com", "new-co").await;
    assert_eq!(existing.status, StatusCode::ACCEPTED, "{}", existing.body);
    assert_eq!(
        (existing.status, &existing.body),
        (new.status, &new.body),
        "the answer does not tell whether the address has an account"
    );
    assert!(app.store.org_by_slug("pat-co").await.unwrap().is_none());
    assert!(app.store.org_by_slug("new-co").await.unwrap().is_some());
    let mail = deliver(&app).await;
    let to_pat = mail
        .iter()
        .find(|m| m.to == ["pat@example.com"])
        .expect("to the address as the account has it");
    assert!(
        to_pat.data.contains("already have an account"),
        "{}",
        to_pat.data
    );
    // Its link sets a new password: a way back in for someone who forgot theirs.
    let link = link_in(&to_pat.data, "http://127.0.0.1:8080/setup/");
    let set = set_password(&app, &link, "my new long password").await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        login(&app, "pat@example.com", "my new long password")
            .await
            .status,
        StatusCode::OK
    );

    // Bad and taken slugs are refused the same way for every address.
    let bad = signup(&app, "other@example.com", "Not A Slug").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["field"], "slug");
    for email in ["pat@example.com", "other@example.com"] {
        let taken = signup(&app, email, "acme").await;
        assert_eq!(
            taken.status,
            StatusCode::CONFLICT,
            "{email}: {}",
            taken.body
        );
    }
    assert!(
        app.store
            .account_by_email("other@example.com")
            .await
            .unwrap()
            .is_none(),
        "a refused signup writes nothing"
    );
}

async fn password_reset_mails_a_link_and_tells_nothing(mut app: TestApp) {
    let provider = admin_token(&app).await;
    let before = acme_member(&app, &provider, "pat@example.com").await;
    app.configure(|c| c.mail_configured = true);
    // Someone an identity provider created: a membership, no password.
    app.user("scim.user@example.com").await;
    deliver(&app).await;

    let reset = |email: &'static str| public(&app, "/password-reset", json!({"email": email}), &[]);
    let known = reset("pat@example.com").await;
    let unknown = reset("nobody@example.com").await;
    let provisioned = reset("SCIM.user@example.com").await;
    assert_eq!(known.status, StatusCode::ACCEPTED, "{}", known.body);
    assert_eq!(
        (&known.status, &known.body),
        (&unknown.status, &unknown.body)
    );
    assert_eq!(
        (&known.status, &known.body),
        (&provisioned.status, &provisioned.body)
    );
    let bad = reset("not an email").await;
    assert_eq!(bad.body["field"], "email", "{}", bad.body);

    let mail = deliver(&app).await;
    let mut to: Vec<&str> = mail.iter().map(|m| m.to[0].as_str()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        ["pat@example.com", "scim.user@example.com"],
        "no mail for unknown addresses"
    );
    for m in &mail {
        let link = link_in(&m.data, "http://127.0.0.1:8080/setup/");
        let set = set_password(&app, &link, "a reset long password").await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        let r = login(&app, &m.to[0], "a reset long password").await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", m.to[0], r.body);
    }
    assert_eq!(
        admin(&app, &before, Method::GET, "/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "a reset ends the sessions from before"
    );
    // A few mails per address and window, then 429: nobody can flood a mailbox.
    assert_eq!(reset("pat@example.com").await.status, StatusCode::ACCEPTED);
    assert_eq!(reset("pat@example.com").await.status, StatusCode::ACCEPTED);
    assert_eq!(
        reset("pat@example.com").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn links_go_only_by_email_when_mail_is_configured(mut app: TestApp) {
    app.configure(|c| c.mail_configured = true);
    let provider = admin_token(&app).await;
    let inv = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/invitations",
        Some(json!({"email": "dana@example.com", "firstName": "Dana", "lastName": "S"})),
    )
    .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.body);
    assert!(inv.body.get("link").is_none(), "{}", inv.body);
    let acct = admin(
        &app,
        &provider,
        Method::POST,
        "/accounts",
        Some(json!({"email": "sam@example.com", "memberships": [{"org": "acme"}]})),
    )
    .await;
    assert_eq!(acct.status, StatusCode::CREATED, "{}", acct.body);
    assert!(acct.body.get("setupLink").is_none(), "{}", acct.body);
    let sink = Sink::start().await;
    let (w, _) = worker(&app, sink.port).await;
    assert_eq!(w.deliver_due().await.unwrap(), 2);
    let mail = sink.received();
    let setup = mail.iter().find(|m| m.to == ["sam@example.com"]).unwrap();
    assert!(
        setup.data.contains("test (an administrator)"),
        "{}",
        setup.data
    );
    let link = link_in(&setup.data, "http://127.0.0.1:8080/setup/");
    assert_eq!(
        set_password(&app, &link, PASSWORD).await.status,
        StatusCode::OK
    );
    login_token(&app, "sam@example.com").await;
}
