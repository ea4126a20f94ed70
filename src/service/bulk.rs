//! `/Bulk` (RFC 7644 §3.7): many operations in one request.
//!
//! Each operation is one call to `Provisioning::create/replace/patch/delete`, so each applies
//! fully (in its own transaction) or not at all; the request as a whole is not atomic, as the
//! RFC intends. `bulkId:X` in an operation's `path` or in any string of its `data` names the
//! resource that the operation carrying `"bulkId": "X"` created or acted on. Operations run in
//! dependency order (request order otherwise), so a reference may point forward. Operations in
//! a reference cycle are refused with 409 (RFC 7644 §3.7.1 allows a service provider to stop
//! there), as is every operation that references an unknown bulkId or a failed operation.
//!
//! What a client can make large is bounded before any operation runs: a bulkId is at most
//! `MAX_BULK_ID_BYTES` long, a cycle error names at most `NAMED_IN_ERROR` bulkIds, and every
//! echo of client input in an answer is cut short, so one answer entry stays near a kilobyte
//! and the whole BulkResponse near `MAX_BULK_OPERATIONS` kilobytes.

use super::render::etag;
use super::{IfMatch, Provisioning, Tenant};
use crate::error::{excerpt, Conflict, Error, ErrorKind, Result, ScimType};
use crate::scim::schema::Kind;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Most operations in one bulk request (`bulk.maxOperations`); 413 beyond.
pub const MAX_BULK_OPERATIONS: usize = 1000;
/// Longest bulkId accepted; a longer one refuses the whole request before any work.
pub const MAX_BULK_ID_BYTES: usize = 128;
/// Longest resource id in an operation's path (scimd's ids are 36 characters).
const MAX_PATH_ID_BYTES: usize = 128 + REF_PREFIX.len();
/// Most bulkIds one error message names (a cycle of 1000 operations must not make every one of
/// its 1000 errors list all 1000: that was a 490 MB answer to a 1 MiB request).
pub const NAMED_IN_ERROR: usize = 3;
/// Longest error `detail` inside a BulkResponse entry.
pub const MAX_ENTRY_DETAIL_BYTES: usize = 512;
/// What marks a string as a reference to another operation's resource.
const REF_PREFIX: &str = "bulkId:";

/// What an operation does, and to which resource (an id, or `bulkId:X`).
enum Action {
    Create,
    Replace(String),
    Patch(String),
    Delete(String),
}

const METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

impl Action {
    /// The status of a successful operation's answer (RFC 7644 §3.7.3).
    fn success(&self) -> u16 {
        match self {
            Action::Create => 201,
            Action::Replace(_) | Action::Patch(_) => 200,
            Action::Delete(_) => 204,
        }
    }
    fn target(&self) -> Option<&str> {
        match self {
            Action::Create => None,
            Action::Replace(id) | Action::Patch(id) | Action::Delete(id) => Some(id),
        }
    }
}

/// What an operation asks for, once it is known to be well-formed.
struct Plan {
    action: Action,
    kind: Kind,
    if_match: IfMatch,
    data: Value,
}

/// One operation of the request.
struct Op {
    /// `method`, in upper case when it is one scimd knows, else as sent: echoed either way.
    method: Option<String>,
    bulk_id: Option<String>,
    /// The plan, or why the operation cannot run (answered in its place, never for the request).
    plan: Result<Plan>,
    /// The bulkIds it references, in its path or data.
    refs: BTreeSet<String>,
}

/// A key of a JSON object, named case-insensitively.
fn field<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::bad(ScimType::InvalidValue, detail)
}

