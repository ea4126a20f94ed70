//! `startIndex` paging that seeks from where the previous page ended (flat on deep pages) is
//! exact: the pages of a walk are the same as reading the whole list at once, also when Users
//! are created and deleted between pages.

use crate::both;
use crate::helpers::{id, TestApp};
use axum::http::StatusCode;

async fn all_ids(app: &TestApp) -> Vec<String> {
    let r = app.get("/Users?count=1000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.ids()
}

async fn page(app: &TestApp, start: usize, count: usize) -> (Vec<String>, i64) {
    let r = app
        .get(&format!("/Users?startIndex={start}&count={count}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["startIndex"], start as i64);
    (r.ids(), r.body["totalResults"].as_i64().unwrap())
}

async fn walk_matches_one_read(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..23 {
        ids.push(id(&app.user(&format!("walk{i:02}@example.com")).await));
    }
    assert_eq!(all_ids(&app).await, ids);
    let mut walked = Vec::new();
    let mut start = 1;
    loop {
        let (got, total) = page(&app, start, 5).await;
        assert_eq!(total, 23);
        if got.is_empty() {
            break;
        }
        walked.extend(got);
        start += 5;
    }
    assert_eq!(walked, ids);
    // A second walk seeks from the remembered positions and must give the same pages.
    for start in [6, 11, 16, 21] {
        assert_eq!(
            page(&app, start, 5).await.0,
            ids[start - 1..(start + 4).min(23)]
        );
    }
}

async fn changes_between_pages_stay_exact(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(id(&app.user(&format!("chg{i:02}@example.com")).await));
    }
    assert_eq!(page(&app, 1, 5).await.0, ids[0..5]);
    assert_eq!(page(&app, 6, 5).await.0, ids[5..10]);
    // A User on an already served page goes away: everything after moves up by one, so a seek
    // from where page 2 ended would skip a User.
    assert_eq!(
        app.delete(&format!("/Users/{}", ids[2])).await.status,
        StatusCode::NO_CONTENT
    );
    let now = all_ids(&app).await;
    let (got, total) = page(&app, 11, 5).await;
    assert_eq!(total, 19);
    assert_eq!(got, now[10..15]);
    // A create between pages changes the count too.
    let (got, _) = page(&app, 16, 5).await;
    assert_eq!(got, now[15..19]);
    app.user("chg-late@example.com").await;
    let now = all_ids(&app).await;
    let (got, total) = page(&app, 16, 5).await;
    assert_eq!(total, 20);
    assert_eq!(got, now[15..20]);
    // Past the end: an empty page that still knows the total.
    let (got, total) = page(&app, 41, 5).await;
    assert!(got.is_empty());
    assert_eq!(total, 20);
}

async fn groups_page_the_same_way(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(id(&app.group(&format!("team{i}"), &[]).await));
    }
    let mut walked = Vec::new();
    for start in [1, 4, 7] {
        let r = app
            .get(&format!("/Groups?startIndex={start}&count=3"))
            .await;
        assert_eq!(r.body["totalResults"], 7, "{}", r.body);
        walked.extend(r.ids());
    }
    assert_eq!(walked, ids);
    assert_eq!(
        app.delete(&format!("/Groups/{}", ids[0])).await.status,
        StatusCode::NO_CONTENT
    );
    let r = app.get("/Groups?startIndex=4&count=3").await;
    assert_eq!(r.ids(), ids[4..7]);
    assert_eq!(r.body["totalResults"], 6);
}

both!(
    walk_matches_one_read,
    changes_between_pages_stay_exact,
    groups_page_the_same_way
);
