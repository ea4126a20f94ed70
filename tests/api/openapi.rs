//! The admin API's generated OpenAPI document against real answers: every operation is called
//! on its success path and on at least one error path, and each answer's status must be one the
//! document lists for that operation, its body must match the schema documented for that status
//! (the schemas are closed: a field the schema does not name fails, and so does a missing
//! required one), and a documented `Retry-After` must be there.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::*;
use crate::people::{acme_admin, acme_member, login, mailed_link, PASSWORD};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

both!(every_operation_answers_as_the_document_says);

/// Calls operations and checks their answers against the document, noting which operation
/// answered which status.
struct Checker {
    doc: Value,
    /// `(method, path template, status)` of every checked answer.
    seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    fn new() -> Self {
        Checker {
            doc: serde_json::from_str(scimd::http::admin::document()).unwrap(),
            seen: BTreeSet::new(),
        }
    }

    /// Checks one answer of `method template` against the document.
    fn check(&mut self, method: &Method, template: &str, r: &Resp) {
        let m = method.as_str().to_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{method} {template} is not documented");
        let status = r.status.as_u16();
        let documented = &op["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which the document does not list for it: {}",
            r.body
        );
        if let Some(headers) = documented["headers"].as_object() {
            for name in headers.keys() {
                assert!(
                    r.headers.contains_key(name.as_str()),
                    "{method} {template} {status} lacks the documented header {name}"
                );
            }
        }
        match documented["content"]["application/json"]["schema"].as_object() {
            Some(schema) => {
                let content_type = r
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(
                    content_type.starts_with("application/json"),
                    "{method} {template} {status}: content type {content_type:?}"
                );
                let errors = self.errors(schema, &r.body);
                assert!(
                    errors.is_empty(),
                    "{method} {template} {status}: the body does not match its schema {}:\n{}\nbody: {}",
                    Value::Object(schema.clone()),
                    errors.join("\n"),
                    r.body
                );
            }
            None if template == "/openapi.json" => {}
            None => assert_eq!(
                r.body,
                Value::Null,
                "{method} {template} {status} is documented without a body"
            ),
        }
        self.seen.insert((m, template.to_owned(), status));
    }

    /// How `body` fails `schema`; its `$ref`s resolve against the document's components.
    fn errors(&self, schema: &serde_json::Map<String, Value>, body: &Value) -> Vec<String> {
        let mut root = schema.clone();
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::new(&Value::Object(root))
            .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}"));
        validator
            .iter_errors(body)
            .map(|e| format!("  {e}"))
            .collect()
    }

    /// Every documented operation answered with a success and with an error.
    fn assert_complete(&self) {
        let mut missing = Vec::new();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let answered = |ok: bool| {
                    self.seen
                        .iter()
                        .any(|(m, p, s)| m == method && p == path && (*s < 400) == ok)
                };
                if !answered(true) {
                    missing.push(format!("{method} {path}: no success checked"));
                }
                // This document has no error to answer.
                if !answered(false) && path != "/openapi.json" {
                    missing.push(format!("{method} {path}: no error checked"));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}

/// A request to the admin API, checked against the document. `path` is `template` with its
/// parameters filled in (and a query, if any).
async fn call(
    app: &TestApp,
    c: &mut Checker,
    token: Option<&str>,
    method: Method,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let r = match token {
        Some(t) => admin(app, t, method.clone(), path, body).await,
        None => {
            app.send(
                method.clone(),
                &format!("/admin/v1{path}"),
                None,
                body.as_ref(),
                &[],
            )
            .await
        }
    };
    c.check(&method, template, &r);
    r
}

/// A CSV upload to the import, checked against the document.
async fn import(app: &TestApp, c: &mut Checker, token: &str, csv: &str) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/admin/v1/orgs/acme/invitations/import")
        .header("host", "scim.test")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/csv")
        .body(Body::from(csv.to_owned()))
        .unwrap();
    let r = app.raw(req).await;
    c.check(&Method::POST, "/orgs/{slug}/invitations/import", &r);
    r
}

fn status(r: &Resp, want: StatusCode) {
    assert_eq!(r.status, want, "{}", r.body);
}

