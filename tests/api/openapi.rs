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

    /// The documented path template `path` (without its query) stands for: the one whose
    /// literal segments all match, the most literal one first (`/request-log/summary` before
    /// `/request-log/{id}`).
    fn template(&self, method: &Method, path: &str) -> String {
        let path = path.split('?').next().unwrap_or_default();
        let want: Vec<&str> = path.split('/').collect();
        let m = method.as_str().to_lowercase();
        let mut found: Vec<(usize, &String)> = Vec::new();
        for (template, ops) in self.doc["paths"].as_object().unwrap() {
            let have: Vec<&str> = template.split('/').collect();
            let fits = have.len() == want.len()
                && have
                    .iter()
                    .zip(&want)
                    .all(|(h, w)| h.starts_with('{') || h == w);
            if fits && ops.get(&m).is_some() {
                let literal = have.iter().filter(|h| !h.starts_with('{')).count();
                found.push((literal, template));
            }
        }
        found.sort();
        let (_, template) = found
            .pop()
            .unwrap_or_else(|| panic!("{method} {path} is not documented"));
        template.clone()
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

/// The app, the provider admin's token and the checker: each call is checked against the
/// document and must answer `want`.
struct Api<'a> {
    app: &'a TestApp,
    c: Checker,
}

impl Api<'_> {
    async fn call(
        &mut self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Resp {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = match token {
            Some(t) => admin(self.app, t, method.clone(), path, body).await,
            None => {
                let path = format!("/admin/v1{path}");
                self.app
                    .send(method.clone(), &path, None, body.as_ref(), &[])
                    .await
            }
        };
        self.check(&method, path, &r, want);
        r
    }

    fn check(&mut self, method: &Method, path: &str, r: &Resp, want: u16) {
        assert_eq!(r.status.as_u16(), want, "{method} {path}: {}", r.body);
        let template = self.c.template(method, path);
        self.c.check(method, &template, r);
    }

    /// A sign-in, checked like any call.
    async fn login(&mut self, email: &str, password: &str, want: u16) -> Resp {
        let r = login(self.app, email, password).await;
        self.check(&Method::POST, "/login", &r, want);
        r
    }

    /// A CSV upload to the import.
    async fn import(&mut self, token: &str, csv: &str, want: u16) -> Resp {
        let path = "/orgs/acme/invitations/import";
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/admin/v1{path}"))
            .header("host", "scim.test")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "text/csv")
            .body(Body::from(csv.to_owned()))
            .unwrap();
        let r = self.app.raw(req).await;
        self.check(&Method::POST, path, &r, want);
        r
    }
}

