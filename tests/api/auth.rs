//! Provisioning tokens: Bearer or bare, and every way a token can be wrong is a 401.

use crate::both;
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

both!(
    bearer_and_bare_tokens_are_accepted,
    bad_tokens_get_401_with_www_authenticate,
    revoked_and_expired_tokens_stop_working
);

async fn bearer_and_bare_tokens_are_accepted(app: TestApp) {
    for header in [
        format!("Bearer {}", app.token),
        format!("bearer {}", app.token),
        app.token.clone(),
    ] {
        let req = Request::builder()
            .uri("/scim/v2/Users")
            .header("authorization", header)
            .header("content-type", "application/json")
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.raw(req).await.status, StatusCode::OK);
    }
}

async fn bad_tokens_get_401_with_www_authenticate(app: TestApp) {
    for token in [None, Some("nope"), Some("")] {
        let r = app.send(Method::GET, "/Users", token, None, &[]).await;
        r.assert_error(StatusCode::UNAUTHORIZED, None);
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    let req = Request::builder()
        .uri("/scim/v2/Users")
        .header("authorization", "Basic dTpw")
        .body(Body::empty())
        .unwrap();
    app.raw(req)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
}

async fn revoked_and_expired_tokens_stop_working(app: TestApp) {
    let (org, token) = app.other_org("beta").await;
    assert_eq!(
        app.send(Method::GET, "/Users", Some(&token), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let t = &app.store.list_tokens(&org.id).await.unwrap()[0];
    assert!(app
        .store
        .revoke_token(&t.id, app.clock.now())
        .await
        .unwrap());
    // Revocation reaches every replica within the token cache's lifetime.
    app.clock.advance(scimd::http::TOKEN_CACHE_MICROS);
    app.send(Method::GET, "/Users", Some(&token), None, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);

    let expiring = scimd::token::generate();
    let day = 86_400_000_000;
    app.store
        .create_token(
            &org,
            "short",
            &scimd::token::digest(&expiring),
            Some(app.clock.now() + day),
            app.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        app.send(Method::GET, "/Users", Some(&expiring), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance(day + 1);
    app.send(Method::GET, "/Users", Some(&expiring), None, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
}
