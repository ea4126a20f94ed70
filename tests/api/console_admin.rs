//! The console's Audit log page, changing a pending invitation, "Add user" and My profile, as
//! an attacker would try them: a member, another organization's or account's ids, forms without
//! the session's CSRF token. Each goes through the admin API's own function, so the API is
//! checked beside it.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::console::{page, person, sign_in, text, urlencode};
use crate::helpers::*;
use crate::people::mailed_link;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    the_audit_log_page_is_for_its_organizations_admins_only,
    the_audit_log_filters_by_actor_action_and_target_fifty_to_a_page,
    the_audit_log_takes_a_period_and_pages_by_cursor,
    a_pending_invitations_role_and_groups_change_in_the_console,
    add_user_adds_an_existing_account_or_mails_a_new_one_a_setup_link,
    my_profile_edits_names_and_unlinks_providers_but_never_the_last_way_in,
);

const DAY: i64 = 24 * 3600 * 1_000_000;

/// A SCIM User in another organization (an audit entry there); its id.
async fn outsider(app: &TestApp, token: &str, user_name: &str) -> String {
    let r = app
        .send(
            Method::POST,
            "/Users",
            Some(token),
            Some(&json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id(&r.body)
}

/// The admin API's audit log of acme with a query, as the provider admin reads it.
async fn api_audit(app: &TestApp, provider: &str, query: &str) -> Resp {
    admin(
        app,
        provider,
        Method::GET,
        &format!("/orgs/acme/audit?{query}"),
        None,
    )
    .await
}

async fn the_audit_log_page_is_for_its_organizations_admins_only(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let bob = person(&app, &provider, "bob@acme.test", "member").await;
    let (_, globex) = app.other_org("globex").await;
    let gus = outsider(&app, &globex, "gus@globex.test").await;

    let ada = sign_in(&app, "ada@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/audit", &ada.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains(&bob), "acme's entries are listed");
    assert!(!text(&r).contains(&gus), "globex's entries are not");
    assert!(
        text(&r).contains("href=\"/o/acme/audit\""),
        "in the navigation"
    );
    // Globex's log: ada is not a member there.
    let r = page(&app, Method::GET, "/o/globex/audit", &ada.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!text(&r).contains(&gus));
    // Globex's person's id as acme's target: nothing.
    let path = format!("/o/acme/audit?target={gus}");
    let r = page(&app, Method::GET, &path, &ada.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(text(&r).contains("No entries"), "{}", text(&r));

    // A member gets the refusal every admin page gives, and no link to it.
    let b = sign_in(&app, "bob@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/audit", &b.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(text(&r).contains("Admins only"), "{}", text(&r));
    assert!(!text(&r).contains(&bob), "{}", text(&r));
    let r = page(&app, Method::GET, "/o/acme/users", &b.cookie, "").await;
    assert!(!text(&r).contains("/o/acme/audit"), "no Audit log entry");
}

async fn the_audit_log_filters_by_actor_action_and_target_fifty_to_a_page(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let bob = person(&app, &provider, "bob@acme.test", "member").await;
    let ada = sign_in(&app, "ada@acme.test").await;
    // Ada's one change: bob's role.
    let form = format!("role=admin&csrf={}", ada.csrf);
    let r = page(
        &app,
        Method::POST,
        &format!("/o/acme/users/{bob}/role"),
        &ada.cookie,
        &form,
    )
    .await;
    assert!(text(&r).contains("Role changed to admin."), "{}", text(&r));
    // The identity provider's 55 creates.
    for i in 0..55 {
        app.user(&format!("u{i}@acme.test")).await;
    }
    let all = api_audit(&app, &provider, "count=1").await;
    let total = all.body["totalResults"].as_i64().unwrap();
    assert_eq!(
        total, 58,
        "two adds, one role change, 55 creates: {}",
        all.body
    );

    // Fifty to a page, newest first, paged by position (keyset): the older page has the rest,
    // and its "Newer" link leads back to the same fifty.
    let r = page(&app, Method::GET, "/o/acme/audit", &ada.cookie, "").await;
    assert!(
        text(&r).contains(&format!("{total} entries, newest first")),
        "{}",
        text(&r)
    );
    assert_eq!(text(&r).matches("<tr><td>").count(), 50);
    assert!(
        !text(&r).contains("id=\"newer\""),
        "the first page has nothing newer"
    );
    let older = href_of(&text(&r), "older");
    assert!(older.starts_with("/o/acme/audit?older="), "{older}");
    let r2 = page(&app, Method::GET, &older, &ada.cookie, "").await;
    assert_eq!(r2.status, StatusCode::OK, "{}", text(&r2));
    assert_eq!(
        text(&r2).matches("<tr><td>").count() as i64,
        total - 50,
        "{}",
        text(&r2)
    );
    assert!(!text(&r2).contains("rel=\"next\""), "the last page");
    assert!(text(&r2).contains("id=\"newest\""), "{}", text(&r2));
    let newer = href_of(&text(&r2), "newer");
    let back = page(&app, Method::GET, &newer, &ada.cookie, "").await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(
        rows_of(&text(&back)),
        rows_of(&text(&r)),
        "Newer leads back to the first page's entries"
    );
    assert!(
        !text(&back).contains("id=\"newer\""),
        "nothing newer than those"
    );

    // By actor (an email stands for the person's account): ada's one change.
    let r = page(
        &app,
        Method::GET,
        &format!("/o/acme/audit?actor={}", urlencode("ada@acme.test")),
        &ada.cookie,
        "",
    )
    .await;
    assert!(text(&r).contains("1 entry"), "{}", text(&r));
    assert!(text(&r).contains("User.update"), "{}", text(&r));
    let api = api_audit(&app, &provider, "actor=ada%40acme.test").await;
    assert_eq!(api.body["totalResults"], 1, "{}", api.body);
    assert_eq!(api.body["items"][0]["action"], "User.update");
    assert_eq!(api.body["items"][0]["target"], bob.as_str());
    let actor = api.body["items"][0]["actor"].as_str().unwrap().to_owned();
    assert!(actor.starts_with("account:"), "{actor}");
    let again = api_audit(&app, &provider, &format!("actor={}", urlencode(&actor))).await;
    assert_eq!(again.body["totalResults"], 1, "{}", again.body);
    // An address without an account acted on nothing.
    let r = page(
        &app,
        Method::GET,
        "/o/acme/audit?actor=nobody%40acme.test",
        &ada.cookie,
        "",
    )
    .await;
    assert!(text(&r).contains("No entries"), "{}", text(&r));

    // By action, and by target.
    let api = api_audit(&app, &provider, "action=User.create").await;
    assert_eq!(api.body["totalResults"], 57, "{}", api.body);
    let r = page(
        &app,
        Method::GET,
        "/o/acme/audit?action=User.create",
        &ada.cookie,
        "",
    )
    .await;
    assert!(
        text(&r).contains("57 entries, newest first"),
        "{}",
        text(&r)
    );
    assert!(!text(&r).contains("<td>User.update</td>"), "{}", text(&r));
    let api = api_audit(&app, &provider, &format!("target={bob}")).await;
    let actions: Vec<&str> = api.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["User.create", "User.update"], "{}", api.body);
    let r = page(
        &app,
        Method::GET,
        &format!("/o/acme/audit?target={bob}&action=User.update"),
        &ada.cookie,
        "",
    )
    .await;
    assert!(text(&r).contains("1 entry"), "{}", text(&r));

    // Bad filters: refused with the reason beside the field, in the API and on the page.
    let long = "a".repeat(257);
    let r = page(
        &app,
        Method::GET,
        &format!("/o/acme/audit?target={long}"),
        &ada.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("id=\"target-error\""), "{}", text(&r));
    let api = api_audit(&app, &provider, &format!("target={long}")).await;
    assert_eq!(api.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.body["field"], "target", "{}", api.body);
    // A NUL (which Postgres text cannot hold) or another control character: 400, not 500.
    for (query, field) in [
        ("target=a%00b", "target"),
        ("action=a%0Bb", "action"),
        ("actor=account:%00", "actor"),
    ] {
        let api = api_audit(&app, &provider, query).await;
        assert_eq!(api.status, StatusCode::BAD_REQUEST, "{query}: {}", api.body);
        assert_eq!(api.body["field"], field, "{query}: {}", api.body);
    }
    let r = page(
        &app,
        Method::GET,
        "/o/acme/audit?actor=ada",
        &ada.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("id=\"actor-error\""), "{}", text(&r));
    let api = api_audit(&app, &provider, "actor=ada").await;
    assert_eq!(api.body["field"], "actor", "{}", api.body);
    for q in ["older=x", "newer=%25", "older=&newer=", "older="] {
        let path = format!("/o/acme/audit?{q}");
        let r = page(&app, Method::GET, &path, &ada.cookie, "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", text(&r));
        assert!(text(&r).contains("id=\"audit-error\""), "{q}: {}", text(&r));
    }
    let api = api_audit(&app, &provider, "org=globex").await;
    assert_eq!(api.body["field"], "org", "{}", api.body);
}

async fn the_audit_log_takes_a_period_and_pages_by_cursor(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    for i in 0..5 {
        app.user(&format!("p{i}@acme.test")).await;
    }
    let all = api_audit(&app, &provider, "").await;
    assert_eq!(all.body["totalResults"], 6, "{}", all.body);
    // The day the entries were made, from their own times (no race with midnight).
    let first = all.body["items"][0]["time"].as_str().unwrap().to_owned();
    let last = all.body["items"][5]["time"].as_str().unwrap().to_owned();
    let day = &first[..10];
    let next_day = {
        let d = time::Date::parse(
            &last[..10],
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap();
        d.next_day().unwrap().to_string()
    };

    // API: since is inclusive, until exclusive; a time or a date.
    for (query, n) in [
        (format!("since={day}"), 6),
        (format!("until={day}"), 0),
        (format!("since={next_day}"), 0),
        (format!("until={next_day}"), 6),
        (format!("since={}", urlencode(&first)), 6),
        (format!("until={}", urlencode(&first)), 0),
        (format!("since={}&action=User.create", urlencode(&last)), 1),
    ] {
        let r = api_audit(&app, &provider, &query).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(r.body["totalResults"], n, "{query}: {}", r.body);
        assert_eq!(
            r.body["items"].as_array().unwrap().len(),
            n as usize,
            "{query}"
        );
    }
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-02-30", "until"),
        ("since=2026-01-02&until=2026-01-01", "until"),
        ("cursor=not-ours", "cursor"),
        ("cursor=&startIndex=2", "cursor"),
    ] {
        let r = api_audit(&app, &provider, query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(r.body["field"], field, "{query}: {}", r.body);
    }

    // API keyset paging: two at a time, oldest first, every entry once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let r = api_audit(&app, &provider, &format!("count=2&cursor={cursor}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["totalResults"], 6);
        assert!(r.body.get("startIndex").is_none(), "{}", r.body);
        for e in r.body["items"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let ids: Vec<String> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids, "cursor pages cover the log once, in order");

    // The console: From and To are days, To included.
    let ada = sign_in(&app, "ada@acme.test").await;
    for (query, caption) in [
        (format!("from={day}&to={}", &last[..10]), "6 entries"),
        (format!("from={next_day}"), "No entries"),
        (
            format!("to={}&action=User.create", &last[..10]),
            "6 entries",
        ),
        (
            format!("to={}&action=User.update", &last[..10]),
            "No entries",
        ),
    ] {
        let r = page(
            &app,
            Method::GET,
            &format!("/o/acme/audit?{query}"),
            &ada.cookie,
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{query}");
        assert!(text(&r).contains(caption), "{query}: {}", text(&r));
    }
    let r = page(
        &app,
        Method::GET,
        &format!("/o/acme/audit?from={next_day}&to={day}"),
        &ada.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("id=\"to-error\""), "{}", text(&r));
    let r = page(
        &app,
        Method::GET,
        "/o/acme/audit?from=someday",
        &ada.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("id=\"from-error\""), "{}", text(&r));
}

/// The href of the link with this id on a page.
fn href_of(html: &str, id: &str) -> String {
    let tag = html
        .split('<')
        .find(|t| t.starts_with("a ") && t.contains(&format!("id=\"{id}\"")))
        .unwrap_or_else(|| panic!("no link {id}: {html}"));
    let href = tag
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    href.replace("&amp;", "&")
}

/// The table rows of an audit page, as text.
fn rows_of(html: &str) -> Vec<String> {
    html.split("<tr><td>")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap().to_owned())
        .collect()
}

/// The admin API's view of one acme invitation.
async fn invitation(app: &TestApp, provider: &str, id: &str) -> Value {
    let r = admin(app, provider, Method::GET, "/orgs/acme/invitations", None).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap()
}

async fn invite(app: &TestApp, provider: &str, slug: &str, email: &str) -> String {
    let r = admin(
        app,
        provider,
        Method::POST,
        &format!("/orgs/{slug}/invitations"),
        Some(json!({"email": email, "firstName": "Ivy", "lastName": "Doe"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id(&r.body)
}

async fn a_pending_invitations_role_and_groups_change_in_the_console(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    person(&app, &provider, "bob@acme.test", "member").await;
    let eng = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/groups",
        Some(json!({"displayName": "Engineering"})),
    )
    .await;
    assert_eq!(eng.status, StatusCode::CREATED, "{}", eng.body);
    let eng = id(&eng.body);
    let (_, globex) = app.other_org("globex").await;
    let theirs = app
        .send(
            Method::POST,
            "/Groups",
            Some(&globex),
            Some(&json!({"schemas": [GROUP_SCHEMA], "displayName": "Globex staff"})),
            &[],
        )
        .await;
    let theirs = id(&theirs.body);
    let ivy = invite(&app, &provider, "acme", "ivy@acme.test").await;
    let path = format!("/o/acme/invitations/{ivy}/edit");

    let ada = sign_in(&app, "ada@acme.test").await;
    let r = page(&app, Method::GET, &path, &ada.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("Engineering"), "{}", text(&r));
    let r = page(&app, Method::GET, "/o/acme/invitations", &ada.cookie, "").await;
    assert!(text(&r).contains(&path), "a Change link on the row");

    // Without the session's CSRF token nothing changes.
    for form in [
        format!("role=admin&groups={eng}"),
        format!("role=admin&groups={eng}&csrf=wrong"),
    ] {
        let r = page(&app, Method::POST, &path, &ada.cookie, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    }
    assert_eq!(invitation(&app, &provider, &ivy).await["role"], "member");

    // Another organization's group: refused beside the groups, nothing changed.
    let form = format!("role=admin&groups={theirs}&csrf={}", ada.csrf);
    let r = page(&app, Method::POST, &path, &ada.cookie, &form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("id=\"groups-error\""), "{}", text(&r));
    let now = invitation(&app, &provider, &ivy).await;
    assert_eq!(now["role"], "member");
    assert_eq!(now["groups"], json!([]));

    // The change, and its audit entry.
    let form = format!("role=admin&groups={eng}&csrf={}", ada.csrf);
    let r = page(&app, Method::POST, &path, &ada.cookie, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(
        text(&r).contains("now gives the admin role and 1 group"),
        "{}",
        text(&r)
    );
    let now = invitation(&app, &provider, &ivy).await;
    assert_eq!(now["role"], "admin");
    assert_eq!(now["groups"], json!([eng]));
    let audit = api_audit(
        &app,
        &provider,
        &format!("target={ivy}&action=Invitation.update"),
    )
    .await;
    assert_eq!(audit.body["totalResults"], 1, "{}", audit.body);
    // Unticking every box leaves no groups.
    let form = format!("role=member&csrf={}", ada.csrf);
    page(&app, Method::POST, &path, &ada.cookie, &form).await;
    assert_eq!(invitation(&app, &provider, &ivy).await["groups"], json!([]));

    // A member: the admin-only refusal, nothing changed.
    let b = sign_in(&app, "bob@acme.test").await;
    let r = page(&app, Method::GET, &path, &b.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let form = format!("role=admin&csrf={}", b.csrf);
    let r = page(&app, Method::POST, &path, &b.cookie, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert_eq!(invitation(&app, &provider, &ivy).await["role"], "member");

    // Another organization's invitation through acme's page: not found, and untouched.
    let gil = invite(&app, &provider, "globex", "gil@globex.test").await;
    let r = page(
        &app,
        Method::POST,
        &format!("/o/acme/invitations/{gil}/edit"),
        &ada.cookie,
        &format!("role=admin&csrf={}", ada.csrf),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", text(&r));
    let r = admin(
        &app,
        &provider,
        Method::GET,
        "/orgs/globex/invitations",
        None,
    )
    .await;
    assert_eq!(r.body["items"][0]["role"], "member", "{}", r.body);

    // Revoked, then expired: refused with the reason, in the console and the API.
    let revoke = format!("/orgs/acme/invitations/{ivy}/revoke");
    admin(&app, &provider, Method::POST, &revoke, None).await;
    let form = format!("role=admin&csrf={}", ada.csrf);
    let r = page(&app, Method::POST, &path, &ada.cookie, &form).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));
    assert!(
        text(&r).contains("This invitation is revoked"),
        "{}",
        text(&r)
    );
    let jo = invite(&app, &provider, "acme", "jo@acme.test").await;
    app.clock.advance(8 * DAY);
    // A week on, ada's session has ended too: she signs in again.
    let ada = sign_in(&app, "ada@acme.test").await;
    let form = format!("role=admin&csrf={}", ada.csrf);
    let r = page(
        &app,
        Method::POST,
        &format!("/o/acme/invitations/{jo}/edit"),
        &ada.cookie,
        &form,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));
    assert!(text(&r).contains("expired"), "{}", text(&r));
    let api = admin(
        &app,
        &provider,
        Method::PATCH,
        &format!("/orgs/acme/invitations/{jo}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(api.status, StatusCode::CONFLICT, "{}", api.body);
    assert!(api.body["message"].as_str().unwrap().contains("expired"));
    assert_eq!(invitation(&app, &provider, &jo).await["role"], "member");
}

/// Whether acme has a member with this email, and their role.
async fn member_role(app: &TestApp, provider: &str, email: &str) -> Option<String> {
    let r = admin(app, provider, Method::GET, "/orgs/acme/members", None).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .map(|m| m["role"].as_str().unwrap().to_owned())
}

async fn add_user_adds_an_existing_account_or_mails_a_new_one_a_setup_link(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    person(&app, &provider, "bob@acme.test", "member").await;
    app.other_org("globex").await;
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/globex/members",
        Some(json!({"email": "eve@globex.test"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ada = sign_in(&app, "ada@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/users", &ada.cookie, "").await;
    assert!(text(&r).contains("/o/acme/users/add"), "an Add user link");
    let r = page(&app, Method::GET, "/o/acme/users/add", &ada.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK);

    // Without the CSRF token: nothing.
    let r = page(
        &app,
        Method::POST,
        "/o/acme/users/add",
        &ada.cookie,
        "email=eve%40globex.test&role=member",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert_eq!(member_role(&app, &provider, "eve@globex.test").await, None);

    // An existing account joins at once.
    let add = |form: String| {
        let (app, cookie) = (&app, ada.cookie.clone());
        async move { page(app, Method::POST, "/o/acme/users/add", &cookie, &form).await }
    };
    let r = add(format!(
        "email=eve%40globex.test&role=member&csrf={}",
        ada.csrf
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(
        text(&r).contains("eve@globex.test is now a member"),
        "{}",
        text(&r)
    );
    assert_eq!(
        member_role(&app, &provider, "eve@globex.test")
            .await
            .as_deref(),
        Some("member")
    );
    // A new address gets an account and a setup link by email.
    let r = add(format!(
        "email=neo%40acme.test&given_name=Neo&family_name=Anders&role=admin&csrf={}",
        ada.csrf
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(
        member_role(&app, &provider, "neo@acme.test")
            .await
            .as_deref(),
        Some("admin")
    );
    assert!(mailed_link(&app, "neo@acme.test", "/setup/")
        .await
        .contains("/setup/"));

    // The rules, beside the field they concern.
    let r = add(format!(
        "email=eve%40globex.test&role=member&csrf={}",
        ada.csrf
    ))
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));
    assert!(text(&r).contains("id=\"email-error\""), "{}", text(&r));
    assert!(text(&r).contains("already a member"), "{}", text(&r));
    let r = add(format!(
        "email=not-an-address&role=member&csrf={}",
        ada.csrf
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("id=\"email-error\""), "{}", text(&r));
    assert!(
        text(&r).contains("not a valid email address"),
        "{}",
        text(&r)
    );
    let r = add(format!(
        "email=kim%40acme.test&role=owner&csrf={}",
        ada.csrf
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("id=\"role-error\""), "{}", text(&r));
    let r = add(format!(
        "email=kim%40acme.test&given_name={}&csrf={}",
        "k".repeat(201),
        ada.csrf
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("id=\"given-error\""), "{}", text(&r));
    assert_eq!(member_role(&app, &provider, "kim@acme.test").await, None);

    // A member, and another organization's page: refused, nothing added.
    let b = sign_in(&app, "bob@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/users/add", &b.cookie, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let form = format!("email=kim%40acme.test&role=admin&csrf={}", b.csrf);
    let r = page(&app, Method::POST, "/o/acme/users/add", &b.cookie, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert!(text(&r).contains("Admins only"), "{}", text(&r));
    let form = format!("email=kim%40acme.test&csrf={}", ada.csrf);
    let r = page(
        &app,
        Method::POST,
        "/o/globex/users/add",
        &ada.cookie,
        &form,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert_eq!(member_role(&app, &provider, "kim@acme.test").await, None);
    let r = admin(&app, &provider, Method::GET, "/orgs/globex/members", None).await;
    assert!(!r.body.to_string().contains("kim@acme.test"), "{}", r.body);
}

/// A browser session for an account that has no password (it signs in with a provider).
async fn provider_session(app: &TestApp, account: &str) -> crate::console::Session {
    let started = scimd::service::sessions::start(
        &app.store,
        &app.clock,
        account,
        "google",
        app.state.config.session_idle,
    )
    .await
    .unwrap();
    let cookie = format!("{}={}", scimd::service::sessions::COOKIE, started.secret);
    let home = page(app, Method::GET, "/", &cookie, "").await;
    let csrf = home.headers["x-csrf-token"].to_str().unwrap().to_owned();
    crate::console::Session { cookie, csrf }
}

async fn link(app: &TestApp, provider: &str, subject: &str, account: &str, email: &str) {
    app.store
        .link_identity(provider, subject, account, email, app.clock.now())
        .await
        .unwrap();
}

async fn linked(app: &TestApp, account: &str) -> Vec<String> {
    app.store
        .identities_of(account)
        .await
        .unwrap()
        .into_iter()
        .map(|i| format!("{}:{}", i.provider, i.subject))
        .collect()
}

async fn my_profile_edits_names_and_unlinks_providers_but_never_the_last_way_in(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let ada_id = app
        .store
        .account_by_email("ada@acme.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    let ada = sign_in(&app, "ada@acme.test").await;

    // Names: CSRF first, then the 200-character bound beside the field, then saved.
    let r = page(
        &app,
        Method::POST,
        "/me/names",
        &ada.cookie,
        "given_name=Ada&family_name=L",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    let form = format!(
        "given_name={}&family_name=L&csrf={}",
        "a".repeat(201),
        ada.csrf
    );
    let r = page(&app, Method::POST, "/me/names", &ada.cookie, &form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("id=\"given-error\""), "{}", text(&r));
    let form = format!("given_name=Ada&family_name=Lovelace&csrf={}", ada.csrf);
    let r = page(&app, Method::POST, "/me/names", &ada.cookie, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("Your name is saved."), "{}", text(&r));
    let acct = app.store.account(&ada_id).await.unwrap().unwrap();
    assert_eq!(acct.given_name.as_deref(), Some("Ada"));
    assert_eq!(acct.family_name.as_deref(), Some("Lovelace"));

    // Ada has a password: she may unlink every provider.
    link(&app, "google", "g-ada", &ada_id, "ada@acme.test").await;
    let r = page(&app, Method::GET, "/me", &ada.cookie, "").await;
    assert!(text(&r).contains("id=\"linked-providers\""), "{}", text(&r));
    let unlink = |s: &crate::console::Session, p: &str, sub: &str, csrf: bool| {
        let form = format!(
            "provider={p}&subject={sub}{}",
            if csrf {
                format!("&csrf={}", s.csrf)
            } else {
                String::new()
            }
        );
        let (app, cookie) = (&app, s.cookie.clone());
        async move { page(app, Method::POST, "/me/identities/unlink", &cookie, &form).await }
    };
    let r = unlink(&ada, "google", "g-ada", false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    assert_eq!(linked(&app, &ada_id).await, ["google:g-ada"]);
    let r = unlink(&ada, "google", "g-ada", true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(linked(&app, &ada_id).await.is_empty());

    // Eve has no password: her last provider stays.
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": "eve@acme.test"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let eve_id = app
        .store
        .account_by_email("eve@acme.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    link(&app, "google", "g-eve", &eve_id, "eve@acme.test").await;
    link(&app, "github", "h-eve", &eve_id, "eve@acme.test").await;
    let eve = provider_session(&app, &eve_id).await;
    // Another account's link is not hers to remove.
    link(&app, "google", "g-ada2", &ada_id, "ada@acme.test").await;
    let r = unlink(&eve, "google", "g-ada2", true).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", text(&r));
    assert_eq!(linked(&app, &ada_id).await, ["google:g-ada2"]);
    let r = unlink(&eve, "github", "h-eve", true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let r = unlink(&eve, "google", "g-eve", true).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));
    assert!(text(&r).contains("only way to sign in"), "{}", text(&r));
    assert_eq!(linked(&app, &eve_id).await, ["google:g-eve"]);
}
