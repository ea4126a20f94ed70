//! People: the accounts that sign in, global across organizations. Their memberships, names
//! and passwords, enrolment into organizations, and the setup and reset links.

use super::backend::for_both;
use super::{new_id, Audit, Org};
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::Row;

/// A person's account, as sign-in and profile need it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub password_hash: Option<String>,
    pub last_active_at: Option<i64>,
}

/// One of an account's memberships.
#[derive(Debug, Clone)]
pub struct MembershipOf {
    pub member_id: String,
    pub org: Org,
    pub role: String,
    pub active: bool,
    /// When the person last acted in this organization.
    pub last_active_at: Option<i64>,
}

/// What `enrol` writes: the membership document (a SCIM User whose email names the person),
/// the organizations and roles, a new organization to found, and the account-setup link.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub email: String,
    pub doc: Map<String, Value>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `(slug, name)` of an organization to create, with the person as its admin.
    pub found: Option<(String, String)>,
    /// `(organization id, role)` for each existing organization to join.
    pub join: Vec<(String, String)>,
    pub setup: Option<SetupLink>,
}

#[derive(Debug, Clone)]
pub struct SetupLink {
    pub digest: String,
    pub expires_at: i64,
    pub email: crate::email::OutboxMessage,
}

#[derive(Debug, Clone)]
pub struct Enrolled {
    pub account_id: String,
    pub founded: Option<Org>,
    /// `(organization id, member id)` for each membership created.
    pub members: Vec<(String, String)>,
    /// Whether the setup link was written (only for an account without a password). Never shown
    /// to the organization: it would tell whether the address has a password.
    pub setup_sent: bool,
}

