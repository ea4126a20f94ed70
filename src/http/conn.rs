//! The connection layer: accepting TCP connections and handing them to hyper (HTTP/1.1), with
//! what `axum::serve` does not offer:
//!
//! - a header-read timeout: a client must send a whole request head within
//!   `header_read_timeout` of starting it (or of the previous response, on a kept-alive
//!   connection), so trickling headers, or idling, cannot hold a connection open;
//! - a cap on open connections: past `max_connections`, a new connection is answered 503 with
//!   an error body and closed;
//! - limits on the request head below hyper's own (`MAX_REQUEST_LINE_BYTES`,
//!   `MAX_HEAD_BYTES`, `MAX_HEADERS`), so that a request line or header section that is too
//!   large gets a 414 or 431 *with an error body* in the shape of its API (hyper answers its
//!   own limits with an empty body), and a head hyper could not parse gets a 400 with one.
//!
//! The head limits are enforced by [`Guard`], which watches the bytes hyper reads: it follows
//! the HTTP/1.1 framing (request heads, `Content-Length` and chunked bodies) so it always knows
//! whether the next byte starts a request head. Anything it does not follow (a framing it does
//! not expect) ends its watch for the rest of the connection: hyper still applies its own,
//! larger, limits there.

use super::edge::raw_error;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Longest request line (method, target and version): a URL longer than this is a 414. The
/// longest filter is 4096 bytes, so a URL even with its filter fully percent-encoded fits.
pub const MAX_REQUEST_LINE_BYTES: usize = 16 * 1024;
/// Largest request head (request line and headers): 431 beyond.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields in one request: 431 beyond (hyper's own limit is 100).
pub const MAX_HEADERS: usize = 96;
/// How long the refusal of a connection over the cap may take, at most.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Most refusals in progress at once; beyond, connections over the cap are closed unanswered.
const MAX_REFUSALS: usize = 64;

