//! Setting and using an account's credentials: the rules behind the setup page, the invitation
//! page, a signed-in person's own invitations and the operator's `scimd account set-password`.
//!
//! Every path here starts from a proof that the caller controls the address: a link that was
//! mailed to it, a session of the account (which itself came from such a proof), or the
//! operator, who can read the database anyway. Each single-use link is claimed (a conditional
//! update) before any password is hashed or checked, and the hashing slot is taken before the
//! claim, so 64 concurrent posts of one link run one hash, and a request refused for want of a
//! slot has used nothing up.

use super::hashing::Hasher;
use super::people::{self, password_problem, Attempt};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use crate::store::{AcceptAccount, Audit, DynStore, Invitation, Org, Record};
use serde_json::json;

/// How long one accept holds its claim on an invitation.
const CLAIM_MICROS: i64 = 60 * 1_000_000;

/// What the setup page's form carries.
pub struct NewPassword {
    pub given_name: String,
    pub family_name: String,
    pub password: String,
}

impl NewPassword {
    /// What is wrong with the form, in words for the person filling it in.
    pub fn problem(&self) -> Option<String> {
        if self.given_name.trim().is_empty() || self.family_name.trim().is_empty() {
            Some("Enter your given name and family name.".to_owned())
        } else {
            password_problem(&self.password).map(|p| capitalized(&p))
        }
    }
}

/// `the password…` → `The password….`
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

/// Sets names and password from a setup or reset link; returns the account. 404 when the link
/// is not open (unknown, used, expired, or ended by a password change), 503 when no hashing
/// slot is free.
pub async fn set_password_by_link(
    store: &DynStore,
    hasher: &Hasher,
    clock: &Clock,
    secret: &str,
    form: NewPassword,
) -> Result<String> {
    if let Some(problem) = form.problem() {
        return Err(Error::bad(crate::error::ScimType::InvalidValue, problem));
    }
    let slot = hasher.slot().await?;
    let digest = crate::token::digest(secret);
    let Some(account) = store.claim_setup(&digest, clock.now()).await? else {
        return Err(Error::not_found("the link is no longer open"));
    };
    let hash = slot.hash(form.password).await?;
    store
        .finish_setup(
            &account,
            form.given_name.trim(),
            form.family_name.trim(),
            &hash,
            clock.now(),
        )
        .await?;
    tracing::info!(account = %account, "password set from a mailed link");
    Ok(account)
}

/// How accepting an invitation by its link ended.
pub enum Accepted {
    Joined(Record),
    /// The link leads to no open invitation (or another accept holds it right now).
    Gone,
    /// The account has a password and this was not it.
    WrongPassword,
    /// Over the sign-in limits: wait this many seconds.
    Limited(i64),
    /// The form needs fixing.
    Invalid(String),
}

/// Accepts the invitation a mailed link leads to. A person with a password enters it (counted
/// like a sign-in); anyone else chooses names and a password, which the link's delivery
/// entitles them to.
#[allow(clippy::too_many_arguments)]
pub async fn accept_by_link(
    store: &DynStore,
    hasher: &Hasher,
    clock: &Clock,
    inv: &Invitation,
    ip: &str,
    given_name: &str,
    family_name: &str,
    password: &str,
) -> Result<Accepted> {
    let existing = store
        .account_by_email(&inv.email)
        .await?
        .filter(|a| a.password_hash.is_some());
    let new = NewPassword {
        given_name: given_name.to_owned(),
        family_name: family_name.to_owned(),
        password: password.to_owned(),
    };
    if existing.is_none() {
        if let Some(problem) = new.problem() {
            return Ok(Accepted::Invalid(problem));
        }
    }
    let slot = hasher.slot().await?;
    let now = clock.now();
    let until = now + CLAIM_MICROS;
    if !store.claim_invitation(&inv.id, now, until).await? {
        return Ok(Accepted::Gone);
    }
    let outcome = async {
        let account = match &existing {
            Some(acct) => {
                // The same limits as signing in: the link is not a way to guess passwords.
                drop(slot);
                match people::attempt(
                    store,
                    hasher,
                    &inv.email,
                    ip,
                    now,
                    password,
                    acct.password_hash.clone(),
                )
                .await?
                {
                    Attempt::Limited(wait) => return Ok(Accepted::Limited(wait)),
                    Attempt::Wrong => return Ok(Accepted::WrongPassword),
                    Attempt::Right => {}
                }
                // The person's own names, as they gave them, over the inviter's spelling.
                AcceptAccount {
                    given_name: acct
                        .given_name
                        .clone()
                        .unwrap_or_else(|| inv.first_name.clone()),
                    family_name: acct
                        .family_name
                        .clone()
                        .unwrap_or_else(|| inv.last_name.clone()),
                    password_hash: None,
                }
            }
            None => AcceptAccount {
                given_name: new.given_name.trim().to_owned(),
                family_name: new.family_name.trim().to_owned(),
                password_hash: Some(slot.hash(new.password.clone()).await?),
            },
        };
        let audit = Audit {
            actor: format!("invitation:{}", inv.id),
            request_id: None,
        };
        let rec = accept(store, clock, inv, &account, &audit).await?;
        Ok(Accepted::Joined(rec))
    }
    .await;
    if !matches!(outcome, Ok(Accepted::Joined(_))) {
        store.release_invitation(&inv.id, until).await?;
    }
    outcome
}

