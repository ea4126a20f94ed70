//! Invitations: one to twenty at once, a CSV import, listing, changing a pending one's role and
//! groups, revoking and resending.

#[allow(unused_imports)]
use super::*;

pub(super) fn check_role(role: &Value) -> Result<String> {
    match role.as_str() {
        Some(r) => Ok(Role::parse("role", r)?.as_str().to_owned()),
        None => Err(invalid(
            "role",
            format!("role must be admin or member; got {role}"),
        )),
    }
}

/// Most groups one invitation names.
pub const MAX_INVITATION_GROUPS: usize = 100;

/// The groups a body names, each a Group of the organization given by its id or by its name
/// (matched case-insensitively, as the CSV import matches them), as ids without repeats.
pub(super) async fn check_groups(st: &AppState, org: &str, groups: &Value) -> Result<Vec<String>> {
    let wrong = || invalid("groups", "groups must be a list of group ids or names");
    let given: Vec<String> = match groups {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(|s| s.trim().to_owned()))
            .collect::<Option<_>>()
            .ok_or_else(wrong)?,
        _ => return Err(wrong()),
    };
    if given.len() > MAX_INVITATION_GROUPS {
        return Err(invalid(
            "groups",
            format!(
                "{} groups; an invitation names at most {MAX_INVITATION_GROUPS}",
                given.len()
            ),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(given.len());
    for g in &given {
        if g.is_empty() || g.chars().count() > crate::domain::MAX_NAME_CHARS {
            return Err(invalid(
                "groups",
                format!(
                    "each group is an id or a name of 1 to {} characters",
                    crate::domain::MAX_NAME_CHARS
                ),
            ));
        }
        crate::domain::refuse_control("groups", g)?;
        let id = match st.store.get(org, Kind::Group, g).await? {
            Some(rec) => rec.id,
            None => group_named(st, org, g).await?.ok_or_else(|| {
                invalid(
                    "groups",
                    format!("no group with id or name {g:?} in this organization"),
                )
            })?,
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The id of the organization's group with this name, compared case-insensitively (group
/// names are unique that way).
async fn group_named(st: &AppState, org: &str, name: &str) -> Result<Option<String>> {
    let text = format!("displayName eq {}", Value::String(name.to_owned()));
    let q = ListQuery {
        filter: Some(crate::scim::filter::parse(&text)?),
        sort: None,
        start_index: 1,
        count: 1,
        after: None,
    };
    Ok(st
        .store
        .list(org, Kind::Group, &q)
        .await?
        .records
        .into_iter()
        .next()
        .map(|g| g.id))
}

/// One invitation's fields, checked. Names are required of the API's invitations; the console's
/// invitations of several addresses at once carry none (as the CSV import's do).
pub async fn invitee(
    st: &AppState,
    org: &str,
    v: &Value,
    names_required: bool,
) -> Result<crate::service::invitations::Invitee> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            "email",
            "each invitation must be a JSON object with email, firstName and lastName",
        ));
    };
    let email = Email::parse(
        "email",
        obj.get("email").and_then(Value::as_str).unwrap_or_default(),
    )?;
    let name = |key: &'static str| -> Result<String> {
        match obj.get(key).and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() => Ok(Name::parse(key, n)?.into_string()),
            None | Some("") if !names_required => Ok(String::new()),
            _ => Err(invalid(
                key,
                format!("{key} is required (a non-empty string)"),
            )),
        }
    };
    Ok(crate::service::invitations::Invitee {
        email: email.into_string(),
        first_name: name("firstName")?,
        last_name: name("lastName")?,
        role: match obj.get("role") {
            None | Some(Value::Null) => "member".to_owned(),
            Some(r) => check_role(r)?,
        },
        groups: check_groups(st, org, obj.get("groups").unwrap_or(&Value::Null)).await?,
    })
}

/// One invitation (the document's view of what `invitee` reads).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct NewInvitation {
    #[schema(format = Email)]
    email: String,
    first_name: String,
    last_name: String,
    #[schema(value_type = crate::http::views::RoleName, inline, required = false, default = "member")]
    role: Option<String>,
    /// Groups of the organization, each by its id or by its name (matched case-insensitively); at most 100
    #[schema(value_type = Vec<String>, required = false, max_items = 100)]
    groups: Option<Vec<String>>,
}

