//! Provider identities linked to accounts (sign-in with an identity provider): the first link
//! wins, and an account's last way to sign in cannot be unlinked.

use super::backend::for_both;
use crate::error::{Error, Result};
use async_trait::async_trait;
use sqlx::Row;

/// A sign-in provider's identity linked to an account.
#[derive(Debug, Clone)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    /// The verified address it was first linked by.
    pub email: String,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

/// Provider identities linked to accounts.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The account a provider identity is linked to.
    async fn identity_account(&self, provider: &str, subject: &str) -> Result<Option<String>>;
    /// The provider identities linked to an account, oldest first.
    async fn identities_of(&self, account_id: &str) -> Result<Vec<LinkedIdentity>>;
    /// Unlinks a provider identity from an account, in one transaction that holds the account's
    /// row (so two unlinks at once cannot remove both last ways in): 404 when the account has no
    /// such link, 409 when it is the account's last way to sign in (no password, no other link).
    async fn unlink_identity(
        &self,
        account_id: &str,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> Result<()>;
    /// Links a provider identity to an account unless it is linked already; returns the account
    /// it is linked to (the first link wins, so concurrent first sign-ins agree).
    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        account_id: &str,
        email: &str,
        now: i64,
    ) -> Result<String>;
}

macro_rules! identities {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        #[async_trait]
        impl IdentityStore for $store {
            async fn identity_account(&self, provider: &str, subject: &str) -> Result<Option<String>> {
                sqlx::query("select account_id from federated_identity where provider = $1 and subject = $2")
                    .bind(provider)
                    .bind(subject)
                    .fetch_optional(&self.write)
                    .await?
                    .map(|r| r.try_get("account_id"))
                    .transpose()
                    .map_err(Error::from)
            }

            async fn identities_of(&self, account_id: &str) -> Result<Vec<super::LinkedIdentity>> {
                let rows = sqlx::query(
                    "select provider, subject, email, last_used_at, created_at from federated_identity \
                     where account_id = $1 order by created_at, provider, subject",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(super::LinkedIdentity {
                        provider: r.try_get("provider")?,
                        subject: r.try_get("subject")?,
                        email: r.try_get("email")?,
                        last_used_at: r.try_get("last_used_at")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                Ok(out)
            }

            async fn unlink_identity(&self, account_id: &str, provider: &str, subject: &str, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                // Writing the account's row first holds it until commit: of two unlinks of one
                // account at once, the second sees what the first left.
                let Some(row) = sqlx::query("update account set updated_at = $2 where id = $1 returning password_hash")
                    .bind(account_id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Err(Error::not_found("no such account"));
                };
                let has_password = row.try_get::<Option<String>, _>("password_hash")?.is_some();
                let linked: Vec<(String, String)> = sqlx::query("select provider, subject from federated_identity where account_id = $1")
                    .bind(account_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("provider")?, r.try_get("subject")?)))
                    .collect::<Result<_>>()?;
                if !linked.iter().any(|(p, s)| p == provider && s == subject) {
                    return Err(Error::not_found("that sign-in is not linked to your account"));
                }
                if !has_password && linked.len() == 1 {
                    return Err(Error::conflict(
                        "this is your only way to sign in: set a password first (Forgot password mails a link), then unlink it",
                    ));
                }
                sqlx::query("delete from federated_identity where account_id = $1 and provider = $2 and subject = $3")
                    .bind(account_id)
                    .bind(provider)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn link_identity(&self, provider: &str, subject: &str, account_id: &str, email: &str, now: i64) -> Result<String> {
                sqlx::query(
                    "insert into federated_identity (provider, subject, account_id, email, last_used_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $5, $5) on conflict (provider, subject) do update set last_used_at = excluded.last_used_at",
                )
                .bind(provider)
                .bind(subject)
                .bind(account_id)
                .bind(email)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(sqlx::query("select account_id from federated_identity where provider = $1 and subject = $2")
                    .bind(provider)
                    .bind(subject)
                    .fetch_one(&self.write)
                    .await?
                    .try_get("account_id")?)
            }
        }
    };
}

for_both!(identities);
