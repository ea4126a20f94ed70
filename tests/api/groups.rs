//! /Groups: member rows, Entra and Okta member operations, 204 PATCH answers, uniqueness.

use crate::both;
use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

both!(
    members_are_added_and_removed_by_patch,
    group_patch_answers_204_unless_a_projection_is_asked,
    unknown_members_are_400_naming_the_id,
    display_name_is_unique_case_insensitively,
    put_without_members_keeps_members,
    users_show_their_groups,
    excluded_members_are_left_out,
    pathless_rename_with_id_works,
    concurrent_member_adds_lose_nothing,
    concurrent_if_match_writers_all_but_one_get_412,
    large_groups_change_by_rows,
);

fn member_ids(g: &Value) -> Vec<String> {
    let mut v: Vec<String> = g["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn members_are_added_and_removed_by_patch(app: TestApp) {
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(id(&app.user(&format!("m{n}")).await));
    }
    let g = app.group("Ops", &[&ids[0]]).await;
    let path = format!("/Groups/{}", id(&g));
    let add = ops(
        json!([{"op": "add", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}, {"value": ids[0]}]}]),
    );
    assert_eq!(app.patch(&path, add).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        member_ids(&app.get(&path).await.body),
        sorted(ids[..3].to_vec())
    );
    // Okta: remove one member through a value filter.
    let rm = ops(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}]));
    assert_eq!(app.patch(&path, rm).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        member_ids(&app.get(&path).await.body),
        sorted(vec![ids[0].clone(), ids[2].clone()])
    );
    // Entra ID: "Remove" with a value array removes exactly those members, never the whole list.
    let rm = ops(json!([{"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}]));
    assert_eq!(app.patch(&path, rm).await.status, StatusCode::NO_CONTENT);
    assert_eq!(member_ids(&app.get(&path).await.body), vec![ids[2].clone()]);
    // Replace sets the list; remove without value empties it.
    let rep = ops(
        json!([{"op": "replace", "path": "members", "value": [{"value": ids[3]}, {"value": ids[4]}]}]),
    );
    app.patch(&path, rep).await;
    assert_eq!(
        member_ids(&app.get(&path).await.body),
        sorted(ids[3..].to_vec())
    );
    app.patch(&path, ops(json!([{"op": "remove", "path": "members"}])))
        .await;
    assert!(app.get(&path).await.body.get("members").is_none());
}

async fn group_patch_answers_204_unless_a_projection_is_asked(app: TestApp) {
    let u = app.user("pia").await;
    let g = app.group("Sales", &[]).await;
    let path = format!("/Groups/{}", id(&g));
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "add", "path": "members", "value": [{"value": id(&u)}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, Value::Null);
    assert!(r.headers.contains_key("etag"));
    let r = app
        .patch(
            &format!("{path}?excludedAttributes=members"),
            ops(json!([{"op": "replace", "path": "displayName", "value": "Sales EU"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["displayName"], "Sales EU");
    assert!(r.body.get("members").is_none());
    let r = app
        .patch(
            &format!("{path}?attributes=members"),
            ops(json!([{"op": "replace", "path": "externalId", "value": "e"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(member_ids(&r.body), vec![id(&u)]);
}

async fn unknown_members_are_400_naming_the_id(app: TestApp) {
    let r = app
        .post(
            "/Groups",
            json!({"displayName": "X", "members": [{"value": "ghost-1"}]}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains("ghost-1"));
    assert_eq!(
        app.get("/Groups").await.body["totalResults"],
        0,
        "nothing half-written"
    );
    let g = app.group("Y", &[]).await;
    let r = app
        .patch(
            &format!("/Groups/{}", id(&g)),
            ops(json!([
                {"op": "replace", "path": "displayName", "value": "renamed"},
                {"op": "add", "path": "members", "value": [{"value": "ghost-2"}]},
            ])),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains("ghost-2"));
    assert_eq!(
        app.get(&format!("/Groups/{}", id(&g))).await.body["displayName"],
        "Y"
    );
}

async fn display_name_is_unique_case_insensitively(app: TestApp) {
    app.group("Finance", &[]).await;
    app.post("/Groups", json!({"displayName": "FINANCE"}))
        .await
        .assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    let g = app.group("Legal", &[]).await;
    let r = app
        .patch(
            &format!("/Groups/{}", id(&g)),
            ops(json!([{"op": "replace", "path": "displayName", "value": "finance"}])),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    app.post("/Groups", json!({"members": []}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
}

async fn put_without_members_keeps_members(app: TestApp) {
    let u = app.user("quinn").await;
    let g = app.group("Support", &[&id(&u)]).await;
    let path = format!("/Groups/{}", id(&g));
    let r = app
        .put(&path, json!({"displayName": "Support Tier 1"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["displayName"], "Support Tier 1");
    assert_eq!(member_ids(&r.body), vec![id(&u)]);
    let r = app
        .put(
            &path,
            json!({"displayName": "Support Tier 1", "members": []}),
        )
        .await;
    assert!(
        r.body.get("members").is_none(),
        "an explicit empty list empties the group"
    );
}

async fn users_show_their_groups(app: TestApp) {
    let u = app.user("ray").await;
    let a = app.group("Alpha", &[&id(&u)]).await;
    let b = app.group("Beta", &[&id(&u)]).await;
    let got = app.get(&format!("/Users/{}", id(&u))).await.body;
    let groups = got["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["value"], id(&a));
    assert_eq!(groups[0]["display"], "Alpha");
    assert_eq!(
        groups[0]["$ref"],
        format!("http://scim.test/scim/v2/Groups/{}", id(&a))
    );
    assert_eq!(groups[1]["value"], id(&b));
    let r = app
        .get(&format!(
            "/Users?filter=groups.value%20eq%20%22{}%22",
            id(&b)
        ))
        .await;
    assert_eq!(r.ids(), vec![id(&u)]);
    // Groups are read-only on the User: a PATCH cannot change them.
    let r = app
        .patch(
            &format!("/Users/{}", id(&u)),
            ops(json!([{"op": "remove", "path": "groups"}])),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("mutability"));
}

async fn excluded_members_are_left_out(app: TestApp) {
    let u = app.user("sam").await;
    let g = app.group("Gamma", &[&id(&u)]).await;
    let one = app
        .get(&format!("/Groups/{}?excludedAttributes=members", id(&g)))
        .await;
    assert!(one.body.get("members").is_none());
    assert_eq!(one.body["displayName"], "Gamma");
    let list = app.get("/Groups?excludedAttributes=members").await;
    assert!(list.body["Resources"][0].get("members").is_none());
    let filtered = app
        .get(&format!(
            "/Groups?filter=members.value%20eq%20%22{}%22",
            id(&u)
        ))
        .await;
    assert_eq!(filtered.ids(), vec![id(&g)]);
}

async fn pathless_rename_with_id_works(app: TestApp) {
    let g = app.group("Old", &[]).await;
    let path = format!("/Groups/{}", id(&g));
    // Okta renames with a pathless replace whose value carries the id.
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "replace", "value": {"id": id(&g), "displayName": "New"}}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.body["displayName"], "New");
}

async fn concurrent_member_adds_lose_nothing(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut users = Vec::new();
    for n in 0..64 {
        users.push(id(&app.user(&format!("cc{n}")).await));
    }
    let g = app.group("Busy", &[]).await;
    let path = format!("/Groups/{}", id(&g));
    let mut tasks = Vec::new();
    for pair in users.chunks(2) {
        let (app, path) = (app.clone(), path.clone());
        let body = ops(
            json!([{"op": "add", "path": "members", "value": [{"value": pair[0]}, {"value": pair[1]}]}]),
        );
        tasks.push(tokio::spawn(
            async move { app.patch(&path, body).await.status },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NO_CONTENT);
    }
    assert_eq!(member_ids(&app.get(&path).await.body), sorted(users));
}

async fn concurrent_if_match_writers_all_but_one_get_412(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let g = app.group("Contended", &[]).await;
    let path = format!("/Groups/{}", id(&g));
    let version = g["meta"]["version"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for n in 0..32 {
        let (app, path, version) = (app.clone(), path.clone(), version.clone());
        tasks.push(tokio::spawn(async move {
            let body = ops(
                json!([{"op": "replace", "path": "externalId", "value": format!("writer-{n}")}]),
            );
            app.with_header(
                axum::http::Method::PATCH,
                &path,
                Some(&body),
                ("if-match", &version),
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::NO_CONTENT => ok += 1,
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly the writers holding a stale version get 412");
    let now = app.get(&path).await;
    assert!(now.body["externalId"]
        .as_str()
        .unwrap()
        .starts_with("writer-"));
    assert_ne!(now.etag(), version);
}

/// Member changes touch only the named rows: a group of 1,500 takes an add and a remove of
/// two members and keeps every other member, and reading it without members reads no rows.
async fn large_groups_change_by_rows(app: TestApp) {
    let mut users = Vec::new();
    for n in 0..1502 {
        let r = app
            .post("/Users", json!({"userName": format!("big{n}")}))
            .await;
        users.push(id(&r.body));
    }
    let g = app.group("Everyone", &[]).await;
    let path = format!("/Groups/{}", id(&g));
    for chunk in users[..1500].chunks(500) {
        let value: Vec<Value> = chunk.iter().map(|u| json!({"value": u})).collect();
        assert_eq!(
            app.patch(
                &path,
                ops(json!([{"op": "add", "path": "members", "value": value}]))
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
    }
    let add = ops(
        json!([{"op": "add", "path": "members", "value": [{"value": users[1500]}, {"value": users[1501]}]}]),
    );
    assert_eq!(app.patch(&path, add).await.status, StatusCode::NO_CONTENT);
    let rm = ops(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])}]));
    assert_eq!(app.patch(&path, rm).await.status, StatusCode::NO_CONTENT);
    let got = app.get(&path).await;
    assert_eq!(member_ids(&got.body), sorted(users[1..].to_vec()));
    let lean = app.get(&format!("{path}?excludedAttributes=members")).await;
    assert!(lean.body.get("members").is_none());
    assert_eq!(lean.body["displayName"], "Everyone");
    // The derived `groups` of a member stays right, and filters find the group by member.
    let u = app.get(&format!("/Users/{}", users[1501])).await;
    assert_eq!(u.body["groups"][0]["value"], id(&g));
    let found = app
        .get(&format!(
            "/Groups?excludedAttributes=members&filter=members.value%20eq%20%22{}%22",
            users[1501]
        ))
        .await;
    assert_eq!(found.ids(), vec![id(&g)]);
    let none = app
        .get(&format!(
            "/Groups?filter=members.value%20eq%20%22{}%22",
            users[0]
        ))
        .await;
    assert!(none.ids().is_empty());
}
