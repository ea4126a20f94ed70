//! The organization rules for provisioning: what a SCIM request means for the organization's
//! memberships and teams. Handlers call this; it calls the pure `scim` layer and the store.

pub mod access;
pub mod bulk;
pub mod credentials;
pub mod csv_import;
pub mod enrolment;
pub mod federation;
pub mod hashing;
pub mod invitations;
pub mod people;
pub mod ratelimit;
pub mod redact;
pub mod render;
pub mod request_log;
pub mod sessions;
pub mod tokens;

use crate::clock::Clock;
use crate::error::{Error, Result, ScimType};
use crate::scim::eval::{matches, Ctx};
use crate::scim::filter::{CompareOp, Filter, Literal};
use crate::scim::patch::{self, OpKind, Operation, Target};
use crate::scim::resource::{check_immutable, check_size, normalize};
use crate::scim::schema::{Kind, ORGANIZATION_USER, REGISTRY};
use crate::store::{Audit, Change, DynStore, ListQuery, MemberOp, Page, Record};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How often a PATCH computed outside the write transaction is recomputed when the resource
/// changed in between, before it is computed inside the transaction instead.
const PATCH_ATTEMPTS: usize = 3;

/// The organization a request acts for, chosen by its provisioning token.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org_id: String,
    pub org_slug: String,
    /// Who acts: `token:<id>` (an identity provider) or `admin:<id>` (a provider admin).
    pub actor: String,
    pub request_id: Option<String>,
}

