//! Account takeovers, tried as an attacker would: every way that once let someone other than an
//! address's owner set or use the credentials of its account, and the small leaks around them.
//! The rule (README, "Security model"): credentials are set or used only by someone who proved
//! control of the address, through a link mailed to it or a verified claim from a provider.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::{id, ops, Resp, TestApp, ORGANIZATION, USER_SCHEMA};
use crate::people::{
    deliver, login, login_token, mailed_link, person, post_form, public, set_password, PASSWORD,
};
use crate::tenancy::sql_count;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    links_never_come_from_the_host_header,
    another_organizations_admin_gets_no_link_for_a_shared_account,
    an_old_invitation_cannot_revive_a_deactivated_member,
    one_membership_per_account_per_organization,
    an_organization_sees_only_its_own_view_of_a_person,
    adding_a_person_tells_nothing_about_their_password,
    sent_mail_loses_its_link_and_is_purged,
    reset_links_are_short_lived_and_end_with_a_password_change,
    someone_elses_guessing_never_locks_out_the_right_password,
    sixty_four_posts_to_one_setup_link_hash_one_password,
);

const MINUTE: i64 = 60 * 1_000_000;
const DAY: i64 = 24 * 60 * MINUTE;
/// Where links point when no public URL is configured: the listen address (`Config::default`).
const DEFAULT_ORIGIN: &str = "http://127.0.0.1:8080";

/// Whether an answer carries anything that sets credentials: a setup or invitation link, or a
/// secret (`scimd_…`).
fn carries_a_secret(v: &Value) -> bool {
    let s = v.to_string();
    s.contains("/setup/") || s.contains("/invite/") || s.contains("scimd_")
}

