//! `POST /scim/v2/Bulk` (RFC 7644 §3.7) through the real router and a real SQLite store: the
//! body parser, bulkId references and their ordering, and every operation it reaches (create,
//! PUT, PATCH, DELETE of Users and Groups).
//!
//! Each input runs in an organization of its own, so inputs cannot see each other's resources.
//! Invariants, beyond "never panics":
//! - the server never answers 5xx, for the request or for any of its operations;
//! - a 200 is a BulkResponse with at most one entry per operation sent, each with a status;
//! - every other answer is an RFC 7644 §3.12 error body;
//! - the answer is at most linear in the request: a small request cannot make a huge response.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use scimd::clock::Clock;
use scimd::store::{connect, DynStore};
use scimd::{router, AppState, Config};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use tower::ServiceExt;

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: DynStore,
    clock: Arc<Clock>,
    app: axum::Router,
    next_org: AtomicU64,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // A RAM-backed directory where there is one: the database only grows during a run.
    let dir = ["/dev/shm", "/tmp"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("scimd-fuzz-bulk-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = rt
        .block_on(connect(&format!("sqlite:{}", path.display())))
        .expect("open the fuzz database");
    let clock = Arc::new(Clock::default());
    let app = router(AppState::new(
        store.clone(),
        clock.clone(),
        Config::default(),
    ));
    Fixture {
        rt,
        store,
        clock,
        app,
        next_org: AtomicU64::new(0),
    }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let n = f.next_org.fetch_add(1, Ordering::Relaxed);
    let (status, answer) = f.rt.block_on(async {
        let org = f
            .store
            .create_org(&format!("fuzz-{n}"), "fuzz", f.clock.now())
            .await
            .expect("create an organization");
        let token = scimd::token::generate();
        f.store
            .create_token(
                &org,
                "fuzz",
                &scimd::token::digest(&token),
                None,
                f.clock.now(),
            )
            .await
            .expect("create a token");
        let req = Request::builder()
            .method(Method::POST)
            .uri("/scim/v2/Bulk")
            .header("host", "scim.test")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/scim+json")
            .body(Body::from(data.to_vec()))
            .expect("a request");
        let resp = f.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        answer.len() <= 16 * data.len() + 64 * 1024,
        "a {}-byte request got a {}-byte answer",
        data.len(),
        answer.len()
    );
    let body: Value = serde_json::from_slice(&answer).expect("a JSON answer");
    if status.is_success() {
        let sent = serde_json::from_slice::<Value>(data)
            .ok()
            .and_then(|v| {
                v.as_object()?
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
                    .and_then(|(_, ops)| ops.as_array().map(Vec::len))
            })
            .expect("a 200 answers a request with Operations");
        let ops = body["Operations"].as_array().expect("a BulkResponse");
        assert!(
            ops.len() <= sent,
            "{} answers for {sent} operations",
            ops.len()
        );
        for op in ops {
            let s: u16 = op["status"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("an operation without a status: {op}"));
            assert!((200..500).contains(&s), "an operation answered {s}: {op}");
        }
    } else {
        assert_eq!(
            body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{body}"
        );
        assert_eq!(body["status"], status.as_u16().to_string(), "{body}");
    }
});
