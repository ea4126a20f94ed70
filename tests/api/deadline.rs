//! A request past its deadline stops its database work, and provisioning-token checks keep
//! answering while slow queries hold every read connection. Outcomes are asserted with generous
//! bounds (never how fast): the slow reads fail, their connections come back, the token checks
//! answered while the slow reads still ran.

use crate::both;
use crate::helpers::TestApp;
use axum::http::{Method, StatusCode};
use scimd::store::PoolStats;
use std::time::{Duration, Instant};

/// The pool that serves records and pages.
fn reads(stats: &[PoolStats]) -> &PoolStats {
    stats
        .iter()
        .find(|p| p.name == "read" || p.name == "main")
        .expect("a read pool")
}

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !ok().await {
        assert!(Instant::now() < until, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn slow_reads_stop_at_the_deadline(app: TestApp) {
    let max = reads(&app.store.pool_stats().await).max;
    // More endless reads than there are read connections. The deadline is long enough that a
    // machine busy with the rest of the suite still gets every read started and the token checks
    // done before it passes: a short one made this test flaky under load, not wrong.
    let deadline = Duration::from_secs(20);
    let started = Instant::now();
    let slow: Vec<_> = (0..max + 4)
        .map(|_| {
            let store = app.store.clone();
            tokio::spawn(scimd::deadline::scope(deadline, async move {
                store.endless_read().await
            }))
        })
        .collect();
    wait_for("every read connection busy", async || {
        reads(&app.store.pool_stats().await).in_use == max
    })
    .await;
    // Token checks go on meanwhile: an unknown token is looked up and refused, a known one is
    // found, although no read connection is free.
    let r = app
        .send(Method::GET, "/Users", Some("scimd_not_a_token"), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let found = app
        .store
        .token_by_digest(&scimd::token::digest(&app.token))
        .await
        .expect("token lookup");
    assert!(found.is_some());
    assert!(
        slow.iter().all(|t| !t.is_finished()),
        "the token checks answered while the slow reads still ran"
    );
    // Every slow read ends with the deadline's 503, none by itself (they never end otherwise).
    for task in slow {
        let err = task
            .await
            .expect("task")
            .expect_err("an endless read cannot succeed");
        assert_eq!(err.kind(), scimd::error::ErrorKind::Unavailable, "{err}");
    }
    assert!(started.elapsed() >= deadline);
    // And their connections are free again: in the pool, and on Postgres in the server too.
    wait_for("read connections released", async || {
        reads(&app.store.pool_stats().await).in_use == 0
    })
    .await;
    if app.url.starts_with("postgres") {
        let db = app.url.rsplit('/').next().unwrap().to_owned();
        let admin = crate::helpers::postgres_admin_url();
        wait_for("no statement of the test left running", async || {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            let n: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where datname = $1 and query like '%pg_sleep(3600)%' and state = 'active'",
            )
            .bind(&db)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            n == 0
        })
        .await;
    }
    // The store serves reads again.
    assert_eq!(app.get("/Users").await.status, StatusCode::OK);
}

both!(slow_reads_stop_at_the_deadline);
