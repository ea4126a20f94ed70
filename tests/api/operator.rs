//! The server operator's commands, run as the real binary: setting an account's password from
//! stdin, reading undelivered mail, and `serve` refusing email without a public URL.

use crate::admin::{admin, admin_token};
use crate::both;
use crate::helpers::TestApp;
use crate::people::{deliver, login, PASSWORD};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

both!(
    the_operator_sets_a_password_from_stdin,
    the_operator_reads_undelivered_mail,
    serve_refuses_email_without_a_public_url,
    the_operator_grants_and_ends_provider_admin_rights,
);

fn scimd(app: &TestApp, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["--database-url", &app.url])
        .args(args)
        .env_remove("SCIMD_SMTP_HOST")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn the_operator_sets_a_password_from_stdin(app: TestApp) {
    // An account an identity provider created, with no password and no mail delivery.
    app.user("ida@example.com").await;
    let out = scimd(
        &app,
        &["account", "set-password", "ida@example.com"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        login(&app, "ida@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    // A new address gets an account with no organization.
    let out = scimd(
        &app,
        &["account", "set-password", "ops@example.com"],
        "another long password\n",
    );
    assert!(out.status.success(), "{out:?}");
    let r = login(&app, "ops@example.com", "another long password").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["memberships"], json!([]));
    let short = scimd(
        &app,
        &["account", "set-password", "ida@example.com"],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
}

async fn the_operator_reads_undelivered_mail(app: TestApp) {
    let provider = admin_token(&app).await;
    let r = admin(
        &app,
        &provider,
        Method::POST,
        "/orgs/acme/invitations",
        Some(json!({"email": "dana@example.com", "firstName": "Dana", "lastName": "S"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let out = scimd(&app, &["mail", "list"], "");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("to dana@example.com"), "{text}");
    assert!(
        text.contains("http://127.0.0.1:8080/invite/scimd_"),
        "{text}"
    );
    assert!(text.contains("1 undelivered"), "{text}");
    deliver(&app).await;
    let out = scimd(&app, &["mail", "list"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 undelivered"),
        "sent mail is not listed: {text}"
    );
}

async fn serve_refuses_email_without_a_public_url(app: TestApp) {
    let out = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args([
            "--database-url",
            &app.url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("SCIMD_SMTP_HOST", "127.0.0.1")
        .env("SCIMD_SMTP_TLS", "none")
        .env("SCIMD_SMTP_FROM", "scimd <noreply@example.com>")
        .env_remove("SCIMD_PUBLIC_URL")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--public-url"), "{err}");
    assert!(err.contains("SCIMD_PUBLIC_URL"), "{err}");
}

async fn the_operator_grants_and_ends_provider_admin_rights(app: TestApp) {
    let out = scimd(&app, &["admin", "grant", "nobody@example.com"], "");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no account has the address"),
        "{out:?}"
    );
    let pw = "another long password";
    let out = scimd(
        &app,
        &["account", "set-password", "ops@example.com"],
        &format!("{pw}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let r = login(&app, "ops@example.com", pw).await;
    let token = r.body["accessToken"].as_str().unwrap().to_owned();
    let members = |token: String| members_status(&app, token);
    assert_eq!(members(token.clone()).await, StatusCode::FORBIDDEN);
    let out = scimd(&app, &["admin", "grant", "ops@example.com"], "");
    assert!(out.status.success(), "{out:?}");
    // The same access token has a provider admin's rights from its next request.
    assert_eq!(members(token.clone()).await, StatusCode::OK);
    let out = scimd(&app, &["admin", "list"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ops@example.com"),
        "{out:?}"
    );
    let out = scimd(&app, &["admin", "ungrant", "ops@example.com"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(members(token.clone()).await, StatusCode::FORBIDDEN);
    let out = scimd(&app, &["admin", "ungrant", "ops@example.com"], "");
    assert!(!out.status.success(), "{out:?}");
    let out = scimd(&app, &["admin", "list"], "");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ops@example.com"),
        "{out:?}"
    );
}

async fn members_status(app: &TestApp, token: String) -> StatusCode {
    admin(app, &token, Method::GET, "/orgs/acme/members", None)
        .await
        .status
}
