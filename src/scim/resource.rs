//! Turning what clients send into canonical documents, and canonical documents into what clients
//! receive. "Lenient in, canonical out" for the known client dialects: attribute names are
//! matched case-insensitively and stored in the schema's spelling, Entra ID's `"True"` becomes
//! `true`, its `manager` sent as a bare id or a one-element list becomes the complex value;
//! read-only input is ignored (RFC 7643 §2.2). Strict about types (RFC 7643 §2.3, §2.4): a value
//! whose type is not the attribute's — a string for a complex or multi-valued attribute, an
//! object for a string, a number for a boolean — is a 400 `invalidValue` naming the attribute,
//! and `schemas` must name the resource's core schema and only extensions it declares.

use super::filter::{parse_attr_path, AttrPath};
use super::schema::{AttrType, Attribute, Kind, Mutability, ResourceSchema, Returned, Scope};
use crate::error::{excerpt, Error, ScimType};
use serde_json::{Map, Value};

fn invalid(detail: String) -> Error {
    Error::bad(ScimType::InvalidValue, detail)
}

/// Normalises a full resource body (POST, PUT) into the stored document: core attributes at the
/// top level, each extension under its URN, read-only and unknown attributes dropped.
pub fn normalize(rs: &ResourceSchema, input: &Value) -> Result<Map<String, Value>, Error> {
    let Value::Object(obj) = input else {
        return Err(Error::bad(
            ScimType::InvalidSyntax,
            "the request body must be a JSON object",
        ));
    };
    let mut doc = Map::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas(rs, value)?;
            continue;
        }
        if let Some(Scope::Extension(ext)) = rs.scope_for_uri(key) {
            let Value::Object(inner) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(invalid(format!(
                    "{key} must be a JSON object of the extension's attributes"
                )));
            };
            for (k, v) in inner {
                if let Some(attr) = ext.attr(k) {
                    set_normalized(
                        doc_scope(&mut doc, Scope::Extension(ext)),
                        attr,
                        v,
                        &format!("{}:{}", ext.id, attr.name),
                    )?;
                }
            }
            continue;
        }
        // `urn:…:User:employeeNumber` at the top level, as some clients send it.
        let Some(path) = parse_attr_path(key) else {
            continue;
        };
        let Some((scope, attr)) = rs.resolve(path.uri.as_deref(), &path.name) else {
            tracing::debug!(attribute = %key, "ignoring an attribute the schema does not define");
            continue;
        };
        // Read-only input is ignored (RFC 7643 §2.2). Write-only input (`password`) is not
        // kept either: an organization's IdP never controls a person's credentials.
        if matches!(
            attr.mutability,
            Mutability::ReadOnly | Mutability::WriteOnly
        ) {
            continue;
        }
        match &path.sub {
            None => set_normalized(doc_scope(&mut doc, scope), attr, value, &attr.name)?,
            Some(sub) => {
                // `name.givenName` as a key (Entra ID's dotted form).
                let Some(sub_attr) = attr.sub(sub) else {
                    continue;
                };
                if attr.multi_valued {
                    continue;
                }
                let target = doc_scope(&mut doc, scope)
                    .entry(attr.name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = target {
                    set_normalized(
                        m,
                        sub_attr,
                        value,
                        &format!("{}.{}", attr.name, sub_attr.name),
                    )?;
                }
            }
        }
    }
    finish(rs, &mut doc)?;
    Ok(doc)
}

/// Schema URNs that identity providers put in `schemas` for their own bookkeeping, with no
/// attributes scimd would store: accepted and ignored. Entra ID sends the first on every Group
/// it creates.
const TOLERATED_SCHEMAS: &[&str] = &[
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User",
];

