//! Discovery endpoints and health checks.

use crate::both;
use crate::helpers::*;
use axum::http::{Method, StatusCode};

both!(discovery_describes_what_works, health_and_readiness);

async fn discovery_describes_what_works(app: TestApp) {
    let spc = app
        .send(Method::GET, "/ServiceProviderConfig", None, None, &[])
        .await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], scimd::http::MAX_RESULTS);
    assert_eq!(spc.body["etag"]["supported"], true);
    let schemas = app.get("/Schemas").await;
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for want in [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE] {
        assert!(ids.contains(&want), "{want} missing");
    }
    let user = app.get(&format!("/Schemas/{USER_SCHEMA}")).await;
    assert_eq!(
        user.body["meta"]["location"],
        format!("http://scim.test/scim/v2/Schemas/{USER_SCHEMA}")
    );
    let rt = app.get("/ResourceTypes/Group").await;
    assert_eq!(rt.body["endpoint"], "/Groups");
    app.get("/Schemas/urn:nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    app.get("/ResourceTypes?filter=id%20eq%20%22User%22")
        .await
        .assert_error(StatusCode::FORBIDDEN, None);
    app.send(Method::POST, "/Schemas", None, None, &[])
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
}

async fn health_and_readiness(app: TestApp) {
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let r = app.send(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-request-id"));
}
