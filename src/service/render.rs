//! Records → SCIM representations: `schemas`, `id`, attributes in schema order, the derived
//! `groups` (User) and `members` (Group), and `meta` (RFC 7643 §3.1), then the projection.

use crate::error::Result;
use crate::scim::resource::{schemas_of, Projection};
use crate::scim::schema::{Kind, ORGANIZATION_USER};
use crate::store::{DynStore, GroupRef, Record};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn timestamp(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The weak ETag of a version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Derived attributes that live in rows rather than in the document.
pub enum Derived {
    None,
    Members(Vec<String>),
    Groups(Vec<GroupRef>),
}

/// Renders a record, moving its stored attributes into the answer (they are not copied).
pub fn render(kind: Kind, mut rec: Record, base: &str, derived: Derived) -> Map<String, Value> {
    let rs = kind.schema();
    let mut out = Map::with_capacity(rec.doc.len() + 4);
    out.insert("schemas".into(), schemas_of(kind, &rec.doc));
    out.insert("id".into(), Value::String(rec.id.clone()));
    if let Some(v) = rec.doc.swap_remove("externalId") {
        out.insert("externalId".into(), v);
    }
    for attr in &rs.core.attributes {
        match (kind, attr.name.as_str(), &derived) {
            (Kind::Group, "members", Derived::Members(ids)) if !ids.is_empty() => {
                let members: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"value": id, "$ref": format!("{base}/Users/{id}"), "type": "User"}))
                    .collect();
                out.insert("members".into(), Value::Array(members));
            }
            (Kind::User, "groups", Derived::Groups(groups)) if !groups.is_empty() => {
                let groups: Vec<Value> = groups
                    .iter()
                    .map(|g| json!({"value": g.id, "$ref": format!("{base}/Groups/{}", g.id), "display": g.display, "type": "direct"}))
                    .collect();
                out.insert("groups".into(), Value::Array(groups));
            }
            _ => {
                if let Some(v) = rec.doc.swap_remove(&attr.name) {
                    out.insert(attr.name.clone(), v);
                }
            }
        }
    }
    for ext in &rs.extensions {
        if let Some(v) = rec.doc.swap_remove(&ext.id) {
            out.insert(ext.id.clone(), v);
        }
    }
    // The organization role lives in its own column; it is shown as scimd's extension.
    if let (Kind::User, Some(role)) = (kind, &rec.role) {
        out.insert(ORGANIZATION_USER.to_owned(), json!({ "role": role }));
        if let Some(Value::Array(schemas)) = out.get_mut("schemas") {
            schemas.push(Value::String(ORGANIZATION_USER.to_owned()));
        }
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.name(),
            "created": timestamp(rec.created_at),
            "lastModified": timestamp(rec.updated_at),
            "location": format!("{base}/{}/{}", kind.endpoint(), rec.id),
            "version": etag(rec.version),
        }),
    );
    out
}

/// Renders records of one organization with their derived attributes, reading membership rows
/// only when the projection includes them.
pub async fn render_many(
    store: &DynStore,
    org: &str,
    kind: Kind,
    records: Vec<Record>,
    base: &str,
    projection: &Projection,
) -> Result<Vec<Value>> {
    let rs = kind.schema();
    let mut out = Vec::with_capacity(records.len());
    for mut rec in records {
        let derived = match kind {
            Kind::Group if projection.wants("members") => {
                Derived::Members(store.members(org, &rec.id).await?)
            }
            // Every read and write of a User brings its groups along in the same query.
            Kind::User => Derived::Groups(rec.groups.take().unwrap_or_default()),
            Kind::Group => Derived::None,
        };
        let mut m = render(kind, rec, base, derived);
        projection.apply(rs, &mut m);
        out.push(Value::Object(m));
    }
    Ok(out)
}

/// A Group with its members, written straight into the response text: a 100k-member group costs
/// one string, not 100k JSON objects (and their copies) alive at once.
pub async fn group_text(store: &DynStore, org: &str, rec: &Record, base: &str) -> Result<String> {
    use std::fmt::Write;
    let ids = store.members(org, &rec.id).await?;
    let mut out = serde_json::to_string(&Value::Object(render(
        Kind::Group,
        rec.clone(),
        base,
        Derived::None,
    )))
    .map_err(|e| crate::error::Error::Internal(e.into()))?;
    if ids.is_empty() {
        return Ok(out);
    }
    out.pop(); // the closing brace
    out.reserve(ids.len() * (2 * 40 + base.len() + 48));
    out.push_str(",\"members\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let id = Value::String(id.clone());
        let reference = Value::String(format!("{base}/Users/{}", id.as_str().unwrap_or_default()));
        let _ = write!(
            out,
            "{{\"value\":{id},\"$ref\":{reference},\"type\":\"User\"}}"
        );
    }
    out.push_str("]}");
    Ok(out)
}
