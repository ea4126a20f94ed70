//! Members: the directory (a page of SCIM Users as members), changing a member's role, status
//! or names, removing members, and adding a person by email.

#[allow(unused_imports)]
use super::*;

/// Members as this organization sees them: when each last acted here. Nothing global (the
/// account's id, its activity elsewhere, whether it has a password) is shown to an organization.
pub(super) async fn members_json(
    st: &AppState,
    org: &str,
    recs: &[crate::store::Record],
) -> Result<Vec<Value>> {
    let ids: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
    let details = st.store.member_details(org, &ids).await?;
    Ok(recs
        .iter()
        .map(|r| {
            let mut v = member_json(r);
            let last = details
                .iter()
                .find(|d| d.member_id == r.id)
                .and_then(|d| d.last_active_at);
            v["lastActiveAt"] = json!(last.map(crate::service::render::timestamp));
            v
        })
        .collect())
}

pub(super) fn member_json(rec: &crate::store::Record) -> Value {
    let doc = &rec.doc;
    let email = doc
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|e| {
            e.iter()
                .find(|v| v["primary"] == true)
                .or_else(|| e.first())
        })
        .and_then(|v| v.get("value"))
        .cloned()
        .unwrap_or(Value::Null);
    let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
    let groups: Vec<Value> = rec
        .groups
        .iter()
        .flatten()
        .map(|g| json!({"id": g.id, "displayName": g.display}))
        .collect();
    json!({
        "id": rec.id,
        "userName": doc.get("userName"),
        "displayName": doc.get("displayName"),
        "email": email,
        "role": rec.role.as_deref().unwrap_or("member"),
        "status": if active { "active" } else { "inactive" },
        "groups": groups,
        "updatedAt": crate::service::render::timestamp(rec.updated_at),
    })
}

pub(super) fn page_query(start_index: i64, count: i64) -> ListQuery {
    ListQuery {
        filter: None,
        sort: None,
        start_index,
        count,
        after: None,
    }
}

/// One page of an organization's Users or Groups, each shown by `show`.
pub(super) async fn list_page(
    st: &AppState,
    t: &Tenant,
    kind: Kind,
    p: &Paging,
    show: impl Fn(&crate::store::Record) -> Value,
) -> Result<Json<Value>> {
    let (start_index, count) = p.bounds();
    let page = st
        .provisioning
        .list(t, kind, &page_query(start_index, count))
        .await?;
    let items: Vec<Value> = page.records.iter().map(show).collect();
    Ok(Json(
        json!({"totalResults": page.total, "startIndex": start_index, "items": items}),
    ))
}

#[utoipa::path(
    get,
    path = "/orgs/{slug}/members",
    tag = "members",
    summary = "List members with role, status and groups",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        Paging,
    ),
    responses(
        (status = 200, description = "A page of members", body = crate::http::views::MemberPage),
        (status = 400, description = "`invalid_request`: a query parameter is not of its type (`startIndex` and `count` are integers)", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the member (or admin) role in the organization; a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or member", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn list_members(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Query(p): Query<Paging>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    let (start_index, count) = p.bounds();
    let page = st
        .provisioning
        .list(&t, Kind::User, &page_query(start_index, count))
        .await?;
    let items = members_json(&st, &t.org_id, &page.records).await?;
    Ok(Json(
        json!({"totalResults": page.total, "startIndex": start_index, "items": items}),
    ))
}

/// One member, as the list shows them.
pub(super) async fn one_member(st: &AppState, t: &Tenant, id: &str) -> Result<Value> {
    let rec = st.provisioning.get(t, Kind::User, id).await?;
    Ok(members_json(st, &t.org_id, &[rec]).await?.remove(0))
}

/// A change to a member: any of these fields.
#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    /// Needs the admin role
    #[schema(value_type = crate::http::views::RoleName, inline, required = false)]
    pub role: Option<String>,
    /// Needs the admin role; an admin cannot deactivate themselves
    #[schema(value_type = bool, required = false)]
    pub active: Option<bool>,
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200)]
    pub given_name: Option<String>,
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200)]
    pub family_name: Option<String>,
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200)]
    pub display_name: Option<String>,
}

/// The refusal for an admin acting on their own membership.
pub(super) fn not_on_yourself(what: &str) -> AdminError {
    Error::forbidden(format!(
        "an admin cannot {what} themselves; another admin of the organization can"
    ))
    .into()
}

