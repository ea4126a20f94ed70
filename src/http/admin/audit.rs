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

/// The audit log's query as the document shows it: the fields of `AuditQuery`, `org` aside.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct AuditFilters {
    #[param(value_type = i64, required = false, minimum = 1, default = 1)]
    start_index: Option<i64>,
    #[param(value_type = i64, required = false, minimum = 0, maximum = 1000, default = 100)]
    count: Option<i64>,
    /// Only what this actor did: `account:<id>` (a person; an email address stands for its account), `token:<id>` (an identity provider) or `admin:<id>` (a provider admin). Exact match
    #[param(value_type = String, required = false, max_length = 256)]
    actor: Option<String>,
    /// Only this action, e.g. `User.update`, `Invitation.revoke`. Exact match
    #[param(value_type = String, required = false, max_length = 256)]
    action: Option<String>,
    /// Only entries about this resource id (a member, group, invitation or token). Exact match
    #[param(value_type = String, required = false, max_length = 256)]
    target: Option<String>,
    /// Only entries at or after this time: an RFC 3339 time (`2026-11-29T08:30:00Z`) or a date (`2026-11-29`, its midnight UTC)
    #[param(value_type = String, required = false, max_length = 64)]
    since: Option<String>,
    /// Only entries before this time (exclusive), written as `since` is; it must be later than `since`
    #[param(value_type = String, required = false, max_length = 64)]
    until: Option<String>,
    /// Keyset paging: present (empty for the first page) asks for it, as RFC 9865 does for SCIM lists. Each full page carries `nextCursor`, the position to pass for the next one; pages cost the same however deep. Not with `startIndex`
    #[param(value_type = String, required = false, max_length = 512)]
    cursor: Option<String>,
}

/// `GET /audit`'s own parameter, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct AuditOrg {
    /// The organization's slug
    #[param(value_type = String, required = false)]
    org: Option<String>,
}

/// `GET /audit?org=SLUG`: the same log as `/orgs/{slug}/audit`. A person who is an admin of
/// exactly one organization may leave `org` out.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    summary = "The audit log of the organization `org` names (a person who is an admin of exactly one organization may leave it out); the same as /orgs/{slug}/audit, with the same filters",
    params(
        AuditOrg,
        AuditFilters,
    ),
    responses(
        (status = 200, description = "A page of events", body = crate::http::views::AuditPage),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or member", body = crate::http::views::ErrorBody),
        (status = 400, description = "`org` is missing and cannot be inferred; or, with `field`, a filter is longer than 256 characters or `actor` is neither an email address nor `account:`, `token:` or `admin:` followed by an id; `since` or `until` is not a date or an RFC 3339 time, or `until` is not later than `since`; `cursor` was not issued by scimd or is given with `startIndex`", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn audit_of(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<crate::http::views::AuditPage>> {
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

#[utoipa::path(
    get,
    path = "/orgs/{slug}/audit",
    tag = "audit",
    summary = "The organization's audit log: every change by SCIM or this API, oldest first; filterable by actor, action, target and period, paged by `startIndex` or by cursor",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        AuditFilters,
    ),
    responses(
        (status = 200, description = "A page of events", body = crate::http::views::AuditPage),
        (status = 400, description = "`invalid_request` with `field`: a query parameter is not of its type (`startIndex` and `count` are integers), a filter is longer than 256 characters, or `actor` is neither an email address nor `account:`, `token:` or `admin:` followed by an id; `since` or `until` is not a date or an RFC 3339 time, or `until` is not later than `since`; `cursor` was not issued by scimd or is given with `startIndex`", body = crate::http::views::ErrorBody),
        (status = 401, description = "No valid token: unknown, expired or revoked, or its session has ended", body = crate::http::views::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the admin role in the organization (the message names the role needed); a person who is not an active member gets this whether or not the organization exists", body = crate::http::views::ErrorBody),
        (status = 404, description = "No such organization or member", body = crate::http::views::ErrorBody),
    )
)]
pub(super) async fn audit(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<crate::http::views::AuditPage>> {
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
) -> Result<Json<crate::http::views::AuditPage>> {
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
    let items = events
        .iter()
        .map(|e| crate::http::views::AuditEvent {
            id: e.id.clone(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            request_id: e.request_id.clone(),
            time: crate::service::render::timestamp(e.created_at),
        })
        .collect();
    let mut page = crate::http::views::AuditPage {
        total_results: total,
        start_index: None,
        items,
        next_cursor: None,
    };
    if q.cursor.is_none() {
        page.start_index = Some(start_index);
        return Ok(Json(page));
    }
    // A full page may have a successor: its last entry is where the next one starts.
    if events.len() as i64 == count {
        if let Some(last) = events.last() {
            page.next_cursor = Some(crate::scim::search::encode_cursor(
                last.created_at,
                &last.id,
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
