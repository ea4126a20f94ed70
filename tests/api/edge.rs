//! What every response carries on its way out: an error body in the shape of the path's API
//! (SCIM under `/scim/v2`, `{error, message, field}` under `/admin/v1`), even for errors the
//! framework produces, and security headers (a strict CSP on every HTML page).

use crate::admin::admin_token;
use crate::both;
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

both!(
    framework_errors_get_scim_bodies_under_scim,
    admin_errors_have_the_admin_shape_whatever_produced_them,
    html_pages_carry_a_strict_csp_and_no_inline_style,
);

fn assert_admin_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"], code, "{:?}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(r.body.get("schemas").is_none(), "{}", r.body);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

async fn framework_errors_get_scim_bodies_under_scim(app: TestApp) {
    // A path segment that is not UTF-8: axum's Path extractor refuses it in plain text.
    let r = app.get("/Users/%FF%FE").await;
    r.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    let r = app
        .send(Method::DELETE, "/Bulk", Some(&app.token), None, &[])
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
    let r = app.get("/scim/v2/Nope").await;
    r.assert_error(StatusCode::NOT_FOUND, None);
    // Every response says nosniff.
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(
        app.get("/Users").await.headers["x-content-type-options"],
        "nosniff"
    );
}

async fn admin_errors_have_the_admin_shape_whatever_produced_them(app: TestApp) {
    let t = admin_token(&app).await;
    let send = |method: Method, path: &str, body: Body, ct: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", ct)
            .body(body)
            .unwrap()
    };
    // Unknown path and method: the fallbacks.
    let r = app
        .raw(send(
            Method::GET,
            "/admin/v1/nope",
            Body::empty(),
            "application/json",
        ))
        .await;
    assert_admin_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .raw(send(
            Method::DELETE,
            "/admin/v1/orgs",
            Body::empty(),
            "application/json",
        ))
        .await;
    assert_admin_error(&r, StatusCode::METHOD_NOT_ALLOWED, "error");
    // A query string axum cannot read into the handler's parameters.
    let r = app
        .raw(send(
            Method::GET,
            "/admin/v1/orgs/acme/members?startIndex=abc",
            Body::empty(),
            "application/json",
        ))
        .await;
    assert_admin_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    // A body over the limit.
    let big = vec![b'a'; scimd::http::MAX_BODY_BYTES + 1];
    let r = app
        .raw(send(
            Method::POST,
            "/admin/v1/orgs/acme/invitations/import",
            Body::from(big),
            "text/csv",
        ))
        .await;
    assert_admin_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // Not JSON where JSON is expected.
    let r = app
        .raw(send(
            Method::POST,
            "/admin/v1/orgs",
            Body::from("{"),
            "application/json",
        ))
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert!(r.body["error"].is_string(), "{:?}", r.body);
    // And SCIM's paths are unaffected by the admin shape.
    let r = app.get("/scim/v2/admin/v1").await;
    r.assert_error(StatusCode::NOT_FOUND, None);
}

async fn html_pages_carry_a_strict_csp_and_no_inline_style(app: TestApp) {
    for path in ["/invite/not-a-secret", "/setup/not-a-secret"] {
        let r = app
            .raw(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await;
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        assert_eq!(r.headers["x-frame-options"], "DENY");
        // Nothing on the page that this CSP would block.
        let page = r.body.as_str().unwrap();
        for inline in ["<style", "<script", " style=", " onclick=", " onsubmit="] {
            assert!(!page.contains(inline), "{path} has {inline}: {page}");
        }
        assert!(page.contains("href=\"/assets/page.css\""), "{page}");
    }
    let css = app
        .raw(
            Request::builder()
                .uri("/assets/page.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.body.as_str().unwrap().contains(".error"));
}
