//! The Provisioning API: tokens an organization's admins create, rotate and revoke; the SCIM
//! request log (what it keeps, what it redacts, its bounds, its queue); the connection test;
//! and that one organization never sees another's tokens or requests.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::*;
use crate::people::{acme_admin, acme_member, assert_forbidden, person};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

both!(
    admins_create_rotate_and_revoke_tokens,
    members_are_refused_and_other_organizations_ids_are_not_found,
    last_used_is_written_at_most_once_a_minute,
    requests_are_logged_with_errors_and_revoked_tokens,
    organization_b_never_sees_a_s_log_or_tokens,
    passwords_never_reach_the_log,
    a_full_queue_drops_the_oldest_and_requests_still_succeed,
    the_log_stays_within_its_bounds,
    test_connection_makes_the_identity_providers_requests,
    the_log_can_be_turned_off,
    bad_log_queries_are_refused_clearly,
    on_sqlite_the_log_has_a_file_of_its_own,
    a_queue_past_two_mib_is_written_without_waiting,
    the_token_list_is_paged_and_old_revocations_drop_out,
    successful_reads_past_the_budget_are_counted_and_errors_never_are,
);

const MINUTE: i64 = 60 * 1_000_000;

/// Writes what the request log's queue holds now.
async fn flush(app: &TestApp) {
    app.state
        .request_log
        .as_ref()
        .expect("the request log is on")
        .flush()
        .await
        .unwrap();
}