/// The bulkId a string references, when it is a reference.
fn reference(s: &str) -> Option<&str> {
    s.strip_prefix(REF_PREFIX)
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(r) = reference(s) {
                out.insert(r.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Value::Object(o) => o.values().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// The id `s` stands for when it is `bulkId:X` and X is known; else `s`.
fn resolve<'a>(s: &'a str, ids: &'a HashMap<String, String>) -> &'a str {
    reference(s)
        .and_then(|r| ids.get(r))
        .map_or(s, String::as_str)
}

/// `v` with every `bulkId:X` string replaced by the id X stands for.
fn substitute(v: &Value, ids: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(resolve(s, ids).to_owned()),
        Value::Array(items) => items.iter().map(|i| substitute(i, ids)).collect(),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, i)| (k.clone(), substitute(i, ids)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// An operation's `version` as an `If-Match` precondition: `*` checks nothing, and an ETag
/// scimd never issued matches no record.
fn precondition(version: Option<&Value>) -> Result<IfMatch> {
    match version {
        None => Ok(None),
        Some(Value::String(v)) if v.trim() == "*" => Ok(None),
        Some(Value::String(v)) => {
            let v = v.trim();
            let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
            Ok(Some(v.parse().unwrap_or(-1)))
        }
        Some(_) => Err(invalid("version must be an ETag string such as W/\"3\"")),
    }
}

/// `/Users`, `/Users/{id}`, `/Groups` or `/Groups/{id}`.
fn target(path: &str) -> Result<(Kind, Option<String>)> {
    let bad = || {
        invalid(format!(
            "path must be /Users, /Users/{{id}}, /Groups or /Groups/{{id}}; got {:?}",
            excerpt(path, 64)
        ))
    };
    let rest = path.trim().strip_prefix('/').ok_or_else(bad)?;
    let (endpoint, id) = match rest.split_once('/') {
        Some((e, id)) if !id.is_empty() && !id.contains('/') && id.len() <= MAX_PATH_ID_BYTES => {
            (e, Some(id.to_owned()))
        }
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let kind = [Kind::User, Kind::Group]
        .into_iter()
        .find(|k| k.endpoint().eq_ignore_ascii_case(endpoint))
        .ok_or_else(bad)?;
    Ok((kind, id))
}

fn plan(o: &Map<String, Value>, method: Option<&str>, bulk_id: Option<&str>) -> Result<Plan> {
    let method = match method {
        None => return Err(invalid("each operation needs a method")),
        Some(m) if METHODS.contains(&m) => m,
        Some(m) => {
            return Err(invalid(format!(
                "method must be POST, PUT, PATCH or DELETE; got {:?}",
                excerpt(m, 16)
            )))
        }
    };
    let path = match field(o, "path") {
        Some(Value::String(p)) => p,
        Some(_) => return Err(invalid("path must be a string")),
        None => return Err(invalid("each operation needs a path")),
    };
    let (kind, id) = target(path)?;
    let action = match (method, id) {
        ("POST", None) if bulk_id.is_some() => Action::Create,
        ("POST", None) => return Err(invalid("a POST operation needs a bulkId (RFC 7644 §3.7)")),
        ("POST", Some(_)) => {
            return Err(invalid(format!(
                "a POST path names the resource type, such as /{}; got {:?}",
                kind.endpoint(),
                excerpt(path, 64)
            )))
        }
        ("PUT", Some(id)) => Action::Replace(id),
        ("PATCH", Some(id)) => Action::Patch(id),
        ("DELETE", Some(id)) => Action::Delete(id),
        (_, _) => {
            return Err(invalid(format!(
                "a {method} path names one resource, such as /{}/{{id}}; got {:?}",
                kind.endpoint(),
                excerpt(path, 64)
            )))
        }
    };
    let data = match (&action, field(o, "data")) {
        (Action::Delete(_), _) => Value::Null,
        (_, Some(d @ Value::Object(_))) => d.clone(),
        (_, _) => {
            return Err(Error::bad(
                ScimType::InvalidSyntax,
                format!("a {method} operation needs data, a JSON object"),
            ))
        }
    };
    Ok(Plan {
        action,
        kind,
        if_match: precondition(field(o, "version"))?,
        data,
    })
}

fn parse_op(n: usize, v: &Value) -> Result<Op> {
    let Value::Object(o) = v else {
        return Err(Error::bad(
            ScimType::InvalidSyntax,
            format!("Operations[{n}] must be a JSON object"),
        ));
    };
    let bulk_id = match field(o, "bulkId") {
        None => None,
        Some(Value::String(b)) if b.len() > MAX_BULK_ID_BYTES => {
            return Err(invalid(format!(
            "Operations[{n}].bulkId is {} bytes long; a bulkId may be at most {MAX_BULK_ID_BYTES}",
            b.len()
        )))
        }
        Some(Value::String(b)) if !b.is_empty() => Some(b.clone()),
        Some(_) => {
            return Err(invalid(format!(
                "Operations[{n}].bulkId must be a non-empty string"
            )))
        }
    };
    // Methods are matched case-insensitively and echoed in upper case (anything else is echoed
    // cut short).
    let method = field(o, "method").map(|m| match m {
        Value::String(s) if METHODS.iter().any(|k| k.eq_ignore_ascii_case(s)) => {
            s.to_ascii_uppercase()
        }
        Value::String(s) => excerpt(s, 16),
        other => excerpt(&other.to_string(), 16),
    });
    let plan = plan(o, method.as_deref(), bulk_id.as_deref());
    let mut refs = BTreeSet::new();
    if let Ok(p) = &plan {
        if let Some(r) = p.action.target().and_then(reference) {
            refs.insert(r.to_owned());
        }
        collect_refs(&p.data, &mut refs);
    }
    Ok(Op {
        method,
        bulk_id,
        plan,
        refs,
    })
}

struct Request {
    fail_on_errors: Option<usize>,
    ops: Vec<Op>,
}

/// Checks the BulkRequest as a whole; a problem of one operation is left to that operation.
fn parse(body: &Value) -> Result<Request> {
    let Value::Object(o) = body else {
        return Err(Error::bad(
            ScimType::InvalidSyntax,
            "a BulkRequest must be a JSON object",
        ));
    };
    if let Some(schemas) = field(o, "schemas") {
        let ok = schemas
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(BULK_REQUEST)));
        if !ok {
            return Err(invalid(format!("schemas must contain {BULK_REQUEST}")));
        }
    }
    let Some(Value::Array(items)) = field(o, "Operations") else {
        return Err(Error::bad(
            ScimType::InvalidSyntax,
            "a BulkRequest needs Operations, an array",
        ));
    };
    if items.len() > MAX_BULK_OPERATIONS {
        return Err(Error::too_large(format!(
                "a bulk request may carry at most {MAX_BULK_OPERATIONS} operations (bulk.maxOperations); this one has {}",
                items.len()
            ),
        ));
    }
    let fail_on_errors = match field(o, "failOnErrors") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "failOnErrors must be an integer of 1 or more; got {v}"
                    ))
                })?,
        ),
    };
    let ops = items
        .iter()
        .enumerate()
        .map(|(n, v)| parse_op(n, v))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = BTreeSet::new();
    if let Some(dup) = ops
        .iter()
        .filter_map(|op| op.bulk_id.as_deref())
        .find(|b| !seen.insert(*b))
    {
        return Err(invalid(format!(
            "bulkId {dup:?} is used by more than one operation; each bulkId must be unique in the request"
        )));
    }
    Ok(Request {
        fail_on_errors,
        ops,
    })
}