impl Tenant {
    pub fn audit(&self) -> Audit {
        Audit {
            actor: self.actor.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Takes the organization role out of a User document: it lives in its own column, and a body
/// without it leaves the role as it is (an IdP that does not manage roles never demotes an admin
/// by leaving them out).
pub fn take_role(doc: &mut Map<String, Value>) -> Result<Option<String>> {
    let Some(ext) = doc.remove(ORGANIZATION_USER) else {
        return Ok(None);
    };
    match ext
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    {
        None => Ok(None),
        Some(r) if r == "admin" || r == "member" => Ok(Some(r)),
        Some(r) => Err(Error::bad(
            ScimType::InvalidValue,
            format!("{ORGANIZATION_USER}:role must be admin or member; got {r:?}"),
        )),
    }
}

#[derive(Clone)]
pub struct Provisioning {
    pub store: DynStore,
    pub clock: Arc<Clock>,
}

/// A precondition from `If-Match`: the version the client last saw.
pub type IfMatch = Option<i64>;

fn check_version(rec: &Record, if_match: IfMatch) -> Result<()> {
    match if_match {
        Some(v) if v != rec.version => Err(Error::precondition_failed()),
        _ => Ok(()),
    }
}

impl Provisioning {
    pub fn new(store: DynStore, clock: Arc<Clock>) -> Self {
        Provisioning { store, clock }
    }

    pub async fn create(&self, t: &Tenant, kind: Kind, body: &Value) -> Result<Record> {
        let mut doc = normalize(kind.schema(), body)?;
        let role = take_role(&mut doc)?;
        let members = match kind {
            Kind::Group => member_ids(doc.remove("members").as_ref())?,
            Kind::User => Vec::new(),
        };
        check_size(kind.schema(), &doc)?;
        let rec = self
            .store
            .insert(
                &t.org_id,
                kind,
                &doc,
                &members,
                role.as_deref(),
                self.clock.now(),
                &t.audit(),
            )
            .await?;
        tracing::info!(org = %t.org_slug, kind = kind.name(), id = %rec.id, members = members.len(), "created");
        crate::metrics::provisioned(&t.org_slug, kind.name(), "create");
        Ok(rec)
    }

    pub async fn get(&self, t: &Tenant, kind: Kind, id: &str) -> Result<Record> {
        self.store
            .get(&t.org_id, kind, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("{} {id} not found", kind.name())))
    }

    /// PUT (RFC 7644 §3.5.1): replaces every writable attribute. For Groups, `members` is
    /// replaced when the body carries it and left alone when it does not, so a rename by PUT
    /// never empties a group by accident.
    pub async fn replace(
        &self,
        t: &Tenant,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: IfMatch,
    ) -> Result<Record> {
        let rs = kind.schema();
        let mut new = normalize(rs, body)?;
        let role = take_role(&mut new)?;
        let members = match kind {
            Kind::Group if body_has(body, "members") => {
                let ids = member_ids(new.remove("members").as_ref())?;
                vec![MemberOp::Clear, MemberOp::Add(ids)]
            }
            _ => {
                new.remove("members");
                Vec::new()
            }
        };
        check_size(rs, &new)?;
        let decide = move |rec: &Record| -> Result<Change> {
            check_version(rec, if_match)?;
            check_immutable(rs, &rec.doc, &new)?;
            Ok(Change {
                doc: new.clone(),
                members: members.clone(),
                role: role.clone(),
            })
        };
        let rec = self
            .store
            .update(&t.org_id, kind, id, self.clock.now(), &t.audit(), &decide)
            .await?;
        tracing::info!(org = %t.org_slug, kind = kind.name(), id, "replaced");
        crate::metrics::provisioned(&t.org_slug, kind.name(), "replace");
        Ok(rec)
    }

    /// PATCH (RFC 7644 §3.5.2): all operations apply, or none do.
    ///
    /// The result is computed from a read of the resource before the write transaction starts,
    /// and written only if the resource still has the version that was read; so the write lock
    /// (one connection on SQLite, shared by every organization) is held for the write alone.
    /// When another write got in between, the PATCH is computed again, a few times, and then
    /// inside the transaction.
    pub async fn patch(
        &self,
        t: &Tenant,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: IfMatch,
    ) -> Result<Record> {
        let ops = patch::parse_request(body)?;
        let (doc_ops, member_ops) = match kind {
            Kind::User => (ops, Vec::new()),
            Kind::Group => self.split_member_ops(t, id, ops).await?,
        };
        let compute = |rec: &Record| -> Result<Change> {
            patched(kind, rec, if_match, &doc_ops, &member_ops)
        };
        for _ in 0..PATCH_ATTEMPTS {
            let current = self.get(t, kind, id).await?;
            let change = compute(&current)?;
            let stale = AtomicBool::new(false);
            let write_if_unchanged = |rec: &Record| -> Result<Change> {
                if rec.version != current.version {
                    stale.store(true, Ordering::Relaxed);
                    return Err(Error::precondition_failed());
                }
                Ok(change.clone())
            };
            match self
                .store
                .update(
                    &t.org_id,
                    kind,
                    id,
                    self.clock.now(),
                    &t.audit(),
                    &write_if_unchanged,
                )
                .await
            {
                Err(_) if stale.load(Ordering::Relaxed) => continue,
                result => {
                    let rec = result?;
                    tracing::info!(org = %t.org_slug, kind = kind.name(), id, "patched");
                    crate::metrics::provisioned(&t.org_slug, kind.name(), "patch");
                    return Ok(rec);
                }
            }
        }
        let rec = self
            .store
            .update(&t.org_id, kind, id, self.clock.now(), &t.audit(), &compute)
            .await?;
        tracing::info!(org = %t.org_slug, kind = kind.name(), id, "patched under contention");
        crate::metrics::provisioned(&t.org_slug, kind.name(), "patch");
        Ok(rec)
    }

    pub async fn delete(&self, t: &Tenant, kind: Kind, id: &str, if_match: IfMatch) -> Result<()> {
        self.store
            .delete(&t.org_id, kind, id, if_match, self.clock.now(), &t.audit())
            .await?;
        tracing::info!(org = %t.org_slug, kind = kind.name(), id, "deleted");
        crate::metrics::provisioned(&t.org_slug, kind.name(), "delete");
        Ok(())
    }

    pub async fn list(&self, t: &Tenant, kind: Kind, q: &ListQuery) -> Result<Page> {
        self.store.list(&t.org_id, kind, q).await
    }

    /// Separates operations on a group's `members` (applied to member rows, at a cost that
    /// does not grow with the group) from operations on the group's other attributes.
    async fn split_member_ops(
        &self,
        t: &Tenant,
        group: &str,
        ops: Vec<Operation>,
    ) -> Result<(Vec<Operation>, Vec<MemberOp>)> {
        let rs = Kind::Group.schema();
        let mut doc_ops = Vec::new();
        let mut member_ops = Vec::new();
        for op in ops {
            let Some(path) = &op.path else {
                // Pathless: a `members` key goes to the rows, the rest to the document.
                let mut rest = Map::new();
                if let Some(Value::Object(values)) = &op.value {
                    for (k, v) in values {
                        if k.eq_ignore_ascii_case("members") {
                            let ids = member_ids(Some(v))?;
                            if op.op == OpKind::Replace {
                                member_ops.push(MemberOp::Clear);
                            }
                            member_ops.push(MemberOp::Add(ids));
                        } else {
                            rest.insert(k.clone(), v.clone());
                        }
                    }
                }
                doc_ops.push(Operation {
                    value: Some(Value::Object(rest)),
                    ..op
                });
                continue;
            };
            let target = patch::resolve(rs, path)?;
            let Some(Target::Attr(t_attr)) = target
                .as_ref()
                .filter(|t| matches!(t, Target::Attr(a) if a.attr.name == "members"))
            else {
                doc_ops.push(op);
                continue;
            };
            if t_attr.sub.is_some() || t_attr.after.is_some() {
                return Err(Error::bad(
                    ScimType::Mutability,
                    "the sub-attributes of members are immutable; add or remove whole members instead",
                ));
            }
            match (op.op, &t_attr.filter) {
                (OpKind::Add, None) => member_ops.push(MemberOp::Add(member_ids(op.value.as_ref())?)),
                (OpKind::Replace, None) => {
                    member_ops.push(MemberOp::Clear);
                    member_ops.push(MemberOp::Add(member_ids(op.value.as_ref())?));
                }
                (OpKind::Remove, None) => match &op.value {
                    // Entra ID: remove exactly the listed members.
                    Some(v) if !v.is_null() => member_ops.push(MemberOp::Remove(member_ids(Some(v))?)),
                    _ => member_ops.push(MemberOp::Clear),
                },
                (OpKind::Remove, Some(filter)) => {
                    let ids = match value_eq_ids(filter) {
                        Some(ids) => ids,
                        None => {
                            // A filter on something other than the member id: evaluate it on
                            // the current members.
                            let attr = rs.core_attr("members").ok_or_else(|| Error::Internal(anyhow::anyhow!("members")))?;
                            let mut hit = Vec::new();
                            for id in self.store.members(&t.org_id, group).await? {
                                let m = serde_json::json!({"value": id, "type": "User"});
                                if matches(filter, &m, Ctx::Element(attr))? {
                                    hit.push(id);
                                }
                            }
                            hit
                        }
                    };
                    member_ops.push(MemberOp::Remove(ids));
                }
                (_, Some(_)) => {
                    return Err(Error::bad(
                        ScimType::InvalidPath,
                        "members can be added or replaced as a whole; a value filter only selects members to remove",
                    ))
                }
            }
        }
        Ok((doc_ops, member_ops))
    }
}

/// The change a PATCH makes to `rec`: the operations applied to a copy of its document (with
/// the role, which is patchable like any attribute of the organization extension), normalised
/// and checked. Pure, so it runs before the write transaction.
fn patched(
    kind: Kind,
    rec: &Record,
    if_match: IfMatch,
    doc_ops: &[Operation],
    member_ops: &[MemberOp],
) -> Result<Change> {
    let rs = kind.schema();
    check_version(rec, if_match)?;
    let mut doc = rec.doc.clone();
    if let Some(role) = &rec.role {
        doc.insert(
            ORGANIZATION_USER.to_owned(),
            serde_json::json!({ "role": role }),
        );
    }
    for op in doc_ops {
        patch::apply(rs, &mut doc, op)?;
    }
    let mut doc = normalize(rs, &Value::Object(doc))?;
    let role = match (take_role(&mut doc)?, &rec.role) {
        // Removing the role leaves it unassigned: a plain member.
        (None, Some(_)) => Some(String::new()),
        (role, _) => role,
    };
    check_immutable(rs, &rec.doc, &doc)?;
    check_size(rs, &doc)?;
    Ok(Change {
        doc,
        members: member_ops.to_vec(),
        role,
    })
}

fn body_has(body: &Value, key: &str) -> bool {
    body.as_object()
        .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case(key)))
}

