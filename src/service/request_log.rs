//! The SCIM request log: what scimd answered each SCIM request of an organization, kept so that
//! the organization's admins can see why their identity provider's sync failed.
//!
//! SCIM traffic is never slowed or failed by its own log. The request path only hands over what
//! it already holds (the body bytes are shared, not copied) to a bounded in-memory queue; a
//! background task takes the queue in batches, parses, redacts (`redact.rs`) and cuts the bodies
//! off the async workers, and writes each batch in one transaction, which also keeps every
//! organization within its bound (`max_rows` newest entries, none older than `days`). When the
//! queue is full the oldest entries are dropped, counted in `scimd_request_log_dropped_total`
//! and said in the server log.

use super::redact;
use crate::clock::Clock;
use crate::store::{DynStore, LogEntry};
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// How the request log is kept (`scimd serve --request-log…`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    /// Newest entries kept per organization.
    pub max_rows: i64,
    /// Days an entry is kept.
    pub days: i64,
    /// Entries waiting to be written before the oldest are dropped.
    pub queue: usize,
    /// Body bytes waiting to be written before the oldest entries are dropped.
    pub queue_bytes: usize,
    /// Most bytes of each body kept (after redaction).
    pub body_bytes: usize,
    /// How often the writer runs when the queue stays short of a batch.
    pub flush_every: Duration,
    /// Successful reads (GET answered 2xx) of one organization logged one by one in a second;
    /// past it they are counted, and one entry says how many (0: every read is logged).
    /// Errors and writes are always logged one by one.
    pub reads_per_second: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            max_rows: 10_000,
            days: 7,
            queue: 50_000,
            queue_bytes: 64 * 1024 * 1024,
            body_bytes: 8 * 1024,
            flush_every: Duration::from_secs(1),
            reads_per_second: 100,
        }
    }
}

/// Entries written in one transaction at most; reaching it wakes the writer early. Large on
/// purpose: each batch also prunes every organization it writes for (on SQLite in the log's
/// own file, so its commits never touch the main file's readers).
const BATCH: usize = 5000;
/// Queued bytes (see `Captured::weight`) that also wake the writer early. Under a burst of
/// creates (about 2 KiB each with both bodies) a whole second's queue, and the batch written
/// beside it, had been a third of the server's peak memory; at 2 MiB the writer commits a few
/// times a second at most.
const WAKE_BYTES: usize = 2 * 1024 * 1024;
/// How often every organization's entries past the age bound are swept (the batch writes prune
/// only the organizations they write for).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Response bodies larger than this are not held for the log (a large page; only errors
/// matter here, and they are small).
pub const MAX_RESPONSE_HELD: usize = 256 * 1024;
/// Most characters kept of a user agent.
const USER_AGENT_CHARS: usize = 256;
/// At most one "queue full" line in the server log this often.
const WARN_EVERY_MICROS: i64 = 10_000_000;

/// One SCIM request as the request path hands it over: nothing parsed, nothing copied.
#[derive(Debug, Clone)]
pub struct Captured {
    pub organization_id: String,
    pub token_id: Option<String>,
    pub token_name: Option<String>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub duration_us: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub request_body: Bytes,
    /// `None` when the answer was too large or streamed (see [`MAX_RESPONSE_HELD`]), or read
    /// successfully ([`read_summary`] then).
    pub response_body: Option<Bytes>,
    pub read_summary: Option<String>,
    /// What the log says instead of the answer's `detail` (why a known token was refused,
    /// which the caller is not told).
    pub note: Option<String>,
    pub at: i64,
}

impl Captured {
    fn weight(&self) -> usize {
        self.request_body.len() + self.response_body.as_ref().map_or(0, Bytes::len) + 512
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Captured>,
    bytes: usize,
    /// Each organization's successful reads in the current second.
    reads: std::collections::HashMap<String, Reads>,
}

/// An organization's successful reads in one second: logged one by one up to the budget,
/// counted past it.
#[derive(Debug, Clone, Copy)]
struct Reads {
    second: i64,
    logged: u32,
    counted: u32,
}

impl Queue {
    fn add(&mut self, c: Captured) {
        self.bytes += c.weight();
        self.items.push_back(c);
    }

