//! The admin API: provider admins, members, roles, the last-admin rule (also through SCIM),
//! the audit log, and the OpenAPI document kept in step with the router.

use crate::both;
use crate::helpers::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    admin_api_needs_an_admin_token,
    organizations_are_created_and_listed,
    members_show_role_status_and_groups,
    the_last_active_admin_is_kept_by_admin_api_and_scim,
    two_admins_demoting_each_other_at_once_leave_one,
    removing_many_members_reports_each,
    every_change_is_audited_with_actor_and_request_id,
    openapi_lists_exactly_the_routes,
    revoked_admin_tokens_stop_working_at_once,
    malformed_input_gets_an_admin_error_body,
);

pub(crate) async fn admin_token(app: &TestApp) -> String {
    let token = scimd::token::generate();
    app.store
        .create_admin_token("test", &scimd::token::digest(&token), app.clock.now())
        .await
        .unwrap();
    token
}

pub(crate) async fn admin(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    app.send(
        method,
        &format!("/admin/v1{path}"),
        Some(token),
        body.as_ref(),
        &[],
    )
    .await
}

fn assert_admin_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"], code, "{}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn admin_api_needs_an_admin_token(app: TestApp) {
    for token in [None, Some(app.token.as_str()), Some("nope")] {
        let r = app
            .send(Method::GET, "/admin/v1/orgs", token, None, &[])
            .await;
        assert_admin_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(r.headers.contains_key("www-authenticate"));
    }
    let r = app
        .send(Method::GET, "/admin/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "the API description is public");
}

async fn organizations_are_created_and_listed(app: TestApp) {
    let t = admin_token(&app).await;
    let r = admin(
        &app,
        &t,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "globex", "name": "Globex"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["slug"], "globex");
    let r = admin(
        &app,
        &t,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "Bad Slug"})),
    )
    .await;
    assert_admin_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(r.body["field"], "slug");
    let r = admin(
        &app,
        &t,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "globex"})),
    )
    .await;
    assert_admin_error(&r, StatusCode::CONFLICT, "conflict");
    let r = admin(&app, &t, Method::GET, "/orgs", None).await;
    let slugs: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, vec!["acme", "globex"]);
}

async fn members_show_role_status_and_groups(app: TestApp) {
    let t = admin_token(&app).await;
    let a = app
        .post("/Users", json!({"userName": "ana@acme.test", "emails": [{"value": "ana@acme.test"}], ORGANIZATION: {"role": "Admin"}}))
        .await;
    assert_eq!(
        a.body[ORGANIZATION]["role"], "admin",
        "roles are case-insensitive in, canonical out"
    );
    let b = app.user("ben@acme.test").await;
    app.group("Ops", &[&id(&b)]).await;
    app.patch(
        &format!("/Users/{}", id(&b)),
        ops(json!([{"op": "replace", "path": "active", "value": false}])),
    )
    .await;
    let r = admin(&app, &t, Method::GET, "/orgs/acme/members", None).await;
    assert_eq!(r.body["totalResults"], 2);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[0]["role"], "admin");
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["email"], "ana@acme.test");
    assert_eq!(items[1]["role"], "member");
    assert_eq!(items[1]["status"], "inactive");
    assert_eq!(items[1]["groups"][0]["displayName"], "Ops");
    let r = admin(&app, &t, Method::GET, "/orgs/nope/members", None).await;
    assert_admin_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = admin(
        &app,
        &t,
        Method::PATCH,
        &format!("/orgs/acme/members/{}", id(&b)),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_admin_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(r.body["field"], "role");
}

