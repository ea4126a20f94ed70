//! `/Users`, `/Groups`, their `/.search`, `/.search` at the root (RFC 7644 §3.2–§3.6), and
//! `/Bulk` (§3.7).

use super::extract::{BaseUrl, IfMatch, IfNoneMatch, ScimJson};
use super::{scim_json, scim_text, AppState};
use crate::error::{Error, Result, ScimType};
use crate::scim::resource::Projection;
use crate::scim::schema::{Kind, LIST_RESPONSE};
use crate::scim::search::{encode_cursor, param, ListQuery, SearchParams};
use crate::service::render::{etag, group_text, render_many};
use crate::service::Tenant;
use crate::store::Record;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};

pub fn router() -> Router<AppState> {
    let mut r = Router::new().route("/.search", post(search_root));
    for kind in [Kind::User, Kind::Group] {
        let base = format!("/{}", kind.endpoint());
        r = r
            .route(
                &base,
                get(move |st, t, b, q| list(st, t, b, q, kind))
                    .post(move |st, t, b, q, body| create(st, t, b, q, body, kind)),
            )
            .route(
                &format!("{base}/.search"),
                post(move |st, t, b, body| search(st, t, b, body, kind)),
            )
            .route(
                &format!("{base}/{{id}}"),
                get(move |st, t, b, id, q, inm| get_one(st, t, b, id, q, inm, kind))
                    .put(move |st, t, b, id, q, im, body| replace(st, t, b, id, q, im, body, kind))
                    .patch(move |st, t, b, id, q, im, body| patch(st, t, b, id, q, im, body, kind))
                    .delete(move |st, t, id, im| delete(st, t, id, im, kind)),
            );
    }
    r.route("/Bulk", post(bulk))
}

type Params = Query<Vec<(String, String)>>;

fn projection(kind: Kind, q: &[(String, String)]) -> Result<Projection> {
    Projection::parse(
        kind.schema(),
        param(q, "attributes"),
        param(q, "excludedAttributes"),
    )
}

/// A ListResponse (RFC 7644 §3.4.2), written straight into its text: the resources are
/// serialised once, where `json!` would first copy every one of them into a new `Value`.
/// `start_index` is left out of a cursor page (RFC 9865), which may carry `next_cursor`.
fn list_response(
    total: i64,
    start_index: Option<i64>,
    resources: &[Value],
    next_cursor: Option<String>,
) -> Response {
    use std::fmt::Write;
    let mut out = String::with_capacity(96 + resources.len() * 1024);
    let _ = write!(
        out,
        "{{\"schemas\":[\"{LIST_RESPONSE}\"],\"totalResults\":{total},"
    );
    if let Some(start) = start_index {
        let _ = write!(out, "\"startIndex\":{start},");
    }
    let _ = write!(out, "\"itemsPerPage\":{},\"Resources\":[", resources.len());
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Writing a `Value` into a `String` cannot fail.
        let _ = write!(out, "{r}");
    }
    out.push(']');
    if let Some(cursor) = next_cursor {
        let _ = write!(out, ",\"nextCursor\":{}", Value::String(cursor));
    }
    out.push('}');
    scim_text(StatusCode::OK, out)
}

async fn run_search(
    st: &AppState,
    t: &Tenant,
    base: &str,
    p: SearchParams,
    kind: Kind,
) -> Result<Response> {
    let q = p.query()?;
    let projection = p.projection(kind)?;
    let page = st.provisioning.list(t, kind, &q).await?;
    // RFC 9865: a full page may have a successor; a short one is the last.
    let next = (p.cursor.is_some() && page.records.len() as i64 == q.count && q.count > 0)
        .then(|| page.records.last())
        .flatten()
        .map(|last| encode_cursor(last.created_at, &last.id));
    let resources =
        render_many(&st.store, &t.org_id, kind, page.records, base, &projection).await?;
    let start_index = p.cursor.is_none().then_some(q.start_index);
    Ok(list_response(page.total, start_index, &resources, next))
}

async fn list(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
    kind: Kind,
) -> Result<Response> {
    run_search(&st, &t, &base, SearchParams::from_query(&q)?, kind).await
}

async fn search(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    ScimJson(body): ScimJson,
    kind: Kind,
) -> Result<Response> {
    run_search(&st, &t, &base, SearchParams::from_body(&body)?, kind).await
}

