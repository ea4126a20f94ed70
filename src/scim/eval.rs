//! In-memory filter evaluation over canonical resource documents. PATCH value filters
//! (`emails[type eq "work"]`) run here; list queries never do — the stores compile the same AST to
//! SQL, and the differential tests hold the two to the same answers.

use super::filter::{AttrPath, CompareOp, Filter, Literal};
use super::schema::{AttrType, Attribute, ResourceSchema, Scope};
use crate::error::{Error, ScimType};
use serde_json::Value;
use std::cmp::Ordering;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where a filter's attribute paths are resolved: a whole resource, or one element of a
/// multi-valued complex attribute (inside `attr[...]`).
#[derive(Clone, Copy)]
pub enum Ctx<'a> {
    Resource(&'a ResourceSchema),
    Element(&'a Attribute),
}

/// Does `doc` (a canonical resource: core attributes at the top, extensions under their URN)
/// match `filter`?
pub fn matches(filter: &Filter, doc: &Value, ctx: Ctx<'_>) -> Result<bool, Error> {
    Ok(match filter {
        Filter::And(a, b) => matches(a, doc, ctx)? && matches(b, doc, ctx)?,
        Filter::Or(a, b) => matches(a, doc, ctx)? || matches(b, doc, ctx)?,
        Filter::Not(a) => !matches(a, doc, ctx)?,
        Filter::Present(path) => match lookup(path, doc, ctx)? {
            None => false,
            Some((_, values)) => values.iter().any(|v| is_present(v)),
        },
        Filter::Compare(path, op, lit) => match lookup(path, doc, ctx)? {
            None => false,
            Some((attr, values)) => {
                check_operator(attr, *op, lit)?;
                if *lit == Literal::Null {
                    // `eq null` is "unassigned", `ne null` is "has a value" (RFC 7643 §2.5).
                    let present = values.iter().any(|v| is_present(v));
                    return Ok(if *op == CompareOp::Eq {
                        !present
                    } else {
                        present
                    });
                }
                if *op == CompareOp::Ne {
                    !values
                        .iter()
                        .any(|v| compare_value(attr, v, CompareOp::Eq, lit))
                } else {
                    values.iter().any(|v| compare_value(attr, v, *op, lit))
                }
            }
        },
        Filter::ValuePath(path, inner) => {
            let Ctx::Resource(rs) = ctx else {
                return Err(Error::bad(
                    ScimType::InvalidFilter,
                    "value filters cannot be nested",
                ));
            };
            let Some((scope, attr)) = rs.resolve(path.uri.as_deref(), &path.name) else {
                return Ok(false);
            };
            if !attr.multi_valued || !attr.is_complex() {
                return Err(Error::bad(
                    ScimType::InvalidFilter,
                    format!(
                        "'{}[...]' needs a multi-valued complex attribute",
                        attr.name
                    ),
                ));
            }
            match container(doc, scope).and_then(|c| c.get(&attr.name)) {
                Some(Value::Array(items)) => {
                    for item in items {
                        if matches(inner, item, Ctx::Element(attr))? {
                            return Ok(true);
                        }
                    }
                    false
                }
                _ => false,
            }
        }
    })
}

fn container<'v>(doc: &'v Value, scope: Scope<'_>) -> Option<&'v Value> {
    match scope.key() {
        None => Some(doc),
        Some(k) => doc.get(k),
    }
}

/// The attribute a filter path designates and the values it has in `doc` (every element's value
/// for a multi-valued attribute). `None` when the resource type has no such attribute: such a
/// comparison matches nothing.
fn lookup<'v, 'a>(
    path: &AttrPath,
    doc: &'v Value,
    ctx: Ctx<'a>,
) -> Result<Option<(&'a Attribute, Vec<&'v Value>)>, Error> {
    match ctx {
        Ctx::Resource(rs) => {
            let Some((scope, attr)) = rs.resolve(path.uri.as_deref(), &path.name) else {
                return Ok(None);
            };
            let raw = container(doc, scope).and_then(|c| c.get(&attr.name));
            let sub = match &path.sub {
                Some(s) => match attr.sub(s) {
                    Some(sub) => Some(sub),
                    None => return Ok(None),
                },
                // RFC 7644 §3.4.2.2: a complex multi-valued attribute compared as a whole is
                // compared through its `value` sub-attribute.
                None if attr.is_complex() => match attr.sub("value") {
                    Some(v) => Some(v),
                    None => return Ok(Some((attr, Vec::new()))),
                },
                None => None,
            };
            let mut out = Vec::new();
            let items: Vec<&Value> = match raw {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v) => vec![v],
                None => vec![],
            };
            for item in items {
                match sub {
                    Some(s) => {
                        if let Some(v) = item.get(&s.name) {
                            out.push(v)
                        }
                    }
                    None => out.push(item),
                }
            }
            Ok(Some((sub.unwrap_or(attr), out)))
        }
        Ctx::Element(parent) => {
            if path.sub.is_some() || path.uri.is_some() {
                return Ok(None);
            }
            let Some(attr) = parent.sub(&path.name) else {
                return Ok(None);
            };
            Ok(Some((attr, doc.get(&attr.name).into_iter().collect())))
        }
    }
}