/// People: accounts that sign in to the admin API and the console.
#[async_trait]
pub trait PeopleStore: Send + Sync {
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
    async fn account(&self, id: &str) -> Result<Option<Account>>;
    /// Every membership of an account, with its organization, role and switch.
    async fn memberships_of(&self, account_id: &str) -> Result<Vec<MembershipOf>>;
    /// Sets an account's password, revokes all its sessions and ends every open setup or reset
    /// link, in one transaction.
    async fn set_password(&self, account_id: &str, hash: &str, now: i64) -> Result<()>;
    /// Adds a person (found by email or created) to organizations with roles, optionally to a new
    /// organization they found as its admin, with an account-setup link and its email when the
    /// account has no password yet. All or nothing.
    async fn enrol(&self, e: &Enrolment, now: i64, audit: &Audit) -> Result<Enrolled>;
    /// Writes a setup link for an existing account and its email, in one transaction (password
    /// reset, or a sign-up by someone who already has an account).
    async fn send_setup(&self, account_id: &str, link: &SetupLink, now: i64) -> Result<()>;
    /// The account an open (unused, unexpired) setup link belongs to.
    async fn open_setup(&self, digest: &str, now: i64) -> Result<Option<Account>>;
    /// Claims an open setup link (a conditional update: of concurrent callers one wins) and
    /// returns its account; `None` when it is not open. Claimed before any password is hashed.
    async fn claim_setup(&self, digest: &str, now: i64) -> Result<Option<String>>;
    /// Finishes a claimed setup link: sets names and password, ends every other open link of
    /// the account and revokes its sessions, in one transaction.
    async fn finish_setup(
        &self,
        account_id: &str,
        given_name: &str,
        family_name: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<()>;
    /// The account with this email, created (with no membership) when there is none.
    async fn account_for_email(&self, email: &str, now: i64) -> Result<Account>;
    /// Sets an account's own names (`None` clears one).
    /// Makes an account a provider admin (`on`) or an ordinary account again; whether anything
    /// changed.
    async fn set_provider_admin(&self, account_id: &str, on: bool, now: i64) -> Result<bool>;
    async fn is_provider_admin(&self, account_id: &str) -> Result<bool>;
    /// The provider admins' accounts, by email.
    async fn provider_admins(&self) -> Result<Vec<Account>>;
    async fn set_account_names(
        &self,
        account_id: &str,
        given_name: Option<&str>,
        family_name: Option<&str>,
        now: i64,
    ) -> Result<()>;
}

macro_rules! people {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
            fn account_row(r: &<$db as sqlx::Database>::Row) -> Result<Account> {
                Ok(Account {
                    id: r.try_get("id")?,
                    email: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
                    given_name: r.try_get("given_name")?,
                    family_name: r.try_get("family_name")?,
                    password_hash: r.try_get("password_hash")?,
                    last_active_at: r.try_get("last_active_at")?,
                })
            }

            /// A setup link for an account and its email, inside `tx`.
            async fn write_setup(tx: &mut sqlx::Transaction<'_, $db>, account: &str, link: &SetupLink, now: i64) -> Result<()> {
                sqlx::query(
                    "insert into account_setup (id, account_id, secret_digest, expires_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $5)",
                )
                .bind(new_id())
                .bind(account)
                .bind(&link.digest)
                .bind(link.expires_at)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                $enqueue(&mut **tx, &link.email, now).await?;
                Ok(())
            }

            /// Ends every open setup and reset link of an account: any password change does.
            async fn end_links(tx: &mut sqlx::Transaction<'_, $db>, account: &str, now: i64) -> Result<()> {
                sqlx::query("update account_setup set used_at = $2, updated_at = $2 where account_id = $1 and used_at is null")
                    .bind(account)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Ends every open session of an account (its access tokens stop working).
            async fn end_sessions(tx: &mut sqlx::Transaction<'_, $db>, account: &str, now: i64) -> Result<()> {
                sqlx::query("update session set revoked_at = $2, updated_at = $2 where account_id = $1 and revoked_at is null")
                    .bind(account)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl PeopleStore for $store {
            async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
                sqlx::query(
                    "select id, email, given_name, family_name, password_hash, last_active_at from account where email_norm = $1",
                )
                .bind(email.to_lowercase())
                .fetch_optional(&self.read)
                .await?
                .map(|r| Self::account_row(&r))
                .transpose()
            }

            async fn account(&self, id: &str) -> Result<Option<Account>> {
                sqlx::query(
                    "select id, email, given_name, family_name, password_hash, last_active_at from account where id = $1",
                )
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .map(|r| Self::account_row(&r))
                .transpose()
            }

            async fn memberships_of(&self, account_id: &str) -> Result<Vec<MembershipOf>> {
                let rows = sqlx::query(
                    "select m.id as member_id, m.role, m.role_assigned, m.active, m.last_active_at, o.id, o.slug, o.name, o.created_at \
                     from membership m join organization o on o.id = m.organization_id where m.account_id = $1 order by o.slug",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        let assigned: bool = r.try_get("role_assigned")?;
                        Ok(MembershipOf {
                            member_id: r.try_get("member_id")?,
                            org: Self::org(r)?,
                            role: if assigned { r.try_get("role")? } else { "member".to_owned() },
                            active: r.try_get("active")?,
                            last_active_at: r.try_get("last_active_at")?,
                        })
                    })
                    .collect()
            }

            async fn set_password(&self, account_id: &str, hash: &str, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query("update account set password_hash = $2, updated_at = $3 where id = $1")
                    .bind(account_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                Self::end_links(&mut tx, account_id, now).await?;
                Self::end_sessions(&mut tx, account_id, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn enrol(&self, e: &Enrolment, now: i64, audit: &Audit) -> Result<Enrolled> {
                let mut tx = self.write.begin().await?;
                let mut join = e.join.clone();
                let founded = match &e.found {
                    Some((slug, name)) => {
                        let org = Self::insert_org(&mut tx, slug, name, now).await?;
                        Self::record_audit(&mut tx, &org.id, audit, "Organization.create", &org.id, now).await?;
                        join.insert(0, (org.id.clone(), "admin".to_owned()));
                        Some(org)
                    }
                    None => None,
                };
                let mut members = Vec::with_capacity(join.len());
                for (org, role) in &join {
                    let id = new_id();
                    Self::insert_tx(&mut tx, &id, org, Kind::User, &e.doc, &[], Some(role), now, audit).await?;
                    members.push((org.clone(), id));
                }
                let account = sqlx::query("select id, password_hash from account where email_norm = $1")
                    .bind(e.email.to_lowercase())
                    .fetch_one(&mut *tx)
                    .await?;
                let account_id: String = account.try_get("id")?;
                let has_password = account.try_get::<Option<String>, _>("password_hash")?.is_some();
                sqlx::query(
                    "update account set given_name = coalesce(given_name, $2), family_name = coalesce(family_name, $3), updated_at = $4 where id = $1",
                )
                .bind(&account_id)
                .bind(&e.given_name)
                .bind(&e.family_name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let setup_sent = match (&e.setup, has_password) {
                    (Some(link), false) => {
                        Self::write_setup(&mut tx, &account_id, link, now).await?;
                        true
                    }
                    _ => false,
                };
                tx.commit().await?;
                Ok(Enrolled { account_id, founded, members, setup_sent })
            }

            async fn send_setup(&self, account_id: &str, link: &SetupLink, now: i64) -> Result<()> {
                let mut tx = self.write.begin().await?;
                Self::write_setup(&mut tx, account_id, link, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn open_setup(&self, digest: &str, now: i64) -> Result<Option<Account>> {
                sqlx::query(
                    "select a.id, a.email, a.given_name, a.family_name, a.password_hash, a.last_active_at \
                     from account_setup s join account a on a.id = s.account_id \
                     where s.secret_digest = $1 and s.used_at is null and s.expires_at > $2",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.read)
                .await?
                .map(|r| Self::account_row(&r))
                .transpose()
            }

            async fn claim_setup(&self, digest: &str, now: i64) -> Result<Option<String>> {
                sqlx::query(
                    "update account_setup set used_at = $2, updated_at = $2 \
                     where secret_digest = $1 and used_at is null and expires_at > $2 returning account_id",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.write)
                .await?
                .map(|r| r.try_get("account_id"))
                .transpose()
                .map_err(Error::from)
            }

            async fn finish_setup(
                &self,
                account: &str,
                given_name: &str,
                family_name: &str,
                password_hash: &str,
                now: i64,
            ) -> Result<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "update account set given_name = $2, family_name = $3, password_hash = $4, updated_at = $5 where id = $1",
                )
                .bind(account)
                .bind(given_name)
                .bind(family_name)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Every other link to this account stops working, as do its sessions.
                Self::end_links(&mut tx, account, now).await?;
                Self::end_sessions(&mut tx, account, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn account_for_email(&self, email: &str, now: i64) -> Result<Account> {
                let mut conn = self.write.acquire().await?;
                let id = Self::ensure_account(&mut conn, email, now).await?;
                let row = sqlx::query(
                    "select id, email, given_name, family_name, password_hash, last_active_at from account where id = $1",
                )
                .bind(&id)
                .fetch_one(&mut *conn)
                .await?;
                Self::account_row(&row)
            }

            async fn set_provider_admin(&self, account_id: &str, on: bool, now: i64) -> Result<bool> {
                let done = if on {
                    sqlx::query("insert into provider_admin (account_id, granted_at) values ($1, $2) on conflict (account_id) do nothing")
                        .bind(account_id)
                        .bind(now)
                        .execute(&self.write)
                        .await?
                } else {
                    sqlx::query("delete from provider_admin where account_id = $1")
                        .bind(account_id)
                        .execute(&self.write)
                        .await?
                };
                Ok(done.rows_affected() == 1)
            }

            async fn is_provider_admin(&self, account_id: &str) -> Result<bool> {
                Ok(sqlx::query("select account_id from provider_admin where account_id = $1")
                    .bind(account_id)
                    .fetch_optional(&self.read)
                    .await?
                    .is_some())
            }

            async fn provider_admins(&self) -> Result<Vec<Account>> {
                sqlx::query(
                    "select a.id, a.email, a.given_name, a.family_name, a.password_hash, a.last_active_at \
                     from provider_admin p join account a on a.id = p.account_id order by a.email_norm",
                )
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(Self::account_row)
                .collect()
            }

            async fn set_account_names(&self, account_id: &str, given_name: Option<&str>, family_name: Option<&str>, now: i64) -> Result<()> {
                let done = sqlx::query("update account set given_name = $2, family_name = $3, updated_at = $4 where id = $1")
                    .bind(account_id)
                    .bind(given_name)
                    .bind(family_name)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::not_found("no such account"));
                }
                Ok(())
            }
        }
    };
}

for_both!(people);
