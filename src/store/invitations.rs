//! Invitations to join an organization: created with their email in one transaction, changed
//! (role, teams, resend, revoke) while pending, claimed and accepted once.

use super::backend::for_both;
use super::{new_id, Audit, Org, Record};
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::Row;

/// An invitation to join an organization, as stored (never the link secret itself).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `admin` or `member`.
    pub role: String,
    /// Team ids the membership joins on acceptance.
    pub groups: Vec<String>,
    /// `pending`, `accepted` or `revoked` (an expired invitation stays `pending`).
    pub status: String,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub invited_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new invitation holds; the caller has validated it.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub groups: Vec<String>,
    pub secret_digest: String,
    pub expires_at: i64,
}

/// A change to a pending invitation; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct InvitationChange {
    pub role: Option<String>,
    pub groups: Option<Vec<String>>,
    /// `revoked` to revoke.
    pub status: Option<String>,
    /// A new link secret's digest (resend): the old link stops working.
    pub secret_digest: Option<String>,
    pub expires_at: Option<i64>,
}

/// How an accepted invitation's account is set up: a new password (and names) for an account
/// without one, or nothing for an account whose password the caller has verified.
#[derive(Debug, Clone)]
pub struct AcceptAccount {
    pub given_name: String,
    pub family_name: String,
    /// An Argon2id PHC string; `None` when the account already has a password.
    pub password_hash: Option<String>,
}

/// Invitations.
#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// Creates an invitation and enqueues its email in one transaction. 409 when the email
    /// already has an active membership or a pending invitation in the organization.
    async fn create_invitation(
        &self,
        org: &str,
        inv: &NewInvitation,
        email: &crate::email::OutboxMessage,
        now: i64,
        audit: &Audit,
    ) -> Result<Invitation>;
    /// Changes a pending invitation, enqueues `email` if given and records `action` in the
    /// audit log, in one transaction. 404 when there is no such invitation, 409 when it is no
    /// longer pending.
    #[allow(clippy::too_many_arguments)]
    async fn change_invitation(
        &self,
        org: &str,
        id: &str,
        change: &InvitationChange,
        email: Option<&crate::email::OutboxMessage>,
        action: &str,
        now: i64,
        audit: &Audit,
    ) -> Result<Invitation>;
    async fn get_invitation(&self, org: &str, id: &str) -> Result<Option<Invitation>>;
    async fn list_invitations(&self, org: &str) -> Result<Vec<Invitation>>;
    /// A pending, unexpired invitation by the digest of its link secret, with its organization.
    async fn open_invitation(&self, digest: &str, now: i64) -> Result<Option<(Invitation, Org)>>;
    /// Claims the invitation (only one caller can) and creates the membership with the invited
    /// role and groups, linking or setting up the account, in one transaction. 404 when the
    /// invitation is no longer pending or has expired.
    async fn accept_invitation(
        &self,
        inv: &Invitation,
        doc: &Map<String, Value>,
        account: &AcceptAccount,
        now: i64,
        audit: &Audit,
    ) -> Result<Record>;
    /// Takes a short claim (until `until`) on a pending, unexpired invitation, so that only one
    /// of concurrent accepts hashes or checks a password; false when it is taken or not open.
    async fn claim_invitation(&self, id: &str, now: i64, until: i64) -> Result<bool>;
    /// Gives a claim back (the password was wrong, or the accept failed).
    async fn release_invitation(&self, id: &str, until: i64) -> Result<()>;
    /// Pending, unexpired invitations addressed to this email, with their organizations.
    async fn invitations_for(&self, email: &str, now: i64) -> Result<Vec<(Invitation, Org)>>;
}

