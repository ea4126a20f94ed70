//! The delivery worker: claims due outbox rows, sends them, records the outcome.

use super::outbox::Attempt;
use super::{Mailer, OutboxEntry, OutboxStore, SmtpConfig, Status};
use crate::clock::Clock;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Rows claimed at once. With the SMTP timeout this bounds a batch well inside [`LEASE`].
pub const BATCH: i64 = 10;
/// How long a claim keeps other workers off a row. A worker that dies holding rows delays them
/// by at most this much.
pub const LEASE: Duration = Duration::from_secs(10 * 60);
/// Failed attempts after which a row is given up as `failed` (about three hours of retries).
pub const MAX_ATTEMPTS: i32 = 10;
/// The wait after the first failure; it doubles with each further failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// How often an idle worker looks for due rows.
const POLL: Duration = Duration::from_secs(5);
/// The most of an SMTP error kept in `last_error`.
const ERROR_CHARS: usize = 1000;

/// The wait before the next attempt, after `failures` failed ones: 30 s × 2^(failures−1),
/// capped at an hour.
pub fn backoff(failures: i32) -> Duration {
    let doublings = failures.saturating_sub(1).clamp(0, 16) as u32;
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// How long a sent row is kept (without its body) unless configured otherwise.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// One delivery worker. Run as many as you like, in one process or across replicas.
#[derive(Debug, Clone)]
pub struct Worker {
    store: OutboxStore,
    mailer: Mailer,
    clock: Arc<Clock>,
    retention: i64,
}

impl Worker {
    pub fn new(store: OutboxStore, config: &SmtpConfig, clock: Arc<Clock>) -> anyhow::Result<Self> {
        Ok(Worker {
            store,
            mailer: Mailer::new(config)?,
            clock,
            retention: micros(RETENTION),
        })
    }

    /// Keeps sent rows this long (microseconds) before purging them.
    pub fn with_retention(mut self, micros: i64) -> Self {
        self.retention = micros;
        self
    }

    /// Claims one batch of due rows and tries each once. Returns how many were sent.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        Ok(self.deliver_batch().await?.1)
    }

    /// (claimed, sent)
    async fn deliver_batch(&self) -> anyhow::Result<(usize, usize)> {
        let now = self.clock.now();
        let purged = self.store.purge(now.saturating_sub(self.retention)).await?;
        if purged > 0 {
            tracing::info!(
                purged,
                "email outbox: sent rows past their retention removed"
            );
        }
        let lease = now.saturating_add(micros(LEASE));
        let batch = self.store.claim(now, lease, BATCH).await?;
        let mut sent = 0;
        for entry in &batch {
            let result = self.mailer.send(entry).await;
            if result.is_ok() {
                sent += 1;
            }
            let now = self.clock.now();
            let attempts = entry.attempts.saturating_add(1);
            let attempt = outcome(entry, attempts, now, &result);
            log(entry, attempts, &attempt);
            if !self.store.record(&entry.id, lease, &attempt).await? {
                tracing::warn!(
                    email_id = %entry.id,
                    "email outbox: the claim expired before the attempt was recorded; another worker holds the row"
                );
            }
        }
        Ok((batch.len(), sent))
    }

    /// Delivers until `shutdown` completes. A batch in progress is finished first, so no claim
    /// is left to expire; errors are logged and the loop goes on.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        tracing::info!("email worker started");
        loop {
            let full = match self.deliver_batch().await {
                Ok((claimed, _)) => claimed as i64 == BATCH,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "email outbox: delivery round failed");
                    false
                }
            };
            // After a full batch more may be due: go on at once.
            let pause = if full { Duration::ZERO } else { POLL };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("email worker stopped");
    }
}

/// What to record after attempt number `attempts` at `now`.
fn outcome<'a>(
    entry: &OutboxEntry,
    attempts: i32,
    now: i64,
    result: &'a Result<(), super::smtp::SendError>,
) -> Attempt<'a> {
    let (status, next_attempt_at, last_error, sent_at) = match result {
        Ok(()) => (Status::Sent, entry.next_attempt_at, None, Some(now)),
        Err(e) if e.retry && attempts < MAX_ATTEMPTS => {
            let next = now.saturating_add(micros(backoff(attempts)));
            (Status::Pending, next, Some(truncate(&e.message)), None)
        }
        Err(e) => (
            Status::Failed,
            entry.next_attempt_at,
            Some(truncate(&e.message)),
            None,
        ),
    };
    Attempt {
        status,
        attempts,
        next_attempt_at,
        last_error,
        sent_at,
        now,
    }
}

fn truncate(s: &str) -> &str {
    s.char_indices()
        .nth(ERROR_CHARS)
        .map_or(s, |(i, _)| &s[..i])
}

/// One line per attempt: who and how it went, never the subject or the body.
fn log(entry: &OutboxEntry, attempts: i32, a: &Attempt<'_>) {
    let (id, to, org) = (&entry.id, &entry.to_address, &entry.organization_id);
    let error = a.last_error.unwrap_or_default();
    crate::metrics::outbox_delivery(match a.status {
        Status::Sent => "sent",
        Status::Pending => "retry",
        Status::Failed => "failed",
    });
    match a.status {
        Status::Sent => {
            tracing::info!(email_id = %id, to = %to, organization_id = ?org, attempts, "email sent")
        }
        Status::Pending => tracing::warn!(
            email_id = %id, to = %to, organization_id = ?org, attempts, error,
            retry_in_s = (a.next_attempt_at - a.now) / 1_000_000,
            "email not sent; will retry"
        ),
        Status::Failed => tracing::error!(
            email_id = %id, to = %to, organization_id = ?org, attempts, error,
            "email not sent; giving up"
        ),
    }
}

/// Builds a [`Worker`] and runs it until `shutdown` completes; the call to start beside the
/// server. Fails at once only when `config` cannot be used (a bad sender address).
pub async fn run_worker(
    store: OutboxStore,
    config: SmtpConfig,
    clock: Arc<Clock>,
    retention: i64,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    Worker::new(store, &config, clock)?
        .with_retention(retention)
        .run(shutdown)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        let secs: Vec<u64> = (1..=MAX_ATTEMPTS).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(0).as_secs(), 30);
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn truncates_long_errors_on_a_char_boundary() {
        let long = "é".repeat(ERROR_CHARS + 5);
        assert_eq!(truncate(&long).chars().count(), ERROR_CHARS);
        assert_eq!(truncate("short"), "short");
    }
}