async fn every_operation_answers_as_the_document_says(mut app: TestApp) {
    app.configure(|c| c.request_log.flush_every = std::time::Duration::from_secs(3600));
    let provider = admin_token(&app).await;
    let boss_token = acme_admin(&app, &provider, "boss@example.com").await;
    let member = acme_member(&app, &provider, "mo@example.com").await;
    let api = &mut Api {
        app: &app,
        c: Checker::new(),
    };
    let (p, m) = (Some(provider.as_str()), Some(member.as_str()));

    // The document itself.
    api.call(None, "GET", "/openapi.json", None, 200).await;

    // Organizations and accounts.
    api.call(p, "GET", "/orgs", None, 200).await;
    api.call(None, "GET", "/orgs", None, 401).await;
    let globex = json!({"slug": "globex", "name": "Globex"});
    api.call(p, "POST", "/orgs", Some(globex.clone()), 201)
        .await;
    api.call(p, "POST", "/orgs", Some(globex), 409).await;
    api.call(p, "POST", "/orgs", Some(json!({"slug": "Not A Slug"})), 400)
        .await;
    let account = json!({"email": "ann@example.com", "givenName": "Ann", "familyName": "Lee",
                         "memberships": [{"org": "acme", "role": "member"}, {"org": "globex"}]});
    api.call(p, "POST", "/accounts", Some(account), 201).await;
    // Ann sets her password now, while the outbox still holds her mail.
    let link = mailed_link(&app, "ann@example.com", "/setup/").await;
    let set = crate::people::set_password(&app, &link, PASSWORD).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let no_orgs = json!({"email": "x@example.com"});
    api.call(p, "POST", "/accounts", Some(no_orgs), 400).await;
    let nowhere = json!({"email": "x@example.com", "memberships": [{"org": "nowhere"}]});
    api.call(p, "POST", "/accounts", Some(nowhere), 404).await;

    // People: signing in (and being limited), the account, a new password, signing up.
    api.login("boss@example.com", PASSWORD, 200).await;
    api.login("boss@example.com", "not the password", 401).await;
    let half = json!({"email": "not an address"});
    api.call(None, "POST", "/login", Some(half), 400).await;
    for _ in 0..5 {
        login(&app, "limited@example.com", "not the password").await;
    }
    api.login("limited@example.com", "not the password", 429)
        .await;
    let bt = Some(boss_token.as_str());
    let r = api.call(bt, "GET", "/orgs", None, 200).await;
    assert!(r.body["items"][0]["memberId"].is_string(), "{}", r.body);
    api.call(bt, "GET", "/me", None, 200).await;
    api.call(p, "GET", "/me", None, 403).await;
    api.call(None, "GET", "/me", None, 401).await;
    let change = json!({"currentPassword": PASSWORD, "newPassword": "another long password"});
    let r = api
        .call(bt, "POST", "/me/password", Some(change), 200)
        .await;
    let boss = r.body["accessToken"].as_str().unwrap().to_owned();
    let b = Some(boss.as_str());
    let wrong = json!({"currentPassword": "not the password", "newPassword": "long enough, yes"});
    api.call(b, "POST", "/me/password", Some(wrong), 400).await;
    api.call(p, "POST", "/me/password", Some(json!({})), 403)
        .await;
    let signup = json!({"email": "new@example.com", "givenName": "New", "familyName": "Person",
                        "organization": {"slug": "newco", "name": "New Co"}});
    api.call(None, "POST", "/signup", Some(signup), 202).await;
    let taken = json!({"email": "other@example.com", "givenName": "O", "familyName": "P",
                       "organization": {"slug": "acme"}});
    api.call(None, "POST", "/signup", Some(taken), 409).await;
    api.call(None, "POST", "/signup", Some(json!({"email": "nope"})), 400)
        .await;
    let mo = json!({"email": "mo@example.com"});
    api.call(None, "POST", "/password-reset", Some(mo), 202)
        .await;
    let nope = json!({"email": "nope"});
    api.call(None, "POST", "/password-reset", Some(nope), 400)
        .await;

    // Members.
    let r = api
        .call(
            m,
            "GET",
            "/orgs/acme/members?startIndex=1&count=10",
            None,
            200,
        )
        .await;
    assert!(!r.body["items"].as_array().unwrap().is_empty());
    api.call(p, "GET", "/orgs/acme/members?startIndex=x", None, 400)
        .await;
    api.call(p, "GET", "/orgs/nowhere/members", None, 404).await;
    let kim = json!({"email": "kim@example.com", "role": "member", "givenName": "Kim"});
    api.call(m, "POST", "/orgs/acme/members", Some(kim.clone()), 403)
        .await;
    let r = api
        .call(b, "POST", "/orgs/acme/members", Some(kim.clone()), 201)
        .await;
    let kim_at = format!("/orgs/acme/members/{}", id(&r.body));
    api.call(b, "POST", "/orgs/acme/members", Some(kim), 409)
        .await;
    let bad = json!({"email": "nope"});
    api.call(b, "POST", "/orgs/acme/members", Some(bad), 400)
        .await;
    let promote = json!({"role": "admin", "displayName": "Kim K"});
    api.call(b, "PATCH", &kim_at, Some(promote), 200).await;
    api.call(b, "PATCH", &kim_at, Some(json!({})), 400).await;
    let off = json!({"active": false});
    api.call(b, "PATCH", "/orgs/acme/members/nobody", Some(off), 404)
        .await;
    api.call(b, "DELETE", &kim_at, None, 204).await;
    api.call(b, "DELETE", &kim_at, None, 404).await;
    let lou = json!({"email": "lou@example.com"});
    let r = api
        .call(b, "POST", "/orgs/acme/members", Some(lou), 201)
        .await;
    let ids = json!({"ids": [id(&r.body), "nobody"]});
    let r = api
        .call(b, "POST", "/orgs/acme/members/remove", Some(ids), 200)
        .await;
    assert_eq!(r.body["failed"][0]["status"], 404, "{}", r.body);
    api.call(b, "POST", "/orgs/acme/members/remove", Some(json!({})), 400)
        .await;

    // Groups.
    let mo = crate::people::member_id(&app, &boss, "acme", "mo@example.com").await;
    let ops = json!({"displayName": "Ops", "members": [mo]});
    let r = api
        .call(b, "POST", "/orgs/acme/groups", Some(ops), 201)
        .await;
    let ops_id = id(&r.body);
    let ops_at = format!("/orgs/acme/groups/{ops_id}");
    let same = json!({"displayName": "ops"});
    api.call(b, "POST", "/orgs/acme/groups", Some(same), 409)
        .await;
    let nameless = json!({"members": []});
    api.call(b, "POST", "/orgs/acme/groups", Some(nameless), 400)
        .await;
    let r = api.call(m, "GET", "/orgs/acme/groups", None, 200).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    api.call(b, "GET", "/orgs/acme/groups?count=x", None, 400)
        .await;
    let r = api
        .call(m, "GET", &format!("{ops_at}?count=1"), None, 200)
        .await;
    assert!(r.body["nextCursor"].is_string(), "a full page: {}", r.body);
    api.call(m, "GET", &format!("{ops_at}?count=0"), None, 400)
        .await;
    api.call(m, "GET", "/orgs/acme/groups/nothing", None, 404)
        .await;
    // Mo's membership now shows the group.
    api.call(b, "GET", "/orgs/acme/members", None, 200).await;
    let rename = json!({"displayName": "Ops team", "removeMembers": [mo]});
    api.call(b, "PATCH", &ops_at, Some(rename), 200).await;
    api.call(b, "PATCH", &ops_at, Some(json!({})), 400).await;
    let x = json!({"displayName": "X"});
    api.call(b, "PATCH", "/orgs/acme/groups/nothing", Some(x), 404)
        .await;

    // Invitations.
    let at = "/orgs/acme/invitations";
    let one = json!({"email": "ivy@example.com", "firstName": "Ivy", "lastName": "Ng",
                     "groups": [ops_id]});
    let r = api.call(b, "POST", at, Some(one.clone()), 201).await;
    let ivy_at = format!("{at}/{}", id(&r.body));
    api.call(b, "POST", at, Some(one.clone()), 409).await;
    let jo =
        json!({"email": "jo@example.com", "firstName": "Jo", "lastName": "Ra", "role": "admin"});
    let batch = json!({"invitations": [one.clone(), jo]});
    let r = api.call(b, "POST", at, Some(batch), 201).await;
    assert_eq!(r.body["items"][0]["result"], 409, "{}", r.body);
    assert_eq!(r.body["items"][1]["result"], 201, "{}", r.body);
    let jo_at = format!("{at}/{}", id(&r.body["items"][1]));
    let none_made = json!({"invitations": [one]});
    api.call(b, "POST", at, Some(none_made), 200).await;
    let bad = json!({"email": "bad", "firstName": "A", "lastName": "B"});
    api.call(b, "POST", at, Some(bad), 400).await;
    api.call(b, "GET", at, None, 200).await;
    api.call(p, "GET", "/orgs/nowhere/invitations", None, 404)
        .await;
    let admin_role = json!({"role": "admin"});
    api.call(b, "PATCH", &ivy_at, Some(admin_role.clone()), 200)
        .await;
    let other = json!({"email": "x@example.com"});
    api.call(b, "PATCH", &ivy_at, Some(other), 400).await;
    api.call(b, "PATCH", &format!("{at}/nothing"), Some(admin_role), 404)
        .await;
    api.call(b, "POST", &format!("{ivy_at}/resend"), None, 200)
        .await;
    api.call(b, "POST", &format!("{at}/nothing/resend"), None, 404)
        .await;
    api.call(b, "POST", &format!("{jo_at}/revoke"), None, 200)
        .await;
    api.call(b, "POST", &format!("{jo_at}/revoke"), None, 409)
        .await;
    let csv = "email,group membership\numa@example.com,Ops team\nnot an address,\n";
    let r = api.import(&boss, csv, 200).await;
    assert_eq!(
        r.body["skipped"][0]["reason"], "invalid_email",
        "{}",
        r.body
    );
    api.import(&boss, "", 400).await;

    // The invitee's side: Ann (an account with a password) is invited to beta.
    app.other_org("beta").await;
    let to_ann = json!({"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"});
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/beta/invitations",
        Some(to_ann),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let accept = format!("/me/invitations/{}/accept", id(&r.body));
    let ann = crate::people::login_token(&app, "ann@example.com").await;
    let a = Some(ann.as_str());
    let r = api.call(a, "GET", "/me/invitations", None, 200).await;
    assert_eq!(
        r.body["items"][0]["organization"]["slug"], "beta",
        "{}",
        r.body
    );
    api.call(p, "GET", "/me/invitations", None, 403).await;
    api.call(a, "POST", &accept, None, 201).await;
    api.call(a, "POST", &accept, None, 404).await;

    // The audit log.
    let revokes = "/orgs/acme/audit?count=5&action=Invitation.revoke";
    let r = api.call(b, "GET", revokes, None, 200).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let paged = "/orgs/acme/audit?cursor=&count=2&since=2020-01-01";
    let r = api.call(b, "GET", paged, None, 200).await;
    assert!(r.body["nextCursor"].is_string(), "a full page: {}", r.body);
    api.call(b, "GET", "/orgs/acme/audit?actor=someone", None, 400)
        .await;
    api.call(m, "GET", "/orgs/acme/audit", None, 403).await;
    api.call(b, "GET", "/audit", None, 200).await;
    api.call(p, "GET", "/audit", None, 400).await;
    api.call(p, "GET", "/audit?org=nowhere", None, 404).await;

    // Provisioning: the connection, tokens, the request log and the connection test.
    api.call(b, "GET", "/orgs/acme/provisioning", None, 200)
        .await;
    api.call(m, "GET", "/orgs/acme/provisioning", None, 403)
        .await;
    let okta = json!({"name": "okta", "expiresInDays": 30});
    let r = api
        .call(b, "POST", "/orgs/acme/tokens", Some(okta), 201)
        .await;
    let okta = id(&r.body);
    let okta_at = format!("/orgs/acme/tokens/{okta}");
    api.call(b, "POST", "/orgs/acme/tokens", Some(json!({})), 400)
        .await;
    api.call(b, "GET", "/orgs/acme/tokens?count=50", None, 200)
        .await;
    api.call(b, "GET", "/orgs/acme/tokens?count=1000", None, 400)
        .await;
    let r = api
        .call(b, "POST", &format!("{okta_at}/rotate"), None, 201)
        .await;
    assert_eq!(r.body["rotatedFrom"], okta.as_str(), "{}", r.body);
    let never = json!({"expiresInDays": 0});
    api.call(b, "POST", &format!("{okta_at}/rotate"), Some(never), 400)
        .await;
    api.call(b, "POST", &format!("{okta_at}/revoke"), None, 200)
        .await;
    api.call(b, "POST", "/orgs/acme/tokens/nothing/revoke", None, 404)
        .await;
    api.call(b, "POST", &format!("{okta_at}/rotate"), None, 409)
        .await;
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
    let log = "/orgs/acme/request-log";
    let r = api
        .call(
            b,
            "GET",
            &format!("{log}?errors=true&method=GET"),
            None,
            200,
        )
        .await;
    let entry_at = format!("{log}/{}", id(&r.body["items"][0]));
    api.call(b, "GET", &format!("{log}?status=1"), None, 400)
        .await;
    api.call(b, "GET", &entry_at, None, 200).await;
    api.call(b, "GET", &format!("{log}/nothing"), None, 404)
        .await;
    api.call(b, "GET", &format!("{log}/summary"), None, 200)
        .await;
    api.call(m, "GET", &format!("{log}/summary"), None, 403)
        .await;
    let test = "/orgs/acme/test-connection";
    api.call(b, "POST", test, None, 200).await;
    api.call(b, "POST", test, Some(json!({"token": "nope"})), 400)
        .await;

    // Deleting a group, and signing out (last: it ends the session).
    api.call(b, "DELETE", &ops_at, None, 204).await;
    api.call(b, "DELETE", &ops_at, None, 404).await;
    api.call(p, "POST", "/logout", None, 403).await;
    api.call(b, "POST", "/logout", None, 204).await;
    api.call(b, "POST", "/logout", None, 401).await;

    api.c.assert_complete();
}
