//! The PATCH engine (RFC 7644 §3.5.2): add, remove and replace on a canonical resource document,
//! with attribute paths, sub-attributes, value-filter paths, pathless operations and the
//! multi-valued rules. It works on an in-memory copy: the caller stores the result only when
//! every operation succeeded, so a request applies completely or not at all.
//!
//! Client dialects handled here without configuration: capitalised ops (`Replace`), booleans as
//! strings (`"False"`), pathless values keyed by dotted (`name.givenName`) or URN-qualified
//! attribute names, `add`/`replace` on `emails[type eq "work"].value` creating the element,
//! `remove` with a value array removing exactly those values.

use super::eval::{matches, Ctx};
use super::filter::{parse_patch_path, CompareOp, Filter, Literal};
use super::resource::{doc_scope, normalize_value};
use super::schema::{Attribute, Mutability, ResourceSchema, Schema, Scope, PATCH_OP};
use crate::error::{Error, ScimType};
use serde_json::{Map, Value};

/// Most operations accepted in one PATCH request.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub op: OpKind,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, Error> {
    let Value::Object(obj) = body else {
        return Err(Error::bad(
            ScimType::InvalidSyntax,
            "a PATCH body must be a PatchOp JSON object",
        ));
    };
    if let Some(schemas) = get_ci(obj, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP)))
        });
        if !ok {
            return Err(Error::bad(
                ScimType::InvalidValue,
                format!("schemas must contain {PATCH_OP}"),
            ));
        }
    }
    let Some(Value::Array(ops)) = get_ci(obj, "Operations") else {
        return Err(Error::bad(
            ScimType::InvalidSyntax,
            "a PatchOp needs an 'Operations' array",
        ));
    };
    if ops.is_empty() {
        return Err(Error::bad(ScimType::InvalidValue, "'Operations' is empty"));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(Error::bad(
            ScimType::TooMany,
            format!(
                "{} operations in one PATCH; the limit is {MAX_OPERATIONS}",
                ops.len()
            ),
        ));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let n = i + 1;
            let Value::Object(o) = op else {
                return Err(Error::bad(
                    ScimType::InvalidSyntax,
                    format!("operation {n} is not a JSON object"),
                ));
            };
            let kind = match get_ci(o, "op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("remove") => OpKind::Remove,
                Some("replace") => OpKind::Replace,
                _ => {
                    return Err(Error::bad(
                        ScimType::InvalidSyntax,
                        format!("operation {n}: 'op' must be add, remove or replace"),
                    ))
                }
            };
            let path = match get_ci(o, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(_) => {
                    return Err(Error::bad(
                        ScimType::InvalidPath,
                        format!("operation {n}: 'path' must be a string"),
                    ))
                }
            };
            let value = get_ci(o, "value").cloned();
            if kind != OpKind::Remove && value.is_none() {
                return Err(Error::bad(
                    ScimType::InvalidValue,
                    format!("operation {n}: '{kind:?}' needs a 'value'").to_lowercase(),
                ));
            }
            if kind == OpKind::Remove && path.is_none() {
                return Err(Error::bad(
                    ScimType::NoTarget,
                    format!("operation {n}: 'remove' needs a 'path' (RFC 7644 §3.5.2.2)"),
                ));
            }
            Ok(Operation {
                op: kind,
                path,
                value,
            })
        })
        .collect()
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// What a path designates in a resource.
pub enum Target<'a> {
    /// A whole extension, named by its URN.
    Extension(&'a Schema),
    Attr(AttrTarget<'a>),
}

pub struct AttrTarget<'a> {
    pub scope: Scope<'a>,
    pub attr: &'a Attribute,
    /// `name.givenName`: the sub-attribute of the attribute itself.
    pub sub: Option<&'a Attribute>,
    /// `emails[type eq "work"]`
    pub filter: Option<Filter>,
    /// `emails[type eq "work"].value`
    pub after: Option<&'a Attribute>,
}

