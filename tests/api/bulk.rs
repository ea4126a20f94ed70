//! /Bulk (RFC 7644 §3.7): bulkId references in any order, cycles, failOnErrors, per-operation
//! atomicity, limits, preconditions and tenancy.

use crate::both;
use crate::helpers::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    bulk_group_listed_first_gets_members_created_later,
    bulk_manager_references_a_user_created_later,
    bulk_patch_put_delete_by_bulk_id_path,
    bulk_circular_references_fail_and_unrelated_ops_succeed,
    bulk_unknown_or_failed_references_are_409,
    bulk_fail_on_errors_stops_and_omits_the_rest,
    bulk_failing_operation_writes_nothing,
    bulk_limits_and_malformed_requests,
    bulk_version_is_a_precondition,
    bulk_acts_only_in_the_tokens_organization,
    bulk_is_advertised,
    bulk_cycle_of_long_bulk_ids_answers_in_bounded_bytes,
);

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const BASE: &str = "http://scim.test/scim/v2";

async fn bulk(app: &TestApp, operations: Value) -> Resp {
    let r = app
        .post(
            "/Bulk",
            json!({"schemas": [BULK_REQUEST], "Operations": operations}),
        )
        .await;
    if r.status == StatusCode::OK {
        assert_eq!(r.body["schemas"], json!([BULK_RESPONSE]), "{}", r.body);
        assert_eq!(r.headers["content-type"], "application/scim+json");
    }
    r
}

fn post_user(bulk_id: &str, user_name: &str) -> Value {
    json!({"method": "POST", "path": "/Users", "bulkId": bulk_id,
           "data": {"schemas": [USER_SCHEMA], "userName": user_name}})
}

/// The answer to the operation with this bulkId.
fn answer<'a>(r: &'a Resp, bulk_id: &str) -> &'a Value {
    r.body["Operations"]
        .as_array()
        .expect("a BulkResponse")
        .iter()
        .find(|o| o["bulkId"] == bulk_id)
        .unwrap_or_else(|| panic!("no answer for bulkId {bulk_id}: {}", r.body))
}

fn answers(r: &Resp) -> &Vec<Value> {
    r.body["Operations"].as_array().expect("a BulkResponse")
}

/// The id at the end of an answer's location, after checking the location is absolute.
fn location_id(op: &Value) -> String {
    let loc = op["location"].as_str().expect("a location");
    assert!(loc.starts_with(BASE), "{loc}");
    loc.rsplit('/').next().unwrap().to_owned()
}