/// Tarjan's strongly connected components over "operation i references operation j". Returns
/// an order in which every operation comes after the operations it references (request order
/// where references allow), and for each operation in a reference cycle, which cycle.
fn schedule(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<Option<usize>>) {
    struct Walk<'a> {
        deps: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        order: Vec<usize>,
        cycles: usize,
        cycle: Vec<Option<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            let deps = self.deps;
            for &w in &deps[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if self.index[v] == Some(self.low[v]) {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let cycle = (component.len() > 1 || deps[v].contains(&v)).then_some(self.cycles);
                self.cycles += usize::from(cycle.is_some());
                component.sort_unstable();
                for w in component {
                    self.cycle[w] = cycle;
                    self.order.push(w);
                }
            }
        }
    }
    let n = deps.len();
    let mut walk = Walk {
        deps,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        order: Vec::with_capacity(n),
        cycles: 0,
        cycle: vec![None; n],
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    (walk.order, walk.cycle)
}

/// An operation's failure as its status and error body, its detail cut to
/// `MAX_ENTRY_DETAIL_BYTES`; an internal cause goes to the log.
fn error_body(e: &Error) -> Failure {
    if let Error::Internal(cause) = e {
        tracing::error!(error = ?cause, "internal error in a bulk operation");
    }
    let (status, mut body) = e.body();
    if let Some(Value::String(detail)) = body.get_mut("detail") {
        if detail.len() > MAX_ENTRY_DETAIL_BYTES {
            *detail = excerpt(detail, MAX_ENTRY_DETAIL_BYTES);
        }
    }
    (status, body)
}

