//! The audit log: a page of an organization's entries (or a provider admin's view across
//! organizations), filtered by actor, action and target.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    org: Option<String>,
    // Not `#[serde(flatten)] Paging`: query strings carry no types, and flatten loses the
    // conversion of numbers.
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Keyset paging: present (even empty) asks for it, as RFC 9865 does for SCIM lists.
    cursor: Option<String>,
}

/// `GET /audit?org=SLUG`: the same log as `/orgs/{slug}/audit`. A person who is an admin of
/// exactly one organization may leave `org` out.
pub(super) async fn audit_of(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let slug = match (q.org.clone(), &caller) {
        (Some(slug), _) => slug,
        (None, Caller::Person { account, .. }) => {
            let admin_of: Vec<String> = st
                .store
                .memberships_of(account)
                .await?
                .into_iter()
                .filter(|m| m.active && m.role == "admin")
                .map(|m| m.org.slug)
                .collect();
            match <[String; 1]>::try_from(admin_of) {
                Ok([slug]) => slug,
                Err(_) => {
                    return Err(invalid(
                        "org",
                        "name the organization: GET /admin/v1/audit?org=SLUG",
                    ))
                }
            }
        }
        (None, Caller::Provider { .. }) => {
            return Err(invalid(
                "org",
                "name the organization: GET /admin/v1/audit?org=SLUG",
            ))
        }
    };
    audit_page(&st, &caller, &slug, q, &headers).await
}

pub(super) async fn audit(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    if q.org.is_some() {
        return Err(invalid(
            "org",
            "the path names the organization; org belongs to GET /admin/v1/audit",
        ));
    }
    audit_page(&st, &caller, &slug, q, &headers).await
}

pub(super) async fn audit_page(
    st: &AppState,
    caller: &Caller,
    slug: &str,
    q: AuditQuery,
    headers: &axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let a = access(st, caller, slug, Need::Admin, headers).await?;
    if q.cursor.is_some() && q.start_index.is_some() {
        return Err(invalid(
            "cursor",
            "startIndex and cursor are mutually exclusive: page by one or the other",
        ));
    }
    let (start_index, count) = Paging {
        start_index: q.start_index,
        count: q.count,
    }
    .bounds();
    let mut filter = audit_filter(st, q.actor, q.action, q.target).await?;
    (filter.since, filter.until) = audit_period(q.since.as_deref(), q.until.as_deref())?;
    if let Some(c) = &q.cursor {
        filter.after =
            crate::scim::search::decode_cursor(c).map_err(|e| AdminError(e.on_field("cursor")))?;
    }
    let (total, events) = audit_as(st, &a, &filter, false, start_index, count).await?;
    let items: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"id": e.id, "actor": e.actor, "action": e.action, "target": e.target,
                   "requestId": e.request_id, "time": crate::service::render::timestamp(e.created_at)})
        })
        .collect();
    if q.cursor.is_none() {
        return Ok(Json(
            json!({"totalResults": total, "startIndex": start_index, "items": items}),
        ));
    }
    let mut page = json!({"totalResults": total, "items": items});
    // A full page may have a successor: its last entry is where the next one starts.
    if events.len() as i64 == count {
        if let Some(last) = events.last() {
            page["nextCursor"] = json!(crate::scim::search::encode_cursor(
                last.created_at,
                &last.id
            ));
        }
    }
    Ok(Json(page))
}

/// The audit log's time bounds, checked: `since` (inclusive) and `until` (exclusive), each a
/// date or an RFC 3339 time, `since` before `until`; empty for none.
pub fn audit_period(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>)> {
    let parse = |field: &'static str, v: Option<&str>| -> Result<Option<i64>> {
        match v.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => Ok(Some(crate::domain::parse_time(field, v)?)),
        }
    };
    let (since, until) = (parse("since", since)?, parse("until", until)?);
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(invalid("until", "until must be later than since"));
        }
    }
    Ok((since, until))
}

/// Longest actor, action or target an audit-log filter takes.
pub const MAX_AUDIT_FILTER: usize = 256;

/// The audit log's filters, checked: each at most [`MAX_AUDIT_FILTER`] characters, empty for
/// none. An actor may be given as a person's email address, which stands for `account:<id>`
/// (an address without an account matches nothing).
pub async fn audit_filter(
    st: &AppState,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
) -> Result<crate::store::AuditFilter> {
    let check = |field: &'static str, v: Option<String>| -> Result<Option<String>> {
        match v.map(|v| v.trim().to_owned()) {
            Some(v) if v.chars().count() > MAX_AUDIT_FILTER => Err(invalid(
                field,
                format!("{field} must be at most {MAX_AUDIT_FILTER} characters"),
            )),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => {
                crate::domain::refuse_control(field, &v)?;
                Ok(Some(v))
            }
            None => Ok(None),
        }
    };
    let actor = match check("actor", actor)? {
        Some(a) if a.contains('@') => {
            if !crate::domain::valid_email(&a) {
                return Err(invalid(
                    "actor",
                    format!("{a:?} is not a valid email address"),
                ));
            }
            // `account:` alone is no stored actor: an unknown address finds nothing.
            let id = st
                .store
                .account_by_email(&a)
                .await?
                .map(|acct| acct.id)
                .unwrap_or_default();
            Some(format!("account:{id}"))
        }
        Some(a) if !["account:", "token:", "admin:"].iter().any(|p| a.starts_with(*p)) => {
            return Err(invalid(
                "actor",
                format!("actor must be an email address, account:<id>, token:<id> or admin:<id>; got {a:?}"),
            ))
        }
        a => a,
    };
    Ok(crate::store::AuditFilter {
        actor,
        action: check("action", action)?,
        target: check("target", target)?,
        ..Default::default()
    })
}

/// A page of the organization's audit log: for the admin API and the console alike, after the
/// caller's admin role there is checked.
pub async fn audit_as(
    st: &AppState,
    a: &Access,
    filter: &crate::store::AuditFilter,
    newest_first: bool,
    start_index: i64,
    count: i64,
) -> Result<(i64, Vec<crate::store::AuditEvent>)> {
    need_admin(a)?;
    Ok(st
        .store
        .audit_log(&a.org.id, filter, newest_first, start_index, count)
        .await?)
}