/// Resolves a path against the schema. `Ok(None)`: the resource type has no such attribute.
pub fn resolve<'a>(rs: &'a ResourceSchema, path: &str) -> Result<Option<Target<'a>>, Error> {
    if let Some(Scope::Extension(ext)) = rs.scope_for_uri(path) {
        return Ok(Some(Target::Extension(ext)));
    }
    let pp = parse_patch_path(path)?;
    let Some((scope, attr)) = rs.resolve(pp.attr.uri.as_deref(), &pp.attr.name) else {
        return Ok(None);
    };
    let sub_of = |name: &str| {
        attr.sub(name).ok_or_else(|| {
            Error::bad(
                ScimType::InvalidPath,
                format!("{} has no sub-attribute {name:?}", attr.name),
            )
        })
    };
    let sub = pp.attr.sub.as_deref().map(sub_of).transpose()?;
    if pp.filter.is_some() && !(attr.multi_valued && attr.is_complex()) {
        return Err(Error::bad(
            ScimType::InvalidPath,
            format!(
                "a value filter needs a multi-valued complex attribute; {} is not one",
                attr.name
            ),
        ));
    }
    let after = pp.sub.as_deref().map(sub_of).transpose()?;
    Ok(Some(Target::Attr(AttrTarget {
        scope,
        attr,
        sub,
        filter: pp.filter,
        after,
    })))
}

/// Applies one operation to `doc`.
pub fn apply(
    rs: &ResourceSchema,
    doc: &mut Map<String, Value>,
    op: &Operation,
) -> Result<(), Error> {
    match &op.path {
        Some(path) => match resolve(rs, path)? {
            Some(target) => apply_target(doc, &target, op.op, op.value.as_ref(), true),
            None => Err(Error::bad(
                ScimType::InvalidPath,
                format!("{path:?} is not an attribute of {}", rs.kind.name()),
            )),
        },
        None => {
            // RFC 7644 §3.5.2.1/§3.5.2.3: without a path the value is a set of attributes.
            let Some(Value::Object(values)) = &op.value else {
                return Err(Error::bad(
                    ScimType::InvalidValue,
                    "an operation without 'path' needs a JSON object 'value'",
                ));
            };
            for (key, value) in values {
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                match resolve(rs, key) {
                    Ok(Some(target)) => apply_target(doc, &target, op.op, Some(value), false)?,
                    // Unknown keys are ignored rather than failing a whole provisioning run.
                    Ok(None) | Err(_) => {
                        tracing::debug!(attribute = %key, "ignoring an unknown attribute in a pathless PATCH")
                    }
                }
            }
            Ok(())
        }
    }
}

/// `explicit`: the client named this path; for pathless values, read-only keys such as Okta's
/// `id` are skipped instead of refused.
pub fn apply_target(
    doc: &mut Map<String, Value>,
    target: &Target<'_>,
    kind: OpKind,
    value: Option<&Value>,
    explicit: bool,
) -> Result<(), Error> {
    match target {
        Target::Extension(ext) => match kind {
            OpKind::Remove => {
                doc.remove(&ext.id);
                Ok(())
            }
            OpKind::Add | OpKind::Replace => {
                let Some(Value::Object(values)) = value else {
                    return Err(Error::bad(
                        ScimType::InvalidValue,
                        format!("{} needs a JSON object", ext.id),
                    ));
                };
                for (k, v) in values {
                    let Some(attr) = ext.attr(k) else { continue };
                    let t = AttrTarget {
                        scope: Scope::Extension(ext),
                        attr,
                        sub: None,
                        filter: None,
                        after: None,
                    };
                    apply_attr(doc, &t, kind, Some(v), false)?;
                }
                Ok(())
            }
        },
        Target::Attr(t) => apply_attr(doc, t, kind, value, explicit),
    }
}

fn mutability_error(name: &str, why: &str) -> Error {
    Error::bad(ScimType::Mutability, format!("{name} {why}"))
}

fn apply_attr(
    doc: &mut Map<String, Value>,
    t: &AttrTarget<'_>,
    kind: OpKind,
    value: Option<&Value>,
    explicit: bool,
) -> Result<(), Error> {
    let attr = t.attr;
    let leaf = t.after.or(t.sub).unwrap_or(attr);
    if attr.mutability == Mutability::ReadOnly || leaf.mutability == Mutability::ReadOnly {
        if explicit {
            return Err(mutability_error(&attr.name, "is read-only"));
        }
        return Ok(());
    }
    let before = doc_scope(doc, t.scope).get(&attr.name).cloned();
    let container = doc_scope(doc, t.scope);
    match (&t.filter, t.sub) {
        (None, None) => whole(container, attr, kind, value)?,
        (None, Some(sub)) => sub_attr(container, attr, sub, kind, value)?,
        (Some(filter), _) => filtered(container, attr, filter, t.after, kind, value)?,
    }
    let after = container.get(&attr.name);
    if attr.mutability == Mutability::Immutable && before.is_some() && after != before.as_ref() {
        return Err(mutability_error(
            &attr.name,
            "is immutable and already has a value",
        ));
    }
    if t.scope.key().is_some() && container.is_empty() {
        if let Some(k) = t.scope.key() {
            doc.remove(k);
        }
    }
    Ok(())
}

