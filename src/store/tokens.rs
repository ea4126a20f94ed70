//! Provisioning tokens (an identity provider's bearer tokens, one organization each, with their
//! per-second request budget) and provider admin tokens (the operator's API). Tokens are stored
//! as digests, never as themselves.

use super::backend::for_both;
use super::{new_id, Audit, Org};
use crate::error::Result;
use async_trait::async_trait;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub organization_id: String,
    pub org_slug: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The token this one replaced by rotation (the old one works until it is revoked).
    pub rotated_from: Option<String>,
}

/// A provider admin token, as stored (never the token itself).
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// One token of an organization, with the organization's slug.
const ORG_TOKEN: &str = "select t.*, o.slug as org_slug from provisioning_token t \
     join organization o on o.id = t.organization_id where t.organization_id = $1 and t.id = $2";

/// Provisioning tokens and provider admin tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(
        &self,
        org: &Org,
        name: &str,
        digest: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<TokenInfo>;
    async fn list_tokens(&self, org_id: &str) -> Result<Vec<TokenInfo>>;
    /// A page of the organization's tokens, oldest first, leaving out those revoked before
    /// `revoked_since`; and how many there are without the page.
    async fn token_page(
        &self,
        org_id: &str,
        revoked_since: i64,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<TokenInfo>)>;
    /// Revokes a token by id alone (the operator's CLI), recording it in its organization's
    /// audit log as `operator`; false when no unrevoked token has that id.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool>;
    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenInfo>>;
    /// Creates a token and records it in the audit log, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn create_org_token(
        &self,
        org: &Org,
        name: &str,
        digest: &str,
        expires_at: Option<i64>,
        rotated_from: Option<&str>,
        now: i64,
        audit: &Audit,
    ) -> Result<TokenInfo>;
    /// One token of an organization (another organization's id finds nothing).
    async fn org_token(&self, org_id: &str, id: &str) -> Result<Option<TokenInfo>>;
    /// Revokes a token of the organization and records it in the audit log, in one transaction;
    /// `None` when the organization has no such token. Revoking a revoked token changes nothing.
    async fn revoke_org_token(
        &self,
        org_id: &str,
        id: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Option<TokenInfo>>;
    /// Notes when a token was last used (callers throttle this: not a write per request).
    async fn touch_token(&self, id: &str, now: i64) -> Result<()>;
    async fn create_admin_token(&self, name: &str, digest: &str, now: i64) -> Result<AdminToken>;
    async fn admin_token_by_digest(&self, digest: &str) -> Result<Option<AdminToken>>;
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>>;
    /// Revokes a provider admin token; false when no unrevoked token has that id.
    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool>;
    /// Adds `want` requests to a provisioning token's reservations in the one-second window
    /// starting at `window_start` (a new window starts from zero) and returns the window's total.
    async fn reserve_requests(&self, token_id: &str, window_start: i64, want: i64) -> Result<i64>;
}