    /// Whether `c` is logged one by one: anything but a successful read is; a successful read
    /// is while its organization is within `budget` this second (0: no budget), else it is
    /// counted. The first read of a new second queues the entry for the counted reads of the
    /// organization's previous one.
    fn admit(&mut self, c: &Captured, budget: u32) -> bool {
        if budget == 0 || c.method != "GET" || c.status >= 300 {
            return true;
        }
        let second = c.at.div_euclid(1_000_000);
        let fresh = Reads {
            second,
            logged: 0,
            counted: 0,
        };
        let ended = match self.reads.get_mut(&c.organization_id) {
            Some(w) if w.second == second => None,
            Some(w) => Some(std::mem::replace(w, fresh)),
            None => {
                self.reads.insert(c.organization_id.clone(), fresh);
                None
            }
        };
        if let Some(ended) = ended.filter(|e| e.counted > 0) {
            self.add(counted_reads(&c.organization_id, ended, budget));
        }
        let Some(w) = self.reads.get_mut(&c.organization_id) else {
            return true;
        };
        if w.logged >= budget {
            w.counted += 1;
            return false;
        }
        w.logged += 1;
        true
    }

    /// The entries that say how many reads were counted in seconds that have ended (before
    /// `second`); windows of seconds long gone are forgotten.
    fn close_reads(&mut self, second: i64, budget: u32) -> Vec<Captured> {
        let mut out = Vec::new();
        self.reads.retain(|org, w| {
            if w.second < second && w.counted > 0 {
                out.push(counted_reads(org, *w, budget));
                w.counted = 0;
            }
            w.second >= second - 1
        });
        out
    }
}

/// The entry standing for the successful reads of one second that were counted, not logged.
fn counted_reads(org: &str, w: Reads, budget: u32) -> Captured {
    let text = format!(
        "{} more successful reads in this second were counted, not logged one by one (past {budget} a second, only errors and writes are)",
        w.counted
    );
    Captured {
        organization_id: org.to_owned(),
        token_id: None,
        token_name: None,
        method: "GET".to_owned(),
        path: "/scim/v2".to_owned(),
        query: None,
        status: 200,
        duration_us: 0,
        client_ip: None,
        user_agent: None,
        request_id: None,
        request_body: Bytes::new(),
        response_body: None,
        read_summary: Some(format!("[{} successful reads, counted]", w.counted)),
        note: Some(text),
        at: w.second * 1_000_000 + 999_999,
    }
}

pub struct RequestLog {
    settings: Settings,
    store: DynStore,
    clock: Arc<Clock>,
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    /// One writer at a time (the background task, or a caller of [`RequestLog::flush`]).
    writing: tokio::sync::Mutex<()>,
    dropped: AtomicU64,
    last_warned: AtomicI64,
}

impl RequestLog {
    /// The log and its background writer, which stops once the log is dropped.
    pub fn start(store: DynStore, clock: Arc<Clock>, settings: Settings) -> Arc<RequestLog> {
        let log = Arc::new(RequestLog {
            settings,
            store,
            clock,
            queue: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            writing: tokio::sync::Mutex::new(()),
            dropped: AtomicU64::new(0),
            last_warned: AtomicI64::new(i64::MIN),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(run(Arc::downgrade(&log)));
        }
        log
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Entries dropped because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one request. Never waits on the database: a full queue drops its oldest entry.
    /// A successful read past the organization's budget for this second is only counted.
    pub fn push(&self, c: Captured) {
        let weight = c.weight();
        let mut dropped = 0u64;
        let budget = self.settings.reads_per_second;
        let (len, bytes) = {
            let Ok(mut q) = self.queue.lock() else {
                return;
            };
            if !q.admit(&c, budget) {
                return;
            }
            while !q.items.is_empty()
                && (q.items.len() >= self.settings.queue
                    || q.bytes + weight > self.settings.queue_bytes)
            {
                if let Some(old) = q.items.pop_front() {
                    q.bytes -= old.weight();
                    dropped += 1;
                }
            }
            q.add(c);
            (q.items.len(), q.bytes)
        };
        if dropped > 0 {
            self.note_dropped(dropped);
        }
        if len >= BATCH || bytes >= WAKE_BYTES {
            self.wake.notify_one();
        }
    }

    fn note_dropped(&self, n: u64) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        crate::metrics::request_log_dropped(n);
        let now = self.clock.now();
        let last = self.last_warned.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_MICROS
            && self
                .last_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped_total = total,
                queue = self.settings.queue,
                "request log queue full: the oldest entries were dropped (SCIM requests were not affected)"
            );
        }
    }

