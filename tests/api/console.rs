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
    a_whole_address_lists_its_own_members_first_and_else_searches_as_a_substring,
    the_search_finds_part_of_a_name_or_an_address_in_any_case_and_literally,
    the_search_follows_every_change_of_name_and_address,
    the_group_filter_lists_that_groups_members_and_refuses_another_organizations,
    filters_page_by_cursor_without_gaps_or_repeats,
    the_provisioning_page_pages_tokens_and_drops_long_revoked_ones,
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

/// A SCIM User of acme with a display name and addresses; its id.
async fn scim_user(app: &TestApp, user_name: &str, display: &str, emails: &[&str]) -> String {
    let emails: Vec<_> = emails.iter().map(|e| json!({"value": e})).collect();
    let r = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": user_name, "displayName": display,
                   "emails": emails, "active": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id(&r.body)
}

/// The userNames of acme's members a query lists, following the cursor to the end.
async fn listed(app: &TestApp, q: scimd::store::MemberQuery) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = q;
    loop {
        let p = app.store.list_members(&app.org.id, &q).await.unwrap();
        out.extend(
            p.records
                .iter()
                .map(|r| r.doc["userName"].as_str().unwrap().to_owned()),
        );
        match (p.records.last(), p.resume) {
            (Some(last), _) if p.records.len() as i64 == q.count => {
                q.after = Some((last.created_at, last.id.clone()));
            }
            // A short search that stopped after `short_walk` members goes on from there.
            (_, Some(resume)) => q.after = Some(resume),
            _ => return out,
        }
    }
}

fn search(text: &str) -> scimd::store::MemberQuery {
    scimd::store::MemberQuery {
        search: Some(text.to_owned()),
        count: 50,
        ..Default::default()
    }
}

