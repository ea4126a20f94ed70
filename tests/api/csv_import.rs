//! CSV invitations through the admin API and the `scimd invite import` twin.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    a_thousand_rows_with_bad_ones_each_named,
    file_limits_are_refused_whole,
    the_cli_twin_imports_the_same_way,
    empty_rows_count_and_the_empty_row_attack_is_refused,
    a_dry_run_predicts_the_real_run,
);

/// 1000 rows; lines 10, 20, 30 and 40 are bad in four different ways.
fn thousand_rows() -> String {
    let mut csv = String::from("First name,Email,Group Membership,Notes\n");
    for line in 2..=1001 {
        let row = match line {
            10 => "Bad,not-an-email,,x".to_owned(),
            20 => "Cy,cy@acme.test,Marketing,".to_owned(),
            30 => "Dup,P2@ACME.test,,".to_owned(),
            40 => "Old,member@acme.test,,".to_owned(),
            50 => "Eng,eng@acme.test,\"engineering, SALES\",".to_owned(),
            n => format!("P{n},p{n}@acme.test,,"),
        };
        csv.push_str(&row);
        csv.push('\n');
    }
    csv
}

async fn import(app: &TestApp, token: &str, csv: &str, dry_run: bool) -> Resp {
    let path = format!("/admin/v1/orgs/acme/invitations/import?dry_run={dry_run}");
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/csv")
        .body(axum::body::Body::from(csv.to_owned()))
        .unwrap();
    app.raw(req).await
}

fn skipped(r: &Resp) -> Vec<(u64, String)> {
    r.body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["line"].as_u64().unwrap(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_thousand_rows_with_bad_ones_each_named(app: TestApp) {
    let t = admin_token(&app).await;
    app.user("member@acme.test").await;
    let eng = app.group("Engineering", &[]).await;
    let sales = app.group("Sales", &[]).await;
    let csv = thousand_rows();
    let bad = vec![
        (10, "invalid_email".to_owned()),
        (20, "unknown_groups".into()),
        (30, "duplicate_row".into()),
        (40, "already_member".into()),
    ];

    let dry = import(&app, &t, &csv, true).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["dryRun"], true);
    assert_eq!(dry.body["invited"].as_array().unwrap().len(), 996);
    assert_eq!(skipped(&dry), bad);
    assert!(dry.body["skipped"][1]["message"]
        .as_str()
        .unwrap()
        .contains("Marketing"));
    let none = admin(&app, &t, Method::GET, "/orgs/acme/invitations", None).await;
    assert_eq!(none.body["items"], json!([]), "a dry run invites nobody");

    let real = import(&app, &t, &csv, false).await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.body);
    assert_eq!(real.body["invited"].as_array().unwrap().len(), 996);
    assert_eq!(skipped(&real), bad);
    let list = admin(&app, &t, Method::GET, "/orgs/acme/invitations", None).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 996);
    let eng_row = items
        .iter()
        .find(|i| i["email"] == "eng@acme.test")
        .unwrap();
    let mut groups: Vec<&str> = eng_row["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    groups.sort();
    let mut want = vec![eng["id"].as_str().unwrap(), sales["id"].as_str().unwrap()];
    want.sort();
    assert_eq!(groups, want);

    // The same file again invites nobody twice.
    let again = import(&app, &t, &csv, false).await;
    assert_eq!(again.body["invited"], json!([]));
    let reasons = skipped(&again);
    assert_eq!(reasons.len(), 1000);
    assert_eq!(
        reasons
            .iter()
            .filter(|(_, r)| r == "already_invited")
            .count(),
        996
    );
    let items = admin(&app, &t, Method::GET, "/orgs/acme/invitations", None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(items, 996);
}

async fn file_limits_are_refused_whole(app: TestApp) {
    let t = admin_token(&app).await;
    let mut big = String::from("email\n");
    for i in 0..1001 {
        big.push_str(&format!("u{i}@acme.test\n"));
    }
    let r = import(&app, &t, &big, true).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("1000"));
    assert_eq!(r.body["field"], "file");
    let r = import(&app, &t, "name,group membership\nx,\n", false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("email"));
    let r = import(&app, &t, "", false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn the_cli_twin_imports_the_same_way(app: TestApp) {
    use clap::Parser;
    let t = admin_token(&app).await;
    let file = std::env::temp_dir().join(format!("scimd-import-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        "email,group membership\na@acme.test,\nbad,\nb@acme.test,Nope\n",
    )
    .unwrap();
    let run = |dry: bool| {
        let mut args = vec![
            "scimd".to_owned(),
            "--database-url".into(),
            app.url.clone(),
            "invite".into(),
            "import".into(),
            "--org".into(),
            "acme".into(),
            file.display().to_string(),
        ];
        if dry {
            args.push("--dry-run".into());
        }
        scimd::cli::run(scimd::cli::Cli::parse_from(args))
    };
    run(true).await.unwrap();
    let list = |r: Resp| -> Vec<Value> { r.body["items"].as_array().unwrap().clone() };
    assert!(list(admin(&app, &t, Method::GET, "/orgs/acme/invitations", None).await).is_empty());
    run(false).await.unwrap();
    let items = list(admin(&app, &t, Method::GET, "/orgs/acme/invitations", None).await);
    let emails: Vec<&str> = items.iter().map(|i| i["email"].as_str().unwrap()).collect();
    assert_eq!(emails, vec!["a@acme.test"]);
    let _ = std::fs::remove_file(&file);
}

/// The reported attack, a 400 KB file of empty rows (20 s of rescanning before, and not counted
/// toward the limit), is read once and refused with its count; empty rows count everywhere.
async fn empty_rows_count_and_the_empty_row_attack_is_refused(app: TestApp) {
    let t = admin_token(&app).await;
    let attack = format!("email,group membership\n{}", ",\n".repeat(200_000));
    let r = import(&app, &t, &attack, true).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("200000 rows"),
        "{}",
        r.body
    );
    assert_eq!(r.body["field"], "file");
    let mut csv = String::from("email\n");
    for i in 0..999 {
        csv.push_str(&format!("u{i}@acme.test\n"));
    }
    csv.push_str(",\n\"\"\n");
    let r = import(&app, &t, &csv, false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("1001 rows"),
        "{}",
        r.body
    );
    let list = admin(&app, &t, Method::GET, "/orgs/acme/invitations", None).await;
    assert_eq!(list.body["items"], json!([]));
}

/// A dry run reports what the real run then does, `already_invited` included.
async fn a_dry_run_predicts_the_real_run(app: TestApp) {
    let t = admin_token(&app).await;
    app.user("member@acme.test").await;
    let r = admin(
        &app,
        &t,
        Method::POST,
        "/orgs/acme/invitations",
        Some(json!({"email": "Pending@acme.test", "firstName": "P", "lastName": "Q"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let csv = "email\nnew1@acme.test\npending@ACME.test\nmember@acme.test\nnew2@acme.test\n";
    let emails = |r: &Resp| -> Vec<String> {
        r.body["invited"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let dry = import(&app, &t, csv, true).await;
    let real = import(&app, &t, csv, false).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(
        skipped(&dry),
        vec![
            (3, "already_invited".to_owned()),
            (4, "already_member".to_owned())
        ]
    );
    assert_eq!(skipped(&real), skipped(&dry));
    assert_eq!(emails(&dry), vec!["new1@acme.test", "new2@acme.test"]);
    assert_eq!(emails(&real), emails(&dry));
}
