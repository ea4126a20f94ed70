//! The connection layer, driven over real TCP: a header-read timeout that cuts off trickled
//! headers and idle connections, a cap on open connections, and error bodies (in the shape of
//! the path's API) for request lines and header sections over the limits, where hyper would
//! answer with an empty body. No database is involved beyond the app's start, so these run on
//! SQLite only.

use crate::helpers::*;
use scimd::http::conn::{serve, Limits, MAX_HEADERS, MAX_HEAD_BYTES};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The app served on a free loopback port until the returned sender is dropped.
async fn listen(app: &TestApp, limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app.router.clone();
    tokio::spawn(async move {
        serve(listener, router, limits, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

/// One response read off a connection: status, head and body (by Content-Length).
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk))
            .await
            .expect("an answer within 30 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    Answer { status, head, body }
}

/// Whether the server closed the connection (end of stream or a reset).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: scim.test\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_and_idle_connections_are_cut_off() {
    let app = TestApp::sqlite().await;
    let limits = Limits {
        header_read_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let (addr, _stop) = listen(&app, limits).await;
    // One header byte every 200 ms, for up to 45 s, as in the report.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut cut = false;
    for b in b"X-Slow: ".iter().chain(b"a".repeat(225).iter()) {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        cut || closed(&mut s).await,
        "the trickling connection was never closed"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "closed only after {took:?}");
    // An idle connection, and a kept-alive one after its answer, are closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(&get("/healthz")).await.unwrap();
    assert_eq!(read_answer(&mut kept).await.status, 200);
    let started = Instant::now();
    let (a, b) = tokio::join!(closed(&mut idle), closed(&mut kept));
    assert!(a && b);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_answered_503_and_closed() {
    let app = TestApp::sqlite().await;
    let limits = Limits {
        header_read_timeout: Duration::from_secs(60),
        max_connections: 2,
    };
    let (addr, _stop) = listen(&app, limits).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(&get("/healthz")).await.unwrap();
    assert_eq!(read_answer(&mut first).await.status, 200);
    let _second = TcpStream::connect(addr).await.unwrap();
    // Both slots are held (the second idles); a third connection is refused with a body.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(&get("/scim/v2/Users")).await.unwrap();
    let a = read_answer(&mut third).await;
    assert_eq!(a.status, 503, "{}", a.head);
    assert!(
        a.head.to_ascii_lowercase().contains("retry-after"),
        "{}",
        a.head
    );
    assert_eq!(
        a.json()["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(a.json()["status"], "503");
    assert!(closed(&mut third).await);
    // A slot freed is a slot used: the next connection is served.
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&get("/healthz")).await.unwrap();
        if read_answer(&mut s).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "no connection was served after one closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_urls_and_large_headers_get_error_bodies() {
    let app = TestApp::sqlite().await;
    let (addr, _stop) = listen(&app, Limits::default()).await;
    let filter = "a".repeat(100 * 1024);
    // A 100 KB filter in the URL: 414 with a SCIM body (hyper's own answer had none).
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&get(&format!("/scim/v2/Users?filter={filter}")))
        .await
        .unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!(a.status, 414, "{}", a.head);
    assert!(a.head.contains("application/scim+json"), "{}", a.head);
    assert_eq!(a.json()["status"], "414");
    assert!(a.json()["detail"].as_str().unwrap().contains(".search"));
    // Under /admin/v1, in the admin API's shape.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&get(&format!("/admin/v1/orgs?x={filter}")))
        .await
        .unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!(a.status, 414, "{}", a.head);
    assert_eq!(a.json()["error"], "error");
    assert!(a.json().get("schemas").is_none());
    // A large header, and too many headers: 431 with a body.
    for head in [
        format!(
            "GET /scim/v2/Users HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "b".repeat(MAX_HEAD_BYTES)
        ),
        format!(
            "GET /scim/v2/Users HTTP/1.1\r\nHost: a\r\n{}\r\n",
            (0..=MAX_HEADERS)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>()
        ),
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let a = read_answer(&mut s).await;
        assert_eq!(a.status, 431, "{}", a.head);
        assert_eq!(a.json()["status"], "431");
    }
    // On one kept-alive connection: a POST whose body is one long line is a body, not a head;
    // the next request's long URL is refused.
    let body = format!(
        "{{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:SearchRequest\"],\"filter\":\"userName eq \\\"{}\\\"\"}}",
        "c".repeat(3000)
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    let post = format!(
        "POST /scim/v2/Users/.search HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        app.token,
        body.len()
    );
    s.write_all(post.as_bytes()).await.unwrap();
    let a = read_answer(&mut s).await;
    assert_eq!(
        a.status,
        200,
        "{} {}",
        a.head,
        String::from_utf8_lossy(&a.body)
    );
    s.write_all(&get(&format!("/scim/v2/Users?filter={filter}")))
        .await
        .unwrap();
    assert_eq!(read_answer(&mut s).await.status, 414);
    assert!(closed(&mut s).await);
}