async fn the_search_finds_part_of_a_name_or_an_address_in_any_case_and_literally(app: TestApp) {
    scim_user(&app, "ada", "Ada Lovelace", &["ada@acme.test"]).await;
    scim_user(
        &app,
        "grace",
        "Grace Hopper",
        &["Grace.Hopper@Navy.test", "gh@acme.test"],
    )
    .await;
    scim_user(&app, "deal", "Deal 100%_off", &["deal@acme.test"]).await;
    scim_user(&app, "decoy", "Decoy 100xxoff", &["decoy@acme.test"]).await;
    scim_user(&app, "dara", "Dara O\"Brien", &["dara@acme.test"]).await;
    scim_user(&app, "zoe", "ZOË Ängström", &["zoe@acme.test"]).await;
    for (q, want) in [
        // The middle of a name and of a second address, in another case.
        ("LOVEL", vec!["ada"]),
        ("hopper@NAV", vec!["grace"]),
        // Fewer than three characters: no trigram to look up, still found.
        ("ov", vec!["ada"]),
        ("Ö", vec!["zoe"]),
        ("ängs", vec!["zoe"]),
        // % and _ are characters to find, not wildcards; so is a double quote.
        ("0%_o", vec!["deal"]),
        ("%", vec!["deal"]),
        ("_", vec!["deal"]),
        ("o\"b", vec!["dara"]),
        ("100", vec!["deal", "decoy"]),
        (
            "acme.test",
            vec!["ada", "grace", "deal", "decoy", "dara", "zoe"],
        ),
        ("nobody", vec![]),
    ] {
        assert_eq!(listed(&app, search(q)).await, want, "search {q:?}");
    }
    // The page: the same search from the box, counted.
    let provider = admin_token(&app).await;
    person(&app, &provider, "admin@acme.test", "admin").await;
    let s = sign_in(&app, "admin@acme.test").await;
    let r = page(&app, Method::GET, "/o/acme/users?q=0%25_O", &s.cookie, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let body = text(&r);
    assert!(body.contains("<p id=\"total\">1 person</p>"), "{body}");
    assert!(
        body.contains("Deal 100%_off") && !body.contains("Decoy"),
        "{body}"
    );
}

/// A whole address lists the members whose userName or an email is that address (any case,
/// under the other filters), read from those indexes; only when there is none does it search as
/// a substring, which also finds it inside longer addresses.
async fn a_whole_address_lists_its_own_members_first_and_else_searches_as_a_substring(
    app: TestApp,
) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "boss@b.test", "admin").await;
    scim_user(&app, "ada@b.test", "Ada", &["Ada.Work@Corp.test"]).await;
    scim_user(&app, "grace", "Grace", &["grace@navy.test", "GH@Acme.test"]).await;
    for (q, want) in [
        // By userName and by a second email, in any case.
        ("ADA@b.Test", vec!["ada@b.test"]),
        ("ada.work@corp.test", vec!["ada@b.test"]),
        ("gh@ACME.test", vec!["grace"]),
        // Nobody has it: the substring search finds it inside a longer address.
        ("da@b.test", vec!["ada@b.test"]),
        ("h@acme.test", vec!["grace"]),
        // A part of an address is a substring search as before.
        ("ada@b", vec!["ada@b.test"]),
    ] {
        assert_eq!(listed(&app, search(q)).await, want, "search {q:?}");
    }
    // Once someone has it, it lists them only, not the longer addresses around it.
    let da = scim_user(&app, "Da@B.test", "Da", &[]).await;
    assert_eq!(listed(&app, search("da@b.test")).await, ["Da@B.test"]);
    // With the status filter: the inactive member that has it, or else the substring matches.
    let r = app
        .patch(
            &format!("/Users/{da}"),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let with = |text: &str, active: Option<bool>, admin: Option<bool>| scimd::store::MemberQuery {
        active,
        admin,
        ..search(text)
    };
    assert_eq!(
        listed(&app, with("da@b.test", Some(false), None)).await,
        ["Da@B.test"]
    );
    assert_eq!(
        listed(&app, with("da@b.test", Some(true), None)).await,
        ["ada@b.test"]
    );
    assert_eq!(
        listed(&app, with("da@b.test", None, None)).await,
        ["Da@B.test"]
    );
    // With the role filter.
    assert_eq!(
        listed(&app, with("BOSS@b.test", None, Some(true))).await,
        ["boss@b.test"]
    );
    assert_eq!(
        listed(&app, with("boss@b.test", None, Some(false))).await,
        Vec::<String>::new()
    );
    // Several members share an address: every page lists them and nothing else, whatever
    // the cursor.
    scim_user(&app, "m1", "M1", &["shared@b.test"]).await;
    scim_user(&app, "m2", "M2", &["x@b.test", "Shared@b.test"]).await;
    scim_user(&app, "m3", "M3", &["xshared@b.test"]).await;
    let one = scimd::store::MemberQuery {
        count: 1,
        ..search("shared@b.test")
    };
    assert_eq!(listed(&app, one).await, ["m1", "m2"]);
    // Another organization's member with the address is not listed here.
    let (_, other_token) = app.other_org("globex").await;
    let r = app
        .send(
            Method::POST,
            "/Users",
            Some(&other_token),
            Some(
                &json!({"schemas": [USER_SCHEMA], "userName": "gh@acme.test",
                         "emails": [{"value": "ada@b.test"}]}),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(listed(&app, search("gh@acme.test")).await, ["grace"]);
    assert_eq!(listed(&app, search("ada@b.test")).await, ["ada@b.test"]);
    // The page counts what it lists.
    let s = sign_in(&app, "boss@b.test").await;
    for (q, want) in [("SHARED%40b.test", "2 people"), ("da%40b.test", "1 person")] {
        let r = page(
            &app,
            Method::GET,
            &format!("/o/acme/users?q={q}"),
            &s.cookie,
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let body = text(&r);
        assert!(
            body.contains(&format!("<p id=\"total\">{want}</p>")),
            "{q}: {body}"
        );
    }
}

async fn the_search_follows_every_change_of_name_and_address(app: TestApp) {
    let id = scim_user(&app, "ada", "Ada Lovelace", &["ada@acme.test"]).await;
    let r = app
        .patch(
            &format!("/Users/{id}"),
            ops(json!([{"op": "replace", "path": "displayName", "value": "Ada King"},
                       {"op": "replace", "path": "emails", "value": [{"value": "countess@ockham.test"}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(listed(&app, search("lovelace")).await, Vec::<String>::new());
    assert_eq!(listed(&app, search("ada@acme")).await, Vec::<String>::new());
    assert_eq!(listed(&app, search("king")).await, ["ada"]);
    assert_eq!(listed(&app, search("ockham")).await, ["ada"]);
    // A change that leaves the names alone keeps the person findable.
    let r = app
        .patch(
            &format!("/Users/{id}"),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(listed(&app, search("king")).await, ["ada"]);
    let r = app.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(listed(&app, search("king")).await, Vec::<String>::new());
    // A new person after the removal is found, and only they.
    scim_user(&app, "ada2", "Ada King", &["ada2@acme.test"]).await;
    assert_eq!(listed(&app, search("king")).await, ["ada2"]);
}

async fn the_group_filter_lists_that_groups_members_and_refuses_another_organizations(
    app: TestApp,
) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "admin@acme.test", "admin").await;
    let a = scim_user(&app, "ann", "Ann Able", &["ann@acme.test"]).await;
    let b = scim_user(&app, "bob", "Bob Baker", &["bob@acme.test"]).await;
    scim_user(&app, "cal", "Cal Cole", &["cal@acme.test"]).await;
    let team = id(&app.group("Builders", &[a.as_str(), b.as_str()]).await);
    let r = app
        .patch(
            &format!("/Users/{b}"),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Globex's group, with a member of its own.
    let (_, other_token) = app.other_org("globex").await;
    let send = |path: &'static str, body: serde_json::Value| {
        let token = other_token.clone();
        let app = &app;
        async move {
            let r = app
                .send(Method::POST, path, Some(&token), Some(&body), &[])
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            id(&r.body)
        }
    };
    let gus = send(
        "/Users",
        json!({"schemas": [USER_SCHEMA], "userName": "gus@globex.test"}),
    )
    .await;
    let theirs = send(
        "/Groups",
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Builders", "members": [{"value": gus}]}),
    )
    .await;

    let by_group = |g: &str| scimd::store::MemberQuery {
        group: Some(g.to_owned()),
        count: 50,
        ..Default::default()
    };
    assert_eq!(listed(&app, by_group(&team)).await, ["ann", "bob"]);
    let inactive = scimd::store::MemberQuery {
        active: Some(false),
        ..by_group(&team)
    };
    assert_eq!(listed(&app, inactive).await, ["bob"]);
    let found = scimd::store::MemberQuery {
        search: Some("BAK".into()),
        ..by_group(&team)
    };
    assert_eq!(listed(&app, found).await, ["bob"]);
    // Another organization's group has no member here, whoever its members are.
    assert_eq!(listed(&app, by_group(&theirs)).await, Vec::<String>::new());

    let s = sign_in(&app, "admin@acme.test").await;
    let r = page(
        &app,
        Method::GET,
        &format!("/o/acme/users?group={team}"),
        &s.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = text(&r);
    assert!(body.contains("<p id=\"total\">2 people</p>"), "{body}");
    assert!(body.contains("Ann Able") && body.contains("Bob Baker") && !body.contains("Cal Cole"));
    assert!(
        body.contains(&format!(
            "<option value=\"{team}\" selected>Builders</option>"
        )),
        "the group select offers acme's groups, the chosen one selected: {body}"
    );
    let r = page(
        &app,
        Method::GET,
        &format!("/o/acme/users?group={theirs}"),
        &s.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body = text(&r);
    assert!(body.contains("id=\"group-error\""), "{body}");
    assert!(body.contains("There is no such group in this organization."));
    assert!(
        !body.contains(&theirs) && !body.contains("gus@globex.test"),
        "{body}"
    );
    assert!(
        !body.contains("Ann Able"),
        "no rows under a refused filter: {body}"
    );
}

async fn filters_page_by_cursor_without_gaps_or_repeats(app: TestApp) {
    let mut created = Vec::new();
    for i in 0..40 {
        let name = format!("p{i:02}");
        let display = if i % 2 == 0 {
            format!("Even {i}")
        } else {
            format!("Odd {i}")
        };
        let id = scim_user(&app, &name, &display, &[&format!("{name}@acme.test")]).await;
        if i % 3 == 0 {
            let r = app
                .patch(
                    &format!("/Users/{id}"),
                    ops(json!([{"op": "replace", "path": "active", "value": false}])),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
        created.push((i, id));
    }
    let members: Vec<&str> = created
        .iter()
        .filter(|e| e.0 % 5 == 0)
        .map(|e| e.1.as_str())
        .collect();
    let team = id(&app.group("Fives", &members).await);
    let q = |count| scimd::store::MemberQuery {
        count,
        ..Default::default()
    };
    // Everyone in page order, as (number, userName, id).
    let all = app.store.list_members(&app.org.id, &q(100)).await.unwrap();
    let everyone: Vec<(usize, String, String)> = all
        .records
        .iter()
        .map(|r| {
            let name = r.doc["userName"].as_str().unwrap().to_owned();
            (name[1..].parse().unwrap(), name, r.id.clone())
        })
        .collect();
    assert_eq!(everyone.len(), 40);
    let names = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        everyone
            .iter()
            .filter(|e| keep(e.0))
            .map(|e| e.1.clone())
            .collect()
    };
    for count in [1, 3, 7, 50] {
        let inactive = scimd::store::MemberQuery {
            active: Some(false),
            ..q(count)
        };
        assert_eq!(
            listed(&app, inactive).await,
            names(&|i| i % 3 == 0),
            "count {count}"
        );
        let active = scimd::store::MemberQuery {
            active: Some(true),
            ..q(count)
        };
        assert_eq!(
            listed(&app, active).await,
            names(&|i| i % 3 != 0),
            "count {count}"
        );
        let even = scimd::store::MemberQuery {
            search: Some("even".into()),
            ..q(count)
        };
        assert_eq!(
            listed(&app, even).await,
            names(&|i| i % 2 == 0),
            "count {count}"
        );
        // Two characters: the walk in page order, not the trigram index; whole, or a few
        // members at a time.
        for short_walk in [0, 1, 6, 100] {
            let ev = scimd::store::MemberQuery {
                search: Some("EV".into()),
                active: Some(true),
                short_walk,
                ..q(count)
            };
            assert_eq!(
                listed(&app, ev).await,
                names(&|i| i % 2 == 0 && i % 3 != 0),
                "count {count}, walk {short_walk}"
            );
        }
        let fives = scimd::store::MemberQuery {
            group: Some(team.clone()),
            search: Some("odd".into()),
            ..q(count)
        };
        assert_eq!(
            listed(&app, fives).await,
            names(&|i| i % 5 == 0 && i % 2 == 1),
            "count {count}"
        );
        // Nobody has a role assigned: everyone is a member, no one an admin.
        let admins = scimd::store::MemberQuery {
            admin: Some(true),
            ..q(count)
        };
        assert_eq!(listed(&app, admins).await, Vec::<String>::new());
        let plain = scimd::store::MemberQuery {
            admin: Some(false),
            ..q(count)
        };
        assert_eq!(listed(&app, plain).await, names(&|_| true), "count {count}");
    }
    // Totals: a page that is not full counts itself, a full one counts the rest.
    let first = app
        .store
        .list_members(
            &app.org.id,
            &scimd::store::MemberQuery {
                active: Some(false),
                ..q(5)
            },
        )
        .await
        .unwrap();
    assert_eq!((first.records.len(), first.total), (5, Some(14)));
    let all = app.store.list_members(&app.org.id, &q(5)).await.unwrap();
    assert_eq!(all.total, Some(40));
    // A short search tests at most `short_walk` members for a page, and says where it stopped.
    let short = |after| scimd::store::MemberQuery {
        search: Some("9".into()),
        short_walk: 10,
        after,
        ..q(50)
    };
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let p = app
            .store
            .list_members(&app.org.id, &short(after))
            .await
            .unwrap();
        assert_eq!(p.total, None, "a short search is not counted");
        pages.push((
            p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            p.resume.clone().map(|r| r.1),
        ));
        match p.resume {
            Some(r) => after = Some(r),
            None => break,
        }
    }
    // Each page tests the next ten members (a 9 is in p09, p19, p29 and p39 only); the fourth
    // tests the last ten and says there is nothing after.
    let want: Vec<(Vec<String>, Option<String>)> = everyone
        .chunks(10)
        .enumerate()
        .map(|(k, ten)| {
            let found = ten
                .iter()
                .filter(|e| e.0 % 10 == 9)
                .map(|e| e.2.clone())
                .collect();
            (found, (k < 3).then(|| ten[9].2.clone()))
        })
        .collect();
    assert_eq!(pages, want);
}

async fn provisioning_page(app: &TestApp, s: &Session, q: &str) -> Resp {
    let r = page(
        app,
        Method::GET,
        &format!("/o/acme/provisioning{q}"),
        &s.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    r
}

/// The token rows of a Provisioning page.
fn token_rows(r: &Resp) -> usize {
    text(r).matches("<tr id=\"token-").count()
}

async fn the_provisioning_page_pages_tokens_and_drops_long_revoked_ones(app: TestApp) {
    let provider = admin_token(&app).await;
    person(&app, &provider, "ada@acme.test", "admin").await;
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/tokens",
        Some(json!({"name": "old-okta"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let old = r.body["id"].as_str().unwrap().to_owned();
    let r = admin(
        &app,
        &provider,
        Method::POST,
        &format!("/orgs/acme/tokens/{old}/revoke"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = sign_in(&app, "ada@acme.test").await;
    // Revoked today: listed beside the app's own token, as the admin API lists it.
    let r = provisioning_page(&app, &s, "").await;
    assert!(text(&r).contains("old-okta"), "{}", text(&r));
    assert!(text(&r).contains("Tokens 1–2 of 2"), "{}", text(&r));
    assert!(!text(&r).contains("id=\"tokens-next\""));
    // Revoked more than --request-log-days (7) ago: gone from the page and from the API.
    app.clock.advance(8 * 24 * 3600 * 1_000_000);
    let s = sign_in(&app, "ada@acme.test").await;
    let r = provisioning_page(&app, &s, "").await;
    assert!(!text(&r).contains("old-okta"), "{}", text(&r));
    assert!(text(&r).contains("1 token"), "{}", text(&r));
    assert_eq!(token_rows(&r), 1);
    let api = admin(&app, &provider, Method::GET, "/orgs/acme/tokens", None).await;
    assert_eq!(api.body["totalResults"], 1, "{}", api.body);

    // 55 tokens: 50 on the first page with a link to the next, the other 5 there.
    for n in 0..54 {
        app.store
            .create_token(
                &app.org,
                &format!("idp-{n:02}"),
                &scimd::token::digest(&scimd::token::generate()),
                None,
                app.clock.now(),
            )
            .await
            .unwrap();
    }
    let first = provisioning_page(&app, &s, "").await;
    assert!(
        text(&first).contains("Tokens 1–50 of 55"),
        "{}",
        text(&first)
    );
    assert_eq!(token_rows(&first), 50);
    assert!(text(&first).contains("id=\"tokens-next\""));
    assert!(
        text(&first).contains("provisioning?page=2"),
        "{}",
        text(&first)
    );
    assert!(!text(&first).contains("id=\"tokens-prev\""));
    let second = provisioning_page(&app, &s, "?page=2").await;
    assert!(
        text(&second).contains("Tokens 51–55 of 55"),
        "{}",
        text(&second)
    );
    assert_eq!(token_rows(&second), 5);
    assert!(text(&second).contains("id=\"tokens-prev\""));
    assert!(!text(&second).contains("id=\"tokens-next\""));
    // Every token exactly once over the two pages.
    for n in 0..54 {
        let name = format!("<td>idp-{n:02}</td>");
        let seen = text(&first).matches(&name).count() + text(&second).matches(&name).count();
        assert_eq!(seen, 1, "{name}");
    }
    // A page that is no number is refused in words.
    let r = page(
        &app,
        Method::GET,
        "/o/acme/provisioning?page=x",
        &s.cookie,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("whole number"), "{}", text(&r));
}