/// RFC 7643 §3: `schemas` lists the resource's core schema and the extensions it carries. A
/// body without it is read as the core schema (the admin API and hand-written clients omit
/// it); one that names another resource type's schema, or a URN this resource type does not
/// declare, is refused.
fn check_schemas(rs: &ResourceSchema, value: &Value) -> Result<(), Error> {
    let bad = |why: String| Error::bad(ScimType::InvalidSyntax, why);
    let uris = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    bad(format!(
                        "schemas must be an array of schema URNs; got {}",
                        excerpt(&v.to_string(), 64)
                    ))
                })
            })
            .collect::<Result<Vec<&str>, Error>>()?,
        other => {
            return Err(bad(format!(
                "schemas must be an array of schema URNs; got {}",
                excerpt(&other.to_string(), 64)
            )))
        }
    };
    if !uris.iter().any(|u| u.eq_ignore_ascii_case(&rs.core.id)) {
        return Err(bad(format!(
            "schemas must include {} for a {}",
            rs.core.id,
            rs.kind.name()
        )));
    }
    let declared = |u: &str| {
        rs.scope_for_uri(u).is_some() || TOLERATED_SCHEMAS.iter().any(|t| t.eq_ignore_ascii_case(u))
    };
    if let Some(unknown) = uris.iter().find(|u| !declared(u)) {
        let extensions: Vec<&str> = rs.extensions.iter().map(|e| e.id.as_str()).collect();
        return Err(bad(format!(
            "schemas names {:?}, which is not a schema of {}; allowed: {} and its extensions ({})",
            excerpt(unknown, 128),
            rs.kind.endpoint(),
            rs.core.id,
            if extensions.is_empty() {
                "none".to_owned()
            } else {
                extensions.join(", ")
            }
        )));
    }
    Ok(())
}

