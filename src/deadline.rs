//! The deadline of the request being served, for the database work it causes. The HTTP layer
//! sets it (`scope`) when a request starts; the stores read it (`current`) so that a query still
//! running when the request is answered 503 stops too (SQLite: a progress handler interrupts
//! it; Postgres: the connection is dropped and the server cancels the statement), instead of
//! holding a connection that other requests need.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with a deadline `limit` from now for its database work.
pub async fn scope<F: Future>(limit: Duration, f: F) -> F::Output {
    DEADLINE.scope(Instant::now() + limit, f).await
}

/// The current task's deadline, if it runs inside `scope`.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Time left before the deadline (`None` without one; zero once it has passed).
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}