fn at(attr: &Attribute) -> &str {
    &attr.name
}

fn whole(
    container: &mut Map<String, Value>,
    attr: &Attribute,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), Error> {
    let name = attr.name.clone();
    match kind {
        OpKind::Remove => {
            match (value, attr.multi_valued) {
                // Entra ID: `{"op":"Remove","path":"members","value":[{"value":"id"}]}` removes
                // exactly those values, never the whole list.
                (Some(v), true) if !v.is_null() => {
                    let doomed =
                        normalize_value(attr, v, at(attr))?.unwrap_or(Value::Array(vec![]));
                    if let (Some(Value::Array(items)), Value::Array(doomed)) =
                        (container.get_mut(&name), doomed)
                    {
                        items.retain(|item| !doomed.iter().any(|d| same_value(attr, item, d)));
                        if items.is_empty() {
                            container.remove(&name);
                        }
                    }
                }
                _ => {
                    container.remove(&name);
                }
            }
        }
        OpKind::Add | OpKind::Replace => {
            let Some(new) = value
                .map(|v| normalize_value(attr, v, at(attr)))
                .transpose()?
                .flatten()
            else {
                if kind == OpKind::Replace {
                    container.remove(&name);
                }
                return Ok(());
            };
            match (attr.multi_valued, attr.is_complex()) {
                (true, _) => {
                    let Value::Array(new_items) = new else {
                        return Ok(());
                    };
                    let new_primary = new_items.iter().any(is_primary);
                    let mut items = match (kind, container.remove(&name)) {
                        (OpKind::Add, Some(Value::Array(old))) => old,
                        _ => Vec::new(),
                    };
                    if new_primary {
                        clear_primary(&mut items);
                    }
                    for item in new_items {
                        // RFC 7644 §3.5.2.1: a value already present is not added twice.
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                    container.insert(name, Value::Array(items));
                }
                (false, true) => {
                    // RFC 7644 §3.5.2.1/§3.5.2.3: sub-attributes not named are left unchanged.
                    let merged = match container.remove(&name) {
                        Some(Value::Object(mut old)) => {
                            if let Value::Object(n) = new {
                                old.extend(n);
                            }
                            Value::Object(old)
                        }
                        _ => new,
                    };
                    container.insert(name, merged);
                }
                (false, false) => {
                    container.insert(name, new);
                }
            }
        }
    }
    Ok(())
}

fn sub_attr(
    container: &mut Map<String, Value>,
    attr: &Attribute,
    sub: &Attribute,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), Error> {
    let label = format!("{}.{}", attr.name, sub.name);
    let new = match kind {
        OpKind::Remove => None,
        _ => value
            .map(|v| normalize_value(sub, v, &label))
            .transpose()?
            .flatten(),
    };
    let set = |obj: &mut Map<String, Value>| match &new {
        Some(v) => {
            obj.insert(sub.name.clone(), v.clone());
        }
        None => {
            obj.remove(&sub.name);
        }
    };
    match container.get_mut(&attr.name) {
        Some(Value::Array(items)) => {
            for item in items.iter_mut() {
                if let Value::Object(o) = item {
                    set(o);
                }
            }
            items.retain(|i| !matches!(i, Value::Object(o) if o.is_empty()));
            if items.is_empty() {
                container.remove(&attr.name);
            }
        }
        Some(Value::Object(obj)) => {
            set(obj);
            if obj.is_empty() {
                container.remove(&attr.name);
            }
        }
        _ => {
            if let Some(v) = new {
                let mut obj = Map::new();
                obj.insert(sub.name.clone(), v);
                let created = if attr.multi_valued {
                    Value::Array(vec![Value::Object(obj)])
                } else {
                    Value::Object(obj)
                };
                container.insert(attr.name.clone(), created);
            }
        }
    }
    Ok(())
}

fn filtered(
    container: &mut Map<String, Value>,
    attr: &Attribute,
    filter: &Filter,
    after: Option<&Attribute>,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), Error> {
    let mut items = match container.remove(&attr.name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut hits = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if matches(filter, item, Ctx::Element(attr))? {
            hits.push(i);
        }
    }
    match kind {
        OpKind::Remove => match after {
            Some(sub) => {
                for &i in &hits {
                    if let Value::Object(o) = &mut items[i] {
                        o.remove(&sub.name);
                    }
                }
            }
            None => {
                let mut i = 0;
                items.retain(|_| {
                    let keep = !hits.contains(&i);
                    i += 1;
                    keep
                });
            }
        },
        OpKind::Add | OpKind::Replace => {
            let label = match after {
                Some(sub) => format!("{}.{}", attr.name, sub.name),
                None => attr.name.clone(),
            };
            let new = value
                .map(|v| match after {
                    Some(sub) => normalize_value(sub, v, &label),
                    // The value of a filtered path is one element, not an array.
                    None => {
                        let single = Attribute {
                            multi_valued: false,
                            ..attr.clone()
                        };
                        normalize_value(&single, v, &label)
                    }
                })
                .transpose()?
                .flatten();
            let Some(new) = new else {
                container.insert(attr.name.clone(), Value::Array(items));
                return Ok(());
            };
            if hits.is_empty() {
                // Entra ID adds `emails[type eq "work"].value` when no work email exists yet:
                // the filter's equalities describe the element to create.
                let Some(mut element) = template(attr, filter) else {
                    return Err(Error::bad(
                        ScimType::NoTarget,
                        format!("no value of {} matches the filter {filter}", attr.name),
                    ));
                };
                match (after, new) {
                    (Some(sub), v) => {
                        element.insert(sub.name.clone(), v);
                    }
                    (None, Value::Object(n)) => element.extend(n),
                    (None, _) => {}
                }
                if is_primary(&Value::Object(element.clone())) {
                    clear_primary(&mut items);
                }
                items.push(Value::Object(element));
            } else {
                let sets_primary = match (after, &new) {
                    (Some(sub), v) => sub.name == "primary" && v == &Value::Bool(true),
                    (None, v) => is_primary(v),
                };
                if sets_primary {
                    clear_primary(&mut items);
                }
                for &i in &hits {
                    match (after, kind, &mut items[i]) {
                        (Some(sub), _, Value::Object(o)) => {
                            o.insert(sub.name.clone(), new.clone());
                        }
                        (None, OpKind::Add, Value::Object(o)) => {
                            if let Value::Object(n) = &new {
                                o.extend(n.clone());
                            }
                        }
                        (None, _, slot) => *slot = new.clone(),
                        (Some(_), _, _) => {}
                    }
                }
            }
        }
    }
    items.retain(|i| !matches!(i, Value::Object(o) if o.is_empty()));
    if !items.is_empty() {
        container.insert(attr.name.clone(), Value::Array(items));
    }
    Ok(())
}

/// The element a conjunction of `sub eq literal` comparisons describes, if the filter is one.
fn template(attr: &Attribute, filter: &Filter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    fn walk(attr: &Attribute, f: &Filter, out: &mut Map<String, Value>) -> bool {
        match f {
            Filter::And(a, b) => walk(attr, a, out) && walk(attr, b, out),
            Filter::Compare(p, CompareOp::Eq, lit) if p.uri.is_none() && p.sub.is_none() => {
                let Some(sub) = attr.sub(&p.name) else {
                    return false;
                };
                let v = match lit {
                    Literal::Str(s) => Value::String(s.clone()),
                    Literal::Bool(b) => Value::Bool(*b),
                    Literal::Num(n) => serde_json::Number::from_f64(*n)
                        .map(Value::Number)
                        .unwrap_or(Value::Null),
                    Literal::Null => return false,
                };
                match normalize_value(sub, &v, &sub.name) {
                    Ok(Some(v)) => {
                        out.insert(sub.name.clone(), v);
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
    walk(attr, filter, &mut out).then_some(out)
}

fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

/// RFC 7644 §3.5.2: setting one value primary makes every other value non-primary.
fn clear_primary(items: &mut [Value]) {
    for item in items.iter_mut() {
        if let Value::Object(o) = item {
            if o.get("primary") == Some(&Value::Bool(true)) {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Whether two elements of a multi-valued attribute are the same value: by their `value`
/// sub-attribute when they have one, else by equality.
fn same_value(attr: &Attribute, a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => match (x.as_str(), y.as_str(), attr.sub("value")) {
            (Some(x), Some(y), Some(sub)) if !sub.case_exact => x.eq_ignore_ascii_case(y),
            _ => x == y,
        },
        _ => a == b,
    }
}