/// Up to twenty invitations at once.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct NewInvitations {
    #[schema(max_items = 20)]
    invitations: Vec<NewInvitation>,
}

/// One invitation, or a list of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum InvitationRequest {
    One(NewInvitation),
    Many(NewInvitations),
}

/// A change to a pending invitation: its role and/or groups.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct InvitationChange {
    #[schema(value_type = crate::http::views::RoleName, inline, required = false)]
    role: Option<String>,
    #[schema(value_type = Vec<String>, required = false)]
    groups: Option<Vec<String>>,
}

/// Creates one invitation (`{email, firstName, lastName, role?, groups?}`) or up to
/// [`MAX_INVITATIONS`] (`{"invitations": [...]}`). In a batch each address stands alone, as the
/// CSV import's rows do: every item gets its own `result` (201, or the refusal's status with its
/// `error`, `message` and `field`), and a bad address or a conflict does not stop the others.
/// The batch answers 201 when it created at least one invitation, else 200.
#[utoipa::path(
    post,
    path = "/orgs/{slug}/invitations",
    tag = "invitations",
    summary = "Invite one person, or up to 20 with `{\"invitations\": [...]}`; each gets an email with an accept link valid for 7 days",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
    ),
    request_body = InvitationRequest,
    responses(
        (status = 200, description = "A list of which no invitation was created: `items` with each refusal and its `result`", body = crate::http::views::InvitationBatch),
        (status = 201, description = "The invitation; for a list of which at least one was created, `items` with each invitation or its refusal (`error`, `message`, `field` and the `email` as given), each with `result` (201 or the refusal's status)", body = crate::http::views::InvitationsCreated),
        (status = 400, description = "Invalid input (`field` names it), unknown group ids (`groups`), or more than 20 invitations (use the CSV import)", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization", body = crate::http::views::ErrorBody),
        (status = 409, description = "The email already has an active membership or a pending invitation", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn create_invitations(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<Value>>,
) -> Result<(StatusCode, Json<Value>)> {
    let Access { org, tenant: t, .. } = a;
    let Some(Json(body)) = body else {
        return Err(invalid(
            "email",
            "the body must be a JSON object: one invitation or {\"invitations\": [...]}",
        ));
    };
    let (batch, items) = match body.get("invitations") {
        Some(Value::Array(items)) => (true, items.clone()),
        Some(_) => return Err(invalid("invitations", "invitations must be a list")),
        None => (false, vec![body]),
    };
    if items.is_empty() {
        return Err(invalid("invitations", "invitations must not be empty"));
    }
    if items.len() > MAX_INVITATIONS {
        return Err(invalid(
            "invitations",
            format!(
                "{} invitations; at most {MAX_INVITATIONS} in one request: use the CSV import for more",
                items.len()
            ),
        ));
    }
    // Every item is checked before any is created.
    let mut checked = Vec::with_capacity(items.len());
    for item in &items {
        match invitee(&st, &org.id, item, true).await {
            Err(e) if !batch => return Err(e),
            outcome => checked.push(outcome),
        }
    }
    let audit = t.audit();
    let links = links(&st);
    let inviter = a.caller.display();
    let mut out = Vec::with_capacity(checked.len());
    let mut created = 0;
    for (item, outcome) in items.iter().zip(checked) {
        let now = st.clock.now();
        let made = match outcome {
            Ok(i) => crate::service::invitations::invite(
                &st.store, &st.clock, &org, &inviter, &audit, i, &links,
            )
            .await
            .map_err(AdminError::from),
            Err(e) => Err(e),
        };
        match made {
            Ok((inv, _)) => {
                created += 1;
                // The link goes only by email: no answer carries a secret that sets credentials.
                let mut v = with_delivery(&st, invitation_json(&inv, now));
                if batch {
                    v["result"] = json!(201);
                }
                out.push(v);
            }
            Err(e) if !batch => return Err(e),
            Err(e) => {
                let (status, mut v) = e.parts();
                v["result"] = json!(status.as_u16());
                // The address as given, so each refusal can be matched to its line.
                v["email"] = item.get("email").cloned().unwrap_or(Value::Null);
                out.push(v);
            }
        }
    }
    if batch {
        let status = if created > 0 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, Json(json!({"items": out}))))
    } else {
        Ok((StatusCode::CREATED, Json(out.remove(0))))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportParams {
    /// Check the file without inviting anyone
    #[param(value_type = bool, required = false, default = false)]
    dry_run: Option<bool>,
}

/// A CSV of up to 1000 people to invite (columns `email` and `group membership`): valid rows
/// are invited, every other row is reported with its line and reason; `dry_run=true` only
/// checks. The same file uploaded twice invites nobody twice.
#[utoipa::path(
    post,
    path = "/orgs/{slug}/invitations/import",
    tag = "invitations",
    summary = "Invite up to 1000 people from a CSV (columns `email` and `group membership`); every skipped row is reported with its line and reason",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ImportParams,
    ),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, description = "Who was (or would be) invited, and each skipped row", body = crate::http::views::ImportReport),
        (status = 400, description = "No email column, more than 1000 rows, or an empty body; `field` is `file`", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn import_invitations(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Query(p): Query<ImportParams>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let Access { org, tenant: t, .. } = a;
    if body.is_empty() {
        return Err(invalid("file", "send the CSV file as the request body"));
    }
    let audit = t.audit();
    let report = crate::service::invitations::import_csv(
        &st.store,
        &st.clock,
        &org,
        &a.caller.display(),
        &audit,
        &body,
        &links(&st),
        p.dry_run.unwrap_or(false),
    )
    .await
    .map_err(|e| AdminError(e.on_field("file")))?;
    let mut report = report;
    // Links go only by email.
    for i in &mut report.invited {
        if let Some(o) = i.as_object_mut() {
            o.remove("link");
        }
    }
    Ok(Json(with_delivery(&st, report.to_json())))
}

#[utoipa::path(
    get,
    path = "/orgs/{slug}/invitations",
    tag = "invitations",
    summary = "List the organization's invitations (pending ones past their expiry show as `expired`)",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
    ),
    responses(
        (status = 200, description = "The invitations, oldest first", body = crate::http::views::InvitationList),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn list_invitations(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
) -> Result<Json<Value>> {
    let org = a.org;
    let now = st.clock.now();
    let items: Vec<Value> = st
        .store
        .list_invitations(&org.id)
        .await?
        .iter()
        .map(|i| invitation_json(i, now))
        .collect();
    Ok(Json(with_delivery(&st, json!({"items": items}))))
}

/// Changes a pending invitation's role and/or groups; the email cannot change (revoke and
/// invite again).
#[utoipa::path(
    patch,
    path = "/orgs/{slug}/invitations/{id}",
    tag = "invitations",
    summary = "Change a pending invitation's role and/or groups (the email cannot change); recorded in the audit log as `Invitation.update`",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The invitation id"),
    ),
    request_body = InvitationChange,
    responses(
        (status = 200, description = "The invitation after the change", body = crate::http::views::InvitationView),
        (status = 400, description = "Invalid input; `field` names it (`email` when the body tries to change it; `groups` when an id is not a group of this organization)", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or invitation", body = crate::http::views::ErrorBody),
        (status = 409, description = "The invitation is no longer pending: accepted, revoked or expired (resend an expired one first)", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn change_invitation(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let Some(Json(Value::Object(body))) = body else {
        return Err(invalid(
            "role",
            "the body must be a JSON object with role and/or groups",
        ));
    };
    if body.contains_key("email") {
        return Err(invalid(
            "email",
            "an invitation's email cannot be changed: revoke it and invite the new address",
        ));
    }
    let inv =
        change_invitation_as(&st, &a, &headers, &id, body.get("role"), body.get("groups")).await?;
    Ok(Json(invitation_json(&inv, st.clock.now())))
}

/// Changes a pending invitation's role and/or groups (each a group of the organization): for the
/// admin API and the console alike. An expired invitation is refused like an accepted or revoked
/// one (resending it makes it pending again); the change is audited as `Invitation.update`.
pub async fn change_invitation_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    id: &str,
    role: Option<&Value>,
    groups: Option<&Value>,
) -> Result<crate::store::Invitation> {
    need_admin(a)?;
    let org = &a.org;
    let change = crate::store::InvitationChange {
        role: role.map(check_role).transpose()?,
        groups: match groups {
            Some(g) => Some(check_groups(st, &org.id, g).await?),
            None => None,
        },
        ..Default::default()
    };
    if change.role.is_none() && change.groups.is_none() {
        return Err(invalid(
            "role",
            "nothing to change: give role and/or groups",
        ));
    }
    let current = st
        .store
        .get_invitation(&org.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("invitation {id} not found")))?;
    if current.status == "pending" && current.expires_at <= st.clock.now() {
        return Err(Error::conflict(
            "the invitation is expired; only a pending invitation can be changed (resend it first)",
        )
        .into());
    }
    invitation_change(st, org, &a.caller, headers, id, &change, None, "update").await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn invitation_change(
    st: &AppState,
    org: &Org,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    id: &str,
    change: &crate::store::InvitationChange,
    email: Option<&crate::email::OutboxMessage>,
    action: &str,
) -> Result<crate::store::Invitation> {
    let audit = crate::store::Audit {
        actor: caller.actor(),
        request_id: request_id(headers),
    };
    let inv = st
        .store
        .change_invitation(
            &org.id,
            id,
            change,
            email,
            &format!("Invitation.{action}"),
            st.clock.now(),
            &audit,
        )
        .await?;
    tracing::info!(org = %org.slug, invitation = %inv.id, action, "invitation changed");
    Ok(inv)
}

#[utoipa::path(
    post,
    path = "/orgs/{slug}/invitations/{id}/revoke",
    tag = "invitations",
    summary = "Revoke a pending invitation: its link stops working",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The invitation id"),
    ),
    responses(
        (status = 200, description = "The revoked invitation", body = crate::http::views::InvitationView),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or invitation", body = crate::http::views::ErrorBody),
        (status = 409, description = "The invitation is no longer pending", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn revoke_invitation(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let inv = revoke_invitation_as(&st, &a, &headers, &id).await?;
    Ok(Json(invitation_json(&inv, st.clock.now())))
}

/// Revokes an invitation: for the admin API and the console alike.
pub async fn revoke_invitation_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    id: &str,
) -> Result<crate::store::Invitation> {
    let change = crate::store::InvitationChange {
        status: Some("revoked".into()),
        ..Default::default()
    };
    invitation_change(st, &a.org, &a.caller, headers, id, &change, None, "revoke").await
}

/// Sends the invitation again with a new link (the old one stops working) and a new expiry.
#[utoipa::path(
    post,
    path = "/orgs/{slug}/invitations/{id}/resend",
    tag = "invitations",
    summary = "Send a pending invitation again with a new link (the old link stops working) and a new 7-day expiry",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The invitation id"),
    ),
    responses(
        (status = 200, description = "The invitation (with its new `link` only when the server has no SMTP configured)", body = crate::http::views::InvitationView),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or invitation", body = crate::http::views::ErrorBody),
        (status = 409, description = "The invitation is no longer pending", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn resend_invitation(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let inv = resend_invitation_as(&st, &a, &headers, &id).await?;
    Ok(Json(with_delivery(
        &st,
        invitation_json(&inv, st.clock.now()),
    )))
}

/// Sends an invitation again with a new link and expiry: for the admin API and the console.
pub async fn resend_invitation_as(
    st: &AppState,
    a: &Access,
    headers: &axum::http::HeaderMap,
    id: &str,
) -> Result<crate::store::Invitation> {
    let org = &a.org;
    let current = st
        .store
        .get_invitation(&org.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("invitation {id} not found")))?;
    let secret = crate::token::generate();
    let link = crate::http::invite::link(st, &secret);
    let expires_at = st.clock.now() + st.config.link_ttl;
    let draft = crate::store::Invitation {
        expires_at,
        ..current
    };
    let msg = crate::service::invitations::email(org, &a.caller.display(), &draft, &link);
    let change = crate::store::InvitationChange {
        secret_digest: Some(crate::token::digest(&secret)),
        expires_at: Some(expires_at),
        ..Default::default()
    };
    invitation_change(
        st,
        org,
        &a.caller,
        headers,
        id,
        &change,
        Some(&msg),
        "resend",
    )
    .await
}
