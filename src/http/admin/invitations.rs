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

/// Creates one invitation (`{email, firstName, lastName, role?, groups?}`) or up to
/// [`MAX_INVITATIONS`] (`{"invitations": [...]}`). In a batch each address stands alone, as the
/// CSV import's rows do: every item gets its own `result` (201, or the refusal's status with its
/// `error`, `message` and `field`), and a bad address or a conflict does not stop the others.
/// The batch answers 201 when it created at least one invitation, else 200.
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

#[derive(Deserialize)]
pub(super) struct ImportParams {
    dry_run: Option<bool>,
}

/// A CSV of up to 1000 people to invite (columns `email` and `group membership`): valid rows
/// are invited, every other row is reported with its line and reason; `dry_run=true` only
/// checks. The same file uploaded twice invites nobody twice.
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
