//! The token picks the organization; nothing of another organization is visible or reachable.

use crate::both;
use crate::helpers::*;
use axum::http::{Method, StatusCode};
use serde_json::json;

both!(
    another_organizations_resources_are_404_for_every_verb,
    same_person_in_two_organizations
);

async fn another_organizations_resources_are_404_for_every_verb(app: TestApp) {
    let (_, b_token) = app.other_org("beta").await;
    let b = Some(b_token.as_str());
    let user = app.user("alice@acme.test").await;
    let group = app.group("Engineering", &[&id(&user)]).await;
    for (kind, res) in [("Users", &user), ("Groups", &group)] {
        let path = format!("/{kind}/{}", id(res));
        let patch = ops(json!([{"op": "replace", "path": "externalId", "value": "x"}]));
        let put = if kind == "Users" {
            json!({"userName": "stolen"})
        } else {
            json!({"displayName": "stolen"})
        };
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(&put)),
            (Method::PATCH, Some(&patch)),
            (Method::DELETE, None),
        ] {
            let r = app.send(method.clone(), &path, b, body, &[]).await;
            r.assert_error(StatusCode::NOT_FOUND, None);
        }
        // Not by filter, nor by listing.
        let r = app
            .send(
                Method::GET,
                &format!("/{kind}?filter=id%20eq%20%22{}%22", id(res)),
                b,
                None,
                &[],
            )
            .await;
        assert_eq!(r.body["totalResults"], 0, "{}", r.body);
        let r = app
            .send(Method::GET, &format!("/{kind}"), b, None, &[])
            .await;
        assert_eq!(r.body["totalResults"], 0);
    }
    // Nor as a group member.
    let r = app
        .send(
            Method::POST,
            "/Groups",
            b,
            Some(&json!({"displayName": "B", "members": [{"value": id(&user)}]})),
            &[],
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains(&id(&user)));
    // Everything is still there for its own organization.
    assert_eq!(
        app.get(&format!("/Users/{}", id(&user))).await.body["userName"],
        "alice@acme.test"
    );
    let g = app.get(&format!("/Groups/{}", id(&group))).await;
    assert_eq!(g.body["displayName"], "Engineering");
    assert_eq!(g.body["members"][0]["value"], id(&user));
}

async fn same_person_in_two_organizations(app: TestApp) {
    let (_, b_token) = app.other_org("beta").await;
    let b = Some(b_token.as_str());
    let in_a = app.user("Pat@Example.com").await;
    let body = json!({"userName": "pat@example.com", "emails": [{"value": "pat@example.com"}], "name": {"givenName": "Patricia"}});
    let in_b = app.send(Method::POST, "/Users", b, Some(&body), &[]).await;
    assert_eq!(in_b.status, StatusCode::CREATED);
    // Each organization has its own view; both memberships belong to one account.
    assert_ne!(id(&in_a), id(&in_b.body));
    assert!(in_a.get("name").is_none());
    let count: i64 = sql_count(
        &app,
        "select count(*) from account where email_norm = 'pat@example.com'",
    )
    .await;
    assert_eq!(count, 1);
    // Deleting the membership in A leaves B's membership and the account.
    app.delete(&format!("/Users/{}", id(&in_a))).await;
    app.get(&format!("/Users/{}", id(&in_a)))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    let still = app
        .send(
            Method::GET,
            &format!("/Users/{}", id(&in_b.body)),
            b,
            None,
            &[],
        )
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["name"]["givenName"], "Patricia");
    assert_eq!(
        sql_count(
            &app,
            "select count(*) from account where email_norm = 'pat@example.com'"
        )
        .await,
        1
    );
}

pub(crate) async fn sql_count(app: &TestApp, sql: &str) -> i64 {
    use sqlx::Connection;
    if app.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&app.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&app.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}