/// `POST /.search` (RFC 7644 §3.4.3): Users then Groups, paged as one list.
async fn search_root(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<Response> {
    let p = SearchParams::from_body(&body)?;
    if p.cursor.is_some() {
        return Err(Error::bad(
            ScimType::InvalidValue,
            "cursor paging is offered on /Users and /Groups; the root /.search pages by startIndex",
        ));
    }
    let q = p.query()?;
    let mut total = 0;
    let mut resources = Vec::new();
    let mut skip = q.start_index - 1;
    for kind in [Kind::User, Kind::Group] {
        let remaining = q.count - resources.len() as i64;
        let sub = ListQuery {
            start_index: skip + 1,
            count: remaining,
            ..q.clone()
        };
        let page = st.provisioning.list(&t, kind, &sub).await?;
        total += page.total;
        skip = (skip - page.total).max(0);
        let projection = p.projection(kind)?;
        resources.extend(
            render_many(&st.store, &t.org_id, kind, page.records, &base, &projection).await?,
        );
    }
    Ok(list_response(total, Some(q.start_index), &resources, None))
}

/// One resource with its `ETag` (RFC 7644 §3.14) and, after a create, `Location`.
async fn one(
    st: &AppState,
    t: &Tenant,
    base: &str,
    kind: Kind,
    rec: Record,
    projection: &Projection,
    status: StatusCode,
) -> Result<Response> {
    let version = etag(rec.version);
    // Only a 201 carries `Location`, so only then is the URL built (the record moves below).
    let location =
        (status == StatusCode::CREATED).then(|| format!("{base}/{}/{}", kind.endpoint(), rec.id));
    let mut resp = if kind == Kind::Group && projection.is_default() {
        let text = group_text(&st.store, &t.org_id, &rec, base).await?;
        scim_text(status, text)
    } else {
        let body = render_many(&st.store, &t.org_id, kind, vec![rec], base, projection)
            .await?
            .pop()
            .unwrap_or(Value::Object(Map::new()));
        scim_json(status, &body)
    };
    if let Ok(v) = HeaderValue::from_str(&version) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let Some(Ok(v)) = location.as_deref().map(HeaderValue::from_str) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn create(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
    ScimJson(body): ScimJson,
    kind: Kind,
) -> Result<Response> {
    let projection = projection(kind, &q)?;
    let rec = st.provisioning.create(&t, kind, &body).await?;
    one(&st, &t, &base, kind, rec, &projection, StatusCode::CREATED).await
}

#[allow(clippy::too_many_arguments)]
async fn get_one(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(q): Params,
    IfNoneMatch(seen): IfNoneMatch,
    kind: Kind,
) -> Result<Response> {
    let projection = projection(kind, &q)?;
    let rec = st.provisioning.get(&t, kind, &id).await?;
    if seen.contains(&rec.version) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    one(&st, &t, &base, kind, rec, &projection, StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)]
async fn replace(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(q): Params,
    IfMatch(if_match): IfMatch,
    ScimJson(body): ScimJson,
    kind: Kind,
) -> Result<Response> {
    let projection = projection(kind, &q)?;
    let rec = st
        .provisioning
        .replace(&t, kind, &id, &body, if_match)
        .await?;
    one(&st, &t, &base, kind, rec, &projection, StatusCode::OK).await
}

/// PATCH answers 200 with the User; for a Group 204, unless the client asked for a
/// representation with `attributes`/`excludedAttributes` (RFC 7644 §3.5.2 allows both), so
/// membership changes never ship a large member list back.
#[allow(clippy::too_many_arguments)]
async fn patch(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(q): Params,
    IfMatch(if_match): IfMatch,
    ScimJson(body): ScimJson,
    kind: Kind,
) -> Result<Response> {
    let projection = projection(kind, &q)?;
    let rec = st
        .provisioning
        .patch(&t, kind, &id, &body, if_match)
        .await?;
    if kind == Kind::Group && projection.is_default() {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    one(&st, &t, &base, kind, rec, &projection, StatusCode::OK).await
}

async fn delete(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    kind: Kind,
) -> Result<Response> {
    st.provisioning.delete(&t, kind, &id, if_match).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /Bulk` (RFC 7644 §3.7): 200 with a BulkResponse whenever the request is well-formed,
/// whatever became of its operations.
async fn bulk(
    State(st): State<AppState>,
    Extension(t): Extension<Tenant>,
    BaseUrl(base): BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<Response> {
    let answer = st.provisioning.bulk(&t, &base, &body).await?;
    Ok(scim_json(StatusCode::OK, &answer))
}