async fn the_last_active_admin_is_kept_by_admin_api_and_scim(app: TestApp) {
    let t = admin_token(&app).await;
    let a = id(&app.user("a@acme.test").await);
    let b = id(&app.user("b@acme.test").await);
    let member = |id: &str| format!("/orgs/acme/members/{id}");
    // Members only: the rule starts once the organization has an admin.
    let r = admin(
        &app,
        &t,
        Method::PATCH,
        &member(&a),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "admin");
    // a is the last active admin: not demoted, deactivated or removed, by either API.
    let r = admin(
        &app,
        &t,
        Method::PATCH,
        &member(&a),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_admin_error(&r, StatusCode::CONFLICT, "last_admin");
    let r = admin(
        &app,
        &t,
        Method::PATCH,
        &member(&a),
        Some(json!({"active": false})),
    )
    .await;
    assert_admin_error(&r, StatusCode::CONFLICT, "last_admin");
    let r = admin(&app, &t, Method::DELETE, &member(&a), None).await;
    assert_admin_error(&r, StatusCode::CONFLICT, "last_admin");
    let user = format!("/Users/{a}");
    app.patch(
        &user,
        ops(json!([{"op": "replace", "value": {"active": "False"}}])),
    )
    .await
    .assert_error(StatusCode::CONFLICT, None);
    let demote =
        ops(json!([{"op": "replace", "path": format!("{ORGANIZATION}:role"), "value": "member"}]));
    app.patch(&user, demote.clone())
        .await
        .assert_error(StatusCode::CONFLICT, None);
    app.delete(&user)
        .await
        .assert_error(StatusCode::CONFLICT, None);
    // A PUT without the role leaves it alone (an IdP that does not manage roles never demotes).
    let r = app
        .put(
            &user,
            json!({"userName": "a@acme.test", "displayName": "A"}),
        )
        .await;
    assert_eq!(r.body[ORGANIZATION]["role"], "admin");
    // With a second active admin, the first may go.
    admin(
        &app,
        &t,
        Method::PATCH,
        &member(&b),
        Some(json!({"role": "admin"})),
    )
    .await;
    let r = app.patch(&user, demote).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[ORGANIZATION]["role"], "member");
    assert_eq!(
        admin(&app, &t, Method::DELETE, &member(&a), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

async fn two_admins_demoting_each_other_at_once_leave_one(app: TestApp) {
    let t = admin_token(&app).await;
    let app = std::sync::Arc::new(app);
    for round in 0..4 {
        let a = id(&app.user(&format!("x{round}@acme.test")).await);
        let b = id(&app.user(&format!("y{round}@acme.test")).await);
        for who in [&a, &b] {
            let r = admin(
                &app,
                &t,
                Method::PATCH,
                &format!("/orgs/acme/members/{who}"),
                Some(json!({"role": "admin"})),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
        }
        // Any earlier admins step down first, so a and b are the only ones.
        let members = admin(&app, &t, Method::GET, "/orgs/acme/members?count=1000", None).await;
        for m in members.body["items"].as_array().unwrap() {
            let mid = m["id"].as_str().unwrap();
            if m["role"] == "admin" && mid != a && mid != b {
                admin(
                    &app,
                    &t,
                    Method::DELETE,
                    &format!("/orgs/acme/members/{mid}"),
                    None,
                )
                .await;
            }
        }
        let tasks: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|who| {
                let (app, t) = (app.clone(), t.clone());
                tokio::spawn(async move {
                    admin(
                        &app,
                        &t,
                        Method::PATCH,
                        &format!("/orgs/acme/members/{who}"),
                        Some(json!({"role": "member"})),
                    )
                    .await
                    .status
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                StatusCode::OK => ok += 1,
                StatusCode::CONFLICT => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: exactly one demotion may win");
    }
}

async fn removing_many_members_reports_each(app: TestApp) {
    let t = admin_token(&app).await;
    let (_, beta) = app.other_org("beta").await;
    let a = id(&app.user("pat@example.test").await);
    let b = id(&app.user("sam@example.test").await);
    let in_beta = app
        .send(
            Method::POST,
            "/Users",
            Some(&beta),
            Some(&json!({"userName": "pat@example.test"})),
            &[],
        )
        .await;
    let r = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/members/remove",
        Some(json!({"ids": [a, b, "ghost"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["removed"], json!([a, b]));
    assert_eq!(r.body["failed"][0]["id"], "ghost", "{}", r.body);
    assert_eq!(r.body["failed"][0]["status"], 404);
    assert_eq!(r.body["failed"][0]["error"], "not_found");
    assert_eq!(r.body["failed"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
    // The person's membership elsewhere, and the account, remain.
    let still = app
        .send(
            Method::GET,
            &format!("/Users/{}", id(&in_beta.body)),
            Some(&beta),
            None,
            &[],
        )
        .await;
    assert_eq!(still.status, StatusCode::OK);
    let r = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/members/remove",
        Some(json!({"ids": []})),
    )
    .await;
    assert_admin_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn every_change_is_audited_with_actor_and_request_id(app: TestApp) {
    let t = admin_token(&app).await;
    let u = app.user("audited@acme.test").await;
    let r = app
        .send(
            Method::PATCH,
            &format!("/Users/{}", id(&u)),
            Some(&app.token),
            Some(&ops(
                json!([{"op": "replace", "path": "title", "value": "CTO"}]),
            )),
            &[("x-request-id", "req-42")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    admin(
        &app,
        &t,
        Method::PATCH,
        &format!("/orgs/acme/members/{}", id(&u)),
        Some(json!({"role": "admin"})),
    )
    .await;
    let g = app.group("Audited", &[]).await;
    app.delete(&format!("/Groups/{}", id(&g))).await;
    // A refused change leaves no trace.
    app.post("/Users", json!({"userName": "audited@acme.test"}))
        .await;
    let r = admin(&app, &t, Method::GET, "/orgs/acme/audit", None).await;
    let items = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "User.create",
            "User.update",
            "User.update",
            "Group.create",
            "Group.delete"
        ]
    );
    assert!(items[0]["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(items[1]["requestId"], "req-42");
    assert!(items[2]["actor"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(items[0]["target"], id(&u));
    assert_eq!(r.body["totalResults"], 5);
}

async fn openapi_lists_exactly_the_routes(app: TestApp) {
    let doc: Value = serde_json::from_str(scimd::http::admin::OPENAPI).unwrap();
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut listed: Vec<(String, String)> = scimd::http::admin::OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(documented, listed);
    // Every listed operation is routed: it never falls through to "no such endpoint" or 405.
    let t = admin_token(&app).await;
    for (method, path) in &listed {
        let concrete = path
            .replace("{slug}", "acme")
            .replace("{id}", "no-such-member");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = admin(&app, &t, method.clone(), &concrete, Some(json!({}))).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let fell_through = r.status == StatusCode::NOT_FOUND
            && r.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no such endpoint"));
        assert!(
            !fell_through,
            "{method} {path} is documented but not routed"
        );
    }
}

both!(
    people_are_added_and_groups_managed_through_the_admin_api,
    one_group_shows_its_count_and_pages_its_members,
);

async fn people_are_added_and_groups_managed_through_the_admin_api(app: TestApp) {
    let t = admin_token(&app).await;
    let (_, beta) = app.other_org("beta").await;
    // Someone who already has an account (from another organization) and someone new.
    app.send(
        Method::POST,
        "/Users",
        Some(&beta),
        Some(&json!({"userName": "kai@example.test", "emails": [{"value": "kai@example.test"}]})),
        &[],
    )
    .await;
    let kai = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": "Kai@example.test", "role": "admin"})),
    )
    .await;
    assert_eq!(kai.status, StatusCode::CREATED, "{}", kai.body);
    assert_eq!(kai.body["role"], "admin");
    let lee = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": "lee@example.test", "givenName": "Lee"})),
    )
    .await;
    assert_eq!(lee.body["role"], "member");
    let again = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": "LEE@example.test"})),
    )
    .await;
    assert_admin_error(&again, StatusCode::CONFLICT, "conflict");
    let bad = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/members",
        Some(json!({"email": "nope"})),
    )
    .await;
    assert_eq!(bad.body["field"], "email");
    // One account behind both memberships of kai.
    let accounts = crate::tenancy::sql_count(
        &app,
        "select count(*) from account where email_norm = 'kai@example.test'",
    )
    .await;
    assert_eq!(accounts, 1);

    let (kai, lee) = (
        kai.body["id"].as_str().unwrap().to_owned(),
        lee.body["id"].as_str().unwrap().to_owned(),
    );
    let g = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/groups",
        Some(json!({"displayName": "Core", "members": [kai]})),
    )
    .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let dup = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/groups",
        Some(json!({"displayName": "CORE"})),
    )
    .await;
    assert_admin_error(&dup, StatusCode::CONFLICT, "conflict");
    let foreign = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/groups",
        Some(json!({"displayName": "X", "members": ["not-a-member"]})),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert_eq!(foreign.body["field"], "members");
    let changed = admin(
        &app,
        &t,
        Method::PATCH,
        &format!("/orgs/acme/groups/{gid}"),
        Some(json!({"displayName": "Core team", "addMembers": [lee], "removeMembers": [kai]})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["displayName"], "Core team");
    assert_eq!(changed.body["members"], json!([lee]));
    // The same data SCIM sees.
    let scim = app.get(&format!("/Groups/{gid}")).await;
    assert_eq!(scim.body["displayName"], "Core team");
    let list = admin(&app, &t, Method::GET, "/orgs/acme/groups", None).await;
    assert_eq!(list.body["totalResults"], 1);
    assert_eq!(
        admin(
            &app,
            &t,
            Method::DELETE,
            &format!("/orgs/acme/groups/{gid}"),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/Users").await.body["totalResults"],
        2,
        "deleting a group keeps its members"
    );
}

async fn one_group_shows_its_count_and_pages_its_members(app: TestApp) {
    let t = admin_token(&app).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(id(&app.user(&format!("m{i}@acme.test")).await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let big = id(&app.group("Big", &refs).await);
    let empty = id(&app.group("Empty", &[]).await);
    // The list counts each group's members.
    let list = admin(&app, &t, Method::GET, "/orgs/acme/groups", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let count_of = |gid: &str| {
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == gid)
            .map(|g| g["memberCount"].clone())
    };
    assert_eq!(count_of(&big), Some(json!(5)), "{}", list.body);
    assert_eq!(count_of(&empty), Some(json!(0)), "{}", list.body);

    // One group, two members a page, by cursor: every member once, in the order they joined.
    let mut seen = Vec::new();
    let mut path = format!("/orgs/acme/groups/{big}?count=2");
    for _ in 0..5 {
        let r = admin(&app, &t, Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["displayName"], "Big");
        assert_eq!(r.body["memberCount"], 5);
        for m in r.body["members"].as_array().unwrap() {
            assert!(m["userName"].is_string() && m["status"] == "active", "{m}");
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => path = format!("/orgs/acme/groups/{big}?count=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let r = admin(
        &app,
        &t,
        Method::GET,
        &format!("/orgs/acme/groups/{empty}"),
        None,
    )
    .await;
    assert_eq!(r.body["memberCount"], 0, "{}", r.body);
    assert_eq!(r.body["members"], json!([]));
    assert!(r.body.get("nextCursor").is_none());

    // Bad paging, unknown ids and another organization's group.
    for (q, field) in [
        ("count=0", "count"),
        ("count=201", "count"),
        ("cursor=zz", "cursor"),
    ] {
        let r = admin(
            &app,
            &t,
            Method::GET,
            &format!("/orgs/acme/groups/{big}?{q}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert_eq!(r.body["field"], field, "{q}: {}", r.body);
    }
    let (_, beta) = app.other_org("beta").await;
    let theirs = app
        .send(
            Method::POST,
            "/Groups",
            Some(&beta),
            Some(&json!({"schemas": [GROUP_SCHEMA], "displayName": "Theirs"})),
            &[],
        )
        .await;
    let theirs = id(&theirs.body);
    for gid in [theirs.as_str(), "no-such-group"] {
        let r = admin(
            &app,
            &t,
            Method::GET,
            &format!("/orgs/acme/groups/{gid}"),
            None,
        )
        .await;
        assert_admin_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    // Their group is counted for them, not here.
    let r = admin(
        &app,
        &t,
        Method::GET,
        &format!("/orgs/beta/groups/{big}"),
        None,
    )
    .await;
    assert_admin_error(&r, StatusCode::NOT_FOUND, "not_found");
}

async fn revoked_admin_tokens_stop_working_at_once(app: TestApp) {
    use clap::Parser;
    let keep = admin_token(&app).await;
    let gone = admin_token(&app).await;
    for t in [&keep, &gone] {
        let r = admin(&app, t, Method::GET, "/orgs", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let tokens = app.store.list_admin_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    // The second one created; revoked through the CLI, as an operator would.
    let id = tokens[1].id.clone();
    let revoke = |id: String| {
        let args = [
            "scimd",
            "--database-url",
            &app.url,
            "admin",
            "token",
            "revoke",
            &id,
        ];
        scimd::cli::run(scimd::cli::Cli::parse_from(args))
    };
    revoke(id.clone()).await.unwrap();
    assert!(revoke(id.clone()).await.is_err(), "already revoked");
    let r = admin(&app, &gone, Method::GET, "/orgs", None).await;
    assert_admin_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = admin(&app, &keep, Method::GET, "/orgs", None).await;
    assert_eq!(r.status, StatusCode::OK, "the other token still works");
    let listed = app.store.list_admin_tokens().await.unwrap();
    assert!(listed[1].revoked_at.is_some() && listed[0].revoked_at.is_none());
}

/// Bodies that are not JSON, JSON of the wrong shape, a missing content type and a malformed
/// query string are refused by the extractors before a handler runs; they too answer 400
/// `{error: invalid_request, message}` as JSON (schemathesis found them in plain text, some 422).
async fn malformed_input_gets_an_admin_error_body(app: TestApp) {
    let token = admin_token(&app).await;
    let raw = |method: &str, uri: &str, content_type: Option<&str>, body: &str| {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.body(axum::body::Body::from(body.to_owned())).unwrap()
    };
    let cases = [
        (
            "POST",
            "/admin/v1/orgs",
            Some("application/json"),
            "{not json",
        ),
        (
            "POST",
            "/admin/v1/orgs",
            Some("application/json"),
            r#"{"slug": 7}"#,
        ),
        ("POST", "/admin/v1/orgs", None, r#"{"slug": "x"}"#),
        ("POST", "/admin/v1/login", Some("application/json"), "[]"),
        (
            "GET",
            "/admin/v1/orgs/acme/members?startIndex=first",
            None,
            "",
        ),
        ("GET", "/admin/v1/orgs/acme/audit?count=%FF", None, ""),
    ];
    for (method, uri, ct, body) in cases {
        let r = app.raw(raw(method, uri, ct, body)).await;
        assert_admin_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(
            r.headers["content-type"], "application/json",
            "{method} {uri}"
        );
    }
}