pub fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// RFC 7644 §3.4.2.2: which operators make sense for which attribute types.
pub fn check_operator(attr: &Attribute, op: CompareOp, lit: &Literal) -> Result<(), Error> {
    let refuse = |why: &str| {
        Err(Error::bad(
            ScimType::InvalidFilter,
            format!("'{} {}' is not allowed: {why}", attr.name, op.as_str()),
        ))
    };
    if *lit == Literal::Null {
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(()),
            _ => refuse("null can only be compared with eq or ne"),
        };
    }
    match attr.typ {
        AttrType::Boolean if op != CompareOp::Eq && op != CompareOp::Ne => {
            refuse("booleans compare only with eq and ne")
        }
        AttrType::Binary if op.is_ordering() => refuse("binary attributes have no order"),
        AttrType::Complex => refuse("a complex attribute needs a sub-attribute"),
        AttrType::Integer | AttrType::Decimal | AttrType::DateTime | AttrType::Boolean
            if op.is_substring() =>
        {
            refuse("co, sw and ew apply to strings")
        }
        _ => Ok(()),
    }
}

/// Lowercases a string unless the attribute is case-exact (RFC 7643 §2.2 `caseExact`).
pub fn fold(attr: &Attribute, s: &str) -> String {
    if attr.case_exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

/// Parses a literal as a boolean the way Entra ID sends them (`"True"`).
pub fn literal_bool(lit: &Literal) -> Option<bool> {
    match lit {
        Literal::Bool(b) => Some(*b),
        Literal::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Literal::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Compares one stored value with a literal, per the attribute's type and `caseExact`.
pub fn compare_value(attr: &Attribute, v: &Value, op: CompareOp, lit: &Literal) -> bool {
    let ord = match attr.typ {
        AttrType::Boolean => {
            return match (v.as_bool(), literal_bool(lit)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
        }
        AttrType::Integer | AttrType::Decimal => match (v.as_f64(), lit) {
            (Some(a), Literal::Num(b)) => a.partial_cmp(b),
            _ => None,
        },
        AttrType::DateTime => match (v.as_str().and_then(parse_datetime), lit) {
            (Some(a), Literal::Str(b)) => parse_datetime(b).map(|b| a.cmp(&b)),
            _ => None,
        },
        _ => {
            let (Some(a), Literal::Str(b)) = (v.as_str(), lit) else {
                return false;
            };
            let (a, b) = (fold(attr, a), fold(attr, b));
            return match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordering_holds(op, a.cmp(&b)),
            };
        }
    };
    ord.is_some_and(|o| ordering_holds(op, o))
}

fn ordering_holds(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
