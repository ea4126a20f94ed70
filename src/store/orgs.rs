//! Organizations: created by the operator (or by a person signing up), found by slug.

use super::backend::for_both;
use crate::error::Result;
use async_trait::async_trait;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

/// Organizations.
#[async_trait]
pub trait OrgStore: Send + Sync {
    async fn create_org(&self, slug: &str, name: &str, now: i64) -> Result<Org>;
    async fn list_orgs(&self) -> Result<Vec<Org>>;
    /// Up to `limit` organizations in slug order, after the slug `after` (empty: from the first).
    async fn orgs_after(&self, after: &str, limit: i64) -> Result<Vec<Org>>;
    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>>;
    async fn org_count(&self) -> Result<i64>;
}

macro_rules! orgs {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        #[async_trait]
        impl OrgStore for $store {
            async fn create_org(&self, slug: &str, name: &str, now: i64) -> Result<Org> {
                let mut conn = self.write.acquire().await?;
                Self::insert_org(&mut conn, slug, name, now).await
            }

            async fn list_orgs(&self) -> Result<Vec<Org>> {
                sqlx::query("select id, slug, name, created_at from organization order by slug")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::org)
                    .collect()
            }

            async fn orgs_after(&self, after: &str, limit: i64) -> Result<Vec<Org>> {
                sqlx::query("select id, slug, name, created_at from organization where slug > $1 order by slug limit $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::org)
                    .collect()
            }

            async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
                sqlx::query("select id, slug, name, created_at from organization where slug = $1")
                    .bind(slug)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(Self::org)
                    .transpose()
            }

            async fn org_count(&self) -> Result<i64> {
                Ok(sqlx::query("select count(*) as n from organization")
                    .fetch_one(&self.read)
                    .await?
                    .try_get("n")?)
            }
        }
    };
}

for_both!(orgs);
