//! Organizations and accounts: listing and founding organizations, and a provider admin
//! creating an account with its memberships.

#[allow(unused_imports)]
use super::*;

/// Every organization for a provider admin (a token, or an account the operator made one); a
/// person's own, with their role and status.
#[utoipa::path(
    get,
    path = "/orgs",
    tag = "organizations",
    summary = "List organizations: all of them for a provider admin (a token, or a person whose account the operator made one with `scimd admin grant`), the person's own memberships for anyone else",
    responses(
        (status = 200, description = "Organizations; for a person each item is a membership (the organization's fields with memberId, role and status)", body = crate::http::views::OrgList),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn list_orgs(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>> {
    let orgs: Vec<Value> = match &caller {
        Caller::Person {
            account,
            provider_admin: false,
            ..
        } => st
            .store
            .memberships_of(account)
            .await?
            .iter()
            .map(membership_json)
            .collect(),
        Caller::Provider { .. }
        | Caller::Person {
            provider_admin: true,
            ..
        } => st.store.list_orgs().await?.iter().map(org_json).collect(),
    };
    Ok(Json(json!({"items": orgs})))
}

/// A new organization.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewOrg {
    #[schema(value_type = String, required = true, pattern = "^[a-z0-9-]{1,63}$")]
    slug: Option<String>,
    /// Defaults to the slug
    #[schema(value_type = String, required = false, max_length = 200)]
    name: Option<String>,
}

/// Creates an organization. A person who creates one becomes its admin, in the same transaction.
#[utoipa::path(
    post,
    path = "/orgs",
    tag = "organizations",
    summary = "Create an organization; a person who creates one becomes its admin",
    request_body = NewOrg,
    responses(
        (status = 201, description = "Created", body = crate::http::views::OrgView),
        (status = 400, description = "Invalid input; `field` names it", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 409, description = "The slug is taken", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn create_org(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewOrg>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(body)) = body else {
        return Err(invalid(
            "slug",
            "the body must be a JSON object with a slug",
        ));
    };
    let slug = body.slug.unwrap_or_default();
    check_slug_field(&slug)?;
    let name = org_name(body.name, &slug)?;
    let org = match &caller {
        Caller::Provider { .. } => st.store.create_org(&slug, &name, st.clock.now()).await?,
        Caller::Person { account, .. } => {
            let acct = st
                .store
                .account(account)
                .await?
                .ok_or_else(|| Error::unauthorized("the signed-in account no longer exists"))?;
            let e = enrolment(
                &acct.email,
                acct.given_name,
                acct.family_name,
                Some((slug.clone(), name)),
                Vec::new(),
                None,
            )?;
            let audit = crate::store::Audit {
                actor: caller.actor(),
                request_id: request_id(&headers),
            };
            let done = st.store.enrol(&e, st.clock.now(), &audit).await?;
            done.founded
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("organization not created")))?
        }
    };
    tracing::info!(org = %org.slug, actor = %caller.actor(), "organization created");
    Ok((StatusCode::CREATED, Json(org_json(&org))))
}

/// A person's account and the memberships it starts with.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewAccount {
    #[schema(value_type = String, required = true, format = Email)]
    email: Option<String>,
    #[schema(value_type = String, required = false, max_length = 200)]
    given_name: Option<String>,
    #[schema(value_type = String, required = false, max_length = 200)]
    family_name: Option<String>,
    #[schema(value_type = Vec<NewAccountMembership>, required = true, min_items = 1, max_items = 50)]
    memberships: Option<Vec<NewAccountMembership>>,
}

/// A membership of a new account.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewAccountMembership {
    /// The organization's slug
    org: String,
    #[schema(value_type = crate::http::views::RoleName, inline, required = false, default = "member")]
    role: Option<String>,
}

/// Most organizations one account is created in at once.
pub const MAX_ACCOUNT_ORGS: usize = 50;

/// Creates a person's account in one or more organizations (a role for each; the caller must be
/// an admin of every one), all or nothing, with an account-setup email.
#[utoipa::path(
    post,
    path = "/accounts",
    tag = "organizations",
    summary = "Create a person's account (or find it by email) with memberships in one or more organizations, all or nothing; a new account gets an account-setup email. The caller must be an admin of every organization named",
    request_body = NewAccount,
    responses(
        (status = 201, description = "The account and its new memberships", body = crate::http::views::AccountCreated),
        (status = 400, description = "Invalid input (`field` names it), or an organization named twice", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an admin of every organization named (the message names it and the role needed)", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization", body = crate::http::views::ErrorBody),
        (status = 409, description = "Already a member of one of the organizations; nothing was created", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn create_account(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewAccount>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(b)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object with email, givenName, familyName and memberships",
        ));
    };
    let person = Person::check(b.email, b.given_name, b.family_name)?;
    let wanted = b.memberships.unwrap_or_default();
    if wanted.is_empty() || wanted.len() > MAX_ACCOUNT_ORGS {
        return Err(invalid(
            "memberships",
            format!("memberships must name 1 to {MAX_ACCOUNT_ORGS} organizations, as [{{\"org\": slug, \"role\": \"admin\"|\"member\"}}]"),
        ));
    }
    let mut join: Vec<(Org, String)> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let role = check_role(&json!(w.role.as_deref().unwrap_or("member")))?;
        let org = access(&st, &caller, &w.org, Need::Admin, &headers)
            .await?
            .org;
        if join.iter().any(|(o, _)| o.id == org.id) {
            return Err(invalid(
                "memberships",
                format!("organization {:?} is named twice", w.org),
            ));
        }
        join.push((org, role));
    }
    let done = enrol(&st, &caller, &headers, &person, join.clone()).await?;
    let members: Vec<Value> = done
        .members
        .iter()
        .zip(&join)
        .map(|((_, id), (org, role))| json!({"org": org.slug, "memberId": id, "role": role}))
        .collect();
    let v = json!({
        "email": person.email,
        "memberships": members,
    });
    Ok((StatusCode::CREATED, Json(with_delivery(&st, v))))
}