macro_rules! invitations {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
            fn invitation(row: &<$db as sqlx::Database>::Row) -> Result<Invitation> {
                let groups: String = row.try_get("groups")?;
                Ok(Invitation {
                    id: row.try_get("id")?,
                    organization_id: row.try_get("organization_id")?,
                    email: row.try_get("email")?,
                    first_name: row.try_get("first_name")?,
                    last_name: row.try_get("last_name")?,
                    role: row.try_get("role")?,
                    groups: serde_json::from_str(&groups).map_err(|e| Error::Internal(e.into()))?,
                    status: row.try_get("status")?,
                    expires_at: row.try_get("expires_at")?,
                    accepted_at: row.try_get("accepted_at")?,
                    invited_by: row.try_get("invited_by")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }
        }

        #[async_trait]
        impl InvitationStore for $store {
            async fn create_invitation(
                &self,
                org: &str,
                inv: &NewInvitation,
                email: &crate::email::OutboxMessage,
                now: i64,
                audit: &Audit,
            ) -> Result<Invitation> {
                let id = new_id();
                let norm = inv.email.to_lowercase();
                let mut tx = self.write.begin().await?;
                let member = sqlx::query(
                    "select m.active from membership m join account a on a.id = m.account_id \
                     where m.organization_id = $1 and a.email_norm = $2",
                )
                .bind(org)
                .bind(&norm)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(m) = member {
                    // A deactivated member is switched back on by an admin, never by an invitation.
                    return Err(Error::conflict(if m.try_get::<bool, _>("active")? {
                        format!("{} is already an active member of this organization", inv.email)
                    } else {
                        format!("{} is a deactivated member of this organization; reactivate the membership instead of inviting", inv.email)
                    }));
                }
                let groups = serde_json::to_string(&inv.groups).map_err(|e| Error::Internal(e.into()))?;
                sqlx::query(
                    "insert into invitation (id, organization_id, email, email_norm, first_name, last_name, role, groups, \
                     status, secret_digest, expires_at, invited_by, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12, $12)",
                )
                .bind(&id)
                .bind(org)
                .bind(&inv.email)
                .bind(&norm)
                .bind(&inv.first_name)
                .bind(&inv.last_name)
                .bind(&inv.role)
                .bind(&groups)
                .bind(&inv.secret_digest)
                .bind(inv.expires_at)
                .bind(&audit.actor)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                $enqueue(&mut *tx, email, now).await?;
                Self::record_audit(&mut tx, org, audit, "Invitation.create", &id, now).await?;
                tx.commit().await?;
                Ok(Invitation {
                    id,
                    organization_id: org.to_owned(),
                    email: inv.email.clone(),
                    first_name: inv.first_name.clone(),
                    last_name: inv.last_name.clone(),
                    role: inv.role.clone(),
                    groups: inv.groups.clone(),
                    status: "pending".into(),
                    expires_at: inv.expires_at,
                    accepted_at: None,
                    invited_by: audit.actor.clone(),
                    created_at: now,
                    updated_at: now,
                })
            }

            async fn change_invitation(
                &self,
                org: &str,
                id: &str,
                change: &InvitationChange,
                email: Option<&crate::email::OutboxMessage>,
                action: &str,
                now: i64,
                audit: &Audit,
            ) -> Result<Invitation> {
                let groups = change
                    .groups
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| Error::Internal(e.into()))?;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "update invitation set role = coalesce($3, role), groups = coalesce($4, groups), \
                     status = coalesce($5, status), secret_digest = coalesce($6, secret_digest), \
                     expires_at = coalesce($7, expires_at), updated_at = $8 \
                     where organization_id = $1 and id = $2 and status = 'pending' returning *",
                )
                .bind(org)
                .bind(id)
                .bind(&change.role)
                .bind(&groups)
                .bind(&change.status)
                .bind(&change.secret_digest)
                .bind(change.expires_at)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    let status: Option<String> = sqlx::query("select status from invitation where organization_id = $1 and id = $2")
                        .bind(org)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get("status"))
                        .transpose()?;
                    return Err(match status {
                        None => Error::not_found(format!("invitation {id} not found")),
                        Some(s) => Error::conflict(format!("the invitation is {s}; only a pending invitation can be changed")),
                    });
                };
                let inv = Self::invitation(&row)?;
                if let Some(msg) = email {
                    $enqueue(&mut *tx, msg, now).await?;
                }
                Self::record_audit(&mut tx, org, audit, action, id, now).await?;
                tx.commit().await?;
                Ok(inv)
            }

            async fn get_invitation(&self, org: &str, id: &str) -> Result<Option<Invitation>> {
                sqlx::query("select * from invitation where organization_id = $1 and id = $2")
                    .bind(org)
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(Self::invitation)
                    .transpose()
            }

            async fn list_invitations(&self, org: &str) -> Result<Vec<Invitation>> {
                sqlx::query("select * from invitation where organization_id = $1 order by created_at, id")
                    .bind(org)
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(Self::invitation)
                    .collect()
            }

            async fn open_invitation(&self, digest: &str, now: i64) -> Result<Option<(Invitation, Org)>> {
                let Some(row) = sqlx::query(
                    "select * from invitation where secret_digest = $1 and status = 'pending' and expires_at > $2",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.read)
                .await?
                else {
                    return Ok(None);
                };
                let inv = Self::invitation(&row)?;
                let org = sqlx::query("select id, slug, name, created_at from organization where id = $1")
                    .bind(&inv.organization_id)
                    .fetch_one(&self.read)
                    .await?;
                Ok(Some((inv, Self::org(&org)?)))
            }

            async fn accept_invitation(
                &self,
                inv: &Invitation,
                doc: &Map<String, Value>,
                account: &AcceptAccount,
                now: i64,
                audit: &Audit,
            ) -> Result<Record> {
                let mut tx = self.write.begin().await?;
                // The claim: of any number of concurrent accepts, one updates the row.
                let claimed = sqlx::query(
                    "update invitation set status = 'accepted', accepted_at = $2, updated_at = $2 \
                     where id = $1 and status = 'pending' and expires_at > $2",
                )
                .bind(&inv.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() != 1 {
                    return Err(Error::not_found("the invitation is no longer open"));
                }
                let org = inv.organization_id.as_str();
                // One membership per account and organization: an invitation never adds a second
                // one, and never switches a deactivated one back on. It is closed instead.
                let member = sqlx::query(
                    "select m.id from membership m join account a on a.id = m.account_id \
                     where m.organization_id = $1 and a.email_norm = $2",
                )
                .bind(org)
                .bind(inv.email.to_lowercase())
                .fetch_optional(&mut *tx)
                .await?;
                if member.is_some() {
                    sqlx::query("update invitation set status = 'revoked', accepted_at = null, updated_at = $2 where id = $1")
                        .bind(&inv.id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Err(Error::conflict("you already have a membership in this organization; the invitation is closed"));
                }
                let id = new_id();
                Self::insert_tx(&mut tx, &id, org, Kind::User, doc, &[], Some(&inv.role), now, audit).await?;
                // The account the membership was linked to gets the person's names, and a
                // password when it had none (an existing password was verified by the caller).
                sqlx::query(
                    "update account set given_name = coalesce(given_name, $2), family_name = coalesce(family_name, $3), \
                     password_hash = coalesce(password_hash, $4), updated_at = $5 \
                     where id = (select account_id from membership where id = $1)",
                )
                .bind(&id)
                .bind(&account.given_name)
                .bind(&account.family_name)
                .bind(&account.password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Groups deleted since the invitation was made are skipped.
                for group in &inv.groups {
                    sqlx::query(
                        "insert into team_member (team_id, membership_id, created_at, updated_at) \
                         select id, $1, $2, $2 from team where id = $3 and organization_id = $4 on conflict do nothing",
                    )
                    .bind(&id)
                    .bind(now)
                    .bind(group)
                    .bind(org)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::record_audit(&mut tx, org, audit, "Invitation.accept", &inv.id, now).await?;
                tx.commit().await?;
                Ok(Record {
                    id,
                    doc: doc.clone(),
                    groups: None,
                    role: Some(inv.role.clone()),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                })
            }

            async fn claim_invitation(&self, id: &str, now: i64, until: i64) -> Result<bool> {
                Ok(sqlx::query(
                    "update invitation set claimed_until = $3 where id = $1 and status = 'pending' and expires_at > $2 \
                     and (claimed_until is null or claimed_until <= $2)",
                )
                .bind(id)
                .bind(now)
                .bind(until)
                .execute(&self.write)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn release_invitation(&self, id: &str, until: i64) -> Result<()> {
                sqlx::query("update invitation set claimed_until = null where id = $1 and claimed_until = $2")
                    .bind(id)
                    .bind(until)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn invitations_for(&self, email: &str, now: i64) -> Result<Vec<(Invitation, Org)>> {
                let rows = sqlx::query(
                    "select i.*, o.slug as org_slug, o.name as org_name, o.created_at as org_created_at \
                     from invitation i join organization o on o.id = i.organization_id \
                     where i.email_norm = $1 and i.status = 'pending' and i.expires_at > $2 order by i.created_at, i.id limit 100",
                )
                .bind(email.to_lowercase())
                .bind(now)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        let inv = Self::invitation(r)?;
                        let org = Org {
                            id: inv.organization_id.clone(),
                            slug: r.try_get("org_slug")?,
                            name: r.try_get("org_name")?,
                            created_at: r.try_get("org_created_at")?,
                        };
                        Ok((inv, org))
                    })
                    .collect()
            }
        }
    };
}

for_both!(invitations);
