//! The Provisioning page in a real browser: an admin makes a token, an identity provider (this
//! test, over HTTP) uses it, and the admin reads in the request log what scimd answered,
//! failures and redaction included; then rotates and revokes the token.

use super::{Browser, Site, TestApp, PASSWORD};
use serde_json::{json, Value};

both!(an_admin_connects_a_provider_and_reads_its_request_log);

/// A SCIM request as an identity provider makes it, over the loopback socket.
async fn scim(
    site: &Site,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, site.url(&format!("/scim/v2{path}")))
        .bearer_auth(token)
        .header("user-agent", "Okta SCIM Client 1.0.0");
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Writes what the request log has queued, as its background writer would within a second.
async fn flush(site: &Site) {
    site.app
        .state
        .request_log
        .as_ref()
        .expect("the request log is on by default")
        .flush()
        .await
        .unwrap();
}

/// The organization's log entries with this method and status, through the admin API.
async fn entries(site: &Site, query: &str) -> Vec<Value> {
    let r = site
        .admin(
            axum::http::Method::GET,
            &format!("/orgs/acme/request-log?{query}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// The ids and statuses of the organization's tokens named `okta`.
async fn token_ids(site: &Site) -> Vec<(String, String)> {
    let r = site
        .admin(axum::http::Method::GET, "/orgs/acme/tokens", Value::Null)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "okta")
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn an_admin_connects_a_provider_and_reads_its_request_log(site: Site) {
    let b = Browser::open().await;
    b.sign_in(&site, "ada@acme.test", PASSWORD).await;
    b.goto(&site.url("/o/acme/provisioning")).await;
    let base = b.wait_text("#scim-base", "/scim/v2").await;
    assert_eq!(base, site.url("/scim/v2"));
    b.wait("button[data-copy='scim-base']").await;
    b.axe("the Provisioning page").await;

    // Test connection: each step of an identity provider's check, through the real stack.
    b.click("#test-connection").await;
    let result = b.wait_text("#test-result", "Connection works").await;
    assert!(
        result.contains("Find a user that does not exist"),
        "{result}"
    );
    assert_eq!(result.matches("Passed").count(), 3, "{result}");

    // A blank name is refused in the admin API's words; a named token is shown once.
    b.fill("#token-name", "   ").await;
    b.fill("#token-days", "forever").await;
    b.click("#create-token").await;
    b.wait_text("#provisioning-notice", "whole number of days")
        .await;
    b.fill("#token-name", "okta").await;
    b.fill("#token-days", "90").await;
    b.click("#create-token").await;
    let secret = b.wait("#token-secret").await.text().await.unwrap();
    assert!(secret.len() >= 32, "{secret:?}");
    b.wait_text("#new-token", "shown only this once").await;
    b.wait_text("table.tokens", "okta").await;
    b.axe("the Provisioning page with a new token").await;
    // The secret is not on the page once it is reloaded.
    b.goto(&site.url("/o/acme/provisioning")).await;
    b.wait_text("table.tokens", "okta").await;
    assert!(!b.c.source().await.unwrap().contains(&secret));

    // The identity provider provisions: a person (with a password), the same userName again,
    // and a lookup.
    let carol = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "carol@acme.test",
        "password": "Tr0ub4dor&3-never-logged",
        "name": {"givenName": "Carol", "familyName": "Coder"},
        "emails": [{"value": "carol@acme.test", "primary": true}],
    });
    let (status, created) = scim(
        &site,
        &secret,
        reqwest::Method::POST,
        "/Users",
        Some(carol.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, dup) = scim(&site, &secret, reqwest::Method::POST, "/Users", Some(carol)).await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["scimType"], "uniqueness", "{dup}");
    let (status, _) = scim(
        &site,
        &secret,
        reqwest::Method::GET,
        "/Users?filter=userName%20eq%20%22carol%40acme.test%22",
        None,
    )
    .await;
    assert_eq!(status, 200);
    flush(&site).await;

    // The log: the summary counts the failure and names its detail; errors only lists it, with
    // a link to the person it concerns.
    b.click_to("#open-log", "#summary").await;
    let summary = b.wait_text("#summary", "1 error").await;
    assert!(summary.contains("409: 1"), "{summary}");
    assert!(summary.contains("uniqueness"), "{summary}");
    b.click("input[name=errors]").await;
    b.click("#filter-log").await;
    let table = b.wait_text("table.log caption", "Requests 1–1 of 1").await;
    assert!(table.contains("newest first"), "{table}");
    let row = b.wait_text("table.log tbody", "409").await;
    assert!(row.contains("uniqueness"), "{row}");
    assert!(row.contains("okta"), "{row}");
    b.axe("the request log, errors only").await;
    b.screenshot(&site, "provisioning").await;
    b.click_to("table.log a.resource", "#total").await;
    b.wait_text("main", "carol@acme.test").await;

    // The 409's detail page, and the 201's: the password never reached the log.
    let dup_entry = &entries(&site, "status=409").await[0];
    b.goto(&site.url(&format!(
        "/o/acme/provisioning/log/{}",
        dup_entry["id"].as_str().unwrap()
    )))
    .await;
    b.wait_text("#entry-status", "409").await;
    b.wait_text("#entry-detail", "already exists").await;
    let body = b.wait_text("#request-body", "[redacted]").await;
    assert!(!body.contains("Tr0ub4dor"), "{body}");
    b.axe("a request-log entry").await;
    let created_entry = &entries(&site, "status=201").await[0];
    b.goto(&site.url(&format!(
        "/o/acme/provisioning/log/{}",
        created_entry["id"].as_str().unwrap()
    )))
    .await;
    b.wait_text("#request-body", "[redacted]").await;
    b.wait_text("#response-body", "carol@acme.test").await;
    assert!(!b.c.source().await.unwrap().contains("Tr0ub4dor"));

    // Rotate: a new token beside the old; both work until the old is revoked.
    let ids = token_ids(&site).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let old_id = ids[0].0.clone();
    b.goto(&site.url("/o/acme/provisioning")).await;
    b.click(&format!(
        "#token-{old_id} button[aria-label='Rotate the token okta']"
    ))
    .await;
    b.wait_text("#new-token", "rotated").await;
    let rotated = b.wait("#token-secret").await.text().await.unwrap();
    assert_ne!(rotated, secret);
    for t in [&secret, &rotated] {
        let (status, _) = scim(&site, t, reqwest::Method::GET, "/Users?count=1", None).await;
        assert_eq!(status, 200);
    }

    // Revoke asks first; then the old token is refused, and the log says why.
    b.click(&format!("#token-{old_id} button.danger")).await;
    b.wait_text("#confirm-revoke", "Revoke the token okta?")
        .await;
    b.axe("the revoke confirmation").await;
    b.click("#confirm-revoke-button").await;
    b.wait_text("#provisioning-notice", "is revoked").await;
    b.wait_text(&format!("#token-{old_id}"), "revoked").await;
    let states = token_ids(&site).await;
    assert!(
        states.contains(&(old_id.clone(), "revoked".into())),
        "{states:?}"
    );
    let (status, _) = scim(&site, &secret, reqwest::Method::GET, "/Users?count=1", None).await;
    assert_eq!(status, 401);
    let (status, _) = scim(
        &site,
        &rotated,
        reqwest::Method::GET,
        "/Users?count=1",
        None,
    )
    .await;
    assert_eq!(status, 200);
    flush(&site).await;
    b.goto(&site.url("/o/acme/provisioning/log?status=401"))
        .await;
    let row = b.wait_text("table.log tbody", "401").await;
    assert!(row.contains("the token \"okta\" is revoked"), "{row}");

    // A filter the admin API refuses is said on the page, in its words.
    b.goto(&site.url("/o/acme/provisioning/log?status=abc"))
        .await;
    b.wait_text("#log-error", "must be a whole number from 100 to 599")
        .await;

    // A member gets the refusal the other admin pages give, for the page and for the log.
    scimd::service::credentials::set_password_as_operator(
        &site.app.store,
        &site.app.clock,
        "bob@acme.test",
        PASSWORD,
    )
    .await
    .unwrap();
    b.c.delete_all_cookies().await.unwrap();
    b.sign_in(&site, "bob@acme.test", PASSWORD).await;
    for path in ["/o/acme/provisioning", "/o/acme/provisioning/log"] {
        b.goto(&site.url(path)).await;
        b.wait_text("main", "needs the admin role").await;
    }
    b.close().await;
}
