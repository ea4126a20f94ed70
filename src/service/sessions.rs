//! Browser sessions: what a person who signed in (with a password or a provider) holds in a
//! cookie. The cookie carries 256 random bits; the database keeps only their digest, in the same
//! `session` table as the admin API's sessions, so logout, a password change and the end of
//! the account reach both at once, on every replica. A session ends after [`MAX_MICROS`] or
//! after a configurable time without use, whichever comes first.
//!
//! A cookie alone never authorizes the admin API (browsers send cookies with cross-site
//! requests): the page it opens carries a CSRF token derived from the cookie's secret, and
//! anything that changes state or hands out an access token asks for it.

use crate::clock::Clock;
use crate::error::Result;
use crate::store::{DynStore, NewCookieSession};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "scimd_session";
/// How long a browser session lasts without use, unless configured otherwise.
pub const IDLE_MICROS: i64 = 60 * 60 * 1_000_000;
/// The longest a browser session lasts, used or not.
pub const MAX_MICROS: i64 = 12 * 60 * 60 * 1_000_000;

/// A started session: the cookie's secret (for the browser only) and the row's id.
pub struct Started {
    pub secret: String,
    pub id: String,
}

/// Starts a browser session for an account; `method` says how the person proved who they are.
pub async fn start(
    store: &DynStore,
    clock: &Clock,
    account_id: &str,
    method: &str,
    idle: i64,
) -> Result<Started> {
    let secret = crate::token::generate();
    let now = clock.now();
    let id = store
        .create_cookie_session(
            &NewCookieSession {
                account_id: account_id.to_owned(),
                cookie_digest: crate::token::digest(&secret),
                method: method.to_owned(),
                expires_at: now + MAX_MICROS,
                idle_until: now + idle,
            },
            now,
        )
        .await?;
    tracing::info!(account = account_id, method, "browser session started");
    Ok(Started { secret, id })
}

/// The open session a cookie's secret names, as `(session id, account id)`; use slides its
/// idle deadline.
pub async fn resolve(
    store: &DynStore,
    clock: &Clock,
    secret: &str,
    idle: i64,
) -> Result<Option<(String, String)>> {
    if secret.is_empty() || secret.len() > 100 {
        return Ok(None);
    }
    store
        .cookie_session(&crate::token::digest(secret), clock.now(), idle)
        .await
}

/// The CSRF token of a session: derived from the cookie's secret, which a cross-site page can
/// neither read nor guess, so it needs no storage of its own.
pub fn csrf_token(secret: &str) -> String {
    hex::encode(Sha256::digest(format!("scimd-csrf:{secret}").as_bytes()))
}

/// Whether a presented CSRF token is the session's (compared in constant time).
pub fn csrf_ok(secret: &str, presented: &str) -> bool {
    let want = csrf_token(secret);
    want.len() == presented.len() && bool::from(want.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let (a, b) = (crate::token::generate(), crate::token::generate());
        assert!(csrf_ok(&a, &csrf_token(&a)));
        assert!(!csrf_ok(&a, &csrf_token(&b)));
        assert!(!csrf_ok(&a, ""));
        assert_ne!(csrf_token(&a), a, "the token is not the cookie");
    }
}
