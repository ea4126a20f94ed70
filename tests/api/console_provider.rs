//! A provider admin in the console: an account the operator made one (`scimd admin grant`)
//! sees every organization in the switcher, paged, and opens any organization's pages with an
//! admin's rights, through the same `access::check` as the admin API. And the attacker's read:
//! an ordinary admin of one organization is refused another's pages and forms, CSRF included.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::console::{page, person, sign_in, text, PASSWORD};
use crate::helpers::*;
use crate::people::login;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    a_provider_admin_sees_every_organization_and_administers_any,
    an_admin_of_one_organization_is_refused_anothers_pages_and_forms,
);

/// An account with a password and no organization; its id.
async fn account(app: &TestApp, email: &str) -> String {
    scimd::service::credentials::set_password_as_operator(&app.store, &app.clock, email, PASSWORD)
        .await
        .unwrap();
    app.store.account_by_email(email).await.unwrap().unwrap().id
}

/// Globex, with one member of its own (Gus); Gus's member id.
async fn globex(app: &TestApp, provider: &str) -> String {
    app.other_org("globex").await;
    let r = admin(
        app,
        provider,
        Method::POST,
        "/orgs/globex/members",
        Some(json!({"email": "gus@globex.test", "givenName": "Gus", "familyName": "Grey"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn items(app: &TestApp, provider: &str, path: &str) -> Vec<Value> {
    let r = admin(app, provider, Method::GET, path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn a_provider_admin_sees_every_organization_and_administers_any(app: TestApp) {
    let provider = admin_token(&app).await;
    globex(&app, &provider).await;
    // 57 organizations in all: acme, globex and 55 more.
    for n in 0..55 {
        app.store
            .create_org(
                &format!("org-{n:02}"),
                &format!("Org {n:02}"),
                app.clock.now(),
            )
            .await
            .unwrap();
    }
    let root = account(&app, "root@ops.test").await;

    // Not yet a provider admin: no organization, and globex's pages are refused.
    let s = sign_in(&app, "root@ops.test").await;
    let home = page(&app, Method::GET, "/", &s.cookie, "").await;
    assert!(text(&home).contains("not a member of any organization"));
    assert!(!text(&home).contains("Every organization"));
    let r = page(&app, Method::GET, "/o/globex/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));

    // Made one, the same session sees every organization, 50 to a page, in slug order.
    assert!(app
        .store
        .set_provider_admin(&root, true, app.clock.now())
        .await
        .unwrap());
    let home = page(&app, Method::GET, "/", &s.cookie, "").await;
    let first = text(&home);
    assert!(first.contains("Every organization"), "{first}");
    assert_eq!(first.matches("<li><a href=\"/o/").count(), 50, "{first}");
    for slug in ["acme", "globex", "org-00", "org-47"] {
        assert!(
            first.contains(&format!("href=\"/o/{slug}/users\"")),
            "{slug}"
        );
    }
    assert!(!first.contains("href=\"/o/org-48/users\""));
    assert!(first.contains("/?after=org-47"), "{first}");
    let next = page(&app, Method::GET, "/?after=org-47", &s.cookie, "").await;
    let second = text(&next);
    assert_eq!(second.matches("<li><a href=\"/o/").count(), 7, "{second}");
    assert!(second.contains("href=\"/o/org-54/users\""));
    assert!(second.contains("id=\"all-orgs-first\""));
    assert!(!second.contains("id=\"all-orgs-next\""));

    // Globex's pages open, with an admin's controls.
    for path in [
        "/o/globex/users",
        "/o/globex/invite",
        "/o/globex/invitations",
        "/o/globex/audit",
        "/o/globex/provisioning",
        "/o/globex/groups",
    ] {
        let r = page(&app, Method::GET, path, &s.cookie, "").await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", text(&r));
    }
    let users = text(&page(&app, Method::GET, "/o/globex/users", &s.cookie, "").await);
    assert!(users.contains("Gus Grey"), "{users}");
    assert!(users.contains("id=\"add-user\""), "{users}");
    assert!(!users.contains("read-only"), "{users}");
    // Its forms work, with the session's CSRF token, and are audited as the person.
    let form = format!(
        "addresses=hal%40globex.test&first_name=Hal&last_name=Hill&role=member&csrf={}",
        s.csrf
    );
    let r = page(&app, Method::POST, "/o/globex/invite", &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("Invited."), "{}", text(&r));
    let invited = items(&app, &provider, "/orgs/globex/invitations").await;
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(invited[0]["email"], "hal@globex.test");
    let audit = admin(
        &app,
        &provider,
        Method::GET,
        "/orgs/globex/audit?action=Invitation.create",
        None,
    )
    .await;
    assert_eq!(
        audit.body["items"][0]["actor"],
        format!("account:{root}"),
        "{}",
        audit.body
    );
    // Without the token nothing is done, as for anyone.
    let form = "addresses=ivy%40globex.test";
    let r = page(&app, Method::POST, "/o/globex/invite", &s.cookie, form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert!(text(&r).contains("nothing was done"), "{}", text(&r));
    assert_eq!(
        items(&app, &provider, "/orgs/globex/invitations")
            .await
            .len(),
        1
    );
    // An organization that does not exist is not found.
    let r = page(&app, Method::GET, "/o/nowhere/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", text(&r));

    // The admin API agrees: the same rule for the person's access token.
    let r = login(&app, "root@ops.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = r.body["accessToken"].as_str().unwrap().to_owned();
    let r = admin(&app, &token, Method::GET, "/orgs/globex/members", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = admin(&app, &token, Method::GET, "/orgs", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 57, "{}", r.body);

    // No longer one: refused again on the next request, page and form alike.
    assert!(app
        .store
        .set_provider_admin(&root, false, app.clock.now())
        .await
        .unwrap());
    let r = page(&app, Method::GET, "/o/globex/users", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    let form = format!("addresses=jo%40globex.test&csrf={}", s.csrf);
    let r = page(&app, Method::POST, "/o/globex/invite", &s.cookie, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    let home = page(&app, Method::GET, "/", &s.cookie, "").await;
    assert!(!text(&home).contains("Every organization"));
    let r = admin(&app, &token, Method::GET, "/orgs/globex/members", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

async fn an_admin_of_one_organization_is_refused_anothers_pages_and_forms(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let gus = globex(&app, &provider).await;
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/globex/invitations",
        Some(json!({"email": "kay@globex.test", "firstName": "Kay", "lastName": "King"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let invitation = r.body["id"].as_str().unwrap().to_owned();
    let tokens_before = items(&app, &provider, "/orgs/globex/tokens").await.len();
    let s = sign_in(&app, "ada@acme.test").await;

    // The switcher: her own organization only.
    let home = text(&page(&app, Method::GET, "/", &s.cookie, "").await);
    assert!(home.contains("href=\"/o/acme/users\""), "{home}");
    assert!(!home.contains("globex"), "{home}");
    assert!(!home.contains("Every organization"), "{home}");

    for path in [
        "/o/globex/users".to_owned(),
        "/o/globex/users/add".to_owned(),
        "/o/globex/invite".to_owned(),
        "/o/globex/invitations".to_owned(),
        format!("/o/globex/invitations/{invitation}/edit"),
        "/o/globex/audit".to_owned(),
        "/o/globex/provisioning".to_owned(),
        "/o/globex/provisioning/log".to_owned(),
        "/o/globex/groups".to_owned(),
    ] {
        let r = page(&app, Method::GET, &path, &s.cookie, "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", text(&r));
        assert!(!text(&r).contains("gus@globex.test"), "{path}");
        assert!(!text(&r).contains("kay@globex.test"), "{path}");
    }
    // Every form, with her own valid CSRF token: refused, and nothing changes.
    let csrf = &s.csrf;
    for (path, form) in [
        (
            "/o/globex/invite".to_owned(),
            "addresses=x%40globex.test".to_owned(),
        ),
        (
            "/o/globex/users/add".to_owned(),
            "email=y%40globex.test&role=admin".to_owned(),
        ),
        (
            format!("/o/globex/users/{gus}/role"),
            "role=admin".to_owned(),
        ),
        (format!("/o/globex/users/{gus}/active"), String::new()),
        ("/o/globex/users/remove".to_owned(), format!("ids={gus}")),
        (
            "/o/globex/users/remove/confirm".to_owned(),
            format!("ids={gus}"),
        ),
        ("/o/globex/groups".to_owned(), "name=Sneaky".to_owned()),
        (
            format!("/o/globex/invitations/{invitation}"),
            "action=revoke".to_owned(),
        ),
        (
            format!("/o/globex/invitations/{invitation}/edit"),
            "role=admin".to_owned(),
        ),
        (
            "/o/globex/provisioning/tokens".to_owned(),
            "name=mine".to_owned(),
        ),
        ("/o/globex/provisioning/test".to_owned(), String::new()),
    ] {
        let body = format!("{form}&csrf={csrf}");
        let r = page(&app, Method::POST, &path, &s.cookie, &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", text(&r));
    }
    let members = items(&app, &provider, "/orgs/globex/members").await;
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["role"], "member");
    assert_eq!(members[0]["status"], "active");
    let invitations = items(&app, &provider, "/orgs/globex/invitations").await;
    assert_eq!(invitations.len(), 1, "{invitations:?}");
    assert_eq!(invitations[0]["status"], "pending");
    assert_eq!(invitations[0]["role"], "member");
    assert_eq!(
        items(&app, &provider, "/orgs/globex/tokens").await.len(),
        tokens_before
    );
    assert!(items(&app, &provider, "/orgs/globex/groups")
        .await
        .is_empty());
}