macro_rules! tokens {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
            fn admin_token(r: &<$db as sqlx::Database>::Row) -> Result<AdminToken> {
                Ok(AdminToken {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    revoked_at: r.try_get("revoked_at")?,
                    created_at: r.try_get("created_at")?,
                })
            }
        }

        #[async_trait]
        impl TokenStore for $store {
            async fn create_token(&self, org: &Org, name: &str, digest: &str, expires_at: Option<i64>, now: i64) -> Result<TokenInfo> {
                let id = new_id();
                sqlx::query(
                    "insert into provisioning_token (id, organization_id, name, digest, expires_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&id)
                .bind(&org.id)
                .bind(name)
                .bind(digest)
                .bind(expires_at)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(TokenInfo {
                    id,
                    organization_id: org.id.clone(),
                    org_slug: org.slug.clone(),
                    name: name.to_owned(),
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                    last_used_at: None,
                    rotated_from: None,
                })
            }

            async fn list_tokens(&self, org_id: &str) -> Result<Vec<TokenInfo>> {
                sqlx::query(
                    "select t.*, o.slug as org_slug from provisioning_token t join organization o on o.id = t.organization_id \
                     where t.organization_id = $1 order by t.created_at, t.id",
                )
                    .bind(org_id)
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::token)
                    .collect()
            }

            async fn token_page(&self, org_id: &str, revoked_since: i64, start_index: i64, count: i64) -> Result<(i64, Vec<TokenInfo>)> {
                const WHERE: &str = "where t.organization_id = $1 and (t.revoked_at is null or t.revoked_at >= $2)";
                let total: i64 = sqlx::query(&format!("select count(*) as n from provisioning_token t {WHERE}"))
                    .bind(org_id)
                    .bind(revoked_since)
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?;
                let rows = sqlx::query(&format!(
                    "select t.*, o.slug as org_slug from provisioning_token t join organization o on o.id = t.organization_id \
                     {WHERE} order by t.created_at, t.id limit $3 offset $4"
                ))
                .bind(org_id)
                .bind(revoked_since)
                .bind(count)
                .bind(start_index - 1)
                .fetch_all(&self.read)
                .await?;
                Ok((total, rows.iter().map(Self::token).collect::<Result<_>>()?))
            }

            async fn revoke_token(&self, id: &str, now: i64) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let org: Option<String> = sqlx::query(
                    "update provisioning_token set revoked_at = $1, updated_at = $1 where id = $2 and revoked_at is null \
                     returning organization_id",
                )
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("organization_id"))
                .transpose()?;
                let Some(org) = org else {
                    return Ok(false);
                };
                let operator = Audit { actor: "operator".into(), request_id: None };
                Self::record_audit(&mut tx, &org, &operator, "Token.revoke", id, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_org_token(
                &self,
                org: &Org,
                name: &str,
                digest: &str,
                expires_at: Option<i64>,
                rotated_from: Option<&str>,
                now: i64,
                audit: &Audit,
            ) -> Result<TokenInfo> {
                let id = new_id();
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "insert into provisioning_token (id, organization_id, name, digest, expires_at, rotated_from, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&id)
                .bind(&org.id)
                .bind(name)
                .bind(digest)
                .bind(expires_at)
                .bind(rotated_from)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let action = if rotated_from.is_some() { "Token.rotate" } else { "Token.create" };
                Self::record_audit(&mut tx, &org.id, audit, action, &id, now).await?;
                tx.commit().await?;
                Ok(TokenInfo {
                    id,
                    organization_id: org.id.clone(),
                    org_slug: org.slug.clone(),
                    name: name.to_owned(),
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                    last_used_at: None,
                    rotated_from: rotated_from.map(str::to_owned),
                })
            }

            async fn org_token(&self, org_id: &str, id: &str) -> Result<Option<TokenInfo>> {
                sqlx::query(
                    ORG_TOKEN,
                )
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .as_ref()
                .map(Self::token)
                .transpose()
            }

            async fn revoke_org_token(&self, org_id: &str, id: &str, now: i64, audit: &Audit) -> Result<Option<TokenInfo>> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "update provisioning_token set revoked_at = $1, updated_at = $1 \
                     where organization_id = $2 and id = $3 and revoked_at is null",
                )
                .bind(now)
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    Self::record_audit(&mut tx, org_id, audit, "Token.revoke", id, now).await?;
                }
                let found = sqlx::query(
                    ORG_TOKEN,
                )
                .bind(org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(Self::token)
                .transpose()?;
                tx.commit().await?;
                Ok(found)
            }

            async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
                sqlx::query("update provisioning_token set last_used_at = $2 where id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenInfo>> {
                self.token_lookup(digest).await
            }

            async fn reserve_requests(&self, token_id: &str, window_start: i64, want: i64) -> Result<i64> {
                Ok(sqlx::query(
                    "insert into token_budget (token_id, window_start, used) values ($1, $2, $3) \
                     on conflict (token_id) do update set \
                     used = case when token_budget.window_start = excluded.window_start then token_budget.used + excluded.used else excluded.used end, \
                     window_start = excluded.window_start returning used",
                )
                .bind(token_id)
                .bind(window_start)
                .bind(want)
                .fetch_one(&self.write)
                .await?
                .try_get("used")?)
            }

            async fn create_admin_token(&self, name: &str, digest: &str, now: i64) -> Result<AdminToken> {
                let id = new_id();
                sqlx::query("insert into admin_token (id, name, digest, created_at, updated_at) values ($1, $2, $3, $4, $4)")
                    .bind(&id)
                    .bind(name)
                    .bind(digest)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(AdminToken { id, name: name.to_owned(), revoked_at: None, created_at: now })
            }

            async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
                sqlx::query("select id, name, revoked_at, created_at from admin_token order by created_at, id")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::admin_token)
                    .collect()
            }

            async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool> {
                Ok(sqlx::query("update admin_token set revoked_at = $2, updated_at = $2 where id = $1 and revoked_at is null")
                    .bind(id)
                    .bind(now)
                    .execute(&self.write)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn admin_token_by_digest(&self, digest: &str) -> Result<Option<AdminToken>> {
                sqlx::query("select id, name, revoked_at, created_at from admin_token where digest = $1")
                    .bind(digest)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(Self::admin_token)
                    .transpose()
            }
        }
    };
}

for_both!(tokens);
