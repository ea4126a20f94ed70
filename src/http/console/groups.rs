//! The Groups page: the organization's teams with their member counts, and one team's page to
//! rename it, add and remove members, or delete it. Changes go through the admin API's own
//! `create_group_as` and `change_group_as` (the same SCIM Group writes an identity provider
//! makes); members see the page read-only.

// A refusal here is the page to answer with, handed straight back to the handler: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

use super::users::{list_all, PAGE_SIZE};
use super::{capitalise, page, refusal, AdminForm, Chrome, InOrg, MemberOfPage, OrgPage};
use crate::http::admin::{self, GroupBody};
use crate::http::auth::redirect;
use crate::http::AppState;
use crate::scim::schema::Kind;
use crate::store::ListQuery;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

/// Members listed on a group's page.
const MEMBERS_SHOWN: usize = 100;
/// Addresses the add-member field suggests.
const CHOICES: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{slug}/groups", get(groups_page).post(create))
        .route("/o/{slug}/groups/{id}", get(group_page).post(change))
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    chrome: Chrome,
    title: String,
    slug: String,
    admin: bool,
    name: String,
    error: Option<String>,
    total_text: String,
    /// `(id, name, member count)`.
    groups: Vec<(String, String, usize)>,
    next_url: Option<String>,
}

#[derive(Deserialize)]
struct GroupsQuery {
    after: Option<String>,
}

fn display_name(rec: &crate::store::Record) -> String {
    rec.doc
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or(&rec.id)
        .to_owned()
}

async fn list_view(
    st: &AppState,
    o: &InOrg,
    after: Option<(i64, String)>,
) -> Result<GroupsPage, crate::error::Error> {
    let t = &o.access.tenant;
    let q = ListQuery {
        after,
        ..list_all(PAGE_SIZE)
    };
    let found = st.provisioning.list(t, Kind::Group, &q).await?;
    let mut groups = Vec::with_capacity(found.records.len());
    for g in &found.records {
        let count = st.store.members(&t.org_id, &g.id).await?.len();
        groups.push((g.id.clone(), display_name(g), count));
    }
    let slug = &o.access.org.slug;
    let next_url = (found.records.len() as i64 == PAGE_SIZE)
        .then(|| found.records.last())
        .flatten()
        .map(|g| format!("/o/{slug}/groups?after={}.{}", g.created_at, g.id));
    Ok(GroupsPage {
        chrome: o.chrome("groups"),
        title: format!("Groups of {}", o.access.org.name),
        slug: slug.clone(),
        admin: o.access.admin,
        name: String::new(),
        error: None,
        total_text: format!(
            "{} {}",
            found.total,
            if found.total == 1 { "group" } else { "groups" }
        ),
        groups,
        next_url,
    })
}

async fn groups_page(
    State(st): State<AppState>,
    OrgPage(o): MemberOfPage,
    Query(q): Query<GroupsQuery>,
) -> Response {
    let after = q.after.as_deref().and_then(super::users::cursor);
    match list_view(&st, &o, after).await {
        Ok(view) => page(StatusCode::OK, &view),
        Err(e) => crate::http::invite::internal(e),
    }
}