async fn every_operation_answers_as_the_document_says(mut app: TestApp) {
    app.configure(|c| c.request_log.flush_every = std::time::Duration::from_secs(3600));
    let c = &mut Checker::new();
    let provider = admin_token(&app).await;
    let p = Some(provider.as_str());
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);

    // The document itself.
    let r = call(
        &app,
        c,
        None,
        get.clone(),
        "/openapi.json",
        "/openapi.json",
        None,
    )
    .await;
    status(&r, StatusCode::OK);

    // Organizations and accounts.
    let r = call(&app, c, p, get.clone(), "/orgs", "/orgs", None).await;
    status(&r, StatusCode::OK);
    let r = call(&app, c, None, get.clone(), "/orgs", "/orgs", None).await;
    status(&r, StatusCode::UNAUTHORIZED);
    let body = json!({"slug": "globex", "name": "Globex"});
    let r = call(
        &app,
        c,
        p,
        post.clone(),
        "/orgs",
        "/orgs",
        Some(body.clone()),
    )
    .await;
    status(&r, StatusCode::CREATED);
    let r = call(&app, c, p, post.clone(), "/orgs", "/orgs", Some(body)).await;
    status(&r, StatusCode::CONFLICT);
    let r = call(
        &app,
        c,
        p,
        post.clone(),
        "/orgs",
        "/orgs",
        Some(json!({"slug": "Not A Slug"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let account = json!({"email": "ann@example.com", "givenName": "Ann", "familyName": "Lee",
                         "memberships": [{"org": "acme", "role": "member"}, {"org": "globex"}]});
    let r = call(
        &app,
        c,
        p,
        post.clone(),
        "/accounts",
        "/accounts",
        Some(account),
    )
    .await;
    status(&r, StatusCode::CREATED);
    // Ann sets her password now, while the outbox still holds her mail.
    let link = mailed_link(&app, "ann@example.com", "/setup/").await;
    let set = crate::people::set_password(&app, &link, PASSWORD).await;
    status(&set, StatusCode::OK);
    let r = call(
        &app,
        c,
        p,
        post.clone(),
        "/accounts",
        "/accounts",
        Some(json!({"email": "x@example.com"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let nowhere = json!({"email": "x@example.com", "memberships": [{"org": "nowhere"}]});
    let r = call(
        &app,
        c,
        p,
        post.clone(),
        "/accounts",
        "/accounts",
        Some(nowhere),
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);

    // People: an admin of acme with a password, and a member.
    let boss_token = acme_admin(&app, &provider, "boss@example.com").await;
    let member = acme_member(&app, &provider, "mo@example.com").await;
    let m = Some(member.as_str());
    let r = login(&app, "boss@example.com", PASSWORD).await;
    c.check(&post, "/login", &r);
    status(&r, StatusCode::OK);
    let r = login(&app, "boss@example.com", "not the password").await;
    c.check(&post, "/login", &r);
    status(&r, StatusCode::UNAUTHORIZED);
    let r = call(
        &app,
        c,
        None,
        post.clone(),
        "/login",
        "/login",
        Some(json!({"email": "not an address"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    for _ in 0..5 {
        login(&app, "limited@example.com", "not the password").await;
    }
    let r = login(&app, "limited@example.com", "not the password").await;
    c.check(&post, "/login", &r);
    status(&r, StatusCode::TOO_MANY_REQUESTS);
    let r = call(
        &app,
        c,
        Some(boss_token.as_str()),
        get.clone(),
        "/orgs",
        "/orgs",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    assert!(r.body["items"][0]["memberId"].is_string(), "{}", r.body);
    let r = call(
        &app,
        c,
        Some(boss_token.as_str()),
        get.clone(),
        "/me",
        "/me",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(&app, c, p, get.clone(), "/me", "/me", None).await;
    status(&r, StatusCode::FORBIDDEN);
    let r = call(&app, c, None, get.clone(), "/me", "/me", None).await;
    status(&r, StatusCode::UNAUTHORIZED);
    let change = json!({"currentPassword": PASSWORD, "newPassword": "another long password"});
    let r = call(
        &app,
        c,
        Some(boss_token.as_str()),
        post.clone(),
        "/me/password",
        "/me/password",
        Some(change),
    )
    .await;
    status(&r, StatusCode::OK);
    let boss = r.body["accessToken"].as_str().unwrap().to_owned();
    let b = Some(boss.as_str());
    let wrong =
        json!({"currentPassword": "not the password", "newPassword": "another long password"});
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        "/me/password",
        "/me/password",
        Some(wrong),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        p,
        post.clone(),
        "/me/password",
        "/me/password",
        Some(json!({})),
    )
    .await;
    status(&r, StatusCode::FORBIDDEN);
    let signup = json!({"email": "new@example.com", "givenName": "New", "familyName": "Person",
                        "organization": {"slug": "newco", "name": "New Co"}});
    let r = call(
        &app,
        c,
        None,
        post.clone(),
        "/signup",
        "/signup",
        Some(signup),
    )
    .await;
    status(&r, StatusCode::ACCEPTED);
    let taken = json!({"email": "other@example.com", "givenName": "O", "familyName": "P",
                       "organization": {"slug": "acme"}});
    let r = call(
        &app,
        c,
        None,
        post.clone(),
        "/signup",
        "/signup",
        Some(taken),
    )
    .await;
    status(&r, StatusCode::CONFLICT);
    let r = call(
        &app,
        c,
        None,
        post.clone(),
        "/signup",
        "/signup",
        Some(json!({"email": "nope"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        None,
        post.clone(),
        "/password-reset",
        "/password-reset",
        Some(json!({"email": "mo@example.com"})),
    )
    .await;
    status(&r, StatusCode::ACCEPTED);
    let r = call(
        &app,
        c,
        None,
        post.clone(),
        "/password-reset",
        "/password-reset",
        Some(json!({"email": "nope"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);

    // Members.
    let t = "/orgs/{slug}/members";
    let r = call(
        &app,
        c,
        m,
        get.clone(),
        t,
        "/orgs/acme/members?startIndex=1&count=10",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    assert!(!r.body["items"].as_array().unwrap().is_empty());
    let r = call(
        &app,
        c,
        p,
        get.clone(),
        t,
        "/orgs/acme/members?startIndex=x",
        None,
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(&app, c, p, get.clone(), t, "/orgs/nowhere/members", None).await;
    status(&r, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        c,
        m,
        post.clone(),
        t,
        "/orgs/acme/members",
        Some(json!({"email": "kim@example.com"})),
    )
    .await;
    status(&r, StatusCode::FORBIDDEN);
    let kim = json!({"email": "kim@example.com", "role": "member", "givenName": "Kim"});
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/members",
        Some(kim.clone()),
    )
    .await;
    status(&r, StatusCode::CREATED);
    let kim_id = id(&r.body);
    let r = call(&app, c, b, post.clone(), t, "/orgs/acme/members", Some(kim)).await;
    status(&r, StatusCode::CONFLICT);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/members",
        Some(json!({"email": "nope"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let t = "/orgs/{slug}/members/{id}";
    let one = format!("/orgs/acme/members/{kim_id}");
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        &one,
        Some(json!({"role": "admin", "displayName": "Kim K"})),
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(&app, c, b, patch.clone(), t, &one, Some(json!({}))).await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        "/orgs/acme/members/nobody",
        Some(json!({"active": false})),
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let r = call(&app, c, b, delete.clone(), t, &one, None).await;
    status(&r, StatusCode::NO_CONTENT);
    let r = call(&app, c, b, delete.clone(), t, &one, None).await;
    status(&r, StatusCode::NOT_FOUND);
    let t = "/orgs/{slug}/members/remove";
    let lou = call(
        &app,
        c,
        b,
        post.clone(),
        "/orgs/{slug}/members",
        "/orgs/acme/members",
        Some(json!({"email": "lou@example.com"})),
    )
    .await;
    let ids = json!({"ids": [id(&lou.body), "nobody"]});
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/members/remove",
        Some(ids),
    )
    .await;
    status(&r, StatusCode::OK);
    assert_eq!(r.body["failed"][0]["status"], 404, "{}", r.body);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/members/remove",
        Some(json!({})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);

    // Groups.
    let mo = crate::people::member_id(&app, &boss, "acme", "mo@example.com").await;
    let t = "/orgs/{slug}/groups";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/groups",
        Some(json!({"displayName": "Ops", "members": [mo]})),
    )
    .await;
    status(&r, StatusCode::CREATED);
    let ops_id = id(&r.body);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/groups",
        Some(json!({"displayName": "ops"})),
    )
    .await;
    status(&r, StatusCode::CONFLICT);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/groups",
        Some(json!({"members": []})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(&app, c, m, get.clone(), t, "/orgs/acme/groups", None).await;
    status(&r, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/groups?count=x",
        None,
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let t = "/orgs/{slug}/groups/{id}";
    let r = call(
        &app,
        c,
        m,
        get.clone(),
        t,
        &format!("/orgs/acme/groups/{ops_id}?count=1"),
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    assert!(r.body["nextCursor"].is_string(), "a full page: {}", r.body);
    let r = call(
        &app,
        c,
        m,
        get.clone(),
        t,
        &format!("/orgs/acme/groups/{ops_id}?count=0"),
        None,
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        m,
        get.clone(),
        t,
        "/orgs/acme/groups/nothing",
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    // Mo's membership now shows the group.
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        "/orgs/{slug}/members",
        "/orgs/acme/members",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let t = "/orgs/{slug}/groups/{id}";
    let one = format!("/orgs/acme/groups/{ops_id}");
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        &one,
        Some(json!({"displayName": "Ops team", "removeMembers": [mo]})),
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(&app, c, b, patch.clone(), t, &one, Some(json!({}))).await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        "/orgs/acme/groups/nothing",
        Some(json!({"displayName": "X"})),
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);

    // Invitations.
    let t = "/orgs/{slug}/invitations";
    let one = json!({"email": "ivy@example.com", "firstName": "Ivy", "lastName": "Ng", "groups": [ops_id]});
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/invitations",
        Some(one.clone()),
    )
    .await;
    status(&r, StatusCode::CREATED);
    let ivy = id(&r.body);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/invitations",
        Some(one.clone()),
    )
    .await;
    status(&r, StatusCode::CONFLICT);
    let batch = json!({"invitations": [one, {"email": "jo@example.com", "firstName": "Jo", "lastName": "Ra", "role": "admin"}]});
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/invitations",
        Some(batch),
    )
    .await;
    status(&r, StatusCode::CREATED);
    assert_eq!(r.body["items"][0]["result"], 409, "{}", r.body);
    assert_eq!(r.body["items"][1]["result"], 201, "{}", r.body);
    let jo = id(&r.body["items"][1]);
    let none = json!({"invitations": [{"email": "ivy@example.com", "firstName": "Ivy", "lastName": "Ng"}]});
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/invitations",
        Some(none),
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/invitations",
        Some(json!({"email": "bad", "firstName": "A", "lastName": "B"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(&app, c, b, get.clone(), t, "/orgs/acme/invitations", None).await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        p,
        get.clone(),
        t,
        "/orgs/nowhere/invitations",
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let t = "/orgs/{slug}/invitations/{id}";
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        &format!("/orgs/acme/invitations/{ivy}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        &format!("/orgs/acme/invitations/{ivy}"),
        Some(json!({"email": "x@example.com"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        b,
        patch.clone(),
        t,
        "/orgs/acme/invitations/nothing",
        Some(json!({"role": "admin"})),
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let t = "/orgs/{slug}/invitations/{id}/resend";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        &format!("/orgs/acme/invitations/{ivy}/resend"),
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/invitations/nothing/resend",
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let t = "/orgs/{slug}/invitations/{id}/revoke";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        &format!("/orgs/acme/invitations/{jo}/revoke"),
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        &format!("/orgs/acme/invitations/{jo}/revoke"),
        None,
    )
    .await;
    status(&r, StatusCode::CONFLICT);
    let r = import(
        &app,
        c,
        &boss,
        "email,group membership\numa@example.com,Ops team\nnot an address,\n",
    )
    .await;
    status(&r, StatusCode::OK);
    assert_eq!(
        r.body["skipped"][0]["reason"], "invalid_email",
        "{}",
        r.body
    );
    let r = import(&app, c, &boss, "").await;
    status(&r, StatusCode::BAD_REQUEST);

    // The invitee's side: Ann (an account with a password) is invited to beta.
    let (_, _) = app.other_org("beta").await;
    let to_ann = json!({"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"});
    let r = admin(
        &app,
        &provider,
        post.clone(),
        "/orgs/beta/invitations",
        Some(to_ann),
    )
    .await;
    status(&r, StatusCode::CREATED);
    let for_ann = id(&r.body);
    let ann = crate::people::login_token(&app, "ann@example.com").await;
    let a = Some(ann.as_str());
    let r = call(
        &app,
        c,
        a,
        get.clone(),
        "/me/invitations",
        "/me/invitations",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    assert_eq!(
        r.body["items"][0]["organization"]["slug"], "beta",
        "{}",
        r.body
    );
    let r = call(
        &app,
        c,
        p,
        get.clone(),
        "/me/invitations",
        "/me/invitations",
        None,
    )
    .await;
    status(&r, StatusCode::FORBIDDEN);
    let t = "/me/invitations/{id}/accept";
    let r = call(
        &app,
        c,
        a,
        post.clone(),
        t,
        &format!("/me/invitations/{for_ann}/accept"),
        None,
    )
    .await;
    status(&r, StatusCode::CREATED);
    let r = call(
        &app,
        c,
        a,
        post.clone(),
        t,
        &format!("/me/invitations/{for_ann}/accept"),
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);

    // The audit log.
    let t = "/orgs/{slug}/audit";
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/audit?count=5&action=Invitation.revoke",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/audit?cursor=&count=2&since=2020-01-01",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    assert!(r.body["nextCursor"].is_string(), "a full page: {}", r.body);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/audit?actor=someone",
        None,
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(&app, c, m, get.clone(), t, "/orgs/acme/audit", None).await;
    status(&r, StatusCode::FORBIDDEN);
    let r = call(&app, c, b, get.clone(), "/audit", "/audit", None).await;
    status(&r, StatusCode::OK);
    let r = call(&app, c, p, get.clone(), "/audit", "/audit", None).await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        p,
        get.clone(),
        "/audit",
        "/audit?org=nowhere",
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);

    // Provisioning: the connection, tokens, the request log and the connection test.
    let t = "/orgs/{slug}/provisioning";
    let r = call(&app, c, b, get.clone(), t, "/orgs/acme/provisioning", None).await;
    status(&r, StatusCode::OK);
    let r = call(&app, c, m, get.clone(), t, "/orgs/acme/provisioning", None).await;
    status(&r, StatusCode::FORBIDDEN);
    let t = "/orgs/{slug}/tokens";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/tokens",
        Some(json!({"name": "okta", "expiresInDays": 30})),
    )
    .await;
    status(&r, StatusCode::CREATED);
    let okta = id(&r.body);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/tokens",
        Some(json!({})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/tokens?count=50",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/tokens?count=1000",
        None,
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let t = "/orgs/{slug}/tokens/{id}/rotate";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        &format!("/orgs/acme/tokens/{okta}/rotate"),
        None,
    )
    .await;
    status(&r, StatusCode::CREATED);
    assert_eq!(r.body["rotatedFrom"], okta.as_str(), "{}", r.body);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        &format!("/orgs/acme/tokens/{okta}/rotate"),
        Some(json!({"expiresInDays": 0})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let t = "/orgs/{slug}/tokens/{id}/revoke";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        &format!("/orgs/acme/tokens/{okta}/revoke"),
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/tokens/nothing/revoke",
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        "/orgs/{slug}/tokens/{id}/rotate",
        &format!("/orgs/acme/tokens/{okta}/rotate"),
        None,
    )
    .await;
    status(&r, StatusCode::CONFLICT);
    // SCIM requests for the log: one answered, one refused.
    app.get("/Users").await;
    app.get("/Users/nobody").await;
    app.state
        .request_log
        .as_ref()
        .unwrap()
        .flush()
        .await
        .unwrap();
    let t = "/orgs/{slug}/request-log";
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/request-log?errors=true&method=GET&count=10",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let entry = id(&r.body["items"][0]);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/request-log?status=1",
        None,
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);
    let t = "/orgs/{slug}/request-log/{id}";
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        &format!("/orgs/acme/request-log/{entry}"),
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/request-log/nothing",
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let t = "/orgs/{slug}/request-log/summary";
    let r = call(
        &app,
        c,
        b,
        get.clone(),
        t,
        "/orgs/acme/request-log/summary",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        m,
        get.clone(),
        t,
        "/orgs/acme/request-log/summary",
        None,
    )
    .await;
    status(&r, StatusCode::FORBIDDEN);
    let t = "/orgs/{slug}/test-connection";
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/test-connection",
        None,
    )
    .await;
    status(&r, StatusCode::OK);
    let r = call(
        &app,
        c,
        b,
        post.clone(),
        t,
        "/orgs/acme/test-connection",
        Some(json!({"token": "nope"})),
    )
    .await;
    status(&r, StatusCode::BAD_REQUEST);

    // Deleting a group, and signing out (last: it ends the session).
    let t = "/orgs/{slug}/groups/{id}";
    let r = call(
        &app,
        c,
        b,
        delete.clone(),
        t,
        &format!("/orgs/acme/groups/{ops_id}"),
        None,
    )
    .await;
    status(&r, StatusCode::NO_CONTENT);
    let r = call(
        &app,
        c,
        b,
        delete.clone(),
        t,
        &format!("/orgs/acme/groups/{ops_id}"),
        None,
    )
    .await;
    status(&r, StatusCode::NOT_FOUND);
    let r = call(&app, c, p, post.clone(), "/logout", "/logout", None).await;
    status(&r, StatusCode::FORBIDDEN);
    let r = call(&app, c, b, post.clone(), "/logout", "/logout", None).await;
    status(&r, StatusCode::NO_CONTENT);
    let r = call(&app, c, b, post.clone(), "/logout", "/logout", None).await;
    status(&r, StatusCode::UNAUTHORIZED);

    c.assert_complete();
}
