//! Invitations: created through the admin API, delivered by the email worker to an in-process
//! SMTP sink, and accepted on the public page the link leads to.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::email::{worker, Sink};
use crate::helpers::{id, Resp, TestApp, ORGANIZATION};
use crate::people::mailed_link;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use scimd::email::Status;
use serde_json::{json, Value};

both!(
    invite_deliver_and_accept,
    batch_limit_and_validation,
    a_batch_answers_each_address_and_groups_go_by_id_or_name,
    duplicates_conflict,
    email_cannot_change,
    revoked_link_is_gone,
    resend_replaces_the_link,
    expired_link_is_gone,
    concurrent_accepts_one_wins,
    existing_account_joins_with_its_password,
    signed_in_people_see_and_accept_their_own_invitations,
);

const DAY: i64 = 24 * 3600 * 1_000_000;
const PASSWORD: &str = "a long enough password";
const GONE: &str = "This invitation link is not valid.";

async fn invite(app: &TestApp, token: &str, body: Value) -> Resp {
    admin(
        app,
        token,
        Method::POST,
        "/orgs/acme/invitations",
        Some(body),
    )
    .await
}

/// The path of an accept link: `/invite/{secret}`.
fn path_of(link: &str) -> String {
    let at = link.find("/invite/").expect("an invite link");
    link[at..].to_owned()
}

async fn page(app: &TestApp, link: &str) -> Resp {
    let req = Request::builder()
        .uri(path_of(link))
        .header("host", "scim.test")
        .body(Body::empty())
        .unwrap();
    app.raw(req).await
}

pub(crate) fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".into(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn accept(app: &TestApp, link: &str, fields: &[(&str, &str)]) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path_of(link))
        .header("host", "scim.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form_encode(fields)))
        .unwrap();
    app.raw(req).await
}

fn new_account(given: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("given_name", given),
        ("family_name", "Example"),
        ("password", PASSWORD),
    ]
}

fn html(r: &Resp) -> &str {
    r.body.as_str().unwrap_or_default()
}

fn assert_gone(r: &Resp) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(html(r).contains(GONE), "{}", r.body);
}

