//! Time, injected: every timestamp scimd stores comes from here, so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct Clock {
    offset_micros: AtomicI64,
}

impl Clock {
    /// Now, in UTC microseconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        #[allow(clippy::disallowed_methods)] // The one place that reads the wall clock.
        let real = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
        real + self.offset_micros.load(Ordering::Relaxed)
    }

    /// Moves this clock forward (tests: token expiry, lastModified ordering).
    pub fn advance(&self, micros: i64) {
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}