/// Limits of the connection layer (`serve --header-read-timeout-secs`, `--max-connections`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (connections are closed once their current response is sent).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let refusals = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSALS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(MAX_HEADERS + 4);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many open connections; refusing one");
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIME, refuse(stream)).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = app
            .clone()
            .map_request(move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(
            TokioIo::new(Guard::new(stream)),
            hyper_util::service::TowerToHyperService::new(svc),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers a connection over the cap with a 503 and closes it, reading what the client sent
/// first so that the answer is not lost to a reset.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = raw_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "/",
        "the server has too many open connections; retry shortly",
        true,
    );
    if stream.write_all(&answer).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Where the guard is in the request stream.
#[derive(Debug)]
enum Phase {
    /// Reading a request head: its bytes so far (at most `MAX_HEAD_BYTES`), the length of the
    /// current line, and how many lines ended.
    Head {
        bytes: Vec<u8>,
        line_len: usize,
        lines: usize,
    },
    /// A body of known length: bytes left.
    Body(u64),
    Chunked(Chunk),
    /// Not watching any more (a framing the guard does not follow): hyper's limits apply.
    Off,
}

/// Where the guard is in a chunked body (RFC 9112 §7.1).
#[derive(Debug)]
enum Chunk {
    /// The chunk-size line: the size so far, whether an extension began.
    Size {
        size: u64,
        digits: usize,
        ext: bool,
    },
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk; the length of the current one.
    Trailers(usize),
}

/// What the guard decided about the bytes it saw.
enum Verdict {
    Pass,
    Refuse(StatusCode, &'static str),
}

/// Watches the bytes hyper reads from a connection for request heads over the limits, and
/// answers those itself, with an error body.
pub struct Guard<T> {
    inner: T,
    phase: Phase,
    /// The start of the request line being read (its method and path), to choose the shape of
    /// a refusal.
    target: String,
    /// A refusal being written: its bytes and how many are written.
    refusal: Option<(Vec<u8>, usize)>,
    /// The refusal is written: hyper reads the end of the stream.
    done: bool,
    /// hyper wrote bytes it has not flushed yet; a refusal waits for them.
    unflushed: bool,
}

impl<T> Guard<T> {
    pub fn new(inner: T) -> Self {
        Guard {
            inner,
            phase: Phase::Head {
                bytes: Vec::new(),
                line_len: 0,
                lines: 0,
            },
            target: String::new(),
            refusal: None,
            done: false,
            unflushed: false,
        }
    }

    /// Follows the framing over `data`; returns whether to refuse the request it is in.
    fn inspect(&mut self, data: &[u8]) -> Verdict {
        let mut i = 0;
        while i < data.len() {
            match &mut self.phase {
                Phase::Off => return Verdict::Pass,
                Phase::Head {
                    bytes,
                    line_len,
                    lines,
                } => {
                    let b = data[i];
                    i += 1;
                    if b == b'\n' {
                        if *line_len == 0 {
                            if *lines == 0 {
                                // Blank lines before a request line are ignored (RFC 9112 §2.2).
                                bytes.clear();
                                self.target.clear();
                                continue;
                            }
                            bytes.push(b);
                            let head = std::mem::take(bytes);
                            match body_of(&head) {
                                Ok(next) => self.phase = next,
                                Err(why) => return Verdict::Refuse(StatusCode::BAD_REQUEST, why),
                            }
                            continue;
                        }
                        *lines += 1;
                        *line_len = 0;
                    } else if b != b'\r' {
                        *line_len += 1;
                    }
                    bytes.push(b);
                    if *lines == 0 {
                        if self.target.len() < 256 {
                            self.target.push(char::from(b));
                        }
                        if bytes.len() > MAX_REQUEST_LINE_BYTES {
                            return Verdict::Refuse(
                                StatusCode::URI_TOO_LONG,
                                "the request line (its URL) is longer than the server accepts; send a long filter by POST to .search",
                            );
                        }
                    }
                    if bytes.len() > MAX_HEAD_BYTES || *lines > MAX_HEADERS + 1 {
                        return Verdict::Refuse(
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                            "the request's headers are larger, or more, than the server accepts",
                        );
                    }
                }
                Phase::Body(left) => {
                    let take = (*left).min((data.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.next_head();
                    }
                }
                Phase::Chunked(chunk) => {
                    let b = data[i];
                    match chunk {
                        Chunk::Size { size, digits, ext } => {
                            i += 1;
                            match b {
                                b'\n' if *digits > 0 => {
                                    *chunk = if *size == 0 {
                                        Chunk::Trailers(0)
                                    } else {
                                        Chunk::Data(*size)
                                    };
                                }
                                b'\r' => {}
                                _ if *ext => {}
                                b';' | b' ' | b'\t' if *digits > 0 => *ext = true,
                                _ => match char::from(b).to_digit(16) {
                                    Some(d) if *digits < 15 => {
                                        *size = *size * 16 + u64::from(d);
                                        *digits += 1;
                                    }
                                    _ => self.phase = Phase::Off,
                                },
                            }
                        }
                        Chunk::Data(left) => {
                            let take = (*left).min((data.len() - i) as u64);
                            *left -= take;
                            i += take as usize;
                            if *left == 0 {
                                *chunk = Chunk::DataEnd;
                            }
                        }
                        Chunk::DataEnd => {
                            i += 1;
                            match b {
                                b'\r' => {}
                                b'\n' => {
                                    *chunk = Chunk::Size {
                                        size: 0,
                                        digits: 0,
                                        ext: false,
                                    }
                                }
                                _ => self.phase = Phase::Off,
                            }
                        }
                        Chunk::Trailers(len) => {
                            i += 1;
                            match b {
                                b'\r' => {}
                                b'\n' if *len == 0 => self.next_head(),
                                b'\n' => *len = 0,
                                _ => *len += 1,
                            }
                        }
                    }
                }
            }
        }
        Verdict::Pass
    }

    fn next_head(&mut self) {
        self.target.clear();
        self.phase = Phase::Head {
            bytes: Vec::new(),
            line_len: 0,
            lines: 0,
        };
    }
}

/// What follows a complete request head: its body's framing, as hyper reads it.
fn body_of(head: &[u8]) -> Result<Phase, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS + 1];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(Phase::Off),
        Err(_) => return Err("the request could not be parsed as HTTP/1.1"),
    }
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = std::str::from_utf8(h.value).map_err(|_| "invalid Transfer-Encoding")?;
            chunked = Some(
                value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")),
            );
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("invalid Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers");
            }
            length = Some(n);
        }
    }
    Ok(match (chunked, length) {
        (Some(true), _) => Phase::Chunked(Chunk::Size {
            size: 0,
            digits: 0,
            ext: false,
        }),
        // hyper refuses a transfer coding that does not end in chunked.
        (Some(false), _) => return Err("the last Transfer-Encoding must be chunked"),
        (None, Some(n)) if n > 0 => Phase::Body(n),
        (None, _) => Phase::Head {
            bytes: Vec::new(),
            line_len: 0,
            lines: 0,
        },
    })
}

