//! Sign-in: API and browser sessions, the key that signs access tokens, sign-in attempt limits,
//! and the state of a sign-in at a provider between the redirect and the callback.

use super::backend::for_both;
use super::new_id;
use crate::error::Result;
use async_trait::async_trait;
use sqlx::Row;

/// A sign-in at a provider, between the redirect there and the callback.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub browser_digest: String,
    pub state_digest: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at: i64,
}

/// A browser session to start.
#[derive(Debug, Clone)]
pub struct NewCookieSession {
    pub account_id: String,
    pub cookie_digest: String,
    /// `password`, or the provider's name.
    pub method: String,
    /// The latest it may last, used or not.
    pub expires_at: i64,
    pub idle_until: i64,
}

/// Sessions, sign-in limits and provider sign-in flows.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The secret that signs access tokens: the stored one, or `candidate` when none is stored
    /// yet (replicas starting together agree on whichever was written first).
    async fn signing_secret(&self, candidate: &str, now: i64) -> Result<String>;
    /// Starts a session for a sign-in and marks the account active; returns the session id.
    async fn create_session(&self, account_id: &str, expires_at: i64, now: i64) -> Result<String>;
    /// Whether a session is open (not revoked, not expired); notes the account as active.
    async fn session_open(&self, id: &str, account_id: &str, now: i64) -> Result<bool>;
    /// Revokes one session, or (`only: None`) every open session of the account.
    async fn revoke_sessions(&self, account_id: &str, only: Option<&str>, now: i64) -> Result<u64>;
    /// Counts one attempt under `key` in the fixed window starting at `window_start` and returns
    /// the attempts counted in that window so far, this one included, never more than
    /// `limit + 1`: past its limit a key stops growing. Atomic across replicas.
    async fn throttle(&self, key: &str, window_start: i64, limit: i64) -> Result<i64>;
    async fn clear_throttle(&self, key: &str) -> Result<()>;
    /// Records a sign-in started at a provider (and clears flows long expired).
    async fn start_flow(&self, flow: &Flow, now: i64) -> Result<()>;
    /// Uses the flow a browser cookie names, once: `None` when unknown, used or expired.
    async fn take_flow(&self, browser_digest: &str, now: i64) -> Result<Option<Flow>>;
    /// Starts a browser session, named by the digest of its cookie's secret; returns its id.
    async fn create_cookie_session(&self, s: &NewCookieSession, now: i64) -> Result<String>;
    /// The open browser session a cookie names, as `(session id, account id)`; its idle
    /// deadline slides to `now + idle`.
    async fn cookie_session(
        &self,
        cookie_digest: &str,
        now: i64,
        idle: i64,
    ) -> Result<Option<(String, String)>>;
}