/// A count over the request log's tables, with SQL of the test's own: in the main database on
/// Postgres, in the log's own file beside the main one on SQLite.
async fn log_count(app: &TestApp, sql: &str) -> i64 {
    use sqlx::Connection;
    match app.url.strip_prefix("sqlite:") {
        Some(main) => {
            let file = scimd::store::request_log_file(std::path::Path::new(main));
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", file.display()))
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        None => crate::tenancy::sql_count(app, sql).await,
    }
}

/// A settings change that stops the background writer, so a test decides when entries are
/// written.
fn manual(c: &mut scimd::Config) {
    c.request_log.flush_every = Duration::from_secs(3600);
}

async fn scim(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.send(method, path, Some(token), body.as_ref(), &[])
        .await
}

async fn log_items(app: &TestApp, token: &str, slug: &str, query: &str) -> Vec<Value> {
    let r = admin(
        app,
        token,
        Method::GET,
        &format!("/orgs/{slug}/request-log{query}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn admin_tokens(app: &TestApp, who: &str, slug: &str) -> Vec<Value> {
    let r = admin(app, who, Method::GET, &format!("/orgs/{slug}/tokens"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Each `(query, field)` on `path` is a 400 naming the field.
async fn refused_queries(app: &TestApp, who: &str, path: &str, cases: &[(&str, &str)]) {
    for (query, field) in cases {
        let r = admin(app, who, Method::GET, &format!("{path}{query}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(r.body["field"], *field, "{query}: {}", r.body);
    }
}

async fn admins_create_rotate_and_revoke_tokens(app: TestApp) {
    let provider = admin_token(&app).await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/tokens",
        Some(json!({"name": "okta", "expiresInDays": 30})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let secret = r.body["token"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("scimd_"));
    assert_eq!(r.body["status"], "active");
    assert!(r.body["expiresAt"].is_string());
    // The secret works for SCIM, and is never listed again (nor its digest).
    assert_eq!(
        scim(&app, &secret, Method::GET, "/Users", None)
            .await
            .status,
        StatusCode::OK
    );
    let listed = admin_tokens(&app, &boss, "acme").await;
    let text = Value::Array(listed.clone()).to_string();
    assert!(!text.contains(&secret));
    assert!(!text.contains(&scimd::token::digest(&secret)));
    let mine = listed.iter().find(|t| t["id"] == id.as_str()).unwrap();
    for field in ["name", "createdAt", "expiresAt", "lastUsedAt", "revokedAt"] {
        assert!(mine.get(field).is_some(), "{field} missing from {mine}");
    }
    assert!(mine.get("token").is_none());

    // Rotation: a new token beside the old one; both work until the old one is revoked.
    let r = admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{id}/rotate"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let new_secret = r.body["token"].as_str().unwrap().to_owned();
    let new_id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["name"], "okta");
    assert_eq!(r.body["rotatedFrom"], id.as_str());
    assert!(
        r.body["expiresAt"].is_string(),
        "keeps an expiry: {}",
        r.body
    );
    for s in [&secret, &new_secret] {
        assert_eq!(
            scim(&app, s, Method::GET, "/Users", None).await.status,
            StatusCode::OK
        );
    }
    let r = admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{id}/revoke"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "revoked");
    // Refused at once on this replica (no wait for the token cache).
    scim(&app, &secret, Method::GET, "/Users", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
    assert_eq!(
        scim(&app, &new_secret, Method::GET, "/Users", None)
            .await
            .status,
        StatusCode::OK
    );
    // A revoked token cannot be rotated; revoking it again changes nothing.
    let r = admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{id}/rotate"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let again = admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{id}/revoke"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);

    // Every change is in the audit log, with the admin as the actor.
    let audit = admin(
        &app,
        &boss,
        Method::GET,
        "/orgs/acme/audit?count=1000",
        None,
    )
    .await;
    let events: Vec<(String, String)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("Token."))
        .map(|e| {
            assert!(e["actor"].as_str().unwrap().starts_with("account:"), "{e}");
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("Token.create".to_owned(), id.clone()),
            ("Token.rotate".to_owned(), new_id.clone()),
            ("Token.revoke".to_owned(), id.clone()),
        ]
    );
    // The operator's CLI sees the same tokens.
    let stored = app.store.list_tokens(&app.org.id).await.unwrap();
    assert!(stored.iter().any(|t| t.id == id && t.revoked_at.is_some()));
    assert!(stored
        .iter()
        .any(|t| t.id == new_id && t.rotated_from.as_deref() == Some(id.as_str())));

    // Bad input is refused with the field named.
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "a\nb"}), "name"),
        (json!({"name": "x", "expiresInDays": 0}), "expiresInDays"),
        (
            json!({"name": "x", "expiresInDays": 36501}),
            "expiresInDays",
        ),
    ] {
        let r = admin(&app, &boss, Method::POST, "/orgs/acme/tokens", Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
}

async fn members_are_refused_and_other_organizations_ids_are_not_found(app: TestApp) {
    let provider = admin_token(&app).await;
    app.other_org("beta").await;
    let pat = acme_member(&app, &provider, "pat@example.com").await;
    let beta_admin = person(
        &app,
        &provider,
        "b@example.com",
        json!([{"org": "beta", "role": "admin"}]),
    )
    .await;
    let acme_token = app.store.list_tokens(&app.org.id).await.unwrap()[0]
        .id
        .clone();
    for (method, path) in [
        (Method::GET, "/orgs/acme/provisioning".to_owned()),
        (Method::GET, "/orgs/acme/tokens".to_owned()),
        (Method::POST, "/orgs/acme/tokens".to_owned()),
        (
            Method::POST,
            format!("/orgs/acme/tokens/{acme_token}/revoke"),
        ),
        (
            Method::POST,
            format!("/orgs/acme/tokens/{acme_token}/rotate"),
        ),
        (Method::GET, "/orgs/acme/request-log".to_owned()),
        (Method::GET, "/orgs/acme/request-log/summary".to_owned()),
        (Method::GET, "/orgs/acme/request-log/x".to_owned()),
        (Method::POST, "/orgs/acme/test-connection".to_owned()),
    ] {
        let body = (method == Method::POST).then(|| json!({"name": "x"}));
        let r = admin(&app, &pat, method.clone(), &path, body.clone()).await;
        assert_forbidden(&r, "admin role");
        // An admin of another organization is no admin here either.
        let r = admin(&app, &beta_admin, method, &path, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    // Acme's token id through beta's path: not found, and untouched.
    for action in ["revoke", "rotate"] {
        let r = admin(
            &app,
            &beta_admin,
            Method::POST,
            &format!("/orgs/beta/tokens/{acme_token}/{action}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    assert_eq!(
        app.get("/Users").await.status,
        StatusCode::OK,
        "acme's token still works"
    );
}

async fn last_used_is_written_at_most_once_a_minute(app: TestApp) {
    let provider = admin_token(&app).await;
    let used = || async {
        let t = admin_tokens(&app, &provider, "acme").await;
        t[0]["lastUsedAt"].as_str().map(str::to_owned)
    };
    assert_eq!(used().await, None);
    // Noted off the request path: wait for it.
    let until = |want: Option<String>| {
        let used = &used;
        async move {
            for _ in 0..100 {
                if let Some(now) = used().await.filter(|n| Some(n) != want.as_ref()) {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("lastUsedAt never moved past {want:?}");
        }
    };
    assert_eq!(app.get("/Users").await.status, StatusCode::OK);
    let first = until(None).await;
    for _ in 0..5 {
        app.get("/Users").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        used().await.as_deref(),
        Some(first.as_str()),
        "not a write per request"
    );
    app.clock.advance(MINUTE + 1);
    app.get("/Users").await;
    let second = until(Some(first.clone())).await;
    assert_ne!(second, first);
}

async fn requests_are_logged_with_errors_and_revoked_tokens(mut app: TestApp) {
    app.configure(manual);
    let provider = admin_token(&app).await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/tokens",
        Some(json!({"name": "entra"})),
    )
    .await;
    let secret = r.body["token"].as_str().unwrap().to_owned();
    let token_id = r.body["id"].as_str().unwrap().to_owned();
    let user = json!({"schemas": [USER_SCHEMA], "userName": "dup@example.com"});
    let created = scim(&app, &secret, Method::POST, "/Users", Some(user.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let user_id = id(&created.body);
    let dup = scim(&app, &secret, Method::POST, "/Users", Some(user)).await;
    dup.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    let lookup = scim(
        &app,
        &secret,
        Method::GET,
        "/Users?filter=userName%20eq%20%22dup%40example.com%22&count=5",
        None,
    )
    .await;
    assert_eq!(lookup.status, StatusCode::OK);
    admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{token_id}/revoke"),
        None,
    )
    .await;
    scim(&app, &secret, Method::GET, "/Users", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
    // An unknown token belongs to no organization: nobody's log.
    scim(&app, "scimd_unknown", Method::GET, "/Users", None).await;
    flush(&app).await;

    let all = log_items(&app, &boss, "acme", "").await;
    let ours: Vec<&Value> = all.iter().filter(|e| e["tokenName"] == "entra").collect();
    assert_eq!(ours.len(), 4, "{all:#?}");
    // Newest first.
    assert_eq!(ours[0]["status"], 401);
    assert!(
        ours[0]["detail"].as_str().unwrap().contains("revoked"),
        "the admin learns why: {}",
        ours[0]
    );
    assert_eq!(ours[0]["tokenId"], token_id.as_str());
    assert_eq!(ours[1]["filter"], "userName eq \"dup@example.com\"");
    assert_eq!(ours[1]["userName"], "dup@example.com");
    assert_eq!(ours[1]["path"], "/scim/v2/Users?count=5");
    let conflict = ours[2];
    assert_eq!(conflict["status"], 409);
    assert_eq!(conflict["method"], "POST");
    assert_eq!(conflict["scimType"], "uniqueness");
    assert_eq!(conflict["detail"], dup.body["detail"]);
    assert_eq!(ours[3]["status"], 201);
    assert_eq!(ours[3]["resource"], json!({"type": "User", "id": user_id}));
    assert!(ours[3]["durationMs"].as_f64().unwrap() >= 0.0);

    // Filters: errors only, method, status, userName or id.
    let errors = log_items(&app, &boss, "acme", "?errors=true").await;
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e["status"].as_i64().unwrap() >= 400));
    let posts = log_items(&app, &boss, "acme", "?method=post").await;
    assert!(posts.iter().all(|e| e["method"] == "POST") && posts.len() == 2);
    let c = log_items(&app, &boss, "acme", "?status=409").await;
    assert_eq!(c.len(), 1);
    let by_name = log_items(&app, &boss, "acme", "?subject=DUP%40example.com").await;
    assert_eq!(by_name.len(), 3, "create, conflict, lookup: {by_name:#?}");
    let by_id = log_items(&app, &boss, "acme", &format!("?subject={user_id}")).await;
    assert_eq!(by_id.len(), 1);
    let paged = admin(
        &app,
        &boss,
        Method::GET,
        "/orgs/acme/request-log?count=1&startIndex=2",
        None,
    )
    .await;
    assert_eq!(paged.body["totalResults"], 4);
    assert_eq!(paged.body["items"][0]["id"], ours[1]["id"]);

    // One entry in full: the bodies, the client.
    let detail = admin(
        &app,
        &boss,
        Method::GET,
        &format!(
            "/orgs/acme/request-log/{}",
            conflict["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let req_body: Value =
        serde_json::from_str(detail.body["requestBody"].as_str().unwrap()).unwrap();
    assert_eq!(req_body["userName"], "dup@example.com");
    let resp_body: Value =
        serde_json::from_str(detail.body["responseBody"].as_str().unwrap()).unwrap();
    assert_eq!(resp_body["scimType"], "uniqueness");
    assert!(detail.body.get("userAgent").is_some() && detail.body.get("clientIp").is_some());

    // A successful read keeps how many it found, not the resources.
    let lookup = admin(
        &app,
        &boss,
        Method::GET,
        &format!("/orgs/acme/request-log/{}", ours[1]["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(
        lookup.body["responseBody"], "[a list of 1 result(s); the resources are not kept]",
        "{}",
        lookup.body
    );

    // The summary of the last 24 hours.
    let s = admin(
        &app,
        &boss,
        Method::GET,
        "/orgs/acme/request-log/summary",
        None,
    )
    .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["requests"], 4);
    assert_eq!(s.body["errors"], 2);
    let by_status = &s.body["byStatus"];
    assert!(by_status
        .as_array()
        .unwrap()
        .contains(&json!({"status": 409, "requests": 1})));
    assert!(s.body["topErrors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["scimType"] == "uniqueness" && e["status"] == 409));
}

async fn organization_b_never_sees_a_s_log_or_tokens(mut app: TestApp) {
    app.configure(manual);
    let provider = admin_token(&app).await;
    let (beta, beta_scim) = app.other_org("beta").await;
    let a_admin = acme_admin(&app, &provider, "a@example.com").await;
    let b_admin = person(
        &app,
        &provider,
        "b@example.com",
        json!([{"org": "beta", "role": "admin"}]),
    )
    .await;
    app.user("only-in-a@example.com").await;
    scim(&app, &beta_scim, Method::GET, "/Users", None).await;
    flush(&app).await;
    let a_log = log_items(&app, &a_admin, "acme", "").await;
    let b_log = log_items(&app, &b_admin, "beta", "").await;
    assert!(a_log
        .iter()
        .any(|e| e["userName"] == "only-in-a@example.com"));
    assert_eq!(b_log.len(), 1, "{b_log:#?}");
    assert!(!Value::Array(b_log).to_string().contains("only-in-a"));
    // A's entry through B's path: not found. A's path: forbidden.
    let a_entry = a_log[0]["id"].as_str().unwrap();
    let r = admin(
        &app,
        &b_admin,
        Method::GET,
        &format!("/orgs/beta/request-log/{a_entry}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = admin(&app, &b_admin, Method::GET, "/orgs/acme/request-log", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let s = admin(
        &app,
        &b_admin,
        Method::GET,
        "/orgs/beta/request-log/summary",
        None,
    )
    .await;
    assert_eq!(s.body["requests"], 1);
    // Tokens: B lists only its own, and cannot test with A's.
    let b_tokens = admin_tokens(&app, &b_admin, "beta").await;
    let a_ids: Vec<String> = app
        .store
        .list_tokens(&app.org.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert!(!b_tokens.is_empty());
    assert!(b_tokens
        .iter()
        .all(|t| !a_ids.contains(&t["id"].as_str().unwrap().to_owned())));
    let all_beta = app.store.list_tokens(&beta.id).await.unwrap();
    assert_eq!(b_tokens.len(), all_beta.len());
    let r = admin(
        &app,
        &b_admin,
        Method::POST,
        "/orgs/beta/test-connection",
        Some(json!({"token": app.token})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["field"], "token");
}

async fn passwords_never_reach_the_log(mut app: TestApp) {
    app.configure(manual);
    const SECRET: &str = "Hunter2-correct-horse";
    let created = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "pw@example.com", "password": SECRET}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let uid = id(&created.body);
    for body in [
        ops(json!([{"op": "replace", "path": "password", "value": SECRET}])),
        ops(json!([{"op": "Replace", "value": {"password": SECRET}}])),
        ops(json!([{"op": "replace", "path": format!("{USER_SCHEMA}:password"), "value": SECRET}])),
        ops(json!([{"op": "replace", "value": {format!("{USER_SCHEMA}:password"): SECRET}}])),
    ] {
        let r = app.patch(&format!("/Users/{uid}"), body).await;
        assert!(
            r.status.is_success() || r.status.is_client_error(),
            "{}",
            r.body
        );
    }
    app.put(
        &format!("/Users/{uid}"),
        json!({"schemas": [USER_SCHEMA], "userName": "pw@example.com", "password": SECRET}),
    )
    .await;
    app.post(
        "/Bulk",
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER_SCHEMA], "userName": "bulk-pw@example.com", "password": SECRET}}
        ]}),
    )
    .await;
    // Not JSON but names a password: withheld whole.
    let raw = format!("{{\"userName\": \"x\", \"password\": \"{SECRET}\"");
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/scim/v2/Users")
        .header("authorization", format!("Bearer {}", app.token))
        .header("content-type", "application/scim+json")
        .body(axum::body::Body::from(raw))
        .unwrap();
    assert_eq!(app.raw(req).await.status, StatusCode::BAD_REQUEST);
    // A filter on the password.
    app.get(&format!("/Users?filter=password%20eq%20%22{SECRET}%22"))
        .await;
    flush(&app).await;
    let rows = log_count(&app, "select count(*) from request_log").await;
    assert!(rows >= 8, "every request was logged: {rows}");
    let leaked = log_count(
        &app,
        &format!(
            "select count(*) from request_log where coalesce(request_body, '') like '%{SECRET}%' \
             or coalesce(response_body, '') like '%{SECRET}%' or coalesce(filter, '') like '%{SECRET}%' \
             or path like '%{SECRET}%' or coalesce(detail, '') like '%{SECRET}%'"
        ),
    )
    .await;
    assert_eq!(leaked, 0, "the password reached the stored log");
    let token_leaked = log_count(
        &app,
        &format!(
            "select count(*) from request_log where coalesce(request_body, '') || coalesce(response_body, '') \
             || coalesce(user_agent, '') || path like '%{}%'",
            app.token
        ),
    )
    .await;
    assert_eq!(token_leaked, 0);
    let redacted = log_count(
        &app,
        "select count(*) from request_log where request_body like '%[redacted]%'",
    )
    .await;
    assert!(
        redacted >= 6,
        "the password's place says it was redacted: {redacted}"
    );
}

async fn a_full_queue_drops_the_oldest_and_requests_still_succeed(mut app: TestApp) {
    app.configure(|c| {
        manual(c);
        c.request_log.queue = 5;
    });
    for i in 0..20 {
        let r = app
            .get(&format!("/Users?filter=userName%20eq%20%22n{i:02}%22"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "the log never fails a request");
    }
    let log = app.state.request_log.as_ref().unwrap();
    assert_eq!(log.dropped(), 15);
    flush(&app).await;
    let provider = admin_token(&app).await;
    let kept = log_items(&app, &provider, "acme", "").await;
    let names: Vec<&str> = kept
        .iter()
        .map(|e| e["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["n19", "n18", "n17", "n16", "n15"],
        "the newest stay"
    );
    let s = admin(
        &app,
        &provider,
        Method::GET,
        "/orgs/acme/request-log/summary",
        None,
    )
    .await;
    assert_eq!(s.body["dropped"], 15);
    let m = app.send(Method::GET, "/metrics", None, None, &[]).await;
    assert!(
        m.body
            .as_str()
            .unwrap()
            .contains("scimd_request_log_dropped_total"),
        "the drops are counted in /metrics"
    );
}

async fn the_log_stays_within_its_bounds(mut app: TestApp) {
    app.configure(|c| {
        manual(c);
        c.request_log.max_rows = 10;
        c.request_log.days = 7;
    });
    let (_, beta_scim) = app.other_org("beta").await;
    for i in 0..25 {
        app.get(&format!("/Users?filter=userName%20eq%20%22n{i:02}%22"))
            .await;
        if i % 7 == 0 {
            // Written in several batches: the bound holds after each.
            flush(&app).await;
        }
    }
    scim(&app, &beta_scim, Method::GET, "/Users", None).await;
    flush(&app).await;
    let count = |org: String| {
        let app = &app;
        async move {
            log_count(
                app,
                &format!("select count(*) from request_log where organization_id = '{org}'"),
            )
            .await
        }
    };
    assert_eq!(count(app.org.id.clone()).await, 10);
    let beta = app.store.org_by_slug("beta").await.unwrap().unwrap();
    assert_eq!(
        count(beta.id.clone()).await,
        1,
        "one organization's traffic never pushes out another's"
    );
    let provider = admin_token(&app).await;
    let kept = log_items(&app, &provider, "acme", "").await;
    assert_eq!(kept[0]["userName"], "n24");
    assert_eq!(kept[9]["userName"], "n15");
    // Past the age bound: only the new entry stays.
    app.clock.advance(8 * 24 * 60 * MINUTE);
    app.get("/Users").await;
    flush(&app).await;
    assert_eq!(count(app.org.id.clone()).await, 1);
    // The sweep takes the other organizations' old entries too.
    let swept = app
        .state
        .request_log
        .as_ref()
        .unwrap()
        .sweep()
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert_eq!(count(beta.id).await, 0);
}

async fn test_connection_makes_the_identity_providers_requests(mut app: TestApp) {
    app.configure(manual);
    let provider = admin_token(&app).await;
    let boss = acme_admin(&app, &provider, "boss@example.com").await;
    app.user("someone@example.com").await;
    // With a temporary token, revoked afterwards.
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/test-connection",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], true, "{}", r.body);
    assert_eq!(r.body["temporaryToken"], true);
    let steps = r.body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert!(
        steps.iter().all(|s| s["ok"] == true && s["status"] == 200),
        "{steps:#?}"
    );
    assert!(steps[1]["request"]
        .as_str()
        .unwrap()
        .contains("filter=userName"));
    let tokens = admin_tokens(&app, &boss, "acme").await;
    let temp: Vec<&Value> = tokens
        .iter()
        .filter(|t| t["name"].as_str().unwrap().contains("connection test"))
        .collect();
    assert_eq!(temp.len(), 1);
    assert_eq!(temp[0]["status"], "revoked");
    // The test's requests went through the whole stack: they are in the log.
    flush(&app).await;
    let logged = log_items(&app, &boss, "acme", "?subject=").await;
    assert!(logged
        .iter()
        .any(|e| e["tokenName"] == "connection test (temporary)"));
    // With the organization's own token.
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/test-connection",
        Some(json!({"token": app.token})),
    )
    .await;
    assert_eq!(r.body["ok"], true, "{}", r.body);
    assert_eq!(r.body["temporaryToken"], false);
    // With a revoked one: the step says why it failed.
    let id = app.store.list_tokens(&app.org.id).await.unwrap()[0]
        .id
        .clone();
    admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{id}/revoke"),
        None,
    )
    .await;
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/test-connection",
        Some(json!({"token": app.token})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["ok"], false, "{}", r.body);
    assert_eq!(r.body["steps"][1]["status"], 401);
    // An unknown token is refused, like another organization's.
    let r = admin(
        &app,
        &boss,
        Method::POST,
        "/orgs/acme/test-connection",
        Some(json!({"token": "scimd_nope"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn the_log_can_be_turned_off(mut app: TestApp) {
    app.configure(|c| c.request_log.enabled = false);
    assert!(app.state.request_log.is_none());
    app.user("off@example.com").await;
    assert_eq!(app.get("/Users").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(log_count(&app, "select count(*) from request_log").await, 0);
    let provider = admin_token(&app).await;
    let r = admin(&app, &provider, Method::GET, "/orgs/acme/request-log", None).await;
    assert_eq!(r.body["enabled"], false);
    let r = admin(
        &app,
        &provider,
        Method::GET,
        "/orgs/acme/provisioning",
        None,
    )
    .await;
    assert_eq!(r.body["requestLog"]["enabled"], false);
    assert!(r.body["scimBaseUrl"]
        .as_str()
        .unwrap()
        .ends_with("/scim/v2"));
}

async fn bad_log_queries_are_refused_clearly(app: TestApp) {
    let provider = admin_token(&app).await;
    refused_queries(
        &app,
        &provider,
        "/orgs/acme/request-log",
        &[
            ("?count=201", "count"),
            ("?count=x", "count"),
            ("?startIndex=0", "startIndex"),
            ("?status=99", "status"),
            ("?errors=maybe", "errors"),
            ("?method=TRACE", "method"),
            ("?subject=a%00b", "subject"),
        ],
    )
    .await;
    let long = "x".repeat(257);
    let r = admin(
        &app,
        &provider,
        Method::GET,
        &format!("/orgs/acme/request-log?subject={long}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin(
        &app,
        &provider,
        Method::GET,
        "/orgs/acme/request-log/nope",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = admin(&app, &provider, Method::GET, "/orgs/nope/request-log", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn on_sqlite_the_log_has_a_file_of_its_own(mut app: TestApp) {
    app.configure(manual);
    app.get("/Users?filter=userName%20eq%20%22apart%40example.com%22")
        .await;
    flush(&app).await;
    assert_eq!(
        log_count(
            &app,
            "select count(*) from request_log where user_name = 'apart@example.com'"
        )
        .await,
        1,
        "the request was logged where the log is read from"
    );
    if app.url.starts_with("sqlite:") {
        // The main file, whose one write lock every User write needs, holds no log at all.
        assert_eq!(
            crate::tenancy::sql_count(
                &app,
                "select count(*) from sqlite_master where name like 'request_log%'"
            )
            .await,
            0
        );
    }
    let provider = admin_token(&app).await;
    let items = log_items(&app, &provider, "acme", "?subject=apart%40example.com").await;
    assert_eq!(items.len(), 1, "the admin API reads the same log");
}

/// The writer wakes when the queue holds 2 MiB of bodies, not only every `flush_every` (an hour
/// here) or at 5,000 entries: three requests of 900 KB are written with no flush asked for.
async fn a_queue_past_two_mib_is_written_without_waiting(mut app: TestApp) {
    app.configure(manual);
    let big = "x".repeat(900 * 1024);
    for i in 0..3 {
        let r = app
            .post(
                "/Users",
                json!({"schemas": [USER_SCHEMA], "userName": format!("big{i}@example.com"), "nickName": big}),
            )
            .await;
        assert!(
            r.status.is_client_error() || r.status.is_success(),
            "{}",
            r.status
        );
    }
    let sql = "select count(*) from request_log where method = 'POST'";
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while log_count(&app, sql).await < 3 {
        assert!(
            std::time::Instant::now() < until,
            "the queue was not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_token_list_is_paged_and_old_revocations_drop_out(app: TestApp) {
    // A provider admin token: a person's access token would not outlive the days skipped here.
    let boss = admin_token(&app).await;
    let mut made = Vec::new();
    for name in ["t1", "t2", "t3"] {
        let r = admin(
            &app,
            &boss,
            Method::POST,
            "/orgs/acme/tokens",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        made.push(r.body["id"].as_str().unwrap().to_owned());
        app.clock.advance(MINUTE);
    }
    let page = |query: &'static str| {
        let (app, boss) = (&app, &boss);
        async move {
            let r = admin(
                app,
                boss,
                Method::GET,
                &format!("/orgs/acme/tokens{query}"),
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            let names: Vec<String> = r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            (r.body["totalResults"].as_i64().unwrap(), names)
        }
    };
    // The test app's own token comes first (oldest first), then the three.
    let (total, all) = page("").await;
    assert_eq!(total, 4);
    assert_eq!(all[1..], ["t1", "t2", "t3"]);
    assert_eq!(page("?count=2").await, (4, all[..2].to_vec()));
    assert_eq!(page("?startIndex=3&count=2").await, (4, all[2..].to_vec()));
    assert_eq!(page("?startIndex=9").await, (4, vec![]));
    let r = admin(
        &app,
        &boss,
        Method::POST,
        &format!("/orgs/acme/tokens/{}/revoke", made[1]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Revoked, it stays listed while the request log can still name it (7 days by default)…
    app.clock.advance(6 * 24 * 60 * MINUTE);
    assert_eq!(page("").await.0, 4);
    // …and then drops out of the list.
    app.clock.advance(2 * 24 * 60 * MINUTE);
    let (total, names) = page("").await;
    assert_eq!(total, 3);
    assert!(!names.contains(&"t2".to_owned()), "{names:?}");
    refused_queries(
        &app,
        &boss,
        "/orgs/acme/tokens",
        &[
            ("?count=201", "count"),
            ("?count=-1", "count"),
            ("?startIndex=0", "startIndex"),
            ("?startIndex=x", "startIndex"),
        ],
    )
    .await;
}

async fn successful_reads_past_the_budget_are_counted_and_errors_never_are(mut app: TestApp) {
    app.configure(|c| {
        manual(c);
        c.request_log.reads_per_second = 3;
    });
    for i in 0..10 {
        let r = app
            .get(&format!("/Users?filter=userName%20eq%20%22r{i:02}%22"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        if i % 4 == 0 {
            // Errors and writes in between are logged one by one, whatever the reads do.
            app.get("/Users/no-such-id").await;
            app.post("/Users", json!({"userName": format!("w{i}@example.com")}))
                .await;
        }
    }
    // The second of the burst ends; the writer says how many reads it counted.
    app.clock.advance(2_000_000);
    flush(&app).await;
    let provider = admin_token(&app).await;
    let items = log_items(&app, &provider, "acme", "?count=200").await;
    let errors = items.iter().filter(|e| e["status"] == 404).count();
    let writes = items.iter().filter(|e| e["method"] == "POST").count();
    assert_eq!((errors, writes), (3, 3), "{items:#?}");
    let reads = items
        .iter()
        .filter(|e| e["status"] == 200 && e["method"] == "GET" && e["userName"].is_string())
        .count();
    let counted: i64 = items
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .filter(|d| d.contains("successful reads in this second were counted"))
        .map(|d| d.split(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert!(
        reads >= 3,
        "the budget's reads are logged one by one: {reads}"
    );
    assert!(counted > 0, "the rest are counted: {items:#?}");
    assert_eq!(
        reads as i64 + counted,
        10,
        "every read is logged or counted"
    );
}
