//! Two scimd replicas on one Postgres database, each with its email delivery worker, under
//! concurrent identity-provider and admin traffic split between them: userName stays unique,
//! the last-admin rule holds, and every email reaches the (real, loopback) SMTP sink once.

use crate::email::Sink;
use crate::fault::{Answer, Api};
use crate::helpers::{TestApp, ORGANIZATION, PATCH_SCHEMA, USER_SCHEMA};
use crate::process::{admin_token, eventually, one_at_a_time, Db, Scimd};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// `s` with the case of its letters flipped where `pattern`'s bits say so.
fn recase(s: &str, pattern: usize) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if pattern >> (i % 8) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

async fn call(api: &Api, method: Method, path: &str, body: Option<Value>) -> Answer {
    api.call(method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: no answer: {e}"))
}

fn role_patch(role: &str) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "path": format!("{ORGANIZATION}:role"), "value": role}]})
}

/// Concurrent creates of one userName in different cases, through both replicas: one wins,
/// every other gets 409 `uniqueness`, and the database holds one row per name.
async fn user_names_stay_unique(apis: &[Api; 2], db: &mut Db) {
    for k in 0..10 {
        let name = format!("dup{k}@replicas.test");
        let tries = (0..8).map(|t| {
            let api = apis[t % 2].clone();
            let body = json!({"schemas": [USER_SCHEMA], "userName": recase(&name, t * 37 + k),
                              "emails": [{"value": format!("{t}-{name}")}]});
            async move { call(&api, Method::POST, "/scim/v2/Users", Some(body)).await }
        });
        let answers = join_all(tries).await;
        let created = answers.iter().filter(|a| a.status == 201).count();
        assert_eq!(created, 1, "{name}: {answers:#?}");
        for a in answers.iter().filter(|a| a.status != 201) {
            assert_eq!(a.status, StatusCode::CONFLICT, "{a:?}");
            assert_eq!(a.body["scimType"], "uniqueness", "{a:?}");
        }
        let rows = db
            .int(&format!(
                "select count(*) from membership where user_name_norm = '{name}'"
            ))
            .await;
        assert_eq!(rows, 1, "{name}");
    }
    let dups = db
        .int(
            "select count(*) from (select organization_id, user_name_norm from membership \
             group by organization_id, user_name_norm having count(*) > 1) d",
        )
        .await;
    assert_eq!(dups, 0);
}

/// Every admin demoted or deactivated at once, half through SCIM and half through the admin
/// API, spread over both replicas: all but one succeed, the last gets 409, and exactly one active
/// admin remains. Several rounds, to give the race every chance.
async fn last_admin_holds(apis: &[Api; 2], db: &mut Db) {
    let mut admins = Vec::new();
    for i in 0..6 {
        let body = json!({"schemas": [USER_SCHEMA, ORGANIZATION], "userName": format!("admin{i}@replicas.test"),
                          "emails": [{"value": format!("admin{i}@replicas.test")}],
                          ORGANIZATION: {"role": "admin"}});
        let a = call(&apis[i % 2], Method::POST, "/scim/v2/Users", Some(body)).await;
        assert_eq!(a.status, 201, "{a:?}");
        admins.push(a.body["id"].as_str().unwrap().to_owned());
    }
    let active_admins =
        "select count(*) from membership m join organization o on o.id = m.organization_id \
                         where o.slug = 'acme' and m.role = 'admin' and m.active";
    for round in 0..4 {
        let demotions = admins.iter().enumerate().map(|(i, id)| {
            let api = apis[(i + round) % 2].clone();
            let (path, body) = match (i + round) % 4 {
                0 => (format!("/scim/v2/Users/{id}"), role_patch("member")),
                1 => (
                    format!("/scim/v2/Users/{id}"),
                    json!({"schemas": [PATCH_SCHEMA], "Operations": [
                        {"op": "replace", "path": "active", "value": false}]}),
                ),
                2 => (
                    format!("/admin/v1/orgs/acme/members/{id}"),
                    json!({"role": "member"}),
                ),
                _ => (
                    format!("/admin/v1/orgs/acme/members/{id}"),
                    json!({"active": false}),
                ),
            };
            async move {
                (
                    path.clone(),
                    call(&api, Method::PATCH, &path, Some(body)).await,
                )
            }
        });
        let answers = join_all(demotions).await;
        let refused: Vec<&(String, Answer)> = answers
            .iter()
            .filter(|(_, a)| !a.status.is_success())
            .collect();
        assert_eq!(refused.len(), 1, "round {round}: {answers:#?}");
        let (path, a) = refused[0];
        assert_eq!(a.status, StatusCode::CONFLICT, "{path}: {a:?}");
        if path.starts_with("/admin/") {
            assert_eq!(a.body["error"], "last_admin", "{a:?}");
        }
        assert_eq!(db.int(active_admins).await, 1, "round {round}");
        // Everyone an admin again for the next round.
        for id in &admins {
            let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "replace", "path": format!("{ORGANIZATION}:role"), "value": "admin"},
                {"op": "replace", "path": "active", "value": true}]});
            let a = call(
                &apis[0],
                Method::PATCH,
                &format!("/scim/v2/Users/{id}"),
                Some(body),
            )
            .await;
            assert_eq!(a.status, 200, "{a:?}");
        }
        assert_eq!(db.int(active_admins).await, 6);
    }
}