macro_rules! sessions {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        #[async_trait]
        impl SessionStore for $store {
            async fn signing_secret(&self, candidate: &str, now: i64) -> Result<String> {
                sqlx::query("insert into signing_key (id, secret, created_at) values ('access-token', $1, $2) on conflict (id) do nothing")
                    .bind(candidate)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(sqlx::query("select secret from signing_key where id = 'access-token'")
                    .fetch_one(&self.write)
                    .await?
                    .try_get("secret")?)
            }

            async fn create_session(&self, account_id: &str, expires_at: i64, now: i64) -> Result<String> {
                let id = new_id();
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "insert into session (id, account_id, expires_at, created_at, updated_at) values ($1, $2, $3, $4, $4)",
                )
                .bind(&id)
                .bind(account_id)
                .bind(expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Sessions long expired are cleared as new ones start: the table stays small.
                sqlx::query("delete from session where account_id = $1 and expires_at < $2")
                    .bind(account_id)
                    .bind(now - 24 * 3600 * 1_000_000)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("update account set last_active_at = $2 where id = $1")
                    .bind(account_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn session_open(&self, id: &str, account_id: &str, now: i64) -> Result<bool> {
                let open = sqlx::query(
                    "select a.last_active_at from session s join account a on a.id = s.account_id \
                     where s.id = $1 and s.account_id = $2 and s.revoked_at is null and s.expires_at > $3 \
                     and (s.idle_until is null or s.idle_until > $3)",
                )
                .bind(id)
                .bind(account_id)
                .bind(now)
                .fetch_optional(&self.read)
                .await?;
                let Some(row) = open else { return Ok(false) };
                // Activity is noted at most once a minute per account: reads stay reads.
                let last: Option<i64> = row.try_get("last_active_at")?;
                if last.is_none_or(|t| now - t > 60_000_000) {
                    sqlx::query("update account set last_active_at = $2 where id = $1")
                        .bind(account_id)
                        .bind(now)
                        .execute(&self.write)
                        .await?;
                }
                Ok(true)
            }

            async fn revoke_sessions(&self, account_id: &str, only: Option<&str>, now: i64) -> Result<u64> {
                Ok(sqlx::query(
                    "update session set revoked_at = $2, updated_at = $2 where account_id = $1 and revoked_at is null \
                     and ($3 is null or id = $3)",
                )
                .bind(account_id)
                .bind(now)
                .bind(only)
                .execute(&self.write)
                .await?
                .rows_affected())
            }

            async fn throttle(&self, key: &str, window_start: i64, limit: i64) -> Result<i64> {
                // Counts from past windows mean nothing: a key's first attempt in a window
                // clears them, so guesses over many emails cannot grow the table for good.
                let attempts = sqlx::query(
                    "insert into login_throttle (key, window_start, attempts) values ($1, $2, 1) \
                     on conflict (key) do update set \
                     attempts = case when login_throttle.window_start <> excluded.window_start then 1 \
                     when login_throttle.attempts > $3 then login_throttle.attempts else login_throttle.attempts + 1 end, \
                     window_start = excluded.window_start returning attempts",
                )
                .bind(key)
                .bind(window_start)
                .bind(limit)
                .fetch_one(&self.write)
                .await?
                .try_get::<i64, _>("attempts")?;
                if attempts == 1 {
                    sqlx::query("delete from login_throttle where window_start < $1")
                        .bind(window_start)
                        .execute(&self.write)
                        .await?;
                }
                Ok(attempts)
            }

            async fn clear_throttle(&self, key: &str) -> Result<()> {
                sqlx::query("delete from login_throttle where key = $1").bind(key).execute(&self.write).await?;
                Ok(())
            }

            async fn start_flow(&self, f: &Flow, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                // Flows long over are cleared as new ones start: the table stays small.
                sqlx::query("delete from sign_in_flow where expires_at < $1")
                    .bind(now - 3600 * 1_000_000)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "insert into sign_in_flow (id, browser_digest, state_digest, provider, nonce, pkce_verifier, expires_at, \
                     created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(&f.id)
                .bind(&f.browser_digest)
                .bind(&f.state_digest)
                .bind(&f.provider)
                .bind(&f.nonce)
                .bind(&f.pkce_verifier)
                .bind(f.expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_flow(&self, browser_digest: &str, now: i64) -> Result<Option<Flow>> {
                let row = sqlx::query(
                    "update sign_in_flow set used_at = $2, updated_at = $2 where browser_digest = $1 and used_at is null \
                     and expires_at > $2 returning id, browser_digest, state_digest, provider, nonce, pkce_verifier, expires_at",
                )
                .bind(browser_digest)
                .bind(now)
                .fetch_optional(&self.write)
                .await?;
                row.map(|r| -> Result<Flow> {
                    Ok(Flow {
                        id: r.try_get("id")?,
                        browser_digest: r.try_get("browser_digest")?,
                        state_digest: r.try_get("state_digest")?,
                        provider: r.try_get("provider")?,
                        nonce: r.try_get("nonce")?,
                        pkce_verifier: r.try_get("pkce_verifier")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn create_cookie_session(&self, c: &NewCookieSession, now: i64) -> Result<String> {
                let id = new_id();
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "insert into session (id, account_id, expires_at, cookie_digest, idle_until, method, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&id)
                .bind(&c.account_id)
                .bind(c.expires_at)
                .bind(&c.cookie_digest)
                .bind(c.idle_until)
                .bind(&c.method)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("delete from session where account_id = $1 and expires_at < $2")
                    .bind(&c.account_id)
                    .bind(now - 24 * 3600 * 1_000_000)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("update account set last_active_at = $2 where id = $1")
                    .bind(&c.account_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn cookie_session(&self, cookie_digest: &str, now: i64, idle: i64) -> Result<Option<(String, String)>> {
                let Some(row) = sqlx::query(
                    "select id, account_id, idle_until from session where cookie_digest = $1 and revoked_at is null \
                     and expires_at > $2 and idle_until > $2",
                )
                .bind(cookie_digest)
                .bind(now)
                .fetch_optional(&self.read)
                .await?
                else {
                    return Ok(None);
                };
                let (id, account): (String, String) = (row.try_get("id")?, row.try_get("account_id")?);
                // The idle deadline slides with use; written at most once a minute.
                let idle_until: i64 = row.try_get("idle_until")?;
                if now + idle - idle_until > 60_000_000 {
                    sqlx::query("update session set idle_until = $2, updated_at = $3 where id = $1")
                        .bind(&id)
                        .bind(now + idle)
                        .bind(now)
                        .execute(&self.write)
                        .await?;
                }
                Ok(Some((id, account)))
            }
        }
    };
}

for_both!(sessions);