/// Writes the membership an invitation offers (one transaction; see `InvitationStore::accept_invitation`).
async fn accept(
    store: &DynStore,
    clock: &Clock,
    inv: &Invitation,
    account: &AcceptAccount,
    audit: &Audit,
) -> Result<Record> {
    let body = json!({
        "userName": inv.email,
        "name": {"givenName": account.given_name, "familyName": account.family_name},
        "displayName": format!("{} {}", account.given_name, account.family_name).trim(),
        "emails": [{"value": inv.email, "primary": true}],
        "active": true,
    });
    let doc = crate::scim::resource::normalize(Kind::User.schema(), &body)?;
    let rec = store
        .accept_invitation(inv, &doc, account, clock.now(), audit)
        .await?;
    tracing::info!(invitation = %inv.id, member = %rec.id, "invitation accepted");
    Ok(rec)
}

/// The pending invitations addressed to a signed-in person's address. The account's address is
/// verified (its password came from a mailed link, or it signed in with a provider's verified
/// claim), so without email delivery this is how people find their invitations.
pub async fn my_invitations(
    store: &DynStore,
    clock: &Clock,
    account_id: &str,
) -> Result<Vec<(Invitation, Org)>> {
    let Some(acct) = store.account(account_id).await? else {
        return Err(Error::unauthorized("the account no longer exists"));
    };
    if acct.email.is_empty() {
        return Ok(Vec::new());
    }
    store.invitations_for(&acct.email, clock.now()).await
}

/// Accepts one of the signed-in person's invitations.
pub async fn accept_mine(
    store: &DynStore,
    clock: &Clock,
    account_id: &str,
    invitation_id: &str,
) -> Result<(Org, Record)> {
    let (inv, org) = my_invitations(store, clock, account_id)
        .await?
        .into_iter()
        .find(|(i, _)| i.id == invitation_id)
        .ok_or_else(|| {
            Error::not_found(format!(
                "no open invitation {invitation_id} for your address"
            ))
        })?;
    let acct = store
        .account(account_id)
        .await?
        .ok_or_else(|| Error::unauthorized("the account no longer exists"))?;
    let account = AcceptAccount {
        given_name: acct.given_name.unwrap_or_else(|| inv.first_name.clone()),
        family_name: acct.family_name.unwrap_or_else(|| inv.last_name.clone()),
        password_hash: None,
    };
    let audit = Audit {
        actor: format!("account:{account_id}"),
        request_id: None,
    };
    let rec = accept(store, clock, &inv, &account, &audit).await?;
    Ok((org, rec))
}

/// The operator's way in (`scimd account set-password`): sets the password of the account with
/// this address, creating the account (with no organization) when there is none. Whoever runs
/// the binary can read and write the database anyway, so this proves nothing new.
pub async fn set_password_as_operator(
    store: &DynStore,
    clock: &Clock,
    email: &str,
    password: &str,
) -> Result<String> {
    if !crate::domain::valid_email(email) {
        return Err(Error::bad(
            crate::error::ScimType::InvalidValue,
            format!("{email:?} is not a valid email address"),
        ));
    }
    if let Some(problem) = password_problem(password) {
        return Err(Error::bad(crate::error::ScimType::InvalidValue, problem));
    }
    let acct = store.account_for_email(email, clock.now()).await?;
    let hash = super::hashing::hash_password(password)?;
    store.set_password(&acct.id, &hash, clock.now()).await?;
    tracing::info!(account = %acct.id, "password set by the operator; every session ended");
    Ok(acct.id)
}
