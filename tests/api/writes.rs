//! Concurrent writes that the store commits together (SQLite's group commit; Postgres's
//! one-statement writes) each get their own outcome: a failing write takes only itself back.

use crate::both;
use crate::helpers::{id, ops, TestApp, USER_SCHEMA};
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;

async fn concurrent_writes_each_get_their_own_outcome(app: TestApp) {
    let app = Arc::new(app);
    // 20 new userNames and 20 repeats of 5 of them, all at once.
    let names: Vec<String> = (0..20)
        .map(|i| format!("gc{i:02}@example.com"))
        .chain((0..20).map(|i| format!("GC{:02}@example.com", i % 5)))
        .collect();
    let tasks: Vec<_> = names
        .into_iter()
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = app
                    .post(
                        "/Users",
                        json!({"schemas": [USER_SCHEMA], "userName": n, "emails": [{"value": n}]}),
                    )
                    .await;
                (n, r.status)
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            (n, StatusCode::CREATED) => created.push(n.to_lowercase()),
            (_, StatusCode::CONFLICT) => conflicts += 1,
            (n, s) => panic!("{n}: {s}"),
        }
    }
    created.sort();
    created.dedup();
    assert_eq!(created.len(), 20, "each userName created exactly once");
    assert_eq!(conflicts, 20);
    let r = app.get("/Users?count=1000").await;
    assert_eq!(r.body["totalResults"], 20);
    // Each member created in a batch is in the console's search index once the batch commits
    // (on SQLite the writer indexes a batch's new members just before its commit).
    for (text, found) in [("gc03@", 1), ("GC1", 10), ("gc2", 0)] {
        let page = app
            .store
            .list_members(
                &app.org.id,
                &scimd::store::MemberQuery {
                    search: Some(text.into()),
                    count: 50,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.records.len(), found, "search {text:?}");
    }
    assert_eq!(r.ids().len(), 20);
    let (_, events) = app.store.audit_events(&app.org.id, 1, 1000).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.action == "User.create").count(),
        20
    );
    // Concurrent PATCHes with one If-Match version: exactly one wins, the rest get 412.
    let target = r.ids()[0].clone();
    let etag = app.get(&format!("/Users/{target}")).await.etag();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (app, target, etag) = (app.clone(), target.clone(), etag.clone());
            tokio::spawn(async move {
                app.send(
                    axum::http::Method::PATCH,
                    &format!("/Users/{target}"),
                    Some(&app.token),
                    Some(&ops(
                        json!([{"op": "replace", "path": "title", "value": format!("t{i}")}]),
                    )),
                    &[("if-match", &etag)],
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count(),
        15
    );
    let after = app.get(&format!("/Users/{target}")).await;
    assert_eq!(after.body["meta"]["version"], "W/\"2\"");
    // A delete in the same mix: gone, counted, audited.
    assert_eq!(
        app.delete(&format!("/Users/{}", id(&after.body)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/Users?count=0").await.body["totalResults"], 19);
}

both!(concurrent_writes_each_get_their_own_outcome);

/// SQLite's WAL is copied into the database file by the checkpointer thread, not by a write
/// that happens to cross SQLite's automatic threshold (1,000 pages, far above what 30 users
/// write): the database file read alone, without its WAL, soon holds every new user.
#[tokio::test]
async fn the_sqlite_wal_is_checkpointed_without_a_write_doing_it() {
    let app = TestApp::sqlite().await;
    for i in 0..30 {
        let name = format!("wal{i:02}@example.com");
        let r = app
            .post(
                "/Users",
                json!({"schemas": [USER_SCHEMA], "userName": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let path = app.url.strip_prefix("sqlite:").unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // `immutable=1`: the file as it is on disk, the WAL not read.
        let file = rusqlite::Connection::open_with_flags(
            format!("file:{path}?immutable=1"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        // Before the first checkpoint the file may not even hold the tables yet.
        let n: Result<i64, _> = file.query_row(
            "select count(*) from membership where organization_id = ?1",
            [&app.org.id],
            |r| r.get(0),
        );
        if matches!(n, Ok(30)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file alone holds {n:?} of 30 users after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// On Postgres a User's PATCH and PUT run on a pool of their own, whose connections plan each
/// statement once (the pool's setting is checked by `store::backend`'s unit test); before the
/// first update that pool has opened nothing.
#[tokio::test]
async fn postgres_user_updates_run_on_their_own_pool() {
    let app = TestApp::postgres().await;
    let opened = |stats: &[scimd::store::PoolStats]| {
        stats
            .iter()
            .find(|p| p.name == "updates")
            .expect("an updates pool")
            .open
    };
    let r = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "pool@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(opened(&app.store.pool_stats().await), 0);
    let r = app
        .patch(
            &format!("/Users/{}", id(&r.body)),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["active"], false);
    assert!(opened(&app.store.pool_stats().await) >= 1);
}

/// On Postgres a User's PATCH and PUT rewrite its row in place, as a heap-only tuple that no
/// index is told about: no index of `membership` covers a column that every update writes
/// (`updated_at`, `version`, `doc`) or that a deactivation writes (`active`). Read from the page
/// itself with `pageinspect`.
#[tokio::test]
async fn postgres_user_updates_rewrite_the_row_in_place() {
    use sqlx::Connection;
    let app = TestApp::postgres().await;
    let mut c = sqlx::PgConnection::connect(&app.url).await.unwrap();
    sqlx::query("create extension if not exists pageinspect")
        .execute(&mut c)
        .await
        .unwrap();
    let user =
        json!({"schemas": [USER_SCHEMA], "userName": "hot@example.com", "title": "Engineer"});
    let r = app.post("/Users", user.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let path = format!("/Users/{}", id(&r.body));
    let r = app
        .patch(
            &path,
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        written_in_place(&mut c, &id(&r.body)).await,
        "a deactivation touched an index"
    );
    let mut replaced = user;
    replaced["title"] = json!("Manager");
    let r = app.put(&path, replaced).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        written_in_place(&mut c, &id(&r.body)).await,
        "a PUT touched an index"
    );
}

/// Whether the row's current version is a heap-only tuple (bit 0x8000 of `t_infomask2`): one
/// written by an update that inserted into no index.
async fn written_in_place(c: &mut sqlx::PgConnection, id: &str) -> bool {
    let (page, item): (i32, i32) = sqlx::query_as(
        "select (ctid::text::point)[0]::int, (ctid::text::point)[1]::int from membership where id = $1",
    )
    .bind(id)
    .fetch_one(&mut *c)
    .await
    .unwrap();
    let flags: i32 = sqlx::query_scalar(
        "select t_infomask2 from heap_page_items(get_raw_page('membership', $1)) where lp = $2",
    )
    .bind(page)
    .bind(item)
    .fetch_one(&mut *c)
    .await
    .unwrap();
    flags & 0x8000 != 0
}