async fn create(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    AdminForm { o, f }: AdminForm,
) -> Response {
    let name = f.text("name");
    let made = admin::create_group_as(
        &st,
        &o.access.tenant,
        GroupBody {
            display_name: Some(name.trim().to_owned()),
            ..Default::default()
        },
    )
    .await;
    match made {
        Ok(rec) => redirect(&format!("/o/{slug}/groups/{}", rec.id)),
        Err(e) => {
            let (status, text) = refusal(&e);
            match list_view(&st, &o, None).await {
                Ok(mut view) => {
                    view.error = Some(capitalise(&text));
                    view.name = name;
                    page(status, &view)
                }
                Err(e) => crate::http::invite::internal(e),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    chrome: Chrome,
    title: String,
    slug: String,
    id: String,
    name: String,
    admin: bool,
    /// `(member id, name, email, label)`.
    members: Vec<(String, String, String, String)>,
    more: bool,
    choices: Vec<String>,
    add_email: String,
    notice: Option<String>,
    ok: bool,
}

async fn group_view(st: &AppState, o: &InOrg, id: &str) -> Result<GroupPage, crate::error::Error> {
    let t = &o.access.tenant;
    let rec = st.provisioning.get(t, Kind::Group, id).await?;
    let ids = st.store.members(&t.org_id, id).await?;
    let mut members = Vec::new();
    for m in ids.iter().take(MEMBERS_SHOWN) {
        if let Ok(u) = st.provisioning.get(t, Kind::User, m).await {
            let r = super::users::row(&u, None);
            members.push((u.id.clone(), r.name, r.email, r.label));
        }
    }
    let choices = if o.access.admin {
        let users = st
            .provisioning
            .list(t, Kind::User, &list_all(CHOICES))
            .await?;
        users
            .records
            .iter()
            .map(|u| super::users::row(u, None).email)
            .filter(|e| !e.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let name = display_name(&rec);
    Ok(GroupPage {
        chrome: o.chrome("groups"),
        title: format!("Group {name}"),
        slug: o.access.org.slug.clone(),
        id: rec.id.clone(),
        name,
        admin: o.access.admin,
        more: ids.len() > MEMBERS_SHOWN,
        members,
        choices,
        add_email: String::new(),
        notice: None,
        ok: true,
    })
}

/// The group's page, or the not-found page (also for another organization's group).
fn shown(o: &InOrg, view: Result<GroupPage, crate::error::Error>, status: StatusCode) -> Response {
    match view {
        Ok(view) => page(status, &view),
        Err(e) => {
            let (status, text) = refusal(&e.into());
            super::message(
                o.chrome("groups"),
                status,
                "Group not found",
                &capitalise(&text),
                Some((&format!("/o/{}/groups", o.access.org.slug), "All groups")),
            )
        }
    }
}

async fn group_page(
    State(st): State<AppState>,
    OrgPage(o): MemberOfPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let view = group_view(&st, &o, &id).await;
    shown(&o, view, StatusCode::OK)
}

/// The member of this organization an email names (its `userName` or an address of it).
async fn member_by_email(
    st: &AppState,
    o: &InOrg,
    email: &str,
) -> Result<Option<String>, crate::error::Error> {
    let text = format!(
        "userName eq {0} or emails.value eq {0}",
        Value::String(email.trim().to_owned())
    );
    let q = ListQuery {
        filter: Some(crate::scim::filter::parse(&text)?),
        ..list_all(1)
    };
    let found = st
        .provisioning
        .list(&o.access.tenant, Kind::User, &q)
        .await?;
    Ok(found.records.first().map(|r| r.id.clone()))
}

/// Rename, add a member, remove a member, or delete: one form each on the group's page.
async fn change(
    State(st): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    AdminForm { o, f }: AdminForm,
) -> Response {
    let t = &o.access.tenant;
    let email = f.text("email");
    let outcome: Result<String, String> = match f.get("action") {
        Some("delete") if f.get("sure") == Some("yes") => {
            return match st.provisioning.delete(t, Kind::Group, &id, None).await {
                Ok(()) => redirect(&format!("/o/{slug}/groups")),
                Err(e) => shown(&o, Err(e), StatusCode::OK),
            };
        }
        Some("delete") => Err("Tick the box to confirm the deletion.".into()),
        Some("rename") => {
            let g = GroupBody {
                display_name: Some(f.text("name").trim().to_owned()),
                ..Default::default()
            };
            admin::change_group_as(&st, t, &id, g)
                .await
                .map(|_| "Renamed.".to_owned())
                .map_err(|e| capitalise(&refusal(&e).1))
        }
        Some("add") => match member_by_email(&st, &o, &email).await {
            Ok(Some(member)) => {
                let g = GroupBody {
                    add_members: vec![member],
                    ..Default::default()
                };
                admin::change_group_as(&st, t, &id, g)
                    .await
                    .map(|_| format!("Added {}.", email.trim()))
                    .map_err(|e| capitalise(&refusal(&e).1))
            }
            Ok(None) => Err(format!(
                "Nobody in this organization has the address {:?}.",
                email.trim()
            )),
            Err(e) => Err(capitalise(&refusal(&e.into()).1)),
        },
        Some("remove") => {
            let g = GroupBody {
                remove_members: vec![f.text("member")],
                ..Default::default()
            };
            admin::change_group_as(&st, t, &id, g)
                .await
                .map(|_| "Removed from the group.".to_owned())
                .map_err(|e| capitalise(&refusal(&e).1))
        }
        _ => Err("Unknown action.".into()),
    };
    let view = group_view(&st, &o, &id).await.map(|mut v| {
        match outcome {
            Ok(m) => v.notice = Some(m),
            Err(m) => {
                v.notice = Some(m);
                v.ok = false;
                v.add_email = email;
            }
        }
        v
    });
    shown(&o, view, StatusCode::OK)
}
