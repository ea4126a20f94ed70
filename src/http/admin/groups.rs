//! Teams (SCIM Groups) as the admin API shows them: list, create, rename and change members,
//! delete.

#[allow(unused_imports)]
use super::*;
use std::collections::HashMap;

pub(super) fn group_json(rec: &crate::store::Record, members: Option<Vec<String>>) -> Value {
    let mut v = json!({
        "id": rec.id,
        "displayName": rec.doc.get("displayName"),
        "updatedAt": crate::service::render::timestamp(rec.updated_at),
    });
    if let Some(m) = members {
        v["members"] = json!(m);
    }
    v
}

/// A page of the organization's teams, each with its member count (one query for the page).
pub(super) async fn list_groups(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Query(p): Query<Paging>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    let Json(mut page) = list_page(&st, &t, Kind::Group, &p, |g| group_json(g, None)).await?;
    let ids: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["id"].as_str().map(str::to_owned))
        .collect();
    let counts: HashMap<String, i64> = st
        .store
        .member_counts(&t.org_id, &ids)
        .await?
        .into_iter()
        .collect();
    for g in page["items"].as_array_mut().into_iter().flatten() {
        let n = g["id"].as_str().and_then(|id| counts.get(id)).copied();
        g["memberCount"] = json!(n.unwrap_or(0));
    }
    Ok(Json(page))
}

/// Most members on one page of `GET /orgs/{slug}/groups/{id}`.
pub const MAX_GROUP_PAGE: i64 = 200;

#[derive(Deserialize)]
pub(super) struct GroupPageQuery {
    count: Option<i64>,
    /// Where the previous page ended (its `nextCursor`); none for the first page.
    cursor: Option<String>,
}

/// One team: its name, member count and a page of its members (as the member list shows them),
/// in the order they joined the organization, paged by cursor.
pub(super) async fn get_group(
    State(st): State<AppState>,
    Scoped(a): MemberOf,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<GroupPageQuery>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    let count = q.count.unwrap_or(50);
    if !(1..=MAX_GROUP_PAGE).contains(&count) {
        return Err(invalid(
            "count",
            format!("count must be from 1 to {MAX_GROUP_PAGE}"),
        ));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            crate::scim::search::decode_cursor(c).map_err(|e| AdminError(e.on_field("cursor")))?
        }
    };
    let Some(rec) = st.store.get(&t.org_id, Kind::Group, &id).await? else {
        return Err(
            Error::not_found(format!("no group with id {id:?} in this organization")).into(),
        );
    };
    let member_count = st
        .store
        .member_counts(&t.org_id, std::slice::from_ref(&rec.id))
        .await?
        .first()
        .map_or(0, |c| c.1);
    let page = st
        .store
        .list_members(
            &t.org_id,
            &crate::store::MemberQuery {
                search: None,
                active: None,
                admin: None,
                group: Some(rec.id.clone()),
                after,
                count,
                short_walk: 0,
            },
        )
        .await?;
    let members = members_json(&st, &t.org_id, &page.records).await?;
    let mut v = group_json(&rec, None);
    v["memberCount"] = json!(member_count);
    v["members"] = json!(members);
    if page.records.len() as i64 == count {
        if let Some(last) = page.records.last() {
            v["nextCursor"] = json!(crate::scim::search::encode_cursor(
                last.created_at,
                &last.id
            ));
        }
    }
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupBody {
    pub display_name: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub add_members: Vec<String>,
    #[serde(default)]
    pub remove_members: Vec<String>,
}

pub(super) fn member_values(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

/// Creates a team: the same data as a SCIM Group. Members must be members of the organization.
pub(super) async fn create_group(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    body: Option<Json<GroupBody>>,
) -> Result<(StatusCode, Json<Value>)> {
    let t = a.tenant;
    let Some(Json(g)) = body else {
        return Err(invalid(
            "displayName",
            "the body must be a JSON object with a displayName",
        ));
    };
    let rec = create_group_as(&st, &t, g).await?;
    let members = st.store.members(&t.org_id, &rec.id).await?;
    Ok((StatusCode::CREATED, Json(group_json(&rec, Some(members)))))
}

/// Creates a team with its checks, for the admin API and the console alike.
pub async fn create_group_as(
    st: &AppState,
    t: &Tenant,
    g: GroupBody,
) -> Result<crate::store::Record> {
    let name = g.display_name.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(invalid("displayName", "displayName is required"));
    }
    let group = json!({"displayName": name, "members": member_values(&g.members)});
    st.provisioning
        .create(t, Kind::Group, &group)
        .await
        .map_err(|e| field_of(e, "members"))
}

/// A store refusal about members (unknown ids) names the field; a name clash is a conflict.
pub(super) fn field_of(e: Error, field: &'static str) -> AdminError {
    if e.kind() == crate::error::ErrorKind::Invalid {
        AdminError(e.on_field(field))
    } else {
        AdminError(e)
    }
}

/// Renames a team and adds or removes members, all or nothing.
pub(super) async fn change_group(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
    body: Option<Json<GroupBody>>,
) -> Result<Json<Value>> {
    let t = a.tenant;
    let Some(Json(g)) = body else {
        return Err(invalid("displayName", "the body must be a JSON object"));
    };
    let rec = change_group_as(&st, &t, &id, g).await?;
    let members = st.store.members(&t.org_id, &rec.id).await?;
    Ok(Json(group_json(&rec, Some(members))))
}

/// Renames a team and adds or removes members, all or nothing: for the admin API and the
/// console alike.
pub async fn change_group_as(
    st: &AppState,
    t: &Tenant,
    id: &str,
    g: GroupBody,
) -> Result<crate::store::Record> {
    let mut ops = Vec::new();
    if let Some(name) = g.display_name {
        ops.push(json!({"op": "replace", "path": "displayName", "value": name}));
    }
    if !g.add_members.is_empty() {
        ops.push(json!({"op": "add", "path": "members", "value": member_values(&g.add_members)}));
    }
    if !g.remove_members.is_empty() {
        ops.push(
            json!({"op": "remove", "path": "members", "value": member_values(&g.remove_members)}),
        );
    }
    if ops.is_empty() {
        return Err(invalid(
            "displayName",
            "nothing to change: give displayName, addMembers or removeMembers",
        ));
    }
    let patch = json!({"schemas": [PATCH_OP], "Operations": ops});
    st.provisioning
        .patch(t, Kind::Group, id, &patch, None)
        .await
        .map_err(|e| field_of(e, "addMembers"))
}

pub(super) async fn delete_group(
    State(st): State<AppState>,
    Scoped(a): AdminOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let t = a.tenant;
    st.provisioning.delete(&t, Kind::Group, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