    /// Writes everything queued now; returns how many entries were written.
    pub async fn flush(&self) -> crate::error::Result<usize> {
        let _one = self.writing.lock().await;
        let mut written = 0;
        loop {
            let batch: Vec<Captured> = {
                let Ok(mut q) = self.queue.lock() else {
                    return Ok(written);
                };
                let second = self.clock.now().div_euclid(1_000_000);
                for summary in q.close_reads(second, self.settings.reads_per_second) {
                    q.add(summary);
                }
                let n = q.items.len().min(BATCH);
                let batch: Vec<Captured> = q.items.drain(..n).collect();
                q.bytes -= batch.iter().map(Captured::weight).sum::<usize>();
                batch
            };
            if batch.is_empty() {
                return Ok(written);
            }
            let n = batch.len();
            let limit = self.settings.body_bytes;
            // Parsing and redacting bodies is CPU work: off the async workers.
            let entries = tokio::task::spawn_blocking(move || {
                batch
                    .into_iter()
                    .map(|c| entry(c, limit))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| crate::error::Error::Internal(e.into()))?;
            let before = self.clock.now() - self.settings.days * DAY_MICROS;
            if let Err(e) = self
                .store
                .write_request_log(entries, self.settings.max_rows, before)
                .await
            {
                // The database is down or busy: these entries are lost, and counted as such.
                self.dropped.fetch_add(n as u64, Ordering::Relaxed);
                crate::metrics::request_log_dropped(n as u64);
                return Err(e);
            }
            crate::metrics::request_log_written(n as u64);
            written += n;
        }
    }

    /// Deletes every organization's entries past the age bound.
    pub async fn sweep(&self) -> crate::error::Result<u64> {
        let before = self.clock.now() - self.settings.days * DAY_MICROS;
        self.store.prune_request_log(before).await
    }
}

/// The background writer: a batch when the queue fills or every `flush_every`, and the age
/// sweep every `SWEEP_EVERY`. Holds the log only while writing, so it ends with it.
async fn run(log: Weak<RequestLog>) {
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        let Some(l) = log.upgrade() else {
            return;
        };
        tokio::select! {
            _ = l.wake.notified() => {}
            _ = tokio::time::sleep(l.settings.flush_every) => {}
        }
        if let Err(e) = l.flush().await {
            tracing::warn!(error = %e, "request log: a batch could not be written and was dropped");
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            if let Err(e) = l.sweep().await {
                tracing::warn!(error = %e, "request log: the age sweep failed");
            }
        }
    }
}

