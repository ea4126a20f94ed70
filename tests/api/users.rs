//! /Users: create, read, replace, patch, delete; uniqueness, ETags, SCIM errors.

use crate::both;
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

both!(
    create_returns_201_with_meta_location_and_etag,
    concurrent_creates_of_one_username_yield_one_201,
    username_is_unique_case_insensitively,
    stale_if_match_gets_412_and_changes_nothing,
    if_none_match_gets_304,
    put_replaces_and_ignores_read_only_input,
    patch_applies_all_operations_or_none,
    patch_answers_200_with_the_user,
    deactivate_keeps_the_membership,
    delete_removes_membership_and_group_memberships,
    malformed_bodies_get_scim_errors,
    oversized_bodies_get_413,
    enterprise_extension_is_stored_and_patchable,
    password_is_never_returned,
    the_email_index_follows_every_update,
    deactivation_revokes_a_pending_invitation,
);

async fn create_returns_201_with_meta_location_and_etag(app: TestApp) {
    let r = app
        .post("/Users", json!({"schemas": [USER_SCHEMA], "userName": "ann", "externalId": "ext-1", "active": "True",
            "emails": [{"value": "ann@x.test", "type": "work", "primary": "true"}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let u = &r.body;
    let loc = format!("http://scim.test/scim/v2/Users/{}", id(u));
    assert_eq!(u["meta"]["location"], loc);
    assert_eq!(r.headers["location"], loc.as_str());
    assert_eq!(u["meta"]["resourceType"], "User");
    assert_eq!(u["meta"]["version"], r.etag());
    assert_eq!(u["meta"]["created"], u["meta"]["lastModified"]);
    assert_eq!(
        u["active"], true,
        "Entra's string booleans are stored as booleans"
    );
    assert_eq!(u["emails"][0]["primary"], true);
    assert_eq!(u["externalId"], "ext-1");
    assert_eq!(
        u["schemas"],
        json!([USER_SCHEMA]),
        "no role assigned: a plain member"
    );
    assert_eq!(r.headers["content-type"], "application/scim+json");
    let got = app.get(&format!("/Users/{}", id(u))).await;
    assert_eq!(&got.body, u);
    assert_eq!(got.etag(), r.etag());
}

async fn concurrent_creates_of_one_username_yield_one_201(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let app = app.clone();
        // Mixed case: "dup@example.com", "DUP@example.com", "Dup@Example.Com", …
        let name: String = "dup@example.com"
            .chars()
            .enumerate()
            .map(|(j, c)| {
                if (i >> (j % 6)) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            app.post("/Users", json!({"userName": name})).await
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                r.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
                conflicts += 1
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!((created, conflicts), (1, 63));
    assert_eq!(app.get("/Users").await.body["totalResults"], 1);
}

async fn username_is_unique_case_insensitively(app: TestApp) {
    let a = app.user("Carol@X.test").await;
    app.post("/Users", json!({"userName": "carol@x.TEST"}))
        .await
        .assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    let b = app.user("dave@x.test").await;
    // Renaming onto an existing userName conflicts too, and leaves the user unchanged.
    let r = app
        .put(
            &format!("/Users/{}", id(&b)),
            json!({"userName": "CAROL@x.test"}),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    let r = app
        .patch(
            &format!("/Users/{}", id(&b)),
            ops(json!([{"op": "replace", "path": "userName", "value": "carol@X.TEST"}])),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(
        app.get(&format!("/Users/{}", id(&b))).await.body["userName"],
        "dave@x.test"
    );
    assert_eq!(
        app.get(&format!("/Users/{}", id(&a))).await.body["userName"],
        "Carol@X.test"
    );
}

async fn stale_if_match_gets_412_and_changes_nothing(app: TestApp) {
    let u = app.user("erin").await;
    let path = format!("/Users/{}", id(&u));
    let v1 = u["meta"]["version"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "replace", "path": "displayName", "value": "Erin"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v2 = r.etag();
    assert_ne!(v1, v2);
    let patch = ops(json!([{"op": "replace", "path": "displayName", "value": "Stale"}]));
    let r = app
        .with_header(Method::PATCH, &path, Some(&patch), ("if-match", &v1))
        .await;
    r.assert_error(StatusCode::PRECONDITION_FAILED, None);
    let put = json!({"userName": "erin", "displayName": "Stale"});
    let r = app
        .with_header(Method::PUT, &path, Some(&put), ("if-match", &v1))
        .await;
    r.assert_error(StatusCode::PRECONDITION_FAILED, None);
    let r = app
        .with_header(Method::DELETE, &path, None, ("if-match", &v1))
        .await;
    r.assert_error(StatusCode::PRECONDITION_FAILED, None);
    let now = app.get(&path).await;
    assert_eq!(now.body["displayName"], "Erin");
    assert_eq!(now.etag(), v2);
    // The current version (or *) passes.
    let r = app
        .with_header(Method::PATCH, &path, Some(&patch), ("if-match", &v2))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .with_header(Method::DELETE, &path, None, ("if-match", "*"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

async fn if_none_match_gets_304(app: TestApp) {
    let u = app.user("fay").await;
    let path = format!("/Users/{}", id(&u));
    let tag = u["meta"]["version"].as_str().unwrap().to_owned();
    let r = app
        .with_header(Method::GET, &path, None, ("if-none-match", &tag))
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = app
        .with_header(Method::GET, &path, None, ("if-none-match", "W/\"999\""))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn put_replaces_and_ignores_read_only_input(app: TestApp) {
    let u = app.user("gus").await;
    let path = format!("/Users/{}", id(&u));
    app.patch(
        &path,
        ops(json!([{"op": "add", "path": "title", "value": "Boss"}])),
    )
    .await;
    // Okta sends the whole object back, id, meta and groups included.
    let mut body = app.get(&path).await.body;
    body["name"] = json!({"givenName": "Gus"});
    body["title"] = Value::Null;
    body["meta"]["created"] = json!("1999-01-01T00:00:00Z");
    body["groups"] = json!([{"value": "nope"}]);
    body["id"] = json!("another-id");
    let r = app.put(&path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], id(&u));
    assert_eq!(r.body["name"]["givenName"], "Gus");
    assert!(
        r.body.get("title").is_none(),
        "attributes left out of a PUT are cleared"
    );
    assert!(r.body.get("groups").is_none());
    assert_eq!(r.body["meta"]["created"], u["meta"]["created"]);
    // A PUT still needs the required attributes.
    app.put(&path, json!({"displayName": "no userName"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
}

async fn patch_applies_all_operations_or_none(app: TestApp) {
    let u = app.user("hal").await;
    let path = format!("/Users/{}", id(&u));
    let r = app
        .patch(
            &path,
            ops(json!([
                {"op": "replace", "path": "displayName", "value": "Hal"},
                {"op": "replace", "path": "id", "value": "x"},
            ])),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("mutability"));
    let r = app
        .patch(
            &path,
            ops(json!([
                {"op": "replace", "path": "displayName", "value": "Hal"},
                {"op": "add", "path": "emails[value co \"zzz\"].type", "value": "home"},
            ])),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("noTarget"));
    let now = app.get(&path).await;
    assert!(
        now.body.get("displayName").is_none(),
        "the first operation was not stored"
    );
    assert_eq!(now.etag(), u["meta"]["version"]);
}

async fn patch_answers_200_with_the_user(app: TestApp) {
    let u = app.user("ida@x.test").await;
    let path = format!("/Users/{}", id(&u));
    let r = app
        .patch(
            &path,
            ops(json!([
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "ida@work.test"},
                {"op": "Replace", "value": {"name.givenName": "Ida", "active": "False"}},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Ida");
    assert_eq!(r.body["active"], false);
    let emails = r.body["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2);
    assert!(emails
        .iter()
        .any(|e| e["type"] == "work" && e["value"] == "ida@work.test"));
    // With a projection the response honours it.
    let r = app
        .patch(
            &format!("{path}?attributes=userName"),
            ops(json!([{"op": "replace", "path": "nickName", "value": "I"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("nickName").is_none() && r.body["userName"] == "ida@x.test");
}

async fn deactivate_keeps_the_membership(app: TestApp) {
    let u = app.user("jo").await;
    let path = format!("/Users/{}", id(&u));
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .await;
    assert_eq!(r.body["active"], false);
    let got = app.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["active"], false);
    let r = app.get("/Users?filter=active%20eq%20false").await;
    assert_eq!(r.ids(), vec![id(&u)]);
}

async fn delete_removes_membership_and_group_memberships(app: TestApp) {
    let u = app.user("kim").await;
    let other = app.user("lee").await;
    let g = app.group("Team", &[&id(&u), &id(&other)]).await;
    let r = app.delete(&format!("/Users/{}", id(&u))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get(&format!("/Users/{}", id(&u)))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    app.delete(&format!("/Users/{}", id(&u)))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    let g = app.get(&format!("/Groups/{}", id(&g))).await;
    let members: Vec<&str> = g.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec![id(&other)]);
}

async fn malformed_bodies_get_scim_errors(app: TestApp) {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/scim/v2/Users")
        .header("authorization", format!("Bearer {}", app.token))
        .header("content-type", "application/json")
        .body(Body::from("{\"userName\": "))
        .unwrap();
    app.raw(req)
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    app.post("/Users", json!([1, 2]))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    app.post("/Users", json!({"displayName": "x"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    app.post("/Users", json!({"userName": "x", "active": "maybe"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    app.post("/Users", json!({"userName": "x", "name": "flat"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    let two_primaries = json!({"userName": "x", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]});
    app.post("/Users", two_primaries)
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    let u = app.user("mo").await;
    let path = format!("/Users/{}", id(&u));
    app.patch(&path, json!({"Operations": "no"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    app.patch(&path, ops(json!([{"op": "remove"}])))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("noTarget"));
    app.patch(
        &path,
        ops(json!([{"op": "add", "path": "nosuch", "value": 1}])),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, Some("invalidPath"));
    app.patch(
        &path,
        ops(json!([{"op": "add", "path": "emails[type eq", "value": 1}])),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, Some("invalidPath"));
    app.get("/Users?filter=userName%20eq")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
    app.get("/Users?count=many")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    app.get("/Users?attributes=userName&excludedAttributes=name")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    app.get("/Users/does-not-exist")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    app.get("/Nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    let r = app
        .send(Method::DELETE, "/Users", Some(&app.token), None, &[])
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
}

async fn oversized_bodies_get_413(app: TestApp) {
    let big = "x".repeat(scimd::http::MAX_BODY_BYTES + 1);
    let r = app
        .post("/Users", json!({"userName": "big", "displayName": big}))
        .await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, None);
}

async fn enterprise_extension_is_stored_and_patchable(app: TestApp) {
    let boss = app.user("boss").await;
    let r = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "nia",
            ENTERPRISE: {"employeeNumber": "42", "manager": {"value": id(&boss)}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["schemas"], json!([USER_SCHEMA, ENTERPRISE]));
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "42");
    let path = format!("/Users/{}", id(&r.body));
    let r = app
        .patch(
            &path,
            ops(json!([
                {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "R&D"},
                {"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": ""},
            ])),
        )
        .await;
    assert_eq!(r.body[ENTERPRISE]["department"], "R&D");
    assert!(
        r.body[ENTERPRISE].get("manager").is_none(),
        "an empty value removes the manager"
    );
    let r = app
        .patch(&path, ops(json!([{"op": "remove", "path": ENTERPRISE}])))
        .await;
    assert!(r.body.get(ENTERPRISE).is_none());
    assert_eq!(r.body["schemas"], json!([USER_SCHEMA]));
}

async fn password_is_never_returned(app: TestApp) {
    let r = app
        .post("/Users", json!({"userName": "ola", "password": "hunter2"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body.get("password").is_none());
    let user = id(&r.body);
    let r = app.get(&format!("/Users/{user}?attributes=password")).await;
    assert!(r.body.get("password").is_none());
    let r = app
        .patch(
            &format!("/Users/{user}"),
            ops(json!([{"op": "add", "path": "password", "value": "hunter3"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Never stored, so never matchable either.
    let stored = app
        .store
        .get(&app.org.id, scimd::scim::schema::Kind::User, &user)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !serde_json::to_string(&stored.doc)
            .unwrap()
            .contains("hunter"),
        "{:?}",
        stored.doc
    );
    assert!(app
        .get("/Users?filter=password%20sw%20%22h%22")
        .await
        .ids()
        .is_empty());
}

/// `emails.value eq` is answered from the email index rows, which every PATCH and PUT that
/// changes the addresses rewrites and every other update leaves as they are.
async fn the_email_index_follows_every_update(app: TestApp) {
    let find = |v: &str| format!("/Users?filter=emails.value%20eq%20%22{v}%22");
    let u = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "mail", "emails": [{"value": "old@x.test"}]}),
        )
        .await
        .body;
    let path = format!("/Users/{}", id(&u));
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "replace", "path": "emails", "value": [{"value": "New@x.test"}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get(&find("new@X.test")).await.ids(), vec![id(&u)]);
    assert!(app.get(&find("old@x.test")).await.ids().is_empty());
    let put = |emails: Value, title: &str| json!({"schemas": [USER_SCHEMA], "userName": "mail", "emails": emails, "title": title});
    let r = app
        .put(&path, put(json!([{"value": "third@x.test"}]), "A"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get(&find("third@x.test")).await.ids(), vec![id(&u)]);
    assert!(app.get(&find("new@x.test")).await.ids().is_empty());
    // Same addresses, another title: the rows stay.
    let r = app
        .put(&path, put(json!([{"value": "third@x.test"}]), "B"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["title"], "B");
    assert_eq!(app.get(&find("third@x.test")).await.ids(), vec![id(&u)]);
}

/// A deactivation through SCIM revokes a pending invitation to the organization addressed to
/// the member (so it can never switch them back on), with its audit entry, on the path each
/// database takes for a PATCH.
async fn deactivation_revokes_a_pending_invitation(app: TestApp) {
    use crate::tenancy::sql_count;
    let u = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "inv@x.test", "emails": [{"value": "inv@x.test", "primary": true}]}),
        )
        .await
        .body;
    // Left pending, as one made while the member existed would be (a create revokes those made
    // before it).
    sql_count(
        &app,
        &format!(
            "insert into invitation (id, organization_id, email, email_norm, first_name, last_name, \
             secret_digest, expires_at, invited_by, created_at, updated_at) values ('inv-1', '{}', \
             'inv@x.test', 'inv@x.test', 'In', 'Vite', 'digest-inv-1', {}, 'admin:test', 1, 1) \
             returning cast(length(id) as bigint)",
            app.org.id,
            i64::MAX / 2
        ),
    )
    .await;
    let status = "select count(*) from invitation where id = 'inv-1' and status = 'revoked'";
    let r = app
        .patch(
            &format!("/Users/{}", id(&u)),
            ops(json!([{"op": "replace", "path": "title", "value": "Still here"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        sql_count(&app, status).await,
        0,
        "only a deactivation revokes"
    );
    let r = app
        .patch(
            &format!("/Users/{}", id(&u)),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sql_count(&app, status).await, 1);
    assert_eq!(
        sql_count(
            &app,
            "select count(*) from audit_event where action = 'Invitation.revoke' and target = 'inv-1'"
        )
        .await,
        1
    );
}
