//! `GET /metrics` (Prometheus text) moves with the requests made, and provisioning-token rate
//! limits answer 429 with `Retry-After` for the token over its budget only, across replicas.

use crate::both;
use crate::helpers::{TestApp, USER_SCHEMA};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::time::Instant;

/// The sum of a metric's samples whose labels include every `labels` pair.
async fn sample(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    let r = app.send(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.body.as_str().expect("metrics are text").to_owned();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_move_with_requests(app: TestApp) {
    let list = [
        ("method", "GET"),
        ("route", "/scim/v2/Users"),
        ("status", "200"),
    ];
    let before = sample(&app, "scimd_http_requests_total", &list).await;
    let timed = [("method", "GET"), ("route", "/scim/v2/Users")];
    let timed_before = sample(&app, "scimd_http_request_duration_seconds_count", &timed).await;
    for _ in 0..3 {
        assert_eq!(app.get("/Users?count=1").await.status, StatusCode::OK);
    }
    assert!(sample(&app, "scimd_http_requests_total", &list).await >= before + 3.0);
    assert!(
        sample(&app, "scimd_http_request_duration_seconds_count", &timed).await
            >= timed_before + 3.0
    );
    // Routes are templates, never raw paths with ids.
    let u = app.user("metrics@example.com").await;
    let one = [("route", "/scim/v2/Users/{id}"), ("status", "200")];
    let got = sample(&app, "scimd_http_requests_total", &one).await;
    app.get(&format!("/Users/{}", u["id"].as_str().unwrap()))
        .await;
    assert!(sample(&app, "scimd_http_requests_total", &one).await >= got + 1.0);
    let r = app.send(Method::GET, "/metrics", None, None, &[]).await;
    assert!(!r.body.as_str().unwrap().contains(u["id"].as_str().unwrap()));
    // Provisioning per organization, SCIM errors by scimType.
    let made = [("org", "acme"), ("kind", "User"), ("op", "create")];
    let created = sample(&app, "scimd_provisioning_total", &made).await;
    let r = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "metrics2@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(sample(&app, "scimd_provisioning_total", &made).await >= created + 1.0);
    let bad = [("status", "400"), ("scim_type", "invalidFilter")];
    let errors = sample(&app, "scimd_scim_errors_total", &bad).await;
    app.get("/Users?filter=userName%20zz%20%22x%22")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
    assert!(sample(&app, "scimd_scim_errors_total", &bad).await >= errors + 1.0);
    // Pools and the outbox are read at each scrape.
    assert!(
        sample(
            &app,
            "scimd_db_connections",
            &[("pool", "auth"), ("state", "max")]
        )
        .await
            >= 1.0
    );
    let r = app.send(Method::GET, "/metrics", None, None, &[]).await;
    assert!(r.body.as_str().unwrap().contains("scimd_outbox_pending"));
    // Sign-in outcomes.
    let wrong = sample(&app, "scimd_sign_ins_total", &[("outcome", "wrong")]).await;
    let r = app
        .send(
            Method::POST,
            "/admin/v1/login",
            None,
            Some(&json!({"email": "nobody@example.com", "password": "not the password"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(sample(&app, "scimd_sign_ins_total", &[("outcome", "wrong")]).await >= wrong + 1.0);
}

async fn metrics_can_move_to_their_own_listener(mut app: TestApp) {
    app.configure(|c| c.metrics_here = false);
    let r = app.send(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn a_token_over_its_rate_limit_gets_429(mut app: TestApp) {
    const LIMIT: u32 = 5;
    app.configure(|c| c.token_rate_limit = Some(LIMIT));
    let (_, other) = app.other_org("beta").await;
    // A second replica on the same database: the budget is shared, not per replica.
    let replica = scimd::router(scimd::AppState::new(
        app.store.clone(),
        app.clock.clone(),
        scimd::Config {
            token_rate_limit: Some(LIMIT),
            ..Default::default()
        },
    ));
    let started = Instant::now();
    let (mut ok, mut limited) = (0u32, None);
    for i in 0..40 {
        let r = if i % 2 == 0 {
            app.get("/Users?count=1").await
        } else {
            let req = axum::http::Request::get("/scim/v2/Users?count=1")
                .header("authorization", format!("Bearer {}", app.token))
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = tower::ServiceExt::oneshot(replica.clone(), req)
                .await
                .unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            crate::helpers::Resp {
                status,
                headers,
                body: serde_json::from_slice(&bytes).unwrap_or_default(),
            }
        };
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited = Some(r),
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    // Budgets are per clock-aligned second: a span of d seconds touches at most floor(d) + 2
    // windows (one partial window at each end).
    let seconds = started.elapsed().as_secs() as u32 + 2;
    let r = limited.expect("40 requests at once exceed a budget of 5 per second");
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, None);
    assert_eq!(r.headers["retry-after"], "1");
    // Never more than the budget in any one second, over both replicas together.
    assert!(
        ok <= LIMIT * seconds,
        "{ok} requests passed in {seconds} windows"
    );
    // Another organization's token has a budget of its own.
    for _ in 0..3 {
        let r = app
            .send(Method::GET, "/Users?count=1", Some(&other), None, &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

async fn no_rate_limit_by_default(app: TestApp) {
    for _ in 0..60 {
        assert_eq!(app.get("/Users?count=1").await.status, StatusCode::OK);
    }
}

both!(
    metrics_move_with_requests,
    metrics_can_move_to_their_own_listener,
    a_token_over_its_rate_limit_gets_429,
    no_rate_limit_by_default
);