/// A failure as the status and error body of an operation's answer.
type Failure = (u16, Value);

/// What became of one operation.
struct Outcome {
    /// The resource it created or acted on, once known.
    target: Option<(Kind, String)>,
    /// The new version (none after a DELETE), or the failure.
    result: std::result::Result<Option<i64>, Failure>,
}

impl Outcome {
    fn failed(e: &Error) -> Self {
        Outcome {
            target: None,
            result: Err(error_body(e)),
        }
    }
}

impl Provisioning {
    /// Runs a BulkRequest for one organization and answers the BulkResponse. Fails as a whole
    /// only when the request itself is malformed or too large.
    pub async fn bulk(&self, t: &Tenant, base: &str, body: &Value) -> Result<Value> {
        let req = parse(body)?;
        let ops = &req.ops;
        let defined: HashMap<&str, usize> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| op.bulk_id.as_deref().map(|b| (b, i)))
            .collect();
        let deps: Vec<Vec<usize>> = ops
            .iter()
            .map(|op| {
                op.refs
                    .iter()
                    .filter_map(|r| defined.get(r.as_str()).copied())
                    .collect()
            })
            .collect();
        let (order, cycle) = schedule(&deps);

        // bulkId → the id of the resource its operation created or acted on, once it succeeded.
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut results: Vec<Option<Value>> = vec![None; ops.len()];
        let (mut processed, mut failures) = (0usize, 0usize);
        for i in order {
            let op = &ops[i];
            let outcome = match &op.plan {
                Err(e) => Outcome::failed(e),
                Ok(_) if cycle[i].is_some() => Outcome::failed(&circular_error(i, &cycle, ops)),
                Ok(plan) => match unresolved(op, &ids, &defined) {
                    Some(e) => Outcome::failed(&e),
                    None => self.run(t, plan, &ids).await,
                },
            };
            if let (Some(b), Some((_, id)), Ok(_)) = (&op.bulk_id, &outcome.target, &outcome.result)
            {
                ids.insert(b.clone(), id.clone());
            }
            processed += 1;
            failures += usize::from(outcome.result.is_err());
            results[i] = Some(entry(op, outcome, base));
            if req.fail_on_errors.is_some_and(|max| failures >= max) {
                break;
            }
        }
        tracing::info!(
            org = %t.org_slug,
            operations = ops.len(),
            processed,
            failures,
            "bulk request"
        );
        Ok(json!({
            "schemas": [BULK_RESPONSE],
            "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
        }))
    }

    /// One well-formed operation whose references all resolved: one service call, so one
    /// transaction.
    async fn run(&self, t: &Tenant, plan: &Plan, ids: &HashMap<String, String>) -> Outcome {
        let kind = plan.kind;
        let data = substitute(&plan.data, ids);
        let im = plan.if_match;
        let result = match &plan.action {
            Action::Create => self.create(t, kind, &data).await,
            Action::Replace(id) => self.replace(t, kind, resolve(id, ids), &data, im).await,
            Action::Patch(id) => self.patch(t, kind, resolve(id, ids), &data, im).await,
            Action::Delete(id) => {
                let id = resolve(id, ids);
                return Outcome {
                    target: Some((kind, id.to_owned())),
                    result: self
                        .delete(t, kind, id, im)
                        .await
                        .map(|()| None)
                        .map_err(|e| error_body(&e)),
                };
            }
        };
        match result {
            Ok(rec) => Outcome {
                target: Some((kind, rec.id)),
                result: Ok(Some(rec.version)),
            },
            Err(e) => Outcome {
                target: plan
                    .action
                    .target()
                    .map(|id| (kind, resolve(id, ids).to_owned())),
                result: Err(error_body(&e)),
            },
        }
    }
}

