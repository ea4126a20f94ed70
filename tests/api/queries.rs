//! Filters, paging, sorting, projection and .search, evaluated in the database.

use crate::both;
use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::json;

both!(
    filters_by_the_attributes_idps_use,
    paging_counts_and_caps,
    cursor_paging_walks_every_user_once,
    sorting_is_stable,
    projection_and_search,
    filters_by_when_users_changed
);

async fn filters_by_the_attributes_idps_use(app: TestApp) {
    let a = app.post("/Users", json!({"userName": "Tess@X.test", "externalId": "EXT-1", "name": {"familyName": "Ng"}, "title": "CTO"})).await.body;
    let b = app.post("/Users", json!({"userName": "uma@x.test", "externalId": "ext-2", "emails": [{"value": "uma@work.test", "type": "work"}]})).await.body;
    let q = |f: &str| {
        format!(
            "/Users?filter={}",
            f.replace(' ', "%20").replace('"', "%22")
        )
    };
    assert_eq!(
        app.get(&q(r#"userName eq "tess@x.TEST""#)).await.ids(),
        vec![id(&a)],
        "userName is case-insensitive"
    );
    assert_eq!(
        app.get(&q(r#"externalId eq "EXT-1""#)).await.ids(),
        vec![id(&a)]
    );
    assert!(
        app.get(&q(r#"externalId eq "ext-1""#))
            .await
            .ids()
            .is_empty(),
        "externalId is case-exact"
    );
    assert_eq!(
        app.get(&q(&format!(r#"id eq "{}""#, id(&b)))).await.ids(),
        vec![id(&b)]
    );
    assert_eq!(
        app.get(&q(r#"name.familyName eq "ng""#)).await.ids(),
        vec![id(&a)]
    );
    assert_eq!(
        app.get(&q(r#"emails[type eq "work" and value co "@WORK"]"#))
            .await
            .ids(),
        vec![id(&b)]
    );
    assert_eq!(
        app.get(&q(r#"emails.value sw "uma""#)).await.ids(),
        vec![id(&b)]
    );
    assert_eq!(app.get(&q(r#"title pr"#)).await.ids(), vec![id(&a)]);
    assert_eq!(
        app.get(&q(r#"not (title pr) and userName ew "x.test""#))
            .await
            .ids(),
        vec![id(&b)]
    );
    assert_eq!(
        app.get(&q(r#"nosuchattribute eq "x""#)).await.ids().len(),
        0
    );
    let created = a["meta"]["created"].as_str().unwrap();
    assert_eq!(
        app.get(&q(&format!(r#"meta.created gt "{created}""#)))
            .await
            .ids(),
        vec![id(&b)]
    );
    app.get(&q(r#"active co "t""#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let g = app.group("Design Team", &[]).await;
    let r = app
        .get(&format!(
            "/Groups?filter={}",
            "displayName%20eq%20%22design%20team%22"
        ))
        .await;
    assert_eq!(r.ids(), vec![id(&g)]);
}

async fn paging_counts_and_caps(app: TestApp) {
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(id(&app.user(&format!("p{n}")).await));
    }
    let r = app.get("/Users?startIndex=3&count=2").await;
    assert_eq!(r.body["totalResults"], 7);
    assert_eq!(r.body["startIndex"], 3);
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.ids(), ids[2..4].to_vec());
    let r = app.get("/Users?count=0").await;
    assert_eq!(r.body["totalResults"], 7);
    assert_eq!(r.body["Resources"], json!([]));
    let r = app.get("/Users?startIndex=-5&count=-1").await;
    assert_eq!(r.body["startIndex"], 1);
    assert_eq!(r.body["itemsPerPage"], 0);
    let r = app.get("/Users?startIndex=100").await;
    assert_eq!(r.body["totalResults"], 7);
    assert_eq!(r.body["itemsPerPage"], 0);
    let r = app.get("/Users?count=100000").await;
    assert_eq!(r.body["itemsPerPage"], 7, "count is capped, not refused");
}

async fn sorting_is_stable(app: TestApp) {
    for (u, n) in [("b", "Zed"), ("a", "Amy"), ("c", "amy")] {
        app.post("/Users", json!({"userName": u, "name": {"givenName": n}}))
            .await;
    }
    let names = |r: &Resp| r.user_names();
    assert_eq!(
        names(&app.get("/Users?sortBy=userName").await),
        vec!["a", "b", "c"]
    );
    assert_eq!(
        names(&app.get("/Users?sortBy=userName&sortOrder=descending").await),
        vec!["c", "b", "a"]
    );
    // Equal keys ("Amy", "amy") keep creation order.
    assert_eq!(
        names(&app.get("/Users?sortBy=name.givenName").await),
        vec!["a", "c", "b"]
    );
    app.get("/Users?sortBy=userName&sortOrder=sideways")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
}

async fn projection_and_search(app: TestApp) {
    let u = app.post("/Users", json!({"userName": "vic", "displayName": "Vic", "name": {"givenName": "V", "familyName": "W"}})).await.body;
    let r = app
        .get(&format!("/Users/{}?attributes=name.familyName", id(&u)))
        .await;
    assert_eq!(r.body["name"], json!({"familyName": "W"}));
    assert_eq!(r.body["id"], id(&u), "id is always returned");
    assert!(r.body.get("displayName").is_none() && r.body.get("userName").is_none());
    let r = app.get("/Users?excludedAttributes=name,meta").await;
    assert!(
        r.body["Resources"][0].get("name").is_none()
            && r.body["Resources"][0].get("meta").is_none()
    );
    assert_eq!(r.body["Resources"][0]["displayName"], "Vic");
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"vic\"", "attributes": ["displayName"]});
    let r = app.post("/Users/.search", search.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ids(), vec![id(&u)]);
    assert!(r.body["Resources"][0].get("userName").is_none());
    app.group("vic", &[]).await;
    let both = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"vic\" or displayName eq \"vic\""});
    let r = app.post("/.search", both).await;
    assert_eq!(r.body["totalResults"], 2);
    let types: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["User", "Group"]);
}

async fn cursor_paging_walks_every_user_once(app: TestApp) {
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(id(&app.user(&format!("c{n}")).await));
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let r = app.get(&format!("/Users?count=3&cursor={cursor}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["totalResults"], if pages == 0 { 7 } else { 8 });
        assert!(r.body.get("startIndex").is_none());
        seen.extend(r.ids());
        pages += 1;
        // A user created mid-walk appears once, at the end (creation order).
        if pages == 1 {
            ids.push(id(&app.user("late").await));
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    app.get("/Users?cursor=garbage")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidCursor"));
    app.get("/Users?cursor=&startIndex=2")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["pagination"]["cursor"], true);
}

/// `meta.lastModified` and `meta.created` compare as instants (RFC 7643 §2.3.5), read from the
/// rows' timestamps; `meta.lastModified` has no index (an update then changes no indexed column)
/// and walks the organization's rows.
async fn filters_by_when_users_changed(app: TestApp) {
    let old = app
        .post("/Users", json!({"userName": "old@x.test"}))
        .await
        .body;
    let changed = app
        .post("/Users", json!({"userName": "changed@x.test"}))
        .await
        .body;
    let created = old["meta"]["created"].as_str().unwrap().to_owned();
    app.clock.advance(60 * 1_000_000);
    let newer = app
        .post("/Users", json!({"userName": "newer@x.test"}))
        .await
        .body;
    app.clock.advance(60 * 1_000_000);
    let r = app
        .patch(
            &format!("/Users/{}", id(&changed)),
            ops(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let modified = r.body["meta"]["lastModified"].as_str().unwrap().to_owned();
    assert_ne!(modified, created);
    let q = |f: String| {
        format!(
            "/Users?filter={}",
            f.replace(' ', "%20")
                .replace('"', "%22")
                .replace('+', "%2B")
        )
    };
    let mut since = app
        .get(&q(format!(r#"meta.lastModified gt "{created}""#)))
        .await
        .ids();
    since.sort();
    let mut want = vec![id(&changed), id(&newer)];
    want.sort();
    assert_eq!(since, want, "changed after the first creates");
    assert_eq!(
        app.get(&q(format!(r#"meta.lastModified ge "{modified}""#)))
            .await
            .ids(),
        vec![id(&changed)]
    );
    assert_eq!(
        app.get(&q(format!(
            r#"meta.lastModified lt "{modified}" and meta.created gt "{created}""#
        )))
        .await
        .ids(),
        vec![id(&newer)]
    );
    assert_eq!(
        app.get(&q(format!(r#"meta.lastModified eq "{created}""#)))
            .await
            .ids(),
        vec![id(&old)],
        "the untouched user keeps its creation instant"
    );
}