/// The object holding attributes of `scope` in `doc`, created when missing.
pub fn doc_scope<'d>(
    doc: &'d mut Map<String, Value>,
    scope: Scope<'_>,
) -> &'d mut Map<String, Value> {
    match scope.key() {
        None => doc,
        Some(k) => {
            let entry = doc
                .entry(k.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry {
                Value::Object(m) => m,
                _ => unreachable_map(),
            }
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_map() -> ! {
    panic!("entry was just made an object")
}

fn set_normalized(
    target: &mut Map<String, Value>,
    attr: &Attribute,
    value: &Value,
    at: &str,
) -> Result<(), Error> {
    match normalize_value(attr, value, at)? {
        Some(v) => {
            target.insert(attr.name.clone(), v);
        }
        None => {
            target.remove(&attr.name);
        }
    }
    Ok(())
}

/// Normalises one attribute value. `None` means unassigned (null, empty array, empty object;
/// RFC 7643 §2.5). `at` names the attribute in error messages.
pub fn normalize_value(attr: &Attribute, value: &Value, at: &str) -> Result<Option<Value>, Error> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi_valued {
        // RFC 7643 §2.4: a multi-valued attribute is a JSON array (a PATCH may name one value
        // to add or remove; see `patch`).
        let Value::Array(items) = value else {
            return Err(invalid(format!(
                "{at} is multi-valued: it takes an array of values; got {}",
                excerpt(&value.to_string(), 64)
            )));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = normalize_single(attr, item, at)? {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        if attr.is_complex() && attr.sub("primary").is_some() {
            let primaries = out
                .iter()
                .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
                .count();
            if primaries > 1 {
                return Err(invalid(format!(
                    "{at}: 'primary' may be true for at most one value (RFC 7643 §2.4)"
                )));
            }
        }
        return Ok(Some(Value::Array(out)));
    }
    if let Value::Array(items) = value {
        // Entra ID sends `manager` as a one-element list; anything longer is a real error.
        return match items.as_slice() {
            [] => Ok(None),
            [one] => normalize_single(attr, one, at),
            _ => Err(invalid(format!(
                "{at} is single-valued; an array of {} values was sent",
                items.len()
            ))),
        };
    }
    normalize_single(attr, value, at)
}

fn normalize_single(attr: &Attribute, value: &Value, at: &str) -> Result<Option<Value>, Error> {
    let wrong = |expected: &str| {
        invalid(format!(
            "{at} must be {expected}; got {}",
            excerpt(&value.to_string(), 64)
        ))
    };
    Ok(Some(match attr.typ {
        _ if value.is_null() => return Ok(None),
        AttrType::Complex => {
            let obj = match value {
                Value::Object(obj) => obj.clone(),
                // Entra ID sets `manager` to a bare id: a string stands for the `value` part of
                // a single-valued complex attribute. An element of a multi-valued one (an
                // email) must be an object.
                Value::String(_) if !attr.multi_valued && attr.sub("value").is_some() => {
                    let mut m = Map::new();
                    m.insert("value".to_owned(), value.clone());
                    m
                }
                _ => return Err(wrong("a JSON object")),
            };
            let obj = &obj;
            let mut out = Map::new();
            for (k, v) in obj {
                // Entra ID sends `"primary": "True"`; unknown and read-only parts are dropped.
                let Some(sub) = attr.sub(k) else { continue };
                if matches!(sub.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
                    continue;
                }
                set_normalized(&mut out, sub, v, &format!("{at}.{}", sub.name))?;
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
        AttrType::Boolean => match value {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => return Err(wrong("an integer")),
            },
            _ => return Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => value.clone(),
            _ => return Err(wrong("a number")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if super::eval::parse_datetime(s).is_some() => value.clone(),
            _ => return Err(wrong("an xsd:dateTime such as \"2026-01-23T04:56:22Z\"")),
        },
        AttrType::Binary => match value {
            Value::String(s) if s.is_empty() => return Ok(None),
            // RFC 7643 §2.3.6: binary is base64.
            Value::String(s) if is_base64(s) => value.clone(),
            _ => return Err(wrong("base64-encoded binary data")),
        },
        AttrType::String | AttrType::Reference => match value {
            Value::String(s) if s.is_empty() => return Ok(None),
            Value::String(_) => value.clone(),
            _ => return Err(wrong("a string")),
        },
    }))
}

/// Standard base64 (RFC 4648 §4), padded or not.
fn is_base64(s: &str) -> bool {
    use base64::Engine;
    let e = &base64::engine::general_purpose::STANDARD;
    let unpadded = &base64::engine::general_purpose::STANDARD_NO_PAD;
    e.decode(s).is_ok() || unpadded.decode(s).is_ok()
}

/// Checks what only the whole document can show: required attributes (RFC 7643 §2.2).
pub fn finish(rs: &ResourceSchema, doc: &mut Map<String, Value>) -> Result<(), Error> {
    for attr in &rs.core.attributes {
        if attr.required && attr.mutability != Mutability::ReadOnly && !doc.contains_key(&attr.name)
        {
            return Err(invalid(format!("{} is required", attr.name)));
        }
    }
    doc.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
    Ok(())
}

/// Most values one multi-valued attribute of a stored resource holds (`emails`, `addresses`,
/// …). A Group's `members` are rows, not part of the document: they are bounded per request by
/// the body size instead.
pub const MAX_VALUES: usize = 100;
/// Largest stored resource document, as JSON.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest value of an attribute scimd indexes (`userName`, a Group's `displayName`,
/// `externalId`, `emails.value`): index entries have a size limit (Postgres: about 2.7 kB).
pub const MAX_KEY_BYTES: usize = 1024;

/// Checks what a client could otherwise make large inside one resource: the values of each
/// multi-valued attribute, the indexed strings and the document as a whole. Runs on the
/// document about to be stored (after POST, PUT or PATCH), before any write.
pub fn check_size(rs: &ResourceSchema, doc: &Map<String, Value>) -> Result<(), Error> {
    let scopes = std::iter::once((None, doc)).chain(rs.extensions.iter().filter_map(|ext| {
        match doc.get(&ext.id) {
            Some(Value::Object(inner)) => Some((Some(ext), inner)),
            _ => None,
        }
    }));
    for (ext, values) in scopes {
        let attrs = match ext {
            Some(ext) => &ext.attributes,
            None => &rs.core.attributes,
        };
        for attr in attrs.iter().filter(|a| a.multi_valued) {
            if let Some(Value::Array(items)) = values.get(&attr.name) {
                if items.len() > MAX_VALUES {
                    return Err(invalid(format!(
                        "{} would hold {} values; a resource holds at most {MAX_VALUES} values of each multi-valued attribute",
                        attr.name,
                        items.len()
                    )));
                }
            }
        }
    }
    let keys = [
        match rs.kind {
            Kind::User => "userName",
            Kind::Group => "displayName",
        },
        "externalId",
    ];
    for key in keys {
        if let Some(Value::String(v)) = doc.get(key) {
            if v.len() > MAX_KEY_BYTES {
                return Err(too_long(key, v));
            }
        }
    }
    if let Some(Value::Array(emails)) = doc.get("emails") {
        for v in emails.iter().filter_map(|e| e.get("value")?.as_str()) {
            if v.len() > MAX_KEY_BYTES {
                return Err(too_long("emails.value", v));
            }
        }
    }
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, doc).map_err(|e| Error::Internal(e.into()))?;
    if counter.0 > MAX_DOCUMENT_BYTES {
        return Err(invalid(format!(
            "the {} would be {} bytes of JSON; a resource may be at most {MAX_DOCUMENT_BYTES}",
            rs.kind.name(),
            counter.0
        )));
    }
    Ok(())
}

fn too_long(name: &str, v: &str) -> Error {
    invalid(format!(
        "{name} is {} bytes long; at most {MAX_KEY_BYTES} are accepted",
        v.len()
    ))
}

/// Counts the bytes written to it, keeping none.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// RFC 7644 §3.5.1: a PUT may not change an immutable attribute that already has a value.
pub fn check_immutable(
    rs: &ResourceSchema,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<(), Error> {
    for attr in rs.core.attributes.iter().chain(&rs.common) {
        if attr.mutability == Mutability::Immutable {
            if let Some(before) = old.get(&attr.name) {
                if new.get(&attr.name) != Some(before) {
                    return Err(Error::bad(
                        ScimType::Mutability,
                        format!("{} is immutable and already has a value", attr.name),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What a client asked to see: RFC 7644 §3.4.2.5 `attributes` / `excludedAttributes`.
#[derive(Debug, Clone, Default)]
pub enum Projection {
    #[default]
    Default,
    Include(Vec<Selector>),
    Exclude(Vec<Selector>),
}

/// One resolved entry of an attributes list: an extension as a whole, an attribute, or one
/// sub-attribute, each in its scope (`None` = core).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub scope: Option<String>,
    pub attr: Option<String>,
    pub sub: Option<String>,
}

impl Projection {
    pub fn parse(
        rs: &ResourceSchema,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, Error> {
        let list = |s: &str| -> Vec<Selector> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .filter_map(|p| resolve_selector(rs, p))
                .collect()
        };
        match (
            attributes.filter(|s| !s.trim().is_empty()),
            excluded.filter(|s| !s.trim().is_empty()),
        ) {
            (Some(_), Some(_)) => Err(Error::bad(
                ScimType::InvalidSyntax,
                "attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.4.2.5)",
            )),
            (Some(a), None) => Ok(Projection::Include(list(a))),
            (None, Some(e)) => Ok(Projection::Exclude(list(e))),
            (None, None) => Ok(Projection::Default),
        }
    }

    pub fn from_lists(
        rs: &ResourceSchema,
        attributes: &[String],
        excluded: &[String],
    ) -> Result<Self, Error> {
        let a = (!attributes.is_empty()).then(|| attributes.join(","));
        let e = (!excluded.is_empty()).then(|| excluded.join(","));
        Self::parse(rs, a.as_deref(), e.as_deref())
    }

    pub fn is_default(&self) -> bool {
        matches!(self, Projection::Default)
    }

    /// Will the response contain core attribute `name` at all? Lets callers skip reading data
    /// nobody asked for (e.g. group members).
    pub fn wants(&self, name: &str) -> bool {
        let hit = |s: &Selector| {
            s.scope.is_none()
                && s.attr
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(name))
        };
        match self {
            Projection::Default => true,
            Projection::Include(sel) => sel.iter().any(hit),
            Projection::Exclude(sel) => !sel.iter().any(|s| hit(s) && s.sub.is_none()),
        }
    }

    /// Applies the projection and the `returned` characteristic to a rendered resource.
    pub fn apply(&self, rs: &ResourceSchema, resource: &mut Map<String, Value>) {
        let keys: Vec<String> = resource.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            if let Some(Scope::Extension(ext)) = rs.scope_for_uri(&key) {
                let Some(Value::Object(inner)) = resource.get_mut(&key) else {
                    continue;
                };
                let names: Vec<String> = inner.keys().cloned().collect();
                for name in names {
                    let Some(attr) = ext.attr(&name) else {
                        continue;
                    };
                    if let Some(v) = inner.get_mut(&name) {
                        if !self.keep(Some(&ext.id), attr, v) {
                            inner.remove(&name);
                        }
                    }
                }
                if inner.is_empty() {
                    resource.remove(&key);
                }
                continue;
            }
            let Some(attr) = rs.core_attr(&key) else {
                continue;
            };
            if let Some(v) = resource.get_mut(&key) {
                if !self.keep(None, attr, v) {
                    resource.remove(&key);
                }
            }
        }
        // `schemas` lists exactly the extensions still present.
        if let Some(Value::Array(schemas)) = resource.get("schemas").cloned() {
            let kept: Vec<Value> = schemas
                .into_iter()
                .filter(|s| {
                    s.as_str()
                        .is_some_and(|u| rs.extension(u).is_none() || resource.contains_key(u))
                })
                .collect();
            resource.insert("schemas".into(), Value::Array(kept));
        }
    }

    /// Whether attribute `attr` (in scope `scope`) stays, trimming its sub-attributes in place.
    fn keep(&self, scope: Option<&str>, attr: &Attribute, value: &mut Value) -> bool {
        if attr.returned == Returned::Never {
            return false;
        }
        if attr.returned == Returned::Always {
            return true;
        }
        let same_scope = |s: &Selector| match (&s.scope, scope) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        let names_attr = |s: &Selector| {
            s.attr
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&attr.name))
        };
        match self {
            Projection::Default => {
                trim_subs(attr, value, |sub| {
                    sub.returned != Returned::Never && sub.returned != Returned::Request
                });
                attr.returned != Returned::Request
            }
            Projection::Include(sel) => {
                // The extension named as a whole, or the attribute, keeps everything in it.
                if sel.iter().any(|s| {
                    same_scope(s) && (s.attr.is_none() || (names_attr(s) && s.sub.is_none()))
                }) {
                    trim_subs(attr, value, |sub| sub.returned != Returned::Never);
                    return true;
                }
                let subs: Vec<&str> = sel
                    .iter()
                    .filter(|s| same_scope(s) && names_attr(s))
                    .filter_map(|s| s.sub.as_deref())
                    .collect();
                if subs.is_empty() {
                    return false;
                }
                trim_subs(attr, value, |sub| {
                    sub.returned == Returned::Always
                        || subs.iter().any(|n| n.eq_ignore_ascii_case(&sub.name))
                });
                !is_empty(value)
            }
            Projection::Exclude(sel) => {
                if sel.iter().any(|s| {
                    same_scope(s) && (s.attr.is_none() || (names_attr(s) && s.sub.is_none()))
                }) {
                    return false;
                }
                let subs: Vec<&str> = sel
                    .iter()
                    .filter(|s| same_scope(s) && names_attr(s))
                    .filter_map(|s| s.sub.as_deref())
                    .collect();
                trim_subs(attr, value, |sub| {
                    sub.returned == Returned::Always
                        || (sub.returned != Returned::Never
                            && sub.returned != Returned::Request
                            && !subs.iter().any(|n| n.eq_ignore_ascii_case(&sub.name)))
                });
                attr.returned != Returned::Request && !is_empty(value)
            }
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

/// Keeps only the sub-attributes `keep` accepts, in a complex value or in each element.
fn trim_subs(attr: &Attribute, value: &mut Value, keep: impl Fn(&Attribute) -> bool) {
    if !attr.is_complex() {
        return;
    }
    let trim = |obj: &mut Map<String, Value>| obj.retain(|k, _| attr.sub(k).is_none_or(&keep));
    match value {
        Value::Object(o) => trim(o),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(o) = item {
                    trim(o)
                }
            }
            items.retain(|i| !is_empty(i));
        }
        _ => {}
    }
}

fn resolve_selector(rs: &ResourceSchema, text: &str) -> Option<Selector> {
    if let Some(Scope::Extension(ext)) = rs.scope_for_uri(text) {
        return Some(Selector {
            scope: Some(ext.id.clone()),
            attr: None,
            sub: None,
        });
    }
    let AttrPath { uri, name, sub } = parse_attr_path(text)?;
    let (scope, attr) = rs.resolve(uri.as_deref(), &name)?;
    Some(Selector {
        scope: scope.key().map(str::to_owned),
        attr: Some(attr.name.clone()),
        sub,
    })
}

/// The `schemas` value of a resource: its core schema and each extension it carries.
pub fn schemas_of(kind: Kind, doc: &Map<String, Value>) -> Value {
    let rs = kind.schema();
    let mut out = vec![Value::String(rs.core.id.clone())];
    for ext in &rs.extensions {
        if doc.contains_key(&ext.id) {
            out.push(Value::String(ext.id.clone()));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::Returned;
    use serde_json::json;

    fn attr(typ: AttrType, multi_valued: bool) -> Attribute {
        Attribute {
            name: "x".into(),
            typ,
            multi_valued,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            sub_attributes: Vec::new(),
        }
    }

    fn refused(a: &Attribute, v: Value) {
        match normalize_value(a, &v, "x") {
            Err(e) => assert_eq!(e.scim_type(), Some(ScimType::InvalidValue), "{v}: {e}"),
            Ok(got) => panic!("{v} accepted for {:?} as {got:?}", a.typ),
        }
    }

    fn kept(a: &Attribute, v: Value) -> Option<Value> {
        normalize_value(a, &v, "x").unwrap_or_else(|e| panic!("{v} refused: {e}"))
    }

    /// RFC 7643 §2.3: every type takes its own JSON form and nothing else (booleans also as
    /// Entra ID's strings).
    #[test]
    fn each_type_takes_only_its_own_values() {
        use AttrType::*;
        let integer = attr(Integer, false);
        assert_eq!(kept(&integer, json!(7)), Some(json!(7)));
        assert_eq!(kept(&integer, json!(7.0)), Some(json!(7)));
        for bad in [
            json!(7.5),
            json!("7"),
            json!(true),
            json!({}),
            json!([1, 2]),
        ] {
            refused(&integer, bad);
        }
        let decimal = attr(Decimal, false);
        assert_eq!(kept(&decimal, json!(2.5)), Some(json!(2.5)));
        for bad in [json!("2.5"), json!(false), json!({"v": 1})] {
            refused(&decimal, bad);
        }
        let boolean = attr(Boolean, false);
        assert_eq!(kept(&boolean, json!("False")), Some(json!(false)));
        for bad in [json!(1), json!("yes"), json!({})] {
            refused(&boolean, bad);
        }
        let date = attr(DateTime, false);
        assert!(kept(&date, json!("2026-01-23T04:56:22Z")).is_some());
        for bad in [json!("yesterday"), json!(1_700_000_000), json!({})] {
            refused(&date, bad);
        }
        let binary = attr(Binary, false);
        assert!(kept(&binary, json!("aGVsbG8=")).is_some());
        refused(&binary, json!("not base64!"));
        for typ in [String, Reference] {
            let a = attr(typ, false);
            assert!(kept(&a, json!("https://x.test/a")).is_some());
            for bad in [json!(1), json!(true), json!({"a": "b"}), json!(["a", "b"])] {
                refused(&a, bad);
            }
        }
    }

    #[test]
    fn multi_valued_takes_an_array_of_elements_of_its_type() {
        let mut emails = attr(AttrType::Complex, true);
        emails.sub_attributes = vec![attr(AttrType::String, false)];
        emails.sub_attributes[0].name = "value".into();
        refused(&emails, json!("x"));
        refused(&emails, json!({"value": "x"}));
        refused(&emails, json!(["x"]));
        assert_eq!(
            kept(&emails, json!([{"value": "x"}])),
            Some(json!([{"value": "x"}]))
        );
        // A single-valued complex attribute with a `value` takes a bare id (Entra's manager)
        // or a one-element list of it, never a longer list.
        let mut manager = emails.clone();
        manager.multi_valued = false;
        assert_eq!(kept(&manager, json!("id1")), Some(json!({"value": "id1"})));
        assert_eq!(
            kept(&manager, json!([{"value": "id1"}])),
            Some(json!({"value": "id1"}))
        );
        refused(&manager, json!(["a", "b"]));
        refused(&manager, json!(12));
    }

    #[test]
    fn schemas_name_the_core_schema_and_declared_extensions() {
        let user = Kind::User.schema();
        let ok = |s: Value| normalize(user, &json!({"schemas": s, "userName": "a"})).is_ok();
        let syntax = |s: Value| {
            normalize(user, &json!({"schemas": s, "userName": "a"}))
                .err()
                .and_then(|e| e.scim_type())
                == Some(ScimType::InvalidSyntax)
        };
        assert!(ok(json!([crate::scim::schema::CORE_USER])));
        assert!(ok(json!([
            "URN:ietf:params:scim:schemas:core:2.0:user",
            crate::scim::schema::ENTERPRISE_USER
        ])));
        assert!(ok(Value::Null));
        assert!(normalize(user, &json!({"userName": "a"})).is_ok());
        assert!(syntax(json!([crate::scim::schema::CORE_GROUP])));
        assert!(syntax(json!([
            crate::scim::schema::CORE_USER,
            "urn:example:unknown"
        ])));
        assert!(syntax(json!(crate::scim::schema::CORE_USER)));
        assert!(syntax(json!([crate::scim::schema::CORE_USER, 7])));
        assert!(syntax(json!([])));
    }
}
