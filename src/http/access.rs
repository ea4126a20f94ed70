//! Authentication and access for the admin API and the console: who a bearer token names, and
//! the organization a path's `{slug}` names with the caller's rights there checked by
//! [`crate::service::access::check`] before a handler runs.

use super::errors::AdminError;
use super::AppState;
use crate::domain::Role;
use crate::error::Error;
use crate::service::access::check;
pub use crate::service::access::{Caller, Need};
use crate::service::Tenant;
use crate::store::Org;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

type Result<T> = std::result::Result<T, AdminError>;

/// Who a bearer token identifies: a provider admin token, or a signed access token whose
/// session is still open (logout and password changes close sessions at once, on every replica).
async fn identify(st: &AppState, token: &str) -> std::result::Result<Option<Caller>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    if token.split('.').count() == 3 {
        let now = st.clock.now();
        let Some(claims) = st.keys().await?.verify(token, now) else {
            return Ok(None);
        };
        if !st.store.session_open(&claims.sid, &claims.sub, now).await? {
            return Ok(None);
        }
        let Some(acct) = st.store.account(&claims.sub).await? else {
            return Ok(None);
        };
        return Ok(Some(person(st, acct, claims.sid).await?));
    }
    let found = st
        .store
        .admin_token_by_digest(&crate::token::digest(token))
        .await?;
    Ok(found
        .filter(|t| t.revoked_at.is_none())
        .map(|t| Caller::Provider {
            id: t.id,
            name: t.name,
        }))
}

/// The caller a signed-in account is, in session `session` (an access token's or a browser's):
/// a provider admin when the operator made the account one.
pub async fn person(
    st: &AppState,
    acct: crate::store::Account,
    session: String,
) -> std::result::Result<Caller, Error> {
    let provider_admin = st.store.is_provider_admin(&acct.id).await?;
    let name = [acct.given_name, acct.family_name]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Caller::Person {
        account: acct.id,
        session,
        email: acct.email,
        name,
        provider_admin,
    })
}

pub async fn authenticate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = super::extract::bearer(req.headers(), false).to_owned();
    match identify(&st, &token).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(None) => AdminError::from(Error::unauthorized(
            "sign in first (POST /admin/v1/login) and send Authorization: Bearer <accessToken>, \
             or use a provider admin token; this token is unknown, expired or revoked",
        ))
        .into_response(),
        Err(e) => AdminError::from(e).into_response(),
    }
}

/// What a caller may do in one organization, checked for one operation.
pub struct Access {
    pub caller: Caller,
    pub org: Org,
    pub tenant: Tenant,
    /// The caller's own membership there (people only).
    pub me: Option<String>,
    pub admin: bool,
}

/// The organization a path's `{slug}` names, with the caller's rights there checked before the
/// handler runs: [`AdminOf`] needs its admin role, [`MemberOf`] any active membership.
pub struct Scoped<const ADMIN: bool>(pub Access);
pub type AdminOf = Scoped<true>;
pub type MemberOf = Scoped<false>;

impl<const ADMIN: bool> axum::extract::FromRequestParts<AppState> for Scoped<ADMIN> {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Error::unauthorized("sign in first"))?;
        let params = axum::extract::RawPathParams::from_request_parts(parts, st)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("path parameters: {e}")))?;
        let slug = params
            .iter()
            .find(|(name, _)| *name == "slug")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no {{slug}} in the route")))?;
        let need = if ADMIN { Need::Admin } else { Need::Member };
        Ok(Scoped(
            access(st, &caller, &slug, need, &parts.headers).await?,
        ))
    }
}

/// Checks the caller's rights in the organization a path names. A person who is not an active
/// member gets the same 403 whether or not the organization exists.
pub async fn access(
    st: &AppState,
    caller: &Caller,
    slug: &str,
    need: Need,
    headers: &axum::http::HeaderMap,
) -> Result<Access> {
    let found = match caller {
        Caller::Provider { .. } => None,
        Caller::Person { account, .. } => st
            .store
            .memberships_of(account)
            .await?
            .into_iter()
            .find(|m| m.org.slug == slug && m.active),
    };
    let admin = check(caller, found.as_ref(), slug, need)? == Role::Admin;
    let (org, me) = match found {
        Some(m) => {
            // Activity is per membership, noted at most once a minute: reads stay reads.
            let now = st.clock.now();
            if m.last_active_at.is_none_or(|t| now - t > 60_000_000) {
                st.store.touch_membership(&m.member_id, now).await?;
            }
            (m.org, Some(m.member_id))
        }
        // Without a membership only a provider admin passes the check: any organization.
        None => (org(st, slug).await?, None),
    };
    let tenant = Tenant {
        org_id: org.id.clone(),
        org_slug: org.slug.clone(),
        actor: caller.actor(),
        request_id: super::extract::request_id(headers),
    };
    Ok(Access {
        caller: caller.clone(),
        org,
        tenant,
        me,
        admin,
    })
}

/// The organization a slug names, or 404.
pub async fn org(st: &AppState, slug: &str) -> Result<Org> {
    Ok(st
        .store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization {slug:?}")))?)
}