/// Asserts an operation failed with this status, scimType and a detail containing `needle`.
fn assert_failed(op: &Value, status: StatusCode, scim_type: Option<&str>, needle: &str) {
    let code = status.as_u16().to_string();
    assert_eq!(op["status"], code, "{op}");
    let resp = &op["response"];
    assert_eq!(
        resp["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(resp["status"], code, "{op}");
    assert_eq!(resp["scimType"].as_str(), scim_type, "{op}");
    let detail = resp["detail"].as_str().expect("a detail");
    assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
}

async fn total(app: &TestApp, endpoint: &str) -> i64 {
    app.get(endpoint).await.body["totalResults"]
        .as_i64()
        .unwrap()
}

/// The group's members, read from the Users side.
async fn member_ids(app: &TestApp, group: &str) -> Vec<String> {
    let r = app
        .get(&format!("/Users?filter=groups.value%20eq%20%22{group}%22"))
        .await;
    let mut ids = r.ids();
    ids.sort();
    ids
}

async fn bulk_group_listed_first_gets_members_created_later(app: TestApp) {
    let r = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "team",
             "data": {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides",
                      "members": [{"type": "User", "value": "bulkId:alice"},
                                  {"type": "User", "value": "bulkId:bob"}]}},
            post_user("alice", "alice@acme.test"),
            post_user("bob", "bob@acme.test"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Answers come in request order, though the group ran last.
    let order: Vec<&str> = answers(&r)
        .iter()
        .map(|o| o["bulkId"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["team", "alice", "bob"]);
    for op in answers(&r) {
        assert_eq!(op["method"], "POST");
        assert_eq!(op["status"], "201", "{op}");
        assert!(op.get("response").is_none());
    }
    let team = location_id(answer(&r, "team"));
    assert!(answer(&r, "team")["location"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{BASE}/Groups/")));
    let mut users = vec![
        location_id(answer(&r, "alice")),
        location_id(answer(&r, "bob")),
    ];
    users.sort();
    assert_eq!(member_ids(&app, &team).await, users);
    // version is the resource's ETag.
    let got = app.get(&format!("/Users/{}", users[0])).await;
    let alice_or_bob = answers(&r)
        .iter()
        .find(|o| location_id(o) == users[0])
        .unwrap();
    assert_eq!(alice_or_bob["version"], got.etag());
}

async fn bulk_manager_references_a_user_created_later(app: TestApp) {
    let r = bulk(
        &app,
        json!([
            {"method": "post", "path": "/Users", "bulkId": "emp",
             "data": {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "emp@acme.test",
                      ENTERPRISE: {"manager": {"value": "bulkId:boss"}}}},
            post_user("boss", "boss@acme.test"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(answer(&r, "emp")["status"], "201", "{}", r.body);
    assert_eq!(
        answer(&r, "emp")["method"],
        "POST",
        "methods are echoed in upper case"
    );
    let boss = location_id(answer(&r, "boss"));
    let emp = app
        .get(&format!("/Users/{}", location_id(answer(&r, "emp"))))
        .await;
    assert_eq!(emp.body[ENTERPRISE]["manager"]["value"], boss.as_str());
}

async fn bulk_patch_put_delete_by_bulk_id_path(app: TestApp) {
    // Keys and methods in any case; each bulkId path is listed before the POST it names.
    let r = app
        .post(
            "/Bulk",
            json!({"SCHEMAS": [BULK_REQUEST], "operations": [
                {"Method": "patch", "Path": "/Users/bulkId:pat",
                 "Data": ops(json!([{"op": "replace", "path": "displayName", "value": "Pat P."}]))},
                {"method": "PUT", "path": "/Groups/bulkId:grp", "bulkId": "put-grp",
                 "data": {"displayName": "Renamed", "members": [{"value": "bulkId:pat"}]}},
                {"method": "DELETE", "path": "/Users/bulkId:gone"},
                post_user("pat", "pat@acme.test"),
                post_user("gone", "gone@acme.test"),
                {"method": "POST", "path": "/Groups", "bulkId": "grp",
                 "data": {"displayName": "Original"}},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = answers(&r);
    assert_eq!(a.len(), 6);
    assert_eq!(a[0]["method"], "PATCH");
    assert_eq!(a[0]["status"], "200", "{}", r.body);
    assert_eq!(a[0]["version"], "W/\"2\"");
    assert_eq!(a[1]["status"], "200", "{}", r.body);
    assert_eq!(a[2]["method"], "DELETE");
    assert_eq!(a[2]["status"], "204", "{}", r.body);
    assert!(a[2].get("version").is_none());
    let pat = location_id(answer(&r, "pat"));
    assert_eq!(location_id(&a[0]), pat);
    assert_eq!(location_id(&a[2]), location_id(answer(&r, "gone")));
    let grp = location_id(answer(&r, "grp"));
    assert_eq!(location_id(answer(&r, "put-grp")), grp);

    assert_eq!(
        app.get(&format!("/Users/{pat}")).await.body["displayName"],
        "Pat P."
    );
    let g = app.get(&format!("/Groups/{grp}")).await;
    assert_eq!(g.body["displayName"], "Renamed");
    assert_eq!(member_ids(&app, &grp).await, vec![pat]);
    app.get(&format!("/Users/{}", location_id(&a[2])))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
}

async fn bulk_circular_references_fail_and_unrelated_ops_succeed(app: TestApp) {
    let manager = |bulk_id: &str, user_name: &str, of: &str| {
        json!({"method": "POST", "path": "/Users", "bulkId": bulk_id,
               "data": {"userName": user_name, ENTERPRISE: {"manager": {"value": format!("bulkId:{of}")}}}})
    };
    let r = bulk(
        &app,
        json!([
            manager("a", "a@acme.test", "b"),
            manager("b", "b@acme.test", "c"),
            manager("c", "c@acme.test", "a"),
            manager("self", "self@acme.test", "self"),
            {"method": "POST", "path": "/Groups", "bulkId": "team",
             "data": {"displayName": "Team", "members": [{"value": "bulkId:a"}, {"value": "bulkId:ok"}]}},
            post_user("ok", "ok@acme.test"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for b in ["a", "b", "c"] {
        let op = answer(&r, b);
        assert_failed(op, StatusCode::CONFLICT, Some("invalidValue"), "circular");
        let detail = op["response"]["detail"].as_str().unwrap();
        assert!(
            detail.contains("bulkId:a") && detail.contains("bulkId:c"),
            "{detail}"
        );
        assert!(!detail.contains("bulkId:ok"), "{detail}");
    }
    assert_failed(
        answer(&r, "self"),
        StatusCode::CONFLICT,
        Some("invalidValue"),
        "bulkId:self",
    );
    // Depending on a failed operation fails too.
    assert_failed(
        answer(&r, "team"),
        StatusCode::CONFLICT,
        Some("invalidValue"),
        "bulkId:a",
    );
    assert_eq!(answer(&r, "ok")["status"], "201");
    assert_eq!(total(&app, "/Users").await, 1);
    assert_eq!(total(&app, "/Groups").await, 0);
}

async fn bulk_unknown_or_failed_references_are_409(app: TestApp) {
    let r = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "G", "members": [{"value": "bulkId:nobody"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:nowhere",
             "data": ops(json!([{"op": "replace", "path": "active", "value": false}]))},
            // A POST that fails (no userName), and an operation that needs it.
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"displayName": "x"}},
            {"method": "DELETE", "path": "/Users/bulkId:bad"},
            // A POST without a bulkId.
            {"method": "POST", "path": "/Users", "data": {"userName": "nobulk@acme.test"}},
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = answers(&r);
    assert_eq!(a.len(), 5);
    assert_failed(
        &a[0],
        StatusCode::CONFLICT,
        Some("invalidValue"),
        "bulkId:nobody",
    );
    assert_failed(
        &a[1],
        StatusCode::CONFLICT,
        Some("invalidValue"),
        "bulkId:nowhere",
    );
    assert!(a[1].get("location").is_none());
    assert_eq!(a[2]["status"], "400", "{}", r.body);
    assert_failed(&a[3], StatusCode::CONFLICT, Some("invalidValue"), "failed");
    assert_failed(
        &a[4],
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
        "bulkId",
    );
    assert_eq!(total(&app, "/Users").await, 0);
    assert_eq!(total(&app, "/Groups").await, 0);
}

async fn bulk_fail_on_errors_stops_and_omits_the_rest(app: TestApp) {
    app.user("taken@acme.test").await;
    let r = app
        .post(
            "/Bulk",
            json!({"schemas": [BULK_REQUEST], "failOnErrors": 1, "Operations": [
                post_user("first", "first@acme.test"),
                post_user("dup", "TAKEN@acme.test"),
                post_user("never", "never@acme.test"),
                {"method": "DELETE", "path": "/Users/whatever"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = answers(&r);
    assert_eq!(a.len(), 2, "{}", r.body);
    assert_eq!(a[0]["status"], "201");
    assert_failed(&a[1], StatusCode::CONFLICT, Some("uniqueness"), "userName");
    assert_eq!(total(&app, "/Users").await, 2);
    let r = app
        .get("/Users?filter=userName%20eq%20%22never@acme.test%22")
        .await;
    assert_eq!(r.body["totalResults"], 0);

    // failOnErrors 2 tolerates one error and stops at the second.
    let r = app
        .post(
            "/Bulk",
            json!({"schemas": [BULK_REQUEST], "failOnErrors": 2, "Operations": [
                {"method": "DELETE", "path": "/Users/ghost-1"},
                post_user("x", "x@acme.test"),
                {"method": "DELETE", "path": "/Users/ghost-2"},
                post_user("y", "y@acme.test"),
            ]}),
        )
        .await;
    let a = answers(&r);
    assert_eq!(a.len(), 3, "{}", r.body);
    assert_failed(&a[0], StatusCode::NOT_FOUND, None, "ghost-1");
    assert_eq!(
        a[0]["location"],
        format!("{BASE}/Users/ghost-1"),
        "a failure names its target when known"
    );
    assert_eq!(a[1]["status"], "201");
    assert_failed(&a[2], StatusCode::NOT_FOUND, None, "ghost-2");
}

async fn bulk_failing_operation_writes_nothing(app: TestApp) {
    let r = bulk(
        &app,
        json!([
            post_user("u", "u@acme.test"),
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "Half", "members": [{"value": "bulkId:u"}, {"value": "ghost-9"}]}},
        ]),
    )
    .await;
    assert_eq!(answer(&r, "u")["status"], "201");
    assert_failed(
        answer(&r, "g"),
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
        "ghost-9",
    );
    assert_eq!(total(&app, "/Groups").await, 0, "no group, not even empty");

    // A PATCH whose second operation fails leaves the first unapplied too.
    let g = app.group("Whole", &[]).await;
    let r = bulk(
        &app,
        json!([{"method": "PATCH", "path": format!("/Groups/{}", id(&g)), "bulkId": "p",
        "data": ops(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "add", "path": "members", "value": [{"value": "ghost-10"}]},
        ]))}]),
    )
    .await;
    assert_failed(
        answer(&r, "p"),
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
        "ghost-10",
    );
    let now = app.get(&format!("/Groups/{}", id(&g))).await;
    assert_eq!(now.body["displayName"], "Whole");
    assert!(now.body.get("members").is_none());
}

async fn bulk_limits_and_malformed_requests(app: TestApp) {
    let many: Vec<Value> = (0..1001)
        .map(|n| post_user(&format!("u{n}"), &format!("u{n}@acme.test")))
        .collect();
    let r = bulk(&app, Value::Array(many)).await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, None);
    assert!(r.body["detail"].as_str().unwrap().contains("1000"));
    assert_eq!(total(&app, "/Users").await, 0);

    // Exactly the limit is fine.
    let limit: Vec<Value> = (0..1000)
        .map(|n| json!({"method": "DELETE", "path": format!("/Users/none-{n}")}))
        .collect();
    let r = bulk(&app, Value::Array(limit)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(answers(&r).len(), 1000);

    // A body over maxPayloadSize.
    let big = "x".repeat(scimd::http::MAX_BODY_BYTES);
    let r = bulk(
        &app,
        json!([{"method": "POST", "path": "/Users", "bulkId": "big", "data": {"userName": big}}]),
    )
    .await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, None);

    for (body, scim_type) in [
        (json!([]), "invalidSyntax"),
        (json!({"schemas": [BULK_REQUEST]}), "invalidSyntax"),
        (
            json!({"schemas": [BULK_REQUEST], "Operations": {"method": "POST"}}),
            "invalidSyntax",
        ),
        (
            json!({"schemas": [BULK_REQUEST], "Operations": ["DELETE /Users/x"]}),
            "invalidSyntax",
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}),
            "invalidValue",
        ),
        (
            json!({"schemas": [BULK_REQUEST], "failOnErrors": 0, "Operations": []}),
            "invalidValue",
        ),
        (
            json!({"schemas": [BULK_REQUEST], "Operations": [
                post_user("same", "one@acme.test"), post_user("same", "two@acme.test")]}),
            "invalidValue",
        ),
    ] {
        app.post("/Bulk", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, Some(scim_type));
    }
    assert_eq!(total(&app, "/Users").await, 0);

    // A malformed operation fails alone.
    let r = bulk(
        &app,
        json!([
            {"method": "GET", "path": "/Users", "bulkId": "get"},
            {"method": "POST", "path": "/Teams", "bulkId": "teams", "data": {}},
            {"method": "POST", "path": "/Users/abc", "bulkId": "id", "data": {"userName": "x"}},
            {"method": "PUT", "path": "/Users", "bulkId": "noid", "data": {"userName": "x"}},
            {"method": "PATCH", "path": "/Users/abc", "bulkId": "nodata"},
            post_user("fine", "fine@acme.test"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(answer(&r, "get")["method"], "GET");
    for b in ["get", "teams", "id", "noid"] {
        assert_failed(
            answer(&r, b),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "",
        );
    }
    assert_failed(
        answer(&r, "nodata"),
        StatusCode::BAD_REQUEST,
        Some("invalidSyntax"),
        "data",
    );
    assert_eq!(answer(&r, "fine")["status"], "201");
}

async fn bulk_version_is_a_precondition(app: TestApp) {
    let u = app.user("ver@acme.test").await;
    let path = format!("/Users/{}", id(&u));
    let patch = ops(json!([{"op": "replace", "path": "displayName", "value": "V"}]));
    let r = bulk(
        &app,
        json!([
            {"method": "PATCH", "path": path, "bulkId": "stale", "version": "W/\"7\"", "data": patch},
            {"method": "PATCH", "path": path, "bulkId": "fresh", "version": "W/\"1\"", "data": patch},
            {"method": "DELETE", "path": path, "bulkId": "old", "version": "W/\"1\""},
        ]),
    )
    .await;
    let stale = answer(&r, "stale");
    assert_failed(stale, StatusCode::PRECONDITION_FAILED, None, "If-Match");
    assert_eq!(stale["location"], format!("{BASE}{path}"));
    assert_eq!(answer(&r, "fresh")["status"], "200");
    assert_eq!(answer(&r, "fresh")["version"], "W/\"2\"");
    assert_failed(answer(&r, "old"), StatusCode::PRECONDITION_FAILED, None, "");
    let now = app.get(&path).await;
    assert_eq!(now.status, StatusCode::OK);
    assert_eq!(now.body["displayName"], "V");
    assert_eq!(now.etag(), "W/\"2\"");
}

async fn bulk_acts_only_in_the_tokens_organization(app: TestApp) {
    let (_, b_token) = app.other_org("beta").await;
    let theirs = app.user("alice@acme.test").await;
    let their_group = app.group("Acme Eng", &[]).await;
    let user_path = format!("/Users/{}", id(&theirs));
    let group_path = format!("/Groups/{}", id(&their_group));
    let body = json!({"schemas": [BULK_REQUEST], "Operations": [
        {"method": "PATCH", "path": user_path, "bulkId": "patch",
         "data": ops(json!([{"op": "replace", "path": "active", "value": false}]))},
        {"method": "PUT", "path": group_path, "bulkId": "put", "data": {"displayName": "stolen"}},
        {"method": "DELETE", "path": user_path, "bulkId": "delete"},
        {"method": "POST", "path": "/Groups", "bulkId": "steal",
         "data": {"displayName": "B", "members": [{"value": id(&theirs)}]}},
        post_user("own", "alice@acme.test"),
    ]});
    let r = app
        .send(Method::POST, "/Bulk", Some(&b_token), Some(&body), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for b in ["patch", "put", "delete"] {
        assert_failed(answer(&r, b), StatusCode::NOT_FOUND, None, "not found");
    }
    assert_failed(
        answer(&r, "steal"),
        StatusCode::BAD_REQUEST,
        Some("invalidValue"),
        &id(&theirs),
    );
    // The same userName is free in another organization.
    assert_eq!(answer(&r, "own")["status"], "201");
    let still = app.get(&user_path).await;
    assert_ne!(still.body["active"], false);
    assert_eq!(app.get(&group_path).await.body["displayName"], "Acme Eng");
    // And no token, no bulk.
    app.send(Method::POST, "/Bulk", None, Some(&body), &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
}

async fn bulk_is_advertised(app: TestApp) {
    let spc = app
        .send(Method::GET, "/ServiceProviderConfig", None, None, &[])
        .await;
    assert_eq!(
        spc.body["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": scimd::http::MAX_BODY_BYTES})
    );
}

/// The amplification attack: 1000 POSTs whose bulkIds reference each other in one cycle. Each
/// failure used to name every bulkId of the cycle, so a 1 MiB request of long bulkIds drew a
/// response of about 490 MB. Now a bulkId is at most `MAX_BULK_ID_BYTES` long (the long-id
/// request is refused whole, before any work), a cycle error names at most a few bulkIds, and
/// the whole answer stays within about a kilobyte per operation.
async fn bulk_cycle_of_long_bulk_ids_answers_in_bounded_bytes(app: TestApp) {
    use scimd::service::bulk::{MAX_BULK_ID_BYTES, MAX_BULK_OPERATIONS};
    let cycle = |id_len: usize| -> Value {
        let id = |i: usize| format!("{i:0>width$}", width = id_len);
        let ops: Vec<Value> = (0..MAX_BULK_OPERATIONS)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": id(i),
                       "data": {"userName": format!("bulkId:{}", id((i + 1) % MAX_BULK_OPERATIONS))}})
            })
            .collect();
        json!({"schemas": [BULK_REQUEST], "Operations": ops})
    };
    // The attack as reported: bulkIds as long as 1 MiB allows.
    let long = cycle(480);
    assert!(long.to_string().len() <= scimd::http::MAX_BODY_BYTES);
    let r = app.post("/Bulk", long).await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert!(r.body.to_string().len() < 1024, "{}", r.body);
    assert_eq!(total(&app, "/Users").await, 0);

    // The longest bulkIds allowed, in the same cycle: every operation fails with 409, each
    // error names at most 3 bulkIds, and the whole answer is bounded.
    let r = app.post("/Bulk", cycle(MAX_BULK_ID_BYTES)).await;
    assert_eq!(r.status, StatusCode::OK);
    let bytes = r.body.to_string().len();
    assert!(
        bytes <= MAX_BULK_OPERATIONS * 1024,
        "a BulkResponse of {bytes} bytes for {MAX_BULK_OPERATIONS} operations"
    );
    assert_eq!(answers(&r).len(), MAX_BULK_OPERATIONS);
    for op in answers(&r) {
        assert_failed(op, StatusCode::CONFLICT, Some("invalidValue"), "circular");
        let detail = op["response"]["detail"].as_str().unwrap();
        assert!(detail.matches("bulkId:").count() <= 3, "{detail}");
        assert!(detail.contains("997 more"), "{detail}");
    }
    assert_eq!(total(&app, "/Users").await, 0);
}
