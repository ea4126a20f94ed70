//! Per-token rate limits for provisioning (off unless configured). Identity providers are
//! touchy about throttling: Entra ID quarantines an endpoint that throttles it too often, and
//! its gallery rules ask apps to take at least 25 requests/s per tenant. So the limit is a
//! budget of requests per second per token, enforced across replicas, meant as a ceiling well
//! above what a well-behaved IdP sends.
//!
//! Every replica keeps a local allowance per token and reserves it from a counter in the
//! database (`token_budget`) a chunk at a time (a tenth of the budget), so a replica writes to
//! the database at most about ten times per second per busy token, never once per request.
//! Exactness: the reservations of all replicas together never exceed the budget in a window,
//! so the limit is never overshot (up to clock skew between replicas at a window's edge); a
//! replica may end a window with part of its chunk unused, so up to one chunk per replica may
//! go unserved in a window. A token refused once in a window is refused locally until the next.

use crate::error::Result;
use crate::store::DynStore;
use std::collections::HashMap;
use std::sync::Mutex;

const WINDOW_MICROS: i64 = 1_000_000;
/// Tokens remembered before stale windows are cleared.
const TOKENS: usize = 10_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over budget: retry after this many seconds.
    Limited(u64),
}

#[derive(Default)]
struct Local {
    window: i64,
    left: i64,
    exhausted: bool,
}

pub struct RateLimits {
    per_second: i64,
    local: Mutex<HashMap<String, Local>>,
}

impl RateLimits {
    /// `None` (or 0): no limit.
    pub fn new(per_second: Option<u32>) -> Option<Self> {
        per_second.filter(|n| *n > 0).map(|n| RateLimits {
            per_second: i64::from(n),
            local: Mutex::default(),
        })
    }

    pub fn per_second(&self) -> i64 {
        self.per_second
    }

    fn chunk(&self) -> i64 {
        (self.per_second / 10).max(1)
    }

    /// Takes one request from the token's budget for the second `now` falls in.
    pub async fn check(&self, store: &DynStore, token_id: &str, now: i64) -> Result<Verdict> {
        let window = now - now.rem_euclid(WINDOW_MICROS);
        let retry = || Verdict::Limited(1);
        if let Some(v) = self.take_local(token_id, window) {
            return Ok(v);
        }
        let chunk = self.chunk();
        let used = store.reserve_requests(token_id, window, chunk).await?;
        // What was left before this reservation, up to the chunk asked for.
        let granted = (self.per_second - (used - chunk)).clamp(0, chunk);
        let Ok(mut map) = self.local.lock() else {
            return Ok(Verdict::Allow);
        };
        if map.len() >= TOKENS {
            map.retain(|_, l| l.window == window);
        }
        let l = map.entry(token_id.to_owned()).or_default();
        if l.window != window {
            *l = Local {
                window,
                ..Local::default()
            };
        }
        l.left += granted;
        if l.left > 0 {
            l.left -= 1;
            Ok(Verdict::Allow)
        } else {
            l.exhausted = true;
            Ok(retry())
        }
    }

    /// The local answer when the replica already knows it: allowance left, or refused this
    /// window already.
    fn take_local(&self, token_id: &str, window: i64) -> Option<Verdict> {
        let mut map = self.local.lock().ok()?;
        let l = map.get_mut(token_id).filter(|l| l.window == window)?;
        if l.left > 0 {
            l.left -= 1;
            Some(Verdict::Allow)
        } else if l.exhausted {
            Some(Verdict::Limited(1))
        } else {
            None
        }
    }
}
