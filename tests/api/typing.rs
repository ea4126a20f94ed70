//! Strict typing against `schemas/` (RFC 7643 §2.3, §2.4): a value of the wrong type is a 400
//! `invalidValue` naming the attribute, whether it comes by POST, PUT, PATCH or Bulk, and
//! `schemas` must name the resource's core schema and only its extensions. The Okta and Entra
//! dialects (string booleans, `manager` as a bare id or a one-element list, a lone value added
//! to a multi-valued attribute by PATCH) stay accepted.

use crate::both;
use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

both!(
    wrong_types_are_refused_by_post_put_patch_and_bulk,
    client_dialects_are_still_accepted,
    schemas_must_name_the_core_schema_and_declared_extensions,
);

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// `(attribute path as a PATCH names it, a wrong value, the name the error must carry)`.
fn wrong_values() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("emails", json!("x"), "emails"),
        ("emails", json!(["x@acme.test"]), "emails"),
        (
            "emails",
            json!([{"value": "a@acme.test", "primary": "sometimes"}]),
            "emails.primary",
        ),
        ("name", json!("Ann Lee"), "name"),
        (
            "name",
            json!({"givenName": {"first": "Ann"}}),
            "name.givenName",
        ),
        ("active", json!(3), "active"),
        ("active", json!("yes"), "active"),
        ("displayName", json!({"text": "Ann"}), "displayName"),
        ("displayName", json!(["Ann", "Lee"]), "displayName"),
        (
            "phoneNumbers",
            json!([{"value": 5551234}]),
            "phoneNumbers.value",
        ),
        ("photos", json!([{"value": {"url": "x"}}]), "photos.value"),
        (
            "x509Certificates",
            json!([{"value": "not base64!"}]),
            "x509Certificates.value",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            json!(42),
            "employeeNumber",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            json!(["a", "b"]),
            "manager",
        ),
    ]
}

/// A POST/PUT body carrying `value` at `path`.
fn body_with(path: &str, value: &Value) -> Value {
    let mut body = json!({"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "ann@acme.test"});
    match path.strip_prefix(&format!("{ENTERPRISE}:")) {
        Some(attr) => body[ENTERPRISE] = json!({ attr: value }),
        None => body[path] = value.clone(),
    }
    body
}

fn assert_names(r: &Resp, name: &str, how: &str) {
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains(name),
        "{how}: {detail:?} does not name {name}"
    );
}

async fn wrong_types_are_refused_by_post_put_patch_and_bulk(app: TestApp) {
    let u = app.user("bo@acme.test").await;
    let path = format!("/Users/{}", id(&u));
    for (attr, value, name) in wrong_values() {
        let how = format!("{attr} = {value}");
        assert_names(
            &app.post("/Users", body_with(attr, &value)).await,
            name,
            &how,
        );
        assert_names(&app.put(&path, body_with(attr, &value)).await, name, &how);
        for op in ["add", "replace"] {
            let with_path = ops(json!([{"op": op, "path": attr, "value": value}]));
            assert_names(&app.patch(&path, with_path).await, name, &how);
            let pathless = ops(json!([{"op": op, "value": {attr: value}}]));
            assert_names(&app.patch(&path, pathless).await, name, &how);
        }
        let r = app
            .post("/Bulk", json!({"schemas": [BULK_REQUEST], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": body_with(attr, &value)},
                {"method": "PATCH", "path": path, "data": ops(json!([{"op": "replace", "path": attr, "value": value}]))}]}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for answer in r.body["Operations"].as_array().unwrap() {
            assert_eq!(answer["status"], "400", "{how}: {answer}");
            assert_eq!(
                answer["response"]["scimType"], "invalidValue",
                "{how}: {answer}"
            );
            assert!(answer["response"]["detail"]
                .as_str()
                .unwrap()
                .contains(name));
        }
    }
    // A value-filtered path takes one element, an object.
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": "x"}])),
        )
        .await;
    assert_names(&r, "emails", "filtered replace with a string");
    // Nothing was stored along the way.
    assert_eq!(app.get("/Users?count=0").await.body["totalResults"], 1);
    let now = app.get(&path).await.body;
    assert_eq!(now["emails"], u["emails"]);
    assert_eq!(now["meta"]["version"], u["meta"]["version"]);
}

async fn client_dialects_are_still_accepted(app: TestApp) {
    let r = app
        .post("/Users", json!({"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "mgr@acme.test", "active": "True",
            "emails": [{"value": "mgr@acme.test", "primary": "True", "type": "work"}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["emails"][0]["primary"], true);
    let mgr = id(&r.body);
    let u = app.user("cy@acme.test").await;
    let path = format!("/Users/{}", id(&u));
    for value in [json!(mgr), json!([{"value": mgr}]), json!({"value": mgr})] {
        let r = app
            .patch(
                &path,
                ops(
                    json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": value}]),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{value}: {}", r.body);
        assert_eq!(r.body[ENTERPRISE]["manager"]["value"], mgr);
    }
    // RFC 7644 §3.5.2.1: one value added to a multi-valued attribute without an array.
    let r = app
        .patch(
            &path,
            ops(
                json!([{"op": "add", "path": "emails", "value": {"value": "cy2@acme.test"}},
                                 {"op": "Replace", "path": "active", "value": "False"}]),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["active"], false);
}

async fn schemas_must_name_the_core_schema_and_declared_extensions(app: TestApp) {
    let refused = [
        json!([GROUP_SCHEMA]),
        json!([USER_SCHEMA, "urn:example:params:scim:schemas:unknown"]),
        json!([USER_SCHEMA, GROUP_SCHEMA]),
        json!(USER_SCHEMA),
        json!([]),
    ];
    let u = app.user("dee@acme.test").await;
    let path = format!("/Users/{}", id(&u));
    for schemas in &refused {
        let body = json!({"schemas": schemas, "userName": "eve@acme.test"});
        let r = app.post("/Users", body.clone()).await;
        r.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
        let r = app.put(&path, body.clone()).await;
        r.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
        let r = app
            .post(
                "/Bulk",
                json!({"schemas": [BULK_REQUEST], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "e", "data": body}]}),
            )
            .await;
        assert_eq!(r.body["Operations"][0]["status"], "400", "{}", r.body);
        assert_eq!(
            r.body["Operations"][0]["response"]["scimType"],
            "invalidSyntax"
        );
    }
    let r = app
        .post(
            "/Groups",
            json!({"schemas": [USER_SCHEMA], "displayName": "Team"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    let r = app
        .post(
            "/Groups",
            json!({"schemas": [GROUP_SCHEMA, ENTERPRISE], "displayName": "Team"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    assert_eq!(app.get("/Users?count=0").await.body["totalResults"], 1);
    assert_eq!(app.get("/Groups?count=0").await.body["totalResults"], 0);
    // Accepted: the core schema with declared extensions, Entra's own Group URN, or no
    // `schemas` at all.
    let r = app
        .post("/Users", json!({"schemas": [USER_SCHEMA, ENTERPRISE, ORGANIZATION], "userName": "fay@acme.test"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post("/Groups", json!({"schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"], "displayName": "Team"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post("/Users", json!({"userName": "gus@acme.test"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
