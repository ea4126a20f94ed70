//! The store's own state, for readiness and `/metrics`: which database, whether it answers, how
//! full its connection pools are, and the email backlog.

use super::backend::for_both;
use super::sql::Dialect;
use crate::error::Result;
use async_trait::async_trait;
use sqlx::Row;

/// How much of one connection pool is in use.
#[derive(Debug, Clone)]
pub struct PoolStats {
    /// `read`, `auth` and `write` (SQLite); `main` and `auth` (Postgres).
    pub name: &'static str,
    pub in_use: usize,
    pub open: usize,
    pub max: usize,
}

/// Readiness and the figures `/metrics` shows.
#[async_trait]
pub trait HealthStore: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    /// Emails waiting in the outbox, for `/metrics`.
    async fn outbox_pending(&self) -> Result<i64>;
    /// Each connection pool's use, for `/metrics`.
    async fn pool_stats(&self) -> Vec<PoolStats>;
    /// Test hook: a read that never ends by itself, run like every other read (same pool, same
    /// request deadline), so tests can show the deadline stops it and frees its connection.
    #[doc(hidden)]
    async fn endless_read(&self) -> Result<()>;
}

macro_rules! health {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        #[async_trait]
        impl HealthStore for $store {
            fn backend(&self) -> &'static str {
                match $dialect {
                    Dialect::Sqlite => "sqlite",
                    Dialect::Postgres => "postgres",
                }
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("select 1").execute(&self.read).await?;
                Ok(())
            }

            async fn outbox_pending(&self) -> Result<i64> {
                // Counted on the partial index of pending rows: the backlog, not the history.
                Ok(
                    sqlx::query("select count(*) as n from email_outbox where status = 'pending'")
                        .fetch_one(&self.read)
                        .await?
                        .try_get("n")?,
                )
            }

            async fn pool_stats(&self) -> Vec<PoolStats> {
                self.pools()
            }

            async fn endless_read(&self) -> Result<()> {
                self.endless().await
            }
        }
    };
}

for_both!(health);
