//! Provisioning tokens as an organization's admins manage them: create (the secret is shown
//! once), rotate (a new token beside the old, so the identity provider can be switched without
//! downtime) and revoke. Every change is in the audit log, in the change's own transaction.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{Audit, DynStore, Org, TokenInfo};

/// Most tokens an organization may have that are not revoked (expired ones count until revoked).
pub const MAX_ACTIVE: usize = 50;
/// Longest expiry, in days.
pub const MAX_DAYS: i64 = 36_500;
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// A label (a token's or an organization's name), trimmed: 1–200 characters, not blank, no
/// control characters (listings are tab-separated). The message says what is wrong.
pub fn check_label(label: &str) -> std::result::Result<String, String> {
    let t = label.trim();
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.chars().count() > 200 {
        return Err("must be at most 200 characters".into());
    }
    if t.chars().any(char::is_control) {
        return Err("must not contain control characters (tabs, newlines, …)".into());
    }
    Ok(t.to_owned())
}

/// `expiresInDays`: 1 to [`MAX_DAYS`], or none for a token that does not expire.
pub fn check_days(days: Option<i64>) -> std::result::Result<Option<i64>, String> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(Some(d)),
        Some(d) => Err(format!(
            "expiresInDays must be a whole number from 1 to {MAX_DAYS}; got {d}"
        )),
    }
}

/// Whether a token works now.
pub fn status(t: &TokenInfo, now: i64) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

async fn room_for_one(store: &DynStore, org: &Org) -> Result<()> {
    let live = store
        .list_tokens(&org.id)
        .await?
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .count();
    if live >= MAX_ACTIVE {
        return Err(Error::conflict(format!(
            "organization {:?} already has {live} tokens that are not revoked, the most allowed; revoke one first",
            org.slug
        )));
    }
    Ok(())
}

/// A new token; returns it with its secret, which is never shown again.
pub async fn create(
    store: &DynStore,
    clock: &Clock,
    org: &Org,
    name: &str,
    days: Option<i64>,
    audit: &Audit,
) -> Result<(TokenInfo, String)> {
    room_for_one(store, org).await?;
    let now = clock.now();
    let secret = crate::token::generate();
    let expires_at = days.map(|d| now + d * DAY_MICROS);
    let info = store
        .create_org_token(
            org,
            name,
            &crate::token::digest(&secret),
            expires_at,
            None,
            now,
            audit,
        )
        .await?;
    tracing::info!(org = %org.slug, token = %info.id, actor = %audit.actor, "provisioning token created");
    Ok((info, secret))
}

/// A new token with the old one's name, beside it: both work until the old one is revoked.
/// Its expiry is `days` from now, or else as long as the old token's lifetime was.
pub async fn rotate(
    store: &DynStore,
    clock: &Clock,
    org: &Org,
    old_id: &str,
    days: Option<i64>,
    audit: &Audit,
) -> Result<(TokenInfo, String)> {
    let old = store.org_token(&org.id, old_id).await?.ok_or_else(|| {
        Error::not_found(format!("no token {old_id} in organization {:?}", org.slug))
    })?;
    if old.revoked_at.is_some() {
        return Err(Error::conflict(
            "this token is revoked and cannot be rotated; create a new token instead",
        ));
    }
    room_for_one(store, org).await?;
    let now = clock.now();
    let expires_at = match days {
        Some(d) => Some(now + d * DAY_MICROS),
        None => old
            .expires_at
            .map(|e| now + (e - old.created_at).max(DAY_MICROS)),
    };
    let secret = crate::token::generate();
    let info = store
        .create_org_token(
            org,
            &old.name,
            &crate::token::digest(&secret),
            expires_at,
            Some(&old.id),
            now,
            audit,
        )
        .await?;
    tracing::info!(org = %org.slug, token = %info.id, replaces = %old.id, actor = %audit.actor, "provisioning token rotated");
    Ok((info, secret))
}

/// Revokes a token of the organization (revoking it again changes nothing).
pub async fn revoke(
    store: &DynStore,
    clock: &Clock,
    org: &Org,
    id: &str,
    audit: &Audit,
) -> Result<TokenInfo> {
    let info = store
        .revoke_org_token(&org.id, id, clock.now(), audit)
        .await?
        .ok_or_else(|| Error::not_found(format!("no token {id} in organization {:?}", org.slug)))?;
    tracing::info!(org = %org.slug, token = %info.id, actor = %audit.actor, "provisioning token revoked");
    Ok(info)
}