/// 409 when an operation references a bulkId that no operation has, or whose operation failed
/// (RFC 7644 §3.7.2).
fn unresolved(
    op: &Op,
    ids: &HashMap<String, String>,
    defined: &HashMap<&str, usize>,
) -> Option<Error> {
    let r = op.refs.iter().find(|r| !ids.contains_key(*r))?;
    let why = if defined.contains_key(r.as_str()) {
        "the operation with that bulkId failed"
    } else {
        "no operation in this request has that bulkId"
    };
    Some(Error::new(
        ErrorKind::Conflict(Conflict::State),
        Some(ScimType::InvalidValue),
        format!(
            "cannot resolve the reference {REF_PREFIX}{}: {why}",
            excerpt(r, MAX_BULK_ID_BYTES)
        ),
    ))
}

/// 409 for an operation in a reference cycle (RFC 7644 §3.7.1), naming its own bulkId and at
/// most `NAMED_IN_ERROR` of the cycle's in all.
fn circular_error(i: usize, cycle: &[Option<usize>], ops: &[Op]) -> Error {
    let members: Vec<&str> = ops
        .iter()
        .zip(cycle)
        .filter(|(_, c)| **c == cycle[i])
        .filter_map(|(op, _)| op.bulk_id.as_deref())
        .collect();
    let own = ops[i].bulk_id.as_deref();
    let named: Vec<String> = own
        .into_iter()
        .chain(members.iter().copied().filter(|b| Some(*b) != own))
        .take(NAMED_IN_ERROR)
        .map(|b| format!("{REF_PREFIX}{b}"))
        .collect();
    let more = match members.len().saturating_sub(named.len()) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Error::new(
        ErrorKind::Conflict(Conflict::State),
        Some(ScimType::InvalidValue),
        format!(
            "circular bulkId reference ({}{more}): these operations reference each other, so none can run first; create the resources first and link them in a later request",
            named.join(", ")
        ),
    )
}

/// One entry of the BulkResponse's `Operations`.
fn entry(op: &Op, outcome: Outcome, base: &str) -> Value {
    let mut out = Map::new();
    if let Some(m) = &op.method {
        out.insert("method".into(), Value::String(m.clone()));
    }
    if let Some(b) = &op.bulk_id {
        out.insert("bulkId".into(), Value::String(b.clone()));
    }
    if let Some((kind, id)) = &outcome.target {
        out.insert(
            "location".into(),
            Value::String(format!("{base}/{}/{id}", kind.endpoint())),
        );
    }
    let status = match outcome.result {
        Ok(version) => {
            if let Some(v) = version {
                out.insert("version".into(), Value::String(etag(v)));
            }
            op.plan.as_ref().map_or(200, |p| p.action.success())
        }
        Err((status, body)) => {
            out.insert("response".into(), body);
            status
        }
    };
    out.insert("status".into(), Value::String(status.to_string()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::{schedule, target};
    use crate::scim::schema::Kind;

    #[test]
    fn references_run_first_and_cycles_are_found() {
        // 0 → 2 → 1; 3 ↔ 4; 5 → itself; 6 → 3.
        let deps = vec![vec![2], vec![], vec![1], vec![4], vec![3], vec![5], vec![3]];
        let (order, cycle) = schedule(&deps);
        assert_eq!(order, vec![1, 2, 0, 3, 4, 5, 6]);
        assert_eq!(
            cycle,
            vec![None, None, None, Some(0), Some(0), Some(1), None]
        );
    }

    #[test]
    fn paths() {
        assert_eq!(target("/Users").unwrap(), (Kind::User, None));
        assert_eq!(
            target("/groups/bulkId:x").unwrap(),
            (Kind::Group, Some("bulkId:x".into()))
        );
        for bad in ["Users", "/Users/", "/Users/a/b", "/Teams/a", ""] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }
}