impl<T: AsyncRead + AsyncWrite + Unpin> Guard<T> {
    /// Writes the refusal, then shuts the connection's write side; ready when both are done.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.refusal {
            if *written < bytes.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
                continue;
            }
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.refusal = None;
            self.done = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.refusal.is_some() {
            if this.unflushed {
                // hyper's last answer is still in its buffer: let it flush first.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(this.poll_refusal(cx))?;
        }
        if this.done {
            return Poll::Ready(Ok(())); // the end of the stream, for hyper
        }
        let start = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        match this.inspect(&buf.filled()[start..]) {
            Verdict::Pass => Poll::Ready(Ok(())),
            Verdict::Refuse(status, why) => {
                tracing::info!(status = status.as_u16(), target = %crate::error::excerpt(&this.target, 64), "request head refused");
                buf.set_filled(start); // hyper never sees this request
                let path = this.target.split(' ').nth(1).unwrap_or("/").to_owned();
                this.refusal = Some((raw_error(status, &path, why, true), 0));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.done {
            return Poll::Ready(Ok(buf.len())); // the connection is closing: nothing more goes out
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.unflushed |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.done {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.unflushed |= n > 0;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.unflushed = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard<tokio::io::Empty> {
        Guard::new(tokio::io::empty())
    }

    fn refused(g: &mut Guard<tokio::io::Empty>, data: &[u8]) -> Option<StatusCode> {
        match g.inspect(data) {
            Verdict::Pass => None,
            Verdict::Refuse(s, _) => Some(s),
        }
    }

    #[test]
    fn follows_bodies_and_finds_every_head() {
        let mut g = guard();
        // A request with a body that looks like a long request line, then one with a chunked
        // body, then a head whose request line is too long.
        let body = vec![b'x'; MAX_REQUEST_LINE_BYTES * 2];
        let mut stream = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        stream.extend_from_slice(&body);
        stream.extend_from_slice(
            b"\r\nPOST /scim/v2/Bulk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        stream.extend_from_slice(b"5;ext=1\r\nhello\r\n");
        stream.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"\r\n0\r\nTrailer: x\r\n\r\n");
        for piece in stream.chunks(1000) {
            assert_eq!(refused(&mut g, piece), None);
        }
        let long = format!(
            "GET /scim/v2/Users?filter={} HTTP/1.1\r\n",
            "a".repeat(MAX_REQUEST_LINE_BYTES)
        );
        assert_eq!(
            refused(&mut g, long.as_bytes()),
            Some(StatusCode::URI_TOO_LONG)
        );
        assert!(g.target.starts_with("GET /scim/v2/Users?filter=aaa"));
    }

    #[test]
    fn too_many_or_too_large_headers_are_431() {
        let mut g = guard();
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            head.push_str(&format!("x-h{i}: v\r\n"));
        }
        assert_eq!(
            refused(&mut g, head.as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let mut g = guard();
        let big = format!(
            "GET / HTTP/1.1\r\nx-big: {}\r\n",
            "v".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(
            refused(&mut g, big.as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let mut g = guard();
        assert_eq!(
            refused(
                &mut g,
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
            ),
            Some(StatusCode::BAD_REQUEST)
        );
        let mut g = guard();
        assert_eq!(
            refused(
                &mut g,
                b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n"
            ),
            None
        );
    }
}