/// A POST whose Host and X-Forwarded-Proto name an attacker's site.
async fn poisoned(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> Resp {
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    app.raw(req.body(axum::body::Body::from(body.to_string())).unwrap())
        .await
}

async fn links_never_come_from_the_host_header(mut app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "pat@example.com", json!([{"org": "acme"}])).await;
    let r = poisoned(
        &app,
        "/admin/v1/password-reset",
        None,
        json!({"email": "pat@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let link = mailed_link(&app, "pat@example.com", "/setup/").await;
    assert!(
        link.starts_with(&format!("{DEFAULT_ORIGIN}/setup/")),
        "without a public URL, links use the listen address, never the Host header: {link}"
    );

    // With a public URL (the old form, ending in /scim/v2, still works), links use its origin.
    app.configure(|c| c.public_url = Some("https://scim.example.com/scim/v2".into()));
    poisoned(
        &app,
        "/admin/v1/password-reset",
        None,
        json!({"email": "pat@example.com"}),
    )
    .await;
    let link = mailed_link(&app, "pat@example.com", "/setup/").await;
    assert!(
        link.starts_with("https://scim.example.com/setup/"),
        "{link}"
    );
    let r = poisoned(
        &app,
        "/admin/v1/orgs/acme/invitations",
        Some(&provider),
        json!({"email": "dana@example.com", "firstName": "D", "lastName": "S"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "dana@example.com", "/invite/").await;
    assert!(
        link.starts_with("https://scim.example.com/invite/"),
        "{link}"
    );
}

async fn another_organizations_admin_gets_no_link_for_a_shared_account(app: TestApp) {
    let provider = admin_token(&app).await;
    // Organization A's identity provider creates pat, an admin there, with no password yet.
    let pat = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "pat@corp.example",
                   "emails": [{"value": "pat@corp.example", "primary": true}],
                   ORGANIZATION: {"role": "admin"}}),
        )
        .await;
    assert_eq!(pat.status, StatusCode::CREATED, "{}", pat.body);
    // Organization B's admin, signed in with a password, and no email delivery configured.
    app.other_org("beta").await;
    let mallory = person(
        &app,
        &provider,
        "mallory@beta.example",
        json!([{"org": "beta", "role": "admin"}]),
    )
    .await;

    let mut answers: Vec<(&str, Resp)> = Vec::new();
    answers.push((
        "add member",
        admin(
            &app,
            &mallory,
            Method::POST,
            "/orgs/beta/members",
            Some(json!({"email": "pat@corp.example"})),
        )
        .await,
    ));
    answers.push((
        "create account",
        admin(
            &app,
            &mallory,
            Method::POST,
            "/accounts",
            Some(json!({"email": "other@corp.example", "memberships": [{"org": "beta"}]})),
        )
        .await,
    ));
    let inv = admin(
        &app,
        &mallory,
        Method::POST,
        "/orgs/beta/invitations",
        Some(json!({"email": "ann@corp.example", "firstName": "A", "lastName": "B"})),
    )
    .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.body);
    let resend = admin(
        &app,
        &mallory,
        Method::POST,
        &format!("/orgs/beta/invitations/{}/resend", id(&inv.body)),
        None,
    )
    .await;
    answers.push(("invite", inv));
    answers.push(("resend", resend));
    let csv = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/admin/v1/orgs/beta/invitations/import")
        .header("authorization", format!("Bearer {mallory}"))
        .body(axum::body::Body::from("email\nbob@corp.example\n"))
        .unwrap();
    answers.push(("CSV import", app.raw(csv).await));
    answers.push((
        "invitation list",
        admin(&app, &mallory, Method::GET, "/orgs/beta/invitations", None).await,
    ));
    for (what, r) in &answers {
        assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
        assert!(
            !carries_a_secret(&r.body),
            "{what}: no answer carries a credential-setting link: {}",
            r.body
        );
    }
    // The setup mail went to pat's own address, and nothing signs mallory in as pat.
    let link = mailed_link(&app, "pat@corp.example", "/setup/").await;
    assert!(link.contains("/setup/scimd_"), "{link}");
    assert_eq!(
        login(&app, "pat@corp.example", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The User(s) of an organization with this userName or email.
async fn users_named(app: &TestApp, email: &str) -> Vec<Value> {
    let r = app
        .get(&format!(
            "/Users?filter=emails.value%20eq%20%22{email}%22%20or%20userName%20eq%20%22{email}%22"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["Resources"].as_array().cloned().unwrap_or_default()
}

async fn an_old_invitation_cannot_revive_a_deactivated_member(app: TestApp) {
    let provider = admin_token(&app).await;
    let invite = |email: &'static str| {
        admin(
            &app,
            &provider,
            Method::POST,
            "/orgs/acme/invitations",
            Some(json!({"email": email, "firstName": "Kay", "lastName": "E"})),
        )
    };
    let new_account = [
        ("given_name", "Kay"),
        ("family_name", "E"),
        ("password", PASSWORD),
    ];

    // Invited first; then the identity provider creates the person and deactivates them.
    let inv = invite("kay@example.com").await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.body);
    let link = mailed_link(&app, "kay@example.com", "/invite/").await;
    let kay = app.user("kay@example.com").await;
    let off = app
        .patch(
            &format!("/Users/{}", id(&kay)),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let accepted = post_form(&app, &link, &new_account).await;
    assert_ne!(accepted.status, StatusCode::OK, "{}", accepted.body);
    let users = users_named(&app, "kay@example.com").await;
    assert_eq!(users.len(), 1, "never a second membership: {users:?}");
    assert_eq!(users[0]["active"], false, "still deactivated");
    let list = admin(&app, &provider, Method::GET, "/orgs/acme/invitations", None).await;
    assert_eq!(
        list.body["items"][0]["status"], "revoked",
        "the invitation is no longer pending: {}",
        list.body
    );

    // Created deactivated, with an invitation still pending: accepting it changes nothing.
    let inv = invite("lou@example.com").await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.body);
    let link = mailed_link(&app, "lou@example.com", "/invite/").await;
    let lou = app
        .post(
            "/Users",
            json!({"userName": "lou@example.com", "active": false,
                   "emails": [{"value": "lou@example.com", "primary": true}]}),
        )
        .await;
    assert_eq!(lou.status, StatusCode::CREATED, "{}", lou.body);
    let accepted = post_form(&app, &link, &new_account).await;
    assert_ne!(accepted.status, StatusCode::OK, "{}", accepted.body);
    let users = users_named(&app, "lou@example.com").await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["active"], false);

    // Removal revokes pending invitations too, in the same transaction.
    let inv = invite("max@example.com").await;
    let max = app.user("max@example.com").await;
    // The membership's creation already made the invitation moot: it is no longer pending.
    let r = app.delete(&format!("/Users/{}", id(&max))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let list = admin(&app, &provider, Method::GET, "/orgs/acme/invitations", None).await;
    let max_inv = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == inv.body["id"])
        .unwrap()
        .clone();
    assert_eq!(max_inv["status"], "revoked", "{max_inv}");
    let pending = sql_count(
        &app,
        "select count(*) from invitation where status = 'pending'",
    )
    .await;
    assert_eq!(pending, 0);
    let audit = admin(
        &app,
        &provider,
        Method::GET,
        "/orgs/acme/audit?count=1000",
        None,
    )
    .await;
    let revoked = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "Invitation.revoke")
        .count();
    assert_eq!(
        revoked, 3,
        "each revocation is in the audit log: {}",
        audit.body
    );
}

async fn one_membership_per_account_per_organization(app: TestApp) {
    let first = app
        .post(
            "/Users",
            json!({"userName": "sam", "emails": [{"value": "sam@example.com", "primary": true}]}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // Another userName for the same person (the same email) in the same organization.
    let second = app
        .post(
            "/Users",
            json!({"userName": "sam.again", "emails": [{"value": "SAM@example.com", "primary": true}]}),
        )
        .await;
    second.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    let n = sql_count(&app, "select count(*) from membership").await;
    assert_eq!(n, 1);
    // Another organization may have its own membership of the same person.
    let (_, beta) = app.other_org("beta").await;
    let there = app
        .send(
            Method::POST,
            "/Users",
            Some(&beta),
            Some(&json!({"userName": "sam", "emails": [{"value": "sam@example.com"}]})),
            &[],
        )
        .await;
    assert_eq!(there.status, StatusCode::CREATED, "{}", there.body);
}

async fn an_organization_sees_only_its_own_view_of_a_person(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    let pat = person(
        &app,
        &provider,
        "pat@example.com",
        json!([{"org": "acme"}, {"org": "beta"}]),
    )
    .await;
    // Pat works in acme only.
    let r = admin(&app, &pat, Method::GET, "/orgs/acme/members", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let beta_admin = person(
        &app,
        &provider,
        "boss@beta.example",
        json!([{"org": "beta", "role": "admin"}]),
    )
    .await;
    let list = admin(&app, &beta_admin, Method::GET, "/orgs/beta/members", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let seen = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "pat@example.com")
        .unwrap()
        .clone();
    assert!(seen.get("accountId").is_none(), "no global id: {seen}");
    assert!(
        seen["lastActiveAt"].is_null(),
        "pat has not been active in beta, whatever pat did in acme: {seen}"
    );
    // In acme, pat's activity there is shown.
    let acme = admin(&app, &provider, Method::GET, "/orgs/acme/members", None).await;
    let there = acme.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "pat@example.com")
        .unwrap()
        .clone();
    assert!(there["lastActiveAt"].is_string(), "{there}");
    assert!(there.get("accountId").is_none(), "{there}");
}

async fn adding_a_person_tells_nothing_about_their_password(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    // One address has a password (from acme), the other has no account at all.
    person(&app, &provider, "has@example.com", json!([{"org": "acme"}])).await;
    let beta_admin = person(
        &app,
        &provider,
        "boss@beta.example",
        json!([{"org": "beta", "role": "admin"}]),
    )
    .await;
    let add = |email: &'static str| {
        admin(
            &app,
            &beta_admin,
            Method::POST,
            "/orgs/beta/members",
            Some(json!({"email": email})),
        )
    };
    let known = add("has@example.com").await;
    let unknown = add("new@example.com").await;
    assert_eq!(known.status, StatusCode::CREATED, "{}", known.body);
    assert_eq!(unknown.status, StatusCode::CREATED, "{}", unknown.body);
    let shape = |v: &Value| -> Vec<(String, Value)> {
        v.as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !["id", "userName", "email", "updatedAt"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(
        shape(&known.body),
        shape(&unknown.body),
        "the answers differ only in what the admin typed"
    );
    let list = admin(&app, &beta_admin, Method::GET, "/orgs/beta/members", None).await;
    let status = |email: &str| {
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("has@example.com"), status("new@example.com"));
}

async fn sent_mail_loses_its_link_and_is_purged(app: TestApp) {
    let provider = admin_token(&app).await;
    admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/invitations",
        Some(json!({"email": "dana@example.com", "firstName": "D", "lastName": "S"})),
    )
    .await;
    let link = mailed_link(&app, "dana@example.com", "/invite/").await;
    let secret = &link[link.find("/invite/").unwrap() + "/invite/".len()..];
    let with_secret = format!(
        "select count(*) from email_outbox where body_text like '%{secret}%' or body_html like '%{secret}%'"
    );
    assert_eq!(
        sql_count(&app, &with_secret).await,
        0,
        "a sent mail keeps no link"
    );
    let kept = sql_count(
        &app,
        "select count(*) from email_outbox where status = 'sent' and to_address = 'dana@example.com' \
         and subject <> '' and sent_at is not null",
    )
    .await;
    assert_eq!(kept, 1, "recipient, subject, status and time remain");
    app.clock.advance(31 * DAY);
    deliver(&app).await;
    assert_eq!(
        sql_count(
            &app,
            "select count(*) from email_outbox where status = 'sent'"
        )
        .await,
        0,
        "sent rows are purged after the retention period"
    );
}

async fn reset_links_are_short_lived_and_end_with_a_password_change(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "pat@example.com", json!([{"org": "acme"}])).await;
    let reset = || {
        public(
            &app,
            "/password-reset",
            json!({"email": "pat@example.com"}),
            &[],
        )
    };
    assert_eq!(reset().await.status, StatusCode::ACCEPTED);
    let old = mailed_link(&app, "pat@example.com", "/setup/").await;
    app.clock.advance(61 * MINUTE);
    assert_eq!(
        set_password(&app, &old, "a password from a stale link")
            .await
            .status,
        StatusCode::NOT_FOUND,
        "a reset link works for an hour"
    );

    assert_eq!(reset().await.status, StatusCode::ACCEPTED);
    let link = mailed_link(&app, "pat@example.com", "/setup/").await;
    let token = login_token(&app, "pat@example.com").await;
    let changed = admin(
        &app,
        &token,
        Method::POST,
        "/me/password",
        Some(json!({"currentPassword": PASSWORD, "newPassword": "a brand new password"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        set_password(&app, &link, "the attacker's password")
            .await
            .status,
        StatusCode::NOT_FOUND,
        "a password change ends every open link"
    );
    assert_eq!(
        login(&app, "pat@example.com", "a brand new password")
            .await
            .status,
        StatusCode::OK
    );
}

async fn someone_elses_guessing_never_locks_out_the_right_password(mut app: TestApp) {
    app.configure(|c| c.trust_forwarded_for = true);
    let provider = admin_token(&app).await;
    person(&app, &provider, "pat@example.com", json!([{"org": "acme"}])).await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    // One client guesses pat's password far past every limit.
    let mut limited = 0;
    for _ in 0..60 {
        let r = public(
            &app,
            "/login",
            json!({"email": "pat@example.com", "password": "wrong password!!"}),
            &from("203.0.113.9"),
        )
        .await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status),
            "{}",
            r.body
        );
        limited += usize::from(r.status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(limited, 55, "five guesses, then the guesser waits");
    // Pat, from another address, signs in.
    let r = public(
        &app,
        "/login",
        json!({"email": "pat@example.com", "password": PASSWORD}),
        &from("198.51.100.4"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The guesser still waits, even with the right password.
    let r = public(
        &app,
        "/login",
        json!({"email": "pat@example.com", "password": PASSWORD}),
        &from("203.0.113.9"),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // An address over its own limit adds nothing to anyone's count.
    let rows = sql_count(
        &app,
        "select coalesce(max(attempts), 0) from login_throttle where key like '%pat@example.com%'",
    )
    .await;
    assert!(rows <= 6, "counts stop at the limit: {rows}");
}

async fn sixty_four_posts_to_one_setup_link_hash_one_password(app: TestApp) {
    let provider = admin_token(&app).await;
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/accounts",
        Some(json!({"email": "flood@example.com", "memberships": [{"org": "acme"}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "flood@example.com", "/setup/").await;
    let before = app.state.hasher.runs();
    let app = std::sync::Arc::new(app);
    let posts: Vec<_> = (0..64)
        .map(|i| {
            let (app, link) = (app.clone(), link.clone());
            tokio::spawn(async move {
                let password = format!("flood password number {i}");
                set_password(&app, &link, &password).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for p in posts {
        statuses.push(p.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "exactly one post sets the password: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::SERVICE_UNAVAILABLE
        ]
        .contains(s)),
        "the others find the link used, or are told to retry: {statuses:?}"
    );
    assert_eq!(
        app.state.hasher.runs() - before,
        1,
        "the link is claimed before hashing: one hash for 64 posts"
    );
}
