//! People who sign in to the admin API: passwords (Argon2id), access tokens (HS256 JWTs naming a
//! session, so revocation is a row update seen by every replica at once) and the sign-in rate
//! limits (counted in the database for the same reason).

use super::hashing::Hasher;
use crate::error::{Error, Result};
use crate::store::DynStore;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// How long an access token works; a person signs in again after it.
pub const ACCESS_TOKEN_MICROS: i64 = 15 * 60 * 1_000_000;
/// The window sign-in attempts are counted in.
pub const WINDOW_MICROS: i64 = 15 * 60 * 1_000_000;
/// Sign-in attempts for one email address from one client address in a window (the right
/// password resets the count). Counted per client address so that nobody else's guessing can
/// lock the owner out: see the README's security model for the trade-off.
pub const MAX_ATTEMPTS_PER_ACCOUNT: i64 = 5;
/// How long a password-reset link works unless configured otherwise.
pub const RESET_TTL_MICROS: i64 = 3600 * 1_000_000;
/// Sign-in attempts from one client address in a window, whatever the email.
pub const MAX_ATTEMPTS_PER_IP: i64 = 50;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted (Argon2 takes any length; a bound keeps hashing cost bounded).
pub const MAX_PASSWORD: usize = 1024;
const ISSUER: &str = "scimd";

/// What an access token says: whose it is and which session it belongs to.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// The keys access tokens are signed and checked with.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// The configured key file's contents, else the database's key (created on first use).
    pub async fn load(store: &DynStore, file: Option<&std::path::Path>, now: i64) -> Result<Self> {
        if let Some(path) = file {
            let secret = std::fs::read(path).map_err(|e| {
                Error::Internal(anyhow::anyhow!(
                    "reading the signing key {}: {e}",
                    path.display()
                ))
            })?;
            if secret.len() < 32 {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the signing key {} is shorter than 32 bytes",
                    path.display()
                )));
            }
            return Ok(Keys::from_secret(&secret));
        }
        let candidate = hex::encode(rand::random::<[u8; 32]>());
        let secret = store.signing_secret(&candidate, now).await?;
        let bytes = hex::decode(secret).map_err(|e| Error::Internal(e.into()))?;
        Ok(Keys::from_secret(&bytes))
    }

    /// A signed token for a session; times are the clock's microseconds.
    pub fn issue(&self, account: &str, session: &str, now: i64, expires_at: i64) -> Result<String> {
        let claims = Claims {
            sub: account.to_owned(),
            sid: session.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now / 1_000_000,
            exp: expires_at / 1_000_000,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(e.into()))
    }

    /// The claims of a token signed with this key, by this issuer, unexpired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        // Expiry is checked against the server's clock below, not the system time.
        v.validate_exp = false;
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "sub", "iss"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()?
            .claims;
        (claims.exp > now / 1_000_000).then_some(claims)
    }
}

pub use super::hashing::{hash_password, verify_password};

/// A new password's problem, if it has one.
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        Some(format!(
            "the password must be at least {MIN_PASSWORD} characters long"
        ))
    } else if n > MAX_PASSWORD {
        Some(format!(
            "the password must be at most {MAX_PASSWORD} characters long"
        ))
    } else {
        None
    }
}

/// How a password attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Over a limit: wait this many seconds. The password was not checked.
    Limited(i64),
    Wrong,
    Right,
}

/// One password attempt for an email under the sign-in limits (sign-in, password change, the
/// accept page): counted first, then checked in a hashing slot (`hash: None` for an unknown
/// email costs the same); the right password clears this address's count for the email.
pub async fn attempt(
    store: &DynStore,
    hasher: &Hasher,
    email: &str,
    ip: &str,
    now: i64,
    password: &str,
    hash: Option<String>,
) -> Result<Attempt> {
    if let Some(wait) = count_attempt(store, email, ip, now).await? {
        return Ok(Attempt::Limited(wait));
    }
    let slot = hasher.slot().await?;
    if !slot.verify(password.to_owned(), hash).await? {
        return Ok(Attempt::Wrong);
    }
    store.clear_throttle(&account_key(email, ip)).await?;
    Ok(Attempt::Right)
}

/// Mails with a link (password reset) for one email address in a window.
pub const MAX_MAILS_PER_ACCOUNT: i64 = 3;

/// Counts a sign-in attempt; returns the seconds to wait when over a limit. The client
/// address is counted first, and an address over its own limit counts nothing else, so it adds
/// nothing to the counts of the accounts it guesses. The email is counted per client address:
/// a correct password from a fresh address is never locked out by someone else's guessing.
/// Counting comes before checking, so concurrent attempts cannot all slip under a limit.
async fn count_attempt(store: &DynStore, email: &str, ip: &str, now: i64) -> Result<Option<i64>> {
    count(
        store,
        &account_key(email, ip),
        MAX_ATTEMPTS_PER_ACCOUNT,
        ip,
        now,
    )
    .await
}

/// Counts a request that sends mail to an address (password reset, sign-up): a few per
/// address, whoever asks, so nobody can flood a mailbox; and the client address's limit.
pub async fn count_mail(store: &DynStore, email: &str, ip: &str, now: i64) -> Result<Option<i64>> {
    let key = format!("mail:{}", email.trim().to_lowercase());
    count(store, &key, MAX_MAILS_PER_ACCOUNT, ip, now).await
}

async fn count(store: &DynStore, key: &str, limit: i64, ip: &str, now: i64) -> Result<Option<i64>> {
    let window = now - now.rem_euclid(WINDOW_MICROS);
    let wait = (window + WINDOW_MICROS - now) / 1_000_000 + 1;
    let by_ip = store
        .throttle(&format!("ip:{ip}"), window, MAX_ATTEMPTS_PER_IP)
        .await?;
    if by_ip > MAX_ATTEMPTS_PER_IP {
        tracing::warn!(ip, by_ip, "rate limit reached for the client address");
        return Ok(Some(wait));
    }
    let by_key = store.throttle(key, window, limit).await?;
    if by_key > limit {
        tracing::warn!(ip, by_key, "rate limit reached");
        return Ok(Some(wait));
    }
    Ok(None)
}

/// The count of password attempts for an email from one client address.
fn account_key(email: &str, ip: &str) -> String {
    format!("login:{}|{ip}", email.trim().to_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_key_and_until_they_expire() {
        let keys = Keys::from_secret(&[7; 32]);
        let now = 1_700_000_000_000_000;
        let t = keys
            .issue("acct", "sess", now, now + ACCESS_TOKEN_MICROS)
            .unwrap();
        let c = keys.verify(&t, now).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("acct", "sess"));
        assert!(
            keys.verify(&t, now + ACCESS_TOKEN_MICROS).is_none(),
            "expired"
        );
        assert!(
            Keys::from_secret(&[8; 32]).verify(&t, now).is_none(),
            "other key"
        );
        let mut tampered = t.clone();
        tampered.insert(t.len() / 2, 'x');
        assert!(keys.verify(&tampered, now).is_none());
    }

    #[test]
    fn password_rules() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("twelve chars").is_none());
        assert!(password_problem(&"x".repeat(MAX_PASSWORD + 1)).is_some());
    }
}