/// Changes a member: role and active (admins only; an admin cannot deactivate themselves) and
/// profile names (admins, or the member themselves: a member edits only their own profile).
#[utoipa::path(
    patch,
    path = "/orgs/{slug}/members/{id}",
    tag = "members",
    summary = "Change a member's role, activate / deactivate the membership (admins), or edit the member's profile names (admins, or a member their own)",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The member's SCIM User id"),
    ),
    request_body = MemberChange,
    responses(
        (status = 200, description = "The member after the change", body = crate::http::views::Member),
        (status = 400, description = "Invalid input; `field` names it", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: role and active need the admin role; a member may edit only their own profile; an admin cannot deactivate themselves; or not an active member of the organization", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or member", body = crate::http::views::ErrorBody),
        (status = 409, description = "`last_admin`: the organization's last active admin cannot be demoted or deactivated", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn change_member(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Path((_, id)): Path<(String, String)>,
    body: Option<Json<MemberChange>>,
) -> Result<Json<Value>> {
    let Some(Json(change)) = body else {
        return Err(invalid(
            "role",
            "the body must be a JSON object with role, active, givenName, familyName or displayName",
        ));
    };
    let rec = change_member_as(&st, &a, &id, change).await?;
    Ok(Json(one_member(&st, &a.tenant, &rec.id).await?))
}

/// A member change with its rules, for the admin API and the console alike.
pub async fn change_member_as(
    st: &AppState,
    a: &Access,
    id: &str,
    change: MemberChange,
) -> Result<crate::store::Record> {
    let own = a.me.as_deref() == Some(id);
    let mut value = serde_json::Map::new();
    if change.role.is_some() || change.active.is_some() {
        if !a.admin {
            return Err(Error::forbidden(format!(
                "changing a member's role or status needs the admin role in organization {:?}; your role there is member",
                a.org.slug
            ))
            .into());
        }
        if own && change.active == Some(false) {
            return Err(not_on_yourself("deactivate"));
        }
    } else if !a.admin && !own {
        return Err(Error::forbidden(format!(
            "a member may edit only their own profile; editing another member needs the admin role in organization {:?}",
            a.org.slug
        ))
        .into());
    }
    if let Some(role) = change.role {
        let role = Role::parse("role", &role)?;
        value.insert(format!("{ORGANIZATION_USER}:role"), json!(role.as_str()));
    }
    if let Some(active) = change.active {
        value.insert("active".into(), json!(active));
    }
    for (field, path, v) in [
        ("givenName", "name.givenName", change.given_name),
        ("familyName", "name.familyName", change.family_name),
        ("displayName", "displayName", change.display_name),
    ] {
        if let Some(v) = v {
            value.insert(path.into(), json!(Name::parse(field, &v)?.as_str()));
        }
    }
    if value.is_empty() {
        return Err(invalid(
            "role",
            "nothing to change: give role, active, givenName, familyName or displayName",
        ));
    }
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": value}]});
    Ok(st
        .provisioning
        .patch(&a.tenant, Kind::User, id, &patch, None)
        .await?)
}

/// Removes a membership: the person's account and other memberships remain. An admin cannot
/// remove themselves.
#[utoipa::path(
    delete,
    path = "/orgs/{slug}/members/{id}",
    tag = "members",
    summary = "Remove a member (the membership only; the account and other memberships remain)",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The member's SCIM User id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists; an admin cannot remove themselves", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or member", body = crate::http::views::ErrorBody),
        (status = 409, description = "`last_admin`: the organization's last active admin cannot be removed", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn remove_member(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    remove(&st, &a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one membership, unless it is the caller's own.
pub async fn remove(st: &AppState, a: &Access, id: &str) -> Result<()> {
    if a.me.as_deref() == Some(id) {
        return Err(not_on_yourself("remove"));
    }
    Ok(st
        .provisioning
        .delete(&a.tenant, Kind::User, id, None)
        .await?)
}

/// The members to remove.
#[derive(Deserialize, ToSchema)]
pub(super) struct RemoveMany {
    #[schema(value_type = Vec<String>, required = true, max_items = 1000)]
    ids: Option<Vec<String>>,
}

/// Removes many members; each is removed or refused on its own, and the answer says which.
#[utoipa::path(
    post,
    path = "/orgs/{slug}/members/remove",
    tag = "members",
    summary = "Remove many members; each is removed or refused on its own",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
    ),
    request_body = RemoveMany,
    responses(
        (status = 200, description = "What was removed and what was refused", body = crate::http::views::RemoveResult),
        (status = 400, description = "Invalid input; `field` names it", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or member", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn remove_members(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<RemoveMany>>,
) -> Result<Json<Value>> {
    let ids = body.and_then(|Json(b)| b.ids).unwrap_or_default();
    if ids.is_empty() {
        return Err(invalid("ids", "ids must list at least one member id"));
    }
    if ids.len() > MAX_REMOVE {
        return Err(invalid(
            "ids",
            format!("{} ids; at most {MAX_REMOVE} in one request", ids.len()),
        ));
    }
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for id in ids {
        match remove(&st, &a, &id).await {
            Ok(()) => removed.push(id),
            Err(e) => {
                let (status, body) = e.parts();
                failed.push(json!({"id": id, "status": status.as_u16(), "error": body["error"], "message": body["message"]}));
            }
        }
    }
    Ok(Json(json!({"removed": removed, "failed": failed})))
}

/// A person to add, by email.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewMember {
    #[schema(value_type = String, required = true)]
    email: Option<String>,
    #[schema(value_type = crate::http::views::RoleName, inline, required = false)]
    role: Option<String>,
    #[schema(value_type = String, required = false)]
    given_name: Option<String>,
    #[schema(value_type = String, required = false)]
    family_name: Option<String>,
}

/// Adds a person to the organization with a role: their existing account (found by email) or a
/// new one, which gets an account-setup email. The membership is the same one SCIM sees, so an
/// IdP can take it over later.
#[utoipa::path(
    post,
    path = "/orgs/{slug}/members",
    tag = "members",
    summary = "Add a person (an existing account found by email, or a new one, which gets an account-setup email) to the organization with a role",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
    ),
    request_body = NewMember,
    responses(
        (status = 201, description = "The new member", body = crate::http::views::Member),
        (status = 400, description = "Invalid input; `field` names it", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization", body = crate::http::views::ErrorBody),
        (status = 409, description = "Already a member", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn add_member(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    headers: axum::http::HeaderMap,
    body: Option<Json<NewMember>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Some(Json(m)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object with an email",
        ));
    };
    let id = add_member_as(
        &st,
        &a,
        &headers,
        m.role.as_deref(),
        m.email,
        m.given_name,
        m.family_name,
    )
    .await?;
    // The same answer whether or not the address already had an account or a password: that
    // is the person's business, not this organization's.
    let v = one_member(&st, &a.tenant, &id).await?;
    Ok((StatusCode::CREATED, Json(with_delivery(&st, v))))
}

/// Adds a person by email with a role (`member` when none is given): for the admin API and the
/// console alike, after the caller's admin role is checked. An existing account becomes a member
/// at once; a new one gets an account-setup email. The new member's id.
pub async fn add_member_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    role: Option<&str>,
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
) -> Result<String> {
    need_admin(a)?;
    let role = check_role(&json!(role.unwrap_or("member")))?;
    let person = Person::check(email, given_name, family_name)?;
    let done = enrol(st, &a.caller, headers, &person, vec![(a.org.clone(), role)]).await?;
    done.members
        .into_iter()
        .next()
        .map(|(_, id)| id)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("enrolment made no membership")).into())
}

/// Adds a person to organizations with roles in one transaction, with an account-setup email
/// when their account has no password yet. The link goes only by email.
pub(super) async fn enrol(
    st: &AppState,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    p: &Person,
    join: Vec<(Org, String)>,
) -> Result<crate::store::Enrolled> {
    let now = st.clock.now();
    let names: Vec<String> = join.iter().map(|(o, _)| o.name.clone()).collect();
    let link = crate::http::invite::setup_link(st);
    let url = link.url.clone();
    let email = crate::service::invitations::setup_email(
        &p.email,
        &caller.display(),
        &names,
        &url,
        link.expires_at,
    );
    let setup = link.stored(email);
    let join_ids = join
        .iter()
        .map(|(o, r)| (o.id.clone(), r.clone()))
        .collect();
    let e = enrolment(
        &p.email,
        p.given_name.clone(),
        p.family_name.clone(),
        None,
        join_ids,
        Some(setup),
    )?;
    let audit = crate::store::Audit {
        actor: caller.actor(),
        request_id: request_id(headers),
    };
    let done = st
        .store
        .enrol(&e, now, &audit)
        .await
        .map_err(|e| match e.kind() {
            crate::error::ErrorKind::Conflict(_) => AdminError::from(Error::conflict_of(
                crate::error::Conflict::Membership,
                format!("{} is already a member of {}", p.email, names.join(" or ")),
            )),
            _ => AdminError::from(e),
        })?;
    tracing::info!(actor = %caller.actor(), account = %done.account_id, orgs = done.members.len(), setup = done.setup_sent, "person added");
    Ok(done)
}