/// Member ids from a `members` value: `[{"value": id}, …]`, a single object, or bare ids.
fn member_ids(value: Option<&Value>) -> Result<Vec<String>> {
    let items: Vec<&Value> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(single) => vec![single],
    };
    items
        .into_iter()
        .map(|item| {
            let (id, typ) = match item {
                Value::String(s) => (Some(s.as_str()), None),
                Value::Object(o) => (
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                        .and_then(|(_, v)| v.as_str()),
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("type"))
                        .and_then(|(_, v)| v.as_str()),
                ),
                _ => (None, None),
            };
            if typ.is_some_and(|t| t.eq_ignore_ascii_case("Group")) {
                return Err(Error::bad(
                    ScimType::InvalidValue,
                    "members: nested groups are not supported; members are Users",
                ));
            }
            id.filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::bad(
                        ScimType::InvalidValue,
                        format!(
                            "members: each member needs a \"value\" with a User id; got {item}"
                        ),
                    )
                })
        })
        .collect()
}

/// `value eq "a" or value eq "b"` → the ids, when the filter is exactly that.
fn value_eq_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Or(a, b) => {
            let mut ids = value_eq_ids(a)?;
            ids.extend(value_eq_ids(b)?);
            Some(ids)
        }
        Filter::Compare(p, CompareOp::Eq, Literal::Str(s))
            if p.uri.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![s.clone()])
        }
        _ => None,
    }
}

/// Forces the schema registry to load at start-up rather than on the first request.
pub fn warm_up() {
    let _ = &REGISTRY.schemas;
}

/// An organization slug: 1–63 characters of a-z, 0-9 and '-'.
pub fn check_slug(slug: &str) -> std::result::Result<(), String> {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "an organization slug is 1–63 characters of a-z, 0-9 and '-'; got {slug:?}"
        ))
    }
}