async fn user_by_name(app: &TestApp, token: &str, name: &str) -> Value {
    let r = app
        .send(
            Method::GET,
            &format!("/Users?filter=userName%20eq%20%22{name}%22"),
            Some(token),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    r.body["Resources"][0].clone()
}

async fn invite_deliver_and_accept(app: TestApp) {
    let token = admin_token(&app).await;
    let group = app.group("Engineering", &[]).await;
    let gid = id(&group);
    let r = invite(
        &app,
        &token,
        json!({"email": "Dana@Example.com", "firstName": "Dana", "lastName": "<Scully>",
               "role": "admin", "groups": [gid]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["role"], "admin");
    assert!(
        r.body.get("link").is_none(),
        "links go only by mail: {}",
        r.body
    );
    assert_eq!(r.body["emailDelivery"], "off", "{}", r.body);

    // The email waits in the outbox, written with the invitation; the worker delivers it.
    let sink = Sink::start().await;
    let (w, outbox) = worker(&app, sink.port).await;
    assert_eq!(outbox.count(Status::Pending).await.unwrap(), 1);
    assert_eq!(w.deliver_due().await.unwrap(), 1);
    let mail = sink.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, vec!["Dana@Example.com".to_owned()]);
    let data = &mail[0].data.replace("=\r\n", "");
    assert!(data.contains("join Acme"), "{data}");
    assert!(
        data.contains("test (an administrator)"),
        "the inviter: {data}"
    );
    let at = data
        .find("http://127.0.0.1:8080/invite/")
        .expect("the link in the mail");
    let mailed: String = data[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c))
        .collect();
    assert!(
        mailed.starts_with("http://127.0.0.1:8080/invite/scimd_"),
        "{mailed}"
    );

    let p = page(&app, &mailed).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(html(&p).contains("name=\"given_name\""));
    // Escaped as HTML entities (the templates write `&#60;`, the same as `&lt;`).
    assert!(
        html(&p).contains("&lt;Scully&gt;") || html(&p).contains("&#60;Scully&#62;"),
        "escaped: {}",
        p.body
    );
    assert!(!html(&p).contains("<Scully>"));

    let short = accept(
        &app,
        &mailed,
        &[
            ("given_name", "Dana"),
            ("family_name", "S"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    let ok = accept(&app, &mailed, &new_account("Dana")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    let user = user_by_name(&app, &app.token, "Dana@Example.com").await;
    assert_eq!(user[ORGANIZATION]["role"], "admin", "{user}");
    assert_eq!(user["groups"][0]["value"], gid, "{user}");
    assert_eq!(user["name"]["givenName"], "Dana");

    // Used: the link is gone, and the list says accepted.
    assert_gone(&page(&app, &mailed).await);
    assert_gone(&accept(&app, &mailed, &new_account("Dana")).await);
    let list = admin(&app, &token, Method::GET, "/orgs/acme/invitations", None).await;
    assert_eq!(list.body["items"][0]["status"], "accepted", "{}", list.body);
    assert!(list.body["items"][0].get("link").is_none());
    let audit = admin(&app, &token, Method::GET, "/orgs/acme/audit", None).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"Invitation.create"), "{actions:?}");
    assert!(actions.contains(&"Invitation.accept"), "{actions:?}");
    assert!(actions.contains(&"User.create"), "{actions:?}");
}

async fn batch_limit_and_validation(app: TestApp) {
    let token = admin_token(&app).await;
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"email": format!("p{i}@example.com"), "firstName": "P", "lastName": "Q"}))
        .collect();
    let r = invite(&app, &token, json!({"invitations": many})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("CSV"),
        "{}",
        r.body
    );

    let r = invite(
        &app,
        &token,
        json!({"email": "not an email", "firstName": "P", "lastName": "Q"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "email", "{}", r.body);
    let r = invite(
        &app,
        &token,
        json!({"email": "p@example.com", "firstName": "P", "lastName": "Q", "groups": ["nope"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "groups", "{}", r.body);

    let twenty: Vec<Value> = (0..20)
        .map(|i| json!({"email": format!("p{i}@example.com"), "firstName": "P", "lastName": "Q"}))
        .collect();
    let r = invite(&app, &token, json!({"invitations": twenty})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 20);
}

async fn a_batch_answers_each_address_and_groups_go_by_id_or_name(app: TestApp) {
    let token = admin_token(&app).await;
    let eng = id(&app.group("Engineering", &[]).await);
    let sales = id(&app.group("Sales EU", &[]).await);
    // A group of another organization is no group here, by id or by name.
    let (_, globex) = app.other_org("globex").await;
    let other = app
        .send(
            Method::POST,
            "/Groups",
            Some(&globex),
            Some(&json!({"schemas": [crate::helpers::GROUP_SCHEMA], "displayName": "Globex only"})),
            &[],
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let other = id(&other.body);
    let item = |email: &str, groups: Value| json!({"email": email, "firstName": "F", "lastName": "L", "groups": groups});
    let r = invite(
        &app,
        &token,
        json!({"invitations": [
            item("a@example.com", json!(["engineering", sales])),
            item("not an address", json!([])),
            item("b@example.com", json!(["No such team"])),
            item("c@example.com", json!(["SALES eu", "Sales EU", eng])),
            {"email": "d@example.com", "firstName": "", "lastName": "L"},
            item("a@example.com", json!([])),
        ]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "{}", r.body);
    let results: Vec<i64> = items
        .iter()
        .map(|i| i["result"].as_i64().unwrap())
        .collect();
    assert_eq!(results, [201, 400, 400, 201, 400, 409], "{}", r.body);
    // Names and ids both name groups, case-insensitively and without repeats.
    let groups = |i: usize| -> Vec<String> {
        let mut g: Vec<String> = items[i]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        g.sort();
        g
    };
    let mut both = vec![eng.clone(), sales.clone()];
    both.sort();
    assert_eq!(groups(0), both);
    assert_eq!(groups(3), both);
    // Each refusal says which address and why, beside its field.
    assert_eq!(items[1]["email"], "not an address");
    assert_eq!(items[1]["field"], "email");
    assert_eq!(items[2]["email"], "b@example.com");
    assert_eq!(items[2]["field"], "groups");
    assert!(
        items[2]["message"]
            .as_str()
            .unwrap()
            .contains("No such team"),
        "{}",
        items[2]
    );
    assert_eq!(items[4]["field"], "firstName");
    assert_eq!(items[5]["error"], "conflict");
    // Only the good addresses were invited.
    let list = admin(&app, &token, Method::GET, "/orgs/acme/invitations", None).await;
    let mut emails: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    emails.sort();
    assert_eq!(emails, ["a@example.com", "c@example.com"], "{}", list.body);

    // Nothing created: 200, each refusal listed.
    let r = invite(
        &app,
        &token,
        json!({"invitations": [item("x@", json!([])), item("a@example.com", json!([]))]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"][0]["result"], 400);
    assert_eq!(r.body["items"][1]["result"], 409);

    // One invitation alone is still refused whole, with the field.
    for (groups, needle) in [
        (json!(["nope"]), "nope"),
        (json!([""]), "1 to 200"),
        (json!(["a\u{0}b"]), "control"),
        (json!([42]), "ids or names"),
        (
            json!((0..101).map(|i| format!("g{i}")).collect::<Vec<_>>()),
            "at most 100",
        ),
    ] {
        let r = invite(&app, &token, item("e@example.com", groups.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{groups}: {}", r.body);
        assert_eq!(r.body["field"], "groups", "{}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains(needle),
            "{groups}: {}",
            r.body
        );
    }
    for g in [other.as_str(), "Globex only"] {
        let r = invite(&app, &token, item("e@example.com", json!([g]))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{g}: {}", r.body);
        assert_eq!(r.body["field"], "groups", "{}", r.body);
    }
}

async fn duplicates_conflict(app: TestApp) {
    let token = admin_token(&app).await;
    let one = json!({"email": "erin@example.com", "firstName": "Erin", "lastName": "E"});
    assert_eq!(
        invite(&app, &token, one.clone()).await.status,
        StatusCode::CREATED
    );
    let again = invite(
        &app,
        &token,
        json!({"email": "ERIN@example.com", "firstName": "Erin", "lastName": "E"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.body["error"], "conflict");

    app.user("member@example.com").await;
    let r = invite(
        &app,
        &token,
        json!({"email": "member@example.com", "firstName": "M", "lastName": "M"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // In a batch, each item stands alone.
    let r = invite(
        &app,
        &token,
        json!({"invitations": [one, {"email": "frank@example.com", "firstName": "F", "lastName": "F"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["items"][0]["result"], 409, "{}", r.body);
    assert_eq!(r.body["items"][1]["result"], 201, "{}", r.body);
}

async fn email_cannot_change(app: TestApp) {
    let token = admin_token(&app).await;
    let r = invite(
        &app,
        &token,
        json!({"email": "gil@example.com", "firstName": "G", "lastName": "G"}),
    )
    .await;
    let iid = id(&r.body);
    let path = format!("/orgs/acme/invitations/{iid}");
    let r = admin(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some(json!({"email": "other@example.com"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "email", "{}", r.body);
    let r = admin(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["email"], "gil@example.com");
}

async fn revoked_link_is_gone(app: TestApp) {
    let token = admin_token(&app).await;
    let r = invite(
        &app,
        &token,
        json!({"email": "hal@example.com", "firstName": "H", "lastName": "H"}),
    )
    .await;
    let link = mailed_link(&app, "hal@example.com", "/invite/").await;
    let path = format!("/orgs/acme/invitations/{}/revoke", id(&r.body));
    let r = admin(&app, &token, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "revoked");
    assert_gone(&page(&app, &link).await);
    assert_gone(&accept(&app, &link, &new_account("Hal")).await);
    let again = admin(&app, &token, Method::POST, &path, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    // The same page as for a link that never existed.
    let unknown = page(&app, "/invite/scimd_nothing").await;
    assert_gone(&unknown);
    assert_eq!(unknown.body, page(&app, &link).await.body);
}

async fn resend_replaces_the_link(app: TestApp) {
    let token = admin_token(&app).await;
    let r = invite(
        &app,
        &token,
        json!({"email": "ivy@example.com", "firstName": "I", "lastName": "I"}),
    )
    .await;
    let old = mailed_link(&app, "ivy@example.com", "/invite/").await;
    let path = format!("/orgs/acme/invitations/{}/resend", id(&r.body));
    let r = admin(&app, &token, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("link").is_none(), "{}", r.body);
    let new = mailed_link(&app, "ivy@example.com", "/invite/").await;
    assert_ne!(old, new);
    assert_gone(&page(&app, &old).await);
    assert_eq!(page(&app, &new).await.status, StatusCode::OK);
    assert_eq!(
        accept(&app, &new, &new_account("Ivy")).await.status,
        StatusCode::OK
    );
    user_by_name(&app, &app.token, "ivy@example.com").await;
}

async fn expired_link_is_gone(app: TestApp) {
    let token = admin_token(&app).await;
    let r = invite(
        &app,
        &token,
        json!({"email": "jo@example.com", "firstName": "J", "lastName": "J"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "jo@example.com", "/invite/").await;
    app.clock.advance(8 * DAY);
    assert_gone(&page(&app, &link).await);
    assert_gone(&accept(&app, &link, &new_account("Jo")).await);
    let list = admin(&app, &token, Method::GET, "/orgs/acme/invitations", None).await;
    assert_eq!(list.body["items"][0]["status"], "expired", "{}", list.body);
}

async fn concurrent_accepts_one_wins(app: TestApp) {
    let token = admin_token(&app).await;
    let r = invite(
        &app,
        &token,
        json!({"email": "kim@example.com", "firstName": "K", "lastName": "K"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "kim@example.com", "/invite/").await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, link) = (app.clone(), link.clone());
            tokio::spawn(async move { accept(&app, &link, &new_account("Kim")).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    user_by_name(&app, &app.token, "kim@example.com").await;
}

async fn existing_account_joins_with_its_password(app: TestApp) {
    let token = admin_token(&app).await;
    let r = invite(
        &app,
        &token,
        json!({"email": "lee@example.com", "firstName": "L", "lastName": "L"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "lee@example.com", "/invite/").await;
    assert_eq!(
        accept(&app, &link, &new_account("Lee")).await.status,
        StatusCode::OK
    );

    let (_, beta_token) = app.other_org("beta").await;
    let r = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/beta/invitations",
        Some(json!({"email": "lee@example.com", "firstName": "L", "lastName": "L"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = mailed_link(&app, "lee@example.com", "/invite/").await;
    let p = page(&app, &link).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        !html(&p).contains("given_name"),
        "password only: {}",
        p.body
    );
    assert!(html(&p).contains("name=\"password\""));

    let wrong = accept(&app, &link, &[("password", "not the password at all")]).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(html(&wrong).contains("not right"));
    let right = accept(&app, &link, &[("password", PASSWORD)]).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    let lee = user_by_name(&app, &beta_token, "lee@example.com").await;
    assert_eq!(
        lee["name"]["givenName"], "Lee",
        "the account's names: {lee}"
    );
}

async fn signed_in_people_see_and_accept_their_own_invitations(app: TestApp) {
    use crate::people::{login_token, person};
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    let pat = person(&app, &provider, "pat@example.com", json!([{"org": "beta"}])).await;
    // Without email delivery the admin is told so, and nothing in the answer is a link.
    let r = invite(
        &app,
        &provider,
        json!({"email": "Pat@Example.com", "firstName": "Pat", "lastName": "E", "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["emailDelivery"], "off");
    assert!(r.body["deliveryNote"]
        .as_str()
        .unwrap()
        .contains("/me/invitations"));
    invite(
        &app,
        &provider,
        json!({"email": "dana@example.com", "firstName": "Dana", "lastName": "S"}),
    )
    .await;

    let mine = admin(&app, &pat, Method::GET, "/me/invitations", None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let items = mine.body["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "only invitations to pat's own address: {}",
        mine.body
    );
    assert_eq!(items[0]["organization"]["slug"], "acme");
    assert!(!mine.body.to_string().contains("/invite/"));
    let iid = items[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/me/invitations/{iid}/accept");
    let joined = admin(&app, &pat, Method::POST, &path, None).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(joined.body["slug"], "acme");
    assert_eq!(joined.body["role"], "admin");
    let members = admin(&app, &pat, Method::GET, "/orgs/acme/invitations", None).await;
    assert_eq!(
        members.status,
        StatusCode::OK,
        "an admin of acme now: {}",
        members.body
    );
    let again = admin(&app, &pat, Method::POST, &path, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);

    // Nobody accepts someone else's invitation, and provider tokens have no address.
    let dana_inv = admin(&app, &provider, Method::GET, "/orgs/acme/invitations", None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "dana@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stolen = admin(
        &app,
        &pat,
        Method::POST,
        &format!("/me/invitations/{dana_inv}/accept"),
        None,
    )
    .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.body);
    let r = admin(&app, &provider, Method::GET, "/me/invitations", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A deactivated member is switched back on by an admin, never by an invitation.
    let pat_in_beta = admin(&app, &provider, Method::GET, "/orgs/beta/members", None)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let off = admin(
        &app,
        &provider,
        Method::PATCH,
        &format!("/orgs/beta/members/{pat_in_beta}"),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/beta/invitations",
        Some(json!({"email": "pat@example.com", "firstName": "Pat", "lastName": "E"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("reactivate"));
    login_token(&app, "pat@example.com").await;
}