/// Turns a captured request into the entry the log keeps: the filter and the resource it
/// concerns read out, the error's `scimType` and `detail`, bodies redacted and cut.
pub fn entry(c: Captured, limit: usize) -> LogEntry {
    let params: Vec<(String, String)> = c.query.as_deref().map(parse_query).unwrap_or_default();
    let request: Option<Value> = if c.request_body.is_empty() {
        None
    } else {
        serde_json::from_slice(&c.request_body).ok()
    };
    // The answer is parsed only for what it tells: an error's scimType and detail, a written
    // resource's id and userName, a read one's userName. A page of results is not.
    let in_path = resource_in_path(&c.path);
    let wanted = c.status >= 300 || c.method != "GET" || in_path.is_some();
    let response: Option<Value> = c
        .response_body
        .as_ref()
        .filter(|_| wanted)
        .and_then(|b| serde_json::from_slice(b).ok());
    // The filter of a GET, or of a POST …/.search (RFC 7644 §3.4.3).
    let filter = params
        .iter()
        .find(|(k, _)| k == "filter")
        .map(|(_, v)| v.clone())
        .or_else(|| text(&request, "filter"));
    let user_name = text(&request, "userName")
        .or_else(|| filter.as_deref().and_then(user_name_in_filter))
        .or_else(|| text(&response, "userName"));
    let resource_id = in_path.or_else(|| {
        response
            .as_ref()
            .filter(|_| c.status < 300)
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let (scim_type, detail) = match (&response, c.status >= 400) {
        (Some(b), true) => (
            b.get("scimType").and_then(Value::as_str).map(str::to_owned),
            b.get("detail")
                .and_then(Value::as_str)
                .map(|d| redact::cut(d.to_owned(), 1024)),
        ),
        _ => (None, None),
    };
    let detail = c.note.or(detail);
    // Other query parameters stay in the path; the filter has its own column.
    let rest: Vec<&str> = c
        .query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("filter="))
        .collect();
    let path = if rest.is_empty() {
        c.path.clone()
    } else {
        format!("{}?{}", c.path, rest.join("&"))
    };
    let filter = filter.map(|f| {
        if redact::mentions_secret(&f) {
            "[withheld: the filter names a secret attribute]".to_owned()
        } else {
            redact::cut(f, 2048)
        }
    });
    let response_body = match &c.response_body {
        // A successful read answers with resources the admin can read themselves; what matters
        // in the log is how many it found (a lookup that found none is why an IdP creates).
        _ if c.read_summary.is_some() => c.read_summary,
        Some(b) => redact::body(b, limit),
        None => Some("[not kept: a large or streamed answer]".to_owned()),
    };
    LogEntry {
        id: uuid::Uuid::now_v7().to_string(),
        organization_id: c.organization_id,
        token_id: c.token_id,
        token_name: c.token_name,
        method: c.method,
        path: redact::cut(path, 2048),
        filter,
        status: i64::from(c.status),
        scim_type,
        detail,
        duration_us: c.duration_us,
        client_ip: c.client_ip,
        user_agent: c
            .user_agent
            .map(|u| u.chars().take(USER_AGENT_CHARS).collect()),
        user_name: user_name.map(|u| u.chars().take(256).collect()),
        resource_id: resource_id.map(|u| u.chars().take(256).collect()),
        request_body: redact::body(&c.request_body, limit),
        response_body,
        request_id: c.request_id,
        created_at: c.at,
    }
}

/// What the log keeps of a successful read's answer: how many it found (a lookup that found
/// none is why an IdP creates), not the resources, which the admin can read themselves. Made
/// on the request path (a scan of the answer's first bytes), so the answer is not held.
pub fn read_summary(body: &[u8]) -> String {
    match total_results(body) {
        Some(n) => format!("[a list of {n} result(s); the resources are not kept]"),
        None => "[the resource as read; not kept]".to_owned(),
    }
}

/// `totalResults` of a ListResponse, read from the text without parsing it (scimd writes it
/// near the start).
fn total_results(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"totalResults\":";
    let head = &body[..body.len().min(512)];
    let at = head.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: String = head[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    digits.parse().ok()
}

/// A top-level string of a JSON body.
fn text(body: &Option<Value>, key: &str) -> Option<String> {
    body.as_ref()?.get(key)?.as_str().map(str::to_owned)
}

/// The id in `/scim/v2/Users/{id}` or `/scim/v2/Groups/{id}`.
fn resource_in_path(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("scim"), Some("v2"), Some("Users" | "Groups"), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!id.is_empty() && !id.starts_with('.')).then(|| percent_decode(id))
}

/// The value of a filter that is exactly `userName eq "…"` (what IdPs send to find a user).
fn user_name_in_filter(filter: &str) -> Option<String> {
    let f = filter.trim();
    let (attr, rest) = f.split_once(char::is_whitespace)?;
    let attr = attr.rsplit(':').next().unwrap_or_default();
    if !attr.eq_ignore_ascii_case("userName") {
        return None;
    }
    let (op, value) = rest.trim().split_once(char::is_whitespace)?;
    if !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    let v: String = serde_json::from_str(value.trim()).ok()?;
    Some(v)
}

/// `a=1&b=x%20y` → `[("a", "1"), ("b", "x y")]` (`+` is a space, as in forms).
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(method: &str, path: &str, query: Option<&str>, status: u16) -> Captured {
        Captured {
            organization_id: "o".into(),
            token_id: None,
            token_name: None,
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_owned),
            status,
            duration_us: 1,
            client_ip: None,
            user_agent: None,
            request_id: None,
            request_body: Bytes::new(),
            response_body: None,
            read_summary: None,
            note: None,
            at: 0,
        }
    }

    #[test]
    fn filters_user_names_and_resources_are_read_out() {
        let e = entry(
            captured(
                "GET",
                "/scim/v2/Users",
                Some("filter=userName%20eq%20%22Pat%40x.example%22&count=1"),
                200,
            ),
            100,
        );
        assert_eq!(e.filter.as_deref(), Some("userName eq \"Pat@x.example\""));
        assert_eq!(e.user_name.as_deref(), Some("Pat@x.example"));
        assert_eq!(e.path, "/scim/v2/Users?count=1");
        assert_eq!(
            read_summary(
                br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults": 0,"Resources":[]}"#
            ),
            "[a list of 0 result(s); the resources are not kept]"
        );
        let e = entry(captured("PATCH", "/scim/v2/Users/abc", None, 200), 100);
        assert_eq!(e.resource_id.as_deref(), Some("abc"));
        let e = entry(
            captured(
                "GET",
                "/scim/v2/Users",
                Some("filter=password+eq+%22x%22"),
                400,
            ),
            100,
        );
        assert!(!e.filter.unwrap().contains("\"x\""));
    }

    #[test]
    fn an_error_keeps_its_scim_type_and_detail() {
        let mut c = captured("POST", "/scim/v2/Users", None, 409);
        c.request_body = Bytes::from_static(br#"{"userName":"pat","password":"hunter2"}"#);
        c.response_body = Some(Bytes::from_static(
            br#"{"scimType":"uniqueness","detail":"userName pat is taken","status":"409"}"#,
        ));
        let e = entry(c, 8192);
        assert_eq!(e.scim_type.as_deref(), Some("uniqueness"));
        assert_eq!(e.detail.as_deref(), Some("userName pat is taken"));
        assert_eq!(e.user_name.as_deref(), Some("pat"));
        assert!(!e.request_body.unwrap().contains("hunter2"));
    }

    #[test]
    fn reads_past_the_budget_are_counted_and_errors_and_writes_never_are() {
        let mut q = Queue::default();
        let at = |c: &mut Captured, s: i64| c.at = s * 1_000_000 + 10;
        let mut admitted = 0;
        for _ in 0..10 {
            let mut c = captured("GET", "/scim/v2/Users", None, 200);
            at(&mut c, 5);
            if q.admit(&c, 3) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3, "three reads a second are logged one by one");
        for (method, status) in [("GET", 404), ("POST", 201), ("PATCH", 200), ("GET", 401)] {
            let mut c = captured(method, "/scim/v2/Users", None, status);
            at(&mut c, 5);
            assert!(q.admit(&c, 3), "{method} {status} is always logged");
        }
        // Another organization has a budget of its own.
        let mut other = captured("GET", "/scim/v2/Users", None, 200);
        other.organization_id = "p".into();
        at(&mut other, 5);
        assert!(q.admit(&other, 3));
        assert!(
            q.items.is_empty(),
            "nothing queued by admit in the same second"
        );
        // The next second's first read queues the count of the last one's.
        let mut c = captured("GET", "/scim/v2/Users", None, 200);
        at(&mut c, 6);
        assert!(q.admit(&c, 3));
        assert_eq!(q.items.len(), 1);
        let summary = entry(q.items.pop_front().unwrap(), 100);
        assert_eq!(summary.organization_id, "o");
        assert!(
            summary
                .detail
                .as_deref()
                .unwrap()
                .starts_with("7 more successful reads"),
            "{:?}",
            summary.detail
        );
        assert_eq!(summary.created_at, 5_999_999);
        // Counted reads of a second that ended are closed by the writer too.
        for _ in 0..5 {
            let mut c = captured("GET", "/scim/v2/Users", None, 200);
            at(&mut c, 6);
            q.admit(&c, 3);
        }
        assert!(q.close_reads(6, 3).is_empty(), "second 6 has not ended");
        let closed = q.close_reads(7, 3);
        assert_eq!(closed.len(), 1);
        assert!(
            closed[0].note.as_deref().unwrap().starts_with("3 more"),
            "{:?}",
            closed[0].note
        );
        assert!(q.close_reads(7, 3).is_empty(), "each count is said once");
        // Without a budget every read is logged.
        let mut c = captured("GET", "/scim/v2/Users", None, 200);
        at(&mut c, 6);
        assert!(q.admit(&c, 0));
    }
}
