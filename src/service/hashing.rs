//! Password hashing and checking, bounded before the work starts. Argon2id is slow and takes
//! memory by design (19 MiB per run with the crate's defaults), so an unbounded number of them
//! at once is a way to exhaust the server: 64 concurrent POSTs to one setup link once hashed 64
//! passwords and took the process from 20 MB to 1.28 GB. Here every hash or check holds one of a
//! few slots (as many as there are cores); a few requests may wait for a slot, and any more are
//! answered 503 at once instead of piling up.
//!
//! A slot is held until the blocking work ends, even when the request that asked for it is
//! dropped (a client that hangs up, or the request deadline): the bound is on the work running,
//! not on requests in flight.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots and the queue in front of them. One per server.
#[derive(Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    runs: Arc<AtomicU64>,
}

/// The refusal when every slot is taken and the queue is full.
pub fn busy() -> Error {
    Error::unavailable("too many password checks are running at once; retry in a moment")
}

impl Hasher {
    /// `slots` hashes at once (at least 1); at most `queue` callers wait for one.
    pub fn new(slots: usize, queue: usize) -> Self {
        Hasher {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            runs: Arc::default(),
        }
    }

    /// How many hashes and checks have run (tests bound it; not timing).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// A slot, waiting for one only while the queue has room; 503 otherwise. Take it before
    /// claiming the link or invitation the password is for, so a refused request has changed
    /// nothing.
    pub async fn slot(&self) -> Result<Slot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(self.slot_of(permit));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("password hashing: every slot busy and the queue full; refusing");
            return Err(busy());
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|e| Error::Internal(e.into()))?;
        Ok(self.slot_of(permit))
    }

    fn slot_of(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            permit,
            runs: self.runs.clone(),
        }
    }
}

/// The right to run one hash or check.
pub struct Slot {
    permit: OwnedSemaphorePermit,
    runs: Arc<AtomicU64>,
}

impl Slot {
    /// An Argon2id PHC string for a new password, computed off the async workers.
    pub async fn hash(self, password: String) -> Result<String> {
        self.run(move || hash_password(&password)).await?
    }

    /// Whether `password` matches `hash`; without a hash (an unknown email) a fixed one is
    /// checked, so a refusal takes as long either way.
    pub async fn verify(self, password: String, hash: Option<String>) -> Result<bool> {
        static DUMMY: OnceLock<String> = OnceLock::new();
        self.run(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| {
                DUMMY
                    .get_or_init(|| {
                        hash_password("no account has this password").unwrap_or_default()
                    })
                    .clone()
            });
            verify_password(&password, &hash) && known
        })
        .await
    }

    async fn run<T: Send + 'static>(self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let Slot { permit, runs } = self;
        tokio::task::spawn_blocking(move || {
            runs.fetch_add(1, Ordering::Relaxed);
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::Internal(e.into()))
    }
}

pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let h = Arc::new(Hasher::new(1, 1));
        let held = h.slot().await.unwrap();
        // One may wait...
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.slot().await.map(|_| ()) })
        };
        while h.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        // ...the next is refused.
        let refused = h.slot().await.err().unwrap();
        assert_eq!(refused.kind(), crate::error::ErrorKind::Unavailable);
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(h.runs(), 0, "no work ran");
        let s = h.slot().await.unwrap();
        assert!(s.verify("x".into(), None).await.is_ok_and(|ok| !ok));
        assert_eq!(h.runs(), 1);
    }
}