/// Invitations and account-setup mails caused through both replicas at once, delivered by both
/// replicas' workers: each outbox row reaches the SMTP sink exactly once.
async fn each_email_sent_once(apis: &[Api; 2], db: &mut Db, sink: &Sink) {
    let invites = (0..24).map(|i| {
        let api = apis[i % 2].clone();
        async move {
            let (path, body) = if i % 4 == 3 {
                (
                    "/admin/v1/orgs/acme/members",
                    json!({"email": format!("added{i}@replicas.test"), "givenName": "A", "familyName": "B"}),
                )
            } else {
                (
                    "/admin/v1/orgs/acme/invitations",
                    json!({"email": format!("invited{i}@replicas.test"), "firstName": "I", "lastName": "V"}),
                )
            };
            call(&api, Method::POST, path, Some(body)).await
        }
    });
    for a in join_all(invites).await {
        assert!(a.status.is_success(), "{a:?}");
    }
    let queued = db.int("select count(*) from email_outbox").await;
    assert!(queued >= 24, "{queued} emails queued");
    eventually(Duration::from_secs(120), "every email to be sent", || {
        let sent = sink.received().len();
        async move { (sent as i64 >= queued).then_some(()) }
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while db
        .int("select count(*) from email_outbox where status <> 'sent'")
        .await
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox never recorded every send"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A worker polls every 5 s: give a second sender of the same row (if there were one) the
    // time to show itself before counting.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for mail in sink.received() {
        let id = mail
            .data
            .lines()
            .find_map(|l| {
                l.strip_prefix("Message-ID: <")
                    .or_else(|| l.strip_prefix("Message-Id: <"))
            })
            .and_then(|rest| rest.split('@').next())
            .unwrap_or_else(|| panic!("a mail without a Message-ID:\n{}", mail.data))
            .to_owned();
        *per_id.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(per_id.len() as i64, queued, "every queued email sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres() {
    let _heavy = one_at_a_time().await;
    let app = TestApp::postgres().await;
    let admin = admin_token(&app.url).await;
    let sink = Sink::start().await;
    let env = [
        ("SCIMD_SMTP_HOST", "127.0.0.1".to_owned()),
        ("SCIMD_SMTP_PORT", sink.port.to_string()),
        ("SCIMD_SMTP_TLS", "none".to_owned()),
        ("SCIMD_SMTP_FROM", "scimd <noreply@scimd.test>".to_owned()),
        // Email needs a public URL for its links; both replicas serve the same site.
        ("SCIMD_PUBLIC_URL", "https://scimd.test".to_owned()),
    ];
    let a = Scimd::start(&app.url, &env).await;
    let b = Scimd::start(&app.url, &env).await;
    for s in [&a, &b] {
        eventually(
            Duration::from_secs(30),
            "every replica to run a delivery worker",
            || {
                let started = s.log_text().contains("email worker started");
                async move { started.then_some(()) }
            },
        )
        .await;
    }
    let apis = [
        Api::new(&a.base, &app.token, &admin),
        Api::new(&b.base, &app.token, &admin),
    ];
    let mut db = Db::open(&app.url).await;
    user_names_stay_unique(&apis, &mut db).await;
    last_admin_holds(&apis, &mut db).await;
    each_email_sent_once(&apis, &mut db, &sink).await;
}
