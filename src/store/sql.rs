//! The SCIM filter → SQL compiler, shared by both stores. It resolves every attribute path
//! against the schema and emits either an indexed column (`userName`, `externalId`, `id`,
//! `displayName`, `meta.created`, `meta.lastModified`, group membership rows) or a JSON path into
//! the canonical document, so every attribute is filterable and no row is ever filtered in
//! process. Values are always bound parameters, never spliced into the SQL text.
//!
//! Every predicate is two-valued (`coalesce(…, false)`), so `not (…)` means what RFC 7644
//! §3.4.2.2 says even where SQL would see NULL.

use crate::error::{Error, Result};
use crate::scim::eval::{check_operator, fold, literal_bool, parse_datetime};
use crate::scim::filter::{AttrPath, CompareOp, Filter, Literal};
use crate::scim::schema::{AttrType, Attribute, Kind, ResourceSchema, Scope, ORGANIZATION_USER};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A JSON path: `$."a"."b"` on SQLite, a `text[]` on Postgres.
    Path(Vec<String>),
}

/// SQL text with `$n` placeholders (both SQLite and Postgres accept them) and its arguments.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    pub dialect: Dialect,
    aliases: usize,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Sql {
            text: String::new(),
            args: Vec::new(),
            dialect,
            aliases: 0,
        }
    }
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    /// Binds `a` and returns its placeholder, to be used once or several times.
    pub fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    pub fn bind(&mut self, a: Arg) -> &mut Self {
        let p = self.arg(a);
        self.text.push_str(&p);
        self
    }
    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("j{}", self.aliases)
    }
    pub(super) fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }
}

/// How a value is reached in SQL.
enum Expr {
    /// An indexed column; `lowered` when it holds the case-folded form.
    Column { sql: String, lowered: bool },
    /// A timestamp column in microseconds (meta.created, meta.lastModified).
    Micros(String),
    /// A JSON value: `base` is a JSON document or element expression, `path` the keys inside.
    Json { base: String, path: Vec<String> },
    /// `json_each`'s scalar element on SQLite (`j.value`), used for multi-valued simple values.
    SqliteElement(String),
    /// A value known without reading anything (`meta.resourceType`, `members.type`).
    Const(Option<&'static str>),
    /// An attribute scimd does not store (`meta.location`): matches nothing.
    Nothing,
}

/// Where a multi-valued attribute's elements come from.
enum Elements {
    Json {
        base: String,
        path: Vec<String>,
    },
    /// A group's member rows.
    Members,
    /// A user's group rows.
    GroupsOfUser,
}

/// Appends `filter` as a boolean SQL expression over the row alias `r`.
pub fn compile_filter(sql: &mut Sql, kind: Kind, filter: &Filter) -> Result<()> {
    Compiler { rs: kind.schema() }.filter(sql, filter, None)
}

struct Compiler {
    rs: &'static ResourceSchema,
}

/// An element scope: the alias of the element row and the multi-valued attribute.
struct ElemCtx<'a> {
    alias: String,
    elements: &'a Elements,
    attr: &'a Attribute,
}

impl Compiler {
    fn filter(&self, sql: &mut Sql, f: &Filter, elem: Option<&ElemCtx<'_>>) -> Result<()> {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                sql.push("(");
                self.filter(sql, a, elem)?;
                sql.push(if matches!(f, Filter::And(..)) {
                    " and "
                } else {
                    " or "
                });
                self.filter(sql, b, elem)?;
                sql.push(")");
            }
            Filter::Not(a) => {
                sql.push("not (");
                self.filter(sql, a, elem)?;
                sql.push(")");
            }
            Filter::Present(path) => self.leaf(sql, path, None, elem)?,
            Filter::Compare(path, op, lit) => self.leaf(sql, path, Some((*op, lit)), elem)?,
            Filter::ValuePath(path, inner) => {
                if elem.is_some() {
                    return Err(Error::bad(
                        crate::error::ScimType::InvalidFilter,
                        "value filters cannot be nested",
                    ));
                }
                let Some((scope, attr)) = self.rs.resolve(path.uri.as_deref(), &path.name) else {
                    sql.push("false");
                    return Ok(());
                };
                if !attr.multi_valued || !attr.is_complex() {
                    return Err(Error::bad(
                        crate::error::ScimType::InvalidFilter,
                        format!(
                            "'{}[...]' needs a multi-valued complex attribute",
                            attr.name
                        ),
                    ));
                }
                let elements = self.elements(scope, attr);
                self.exists(sql, &elements, attr, |c, sql, ctx| {
                    c.filter(sql, inner, Some(ctx))
                })?;
            }
        }
        Ok(())
    }

    fn elements(&self, scope: Scope<'_>, attr: &Attribute) -> Elements {
        match (self.rs.kind, scope, attr.name.as_str()) {
            (Kind::Group, Scope::Core, "members") => Elements::Members,
            (Kind::User, Scope::Core, "groups") => Elements::GroupsOfUser,
            _ => Elements::Json {
                base: "r.doc".into(),
                path: json_path(scope, attr),
            },
        }
    }

    /// `exists (select 1 from <elements> where <body>)`.
    fn exists(
        &self,
        sql: &mut Sql,
        elements: &Elements,
        attr: &Attribute,
        body: impl FnOnce(&Self, &mut Sql, &ElemCtx<'_>) -> Result<()>,
    ) -> Result<()> {
        let alias = sql.alias();
        sql.push("exists (select 1 from ");
        match elements {
            Elements::Json { base, path } => {
                let p = sql.arg(Arg::Path(path.clone()));
                if sql.pg() {
                    let _ = write!(sql.text, "jsonb_array_elements(case when jsonb_typeof({base} #> {p}) = 'array' then {base} #> {p} else '[]'::jsonb end) {alias}(v) where ");
                } else {
                    let _ = write!(sql.text, "json_each({base}, {p}) {alias} where ");
                }
            }
            Elements::Members => {
                let _ = write!(
                    sql.text,
                    "team_member {alias} where {alias}.team_id = r.id and "
                );
            }
            Elements::GroupsOfUser => {
                let _ = write!(
                    sql.text,
                    "team_member {alias} join team {alias}t on {alias}t.id = {alias}.team_id where {alias}.membership_id = r.id and "
                );
            }
        }
        let ctx = ElemCtx {
            alias,
            elements,
            attr,
        };
        sql.push("(");
        body(self, sql, &ctx)?;
        sql.push("))");
        Ok(())
    }

    /// How sub-attribute `sub` (or the element itself) of an element is reached.
    fn element_expr(&self, ctx: &ElemCtx<'_>, sub: Option<&Attribute>, pg: bool) -> Expr {
        let a = &ctx.alias;
        match (ctx.elements, sub.map(|s| s.name.as_str())) {
            (Elements::Json { .. }, None) => {
                if pg {
                    Expr::Json {
                        base: format!("{a}.v"),
                        path: vec![],
                    }
                } else {
                    Expr::SqliteElement(format!("{a}.value"))
                }
            }
            (Elements::Json { .. }, Some(name)) => Expr::Json {
                base: if pg {
                    format!("{a}.v")
                } else {
                    format!("{a}.value")
                },
                path: vec![name.to_owned()],
            },
            (Elements::Members, Some("value") | None) => Expr::Column {
                sql: format!("{a}.membership_id"),
                lowered: false,
            },
            (Elements::Members, Some("type")) => Expr::Const(Some("User")),
            (Elements::GroupsOfUser, Some("value") | None) => Expr::Column {
                sql: format!("{a}.team_id"),
                lowered: false,
            },
            (Elements::GroupsOfUser, Some("display")) => Expr::Column {
                sql: format!("{a}t.display_name_norm"),
                lowered: true,
            },
            (Elements::GroupsOfUser, Some("type")) => Expr::Const(Some("direct")),
            _ => Expr::Nothing,
        }
    }

    /// A comparison or presence test (`op` = None) on one attribute path.
    fn leaf(
        &self,
        sql: &mut Sql,
        path: &AttrPath,
        op: Option<(CompareOp, &Literal)>,
        elem: Option<&ElemCtx<'_>>,
    ) -> Result<()> {
        let pg = sql.pg();
        if let Some(ctx) = elem {
            // Inside `attr[...]`: names are sub-attributes of the element.
            let sub = if path.uri.is_none() && path.sub.is_none() {
                ctx.attr.sub(&path.name)
            } else {
                None
            };
            let Some(sub) = sub else {
                sql.push("false");
                return Ok(());
            };
            let expr = self.element_expr(ctx, Some(sub), pg);
            return self.condition(sql, &expr, sub, op);
        }
        let Some((scope, attr)) = self.rs.resolve(path.uri.as_deref(), &path.name) else {
            sql.push("false");
            return Ok(());
        };
        if scope == Scope::Core && attr.name == "schemas" {
            if path.sub.is_some() {
                sql.push("false");
                return Ok(());
            }
            if let Some((op, lit)) = op {
                check_operator(attr, op, lit)?;
            }
            self.schemas(sql, attr, op);
            return Ok(());
        }
        let sub = match &path.sub {
            Some(name) => match attr.sub(name) {
                Some(s) => Some(s),
                None => {
                    sql.push("false");
                    return Ok(());
                }
            },
            // A multi-valued complex attribute compared as a whole compares its `value`.
            None if attr.is_complex() && attr.multi_valued => attr.sub("value"),
            None => None,
        };
        let target = sub.unwrap_or(attr);
        if let Some((op, lit)) = op {
            check_operator(target, op, lit)?;
        }
        if attr.multi_valued {
            if let Some(Literal::Str(v)) = self.indexed_eq(scope, attr, sub, op) {
                self.indexed_lookup(sql, attr, v);
                return Ok(());
            }
            let elements = self.elements(scope, attr);
            let negate = matches!(op, Some((CompareOp::Ne, l)) if *l != Literal::Null);
            let null_eq = matches!(op, Some((CompareOp::Eq, Literal::Null)));
            let inner_op = match op {
                Some((CompareOp::Ne, l)) if *l != Literal::Null => Some((CompareOp::Eq, l)),
                Some((_, Literal::Null)) => None,
                other => other,
            };
            if negate || null_eq {
                sql.push("not ");
            }
            return self.exists(sql, &elements, attr, |c, sql, ctx| {
                let expr = c.element_expr(ctx, sub, pg);
                c.condition(sql, &expr, target, inner_op)
            });
        }
        let expr = self.row_expr(scope, attr, sub);
        self.condition(sql, &expr, target, op)
    }

    /// `schemas op lit`: `schemas` is not stored, it is the core schema (always) and each
    /// extension the resource carries (its object in the document; for scimd's organization
    /// extension, an assigned role). Each URN is known here, so the comparison is decided for
    /// it now and only its presence is left to SQL.
    fn schemas(&self, sql: &mut Sql, attr: &Attribute, op: Option<(CompareOp, &Literal)>) {
        let pg = sql.pg();
        let mut candidates: Vec<(&str, Option<String>)> = vec![(self.rs.core.id.as_str(), None)];
        for ext in &self.rs.extensions {
            let present = if ext.id == ORGANIZATION_USER {
                "r.role_assigned".to_owned()
            } else {
                let p = sql.arg(Arg::Path(vec![ext.id.clone()]));
                if pg {
                    format!("((r.doc #> {p}) is not null)")
                } else {
                    format!("(json_type(r.doc, {p}) is not null)")
                }
            };
            candidates.push((ext.id.as_str(), Some(present)));
        }
        let (negate, op, lit) = match op {
            // Every resource has its core schema.
            None | Some((CompareOp::Ne, Literal::Null)) => {
                sql.push("true");
                return;
            }
            Some((CompareOp::Eq, Literal::Null)) => {
                sql.push("false");
                return;
            }
            // `ne`: no value is equal (as for every multi-valued attribute).
            Some((CompareOp::Ne, lit)) => (true, CompareOp::Eq, lit),
            Some((op, lit)) => (false, op, lit),
        };
        let hits: Vec<String> = candidates
            .into_iter()
            .filter(|(uri, _)| {
                let v = serde_json::Value::String((*uri).to_owned());
                crate::scim::eval::compare_value(attr, &v, op, lit)
            })
            .map(|(_, present)| present.unwrap_or_else(|| "true".to_owned()))
            .collect();
        let any = if hits.is_empty() {
            "false".to_owned()
        } else {
            format!("({})", hits.join(" or "))
        };
        if negate {
            let _ = write!(sql.text, "not {any}");
        } else {
            sql.push(&any);
        }
    }

    /// The literal of an equality that an index answers: `emails.value`, a group's
    /// `members.value`, a user's `groups.value`.
    fn indexed_eq<'l>(
        &self,
        scope: Scope<'_>,
        attr: &Attribute,
        sub: Option<&Attribute>,
        op: Option<(CompareOp, &'l Literal)>,
    ) -> Option<&'l Literal> {
        let (CompareOp::Eq, lit @ Literal::Str(_)) = op? else {
            return None;
        };
        let indexed = scope == Scope::Core
            && sub.is_some_and(|s| s.name == "value")
            && matches!(
                (self.rs.kind, attr.name.as_str()),
                (Kind::User, "emails") | (Kind::User, "groups") | (Kind::Group, "members")
            );
        indexed.then_some(lit)
    }

    /// `r.id in (…)`: written so the planner drives the query from the index.
    fn indexed_lookup(&self, sql: &mut Sql, attr: &Attribute, v: &str) {
        let (select, value) = match (self.rs.kind, attr.name.as_str()) {
            (Kind::User, "emails") => (
                "select membership_id from membership_email where value_norm = ",
                v.to_lowercase(),
            ),
            (Kind::User, _) => (
                "select membership_id from team_member where team_id = ",
                v.to_owned(),
            ),
            (Kind::Group, _) => (
                "select team_id from team_member where membership_id = ",
                v.to_owned(),
            ),
        };
        let p = sql.arg(Arg::Text(value));
        let _ = write!(sql.text, "r.id in ({select}{p})");
    }

    /// How a singular attribute (or its sub-attribute) of the row is reached.
    fn row_expr(&self, scope: Scope<'_>, attr: &Attribute, sub: Option<&Attribute>) -> Expr {
        if scope == Scope::Core {
            let col = |c: &str, lowered| Expr::Column {
                sql: format!("r.{c}"),
                lowered,
            };
            match (
                self.rs.kind,
                attr.name.as_str(),
                sub.map(|s| s.name.as_str()),
            ) {
                (_, "id", None) => return col("id", false),
                (_, "externalId", None) => return col("external_id", false),
                (Kind::User, "userName", None) => return col("user_name_norm", true),
                (Kind::Group, "displayName", None) => return col("display_name_norm", true),
                (_, "meta", Some("created")) => return Expr::Micros("r.created_at".into()),
                (_, "meta", Some("lastModified")) => return Expr::Micros("r.updated_at".into()),
                // The weak ETag the version column renders as (RFC 7644 §3.14).
                (_, "meta", Some("version")) => {
                    return Expr::Column {
                        sql: "('W/\"' || r.version || '\"')".into(),
                        lowered: false,
                    }
                }
                (kind, "meta", Some("resourceType")) => return Expr::Const(Some(kind.name())),
                (_, "meta", _) => return Expr::Nothing,
                _ => {}
            }
        }
        // The organization role lives in its own column, shown only once assigned.
        if let (Kind::User, Some(ORGANIZATION_USER), "role") =
            (self.rs.kind, scope.key(), attr.name.as_str())
        {
            return Expr::Column {
                sql: "(case when r.role_assigned then r.role end)".into(),
                lowered: false,
            };
        }
        let mut path = json_path(scope, attr);
        if let Some(s) = sub {
            path.push(s.name.clone());
        }
        Expr::Json {
            base: "r.doc".into(),
            path,
        }
    }

    /// The SQL for `expr op lit` (or `expr pr`) where `attr` describes the value's type.
    fn condition(
        &self,
        sql: &mut Sql,
        expr: &Expr,
        attr: &Attribute,
        op: Option<(CompareOp, &Literal)>,
    ) -> Result<()> {
        let pg = sql.pg();
        // Presence and null comparisons first.
        let present = |sql: &mut Sql| match expr {
            Expr::Column { sql: c, .. } | Expr::Micros(c) => {
                let _ = write!(sql.text, "({c} is not null)");
            }
            Expr::SqliteElement(e) => {
                let _ = write!(sql.text, "({e} is not null and {e} <> '')");
            }
            Expr::Json { base, path } => {
                let p = sql.arg(Arg::Path(path.clone()));
                if pg {
                    let _ = write!(
                        sql.text,
                        "coalesce(({base} #> {p}) is not null and ({base} #>> {p}) <> '', false)"
                    );
                } else {
                    let _ = write!(sql.text, "coalesce(json_type({base}, {p}) is not null and json_extract({base}, {p}) <> '', false)");
                }
            }
            Expr::Const(c) => {
                sql.push(if c.is_some() { "true" } else { "false" });
            }
            Expr::Nothing => {
                sql.push("false");
            }
        };
        let (op, lit) = match op {
            None => {
                present(sql);
                return Ok(());
            }
            Some((op, Literal::Null)) => {
                if op == CompareOp::Eq {
                    sql.push("not ");
                }
                present(sql);
                return Ok(());
            }
            Some(x) => x,
        };
        if op == CompareOp::Ne {
            sql.push("not coalesce(");
            self.condition(sql, expr, attr, Some((CompareOp::Eq, lit)))?;
            sql.push(", false)");
            return Ok(());
        }
        match expr {
            Expr::Nothing => {
                sql.push("false");
                return Ok(());
            }
            Expr::Const(c) => {
                let hit = c.is_some_and(|c| {
                    let doc = serde_json::Value::String(c.to_owned());
                    crate::scim::eval::compare_value(attr, &doc, op, lit)
                });
                sql.push(if hit { "true" } else { "false" });
                return Ok(());
            }
            Expr::Micros(col) => {
                let Some(t) = (match lit {
                    Literal::Str(s) => parse_datetime(s),
                    _ => None,
                }) else {
                    sql.push("false");
                    return Ok(());
                };
                let micros = (t.unix_timestamp_nanos() / 1000) as i64;
                let p = sql.arg(Arg::Int(micros));
                let _ = write!(sql.text, "({col} {} {p})", ordering_sql(op));
                return Ok(());
            }
            _ => {}
        }
        // Columns: `c is not null and …` keeps the comparison two-valued *and* lets the
        // planner use the column's index; `coalesce(c = $1, false)` would hide it.
        let (open, close) = match expr {
            Expr::Column { sql: c, .. } => (format!("({c} is not null and "), ")"),
            _ => ("coalesce(".to_owned(), ", false)"),
        };
        sql.push(&open);
        match attr.typ {
            AttrType::Boolean => {
                let Some(b) = literal_bool(lit) else {
                    sql.push("false").push(close);
                    return Ok(());
                };
                let e = self.typed(sql, expr, "boolean");
                let p = sql.arg(Arg::Bool(b));
                let _ = write!(sql.text, "{e} = {p}");
            }
            AttrType::Integer | AttrType::Decimal => {
                let Literal::Num(n) = lit else {
                    sql.push("false").push(close);
                    return Ok(());
                };
                let e = self.typed(sql, expr, "float8");
                let p = sql.arg(Arg::Float(*n));
                let _ = write!(sql.text, "{e} {} {p}", ordering_sql(op));
            }
            AttrType::DateTime => {
                let Some(_) = (match lit {
                    Literal::Str(s) => parse_datetime(s),
                    _ => None,
                }) else {
                    sql.push("false").push(close);
                    return Ok(());
                };
                let Literal::Str(s) = lit else { return Ok(()) };
                let e = self.typed(sql, expr, "text");
                let p = sql.arg(Arg::Text(s.clone()));
                if pg {
                    let _ = write!(
                        sql.text,
                        "({e})::timestamptz {} ({p})::timestamptz",
                        ordering_sql(op)
                    );
                } else {
                    let _ = write!(
                        sql.text,
                        "julianday({e}) {} julianday({p})",
                        ordering_sql(op)
                    );
                }
            }
            _ => {
                let Literal::Str(s) = lit else {
                    sql.push("false").push(close);
                    return Ok(());
                };
                let raw = self.typed(sql, expr, "text");
                let lowered = matches!(expr, Expr::Column { lowered: true, .. });
                let e = if attr.case_exact || lowered {
                    raw
                } else {
                    format!("lower({raw})")
                };
                let v = if lowered {
                    s.to_lowercase()
                } else {
                    fold(attr, s)
                };
                if v.is_empty() && op.is_substring() {
                    let _ = write!(sql.text, "{e} is not null");
                } else {
                    let p = sql.arg(Arg::Text(v));
                    let c = if pg { " collate \"C\"" } else { "" };
                    let _ = match (op, pg) {
                        (CompareOp::Co, false) => write!(sql.text, "instr({e}, {p}) > 0"),
                        (CompareOp::Co, true) => write!(sql.text, "strpos({e}, {p}) > 0"),
                        (CompareOp::Sw, false) => {
                            write!(sql.text, "substr({e}, 1, length({p})) = {p}")
                        }
                        (CompareOp::Sw, true) => write!(sql.text, "left({e}, length({p})) = {p}"),
                        (CompareOp::Ew, false) => {
                            write!(sql.text, "substr({e}, -length({p})) = {p}")
                        }
                        (CompareOp::Ew, true) => write!(sql.text, "right({e}, length({p})) = {p}"),
                        (CompareOp::Eq, _) => write!(sql.text, "{e} = {p}"),
                        _ => write!(sql.text, "{e}{c} {} {p}{c}", ordering_sql(op)),
                    };
                }
            }
        }
        sql.push(close);
        Ok(())
    }

    /// The SQL expression for a value, as `pg_type` on Postgres (SQLite's JSON functions
    /// already return typed values).
    fn typed(&self, sql: &mut Sql, expr: &Expr, pg_type: &str) -> String {
        match expr {
            Expr::Column { sql: c, .. } | Expr::Micros(c) | Expr::SqliteElement(c) => c.clone(),
            Expr::Json { base, path } => {
                let p = sql.arg(Arg::Path(path.clone()));
                if sql.pg() {
                    if pg_type == "text" {
                        format!("({base} #>> {p})")
                    } else {
                        format!("({base} #>> {p})::{pg_type}")
                    }
                } else {
                    format!("json_extract({base}, {p})")
                }
            }
            Expr::Const(_) | Expr::Nothing => "null".into(),
        }
    }

    /// The sort key for `sortBy` (RFC 7644 §3.4.2.3): a singular attribute, or the primary (else
    /// first) value of a multi-valued one. `None`: the attribute is unknown and the default
    /// order applies.
    fn sort_key(&self, sql: &mut Sql, path: &AttrPath) -> Option<(String, bool)> {
        let (scope, attr) = self.rs.resolve(path.uri.as_deref(), &path.name)?;
        if scope == Scope::Core && attr.name == "schemas" {
            // Its first value is the core schema for every resource: the default order.
            return None;
        }
        let sub = match &path.sub {
            Some(n) => Some(attr.sub(n)?),
            None if attr.is_complex() => Some(attr.sub("value")?),
            None => None,
        };
        let target = sub.unwrap_or(attr);
        let is_text = matches!(
            target.typ,
            AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime
        );
        let pg = sql.pg();
        let text = |e: String| {
            if matches!(
                target.typ,
                AttrType::String | AttrType::Reference | AttrType::Binary
            ) && !target.case_exact
            {
                format!("lower({e})")
            } else {
                e
            }
        };
        if attr.multi_valued {
            let mut path_v = json_path(scope, attr);
            let field = sub.map(|s| s.name.clone()).unwrap_or_default();
            if matches!(
                self.elements(scope, attr),
                Elements::Members | Elements::GroupsOfUser
            ) {
                return None;
            }
            let p = sql.arg(Arg::Path(std::mem::take(&mut path_v)));
            let f = sql.arg(Arg::Text(field));
            return Some((
                if pg {
                    format!(
                    "(select {} from jsonb_array_elements(case when jsonb_typeof(r.doc #> {p}) = 'array' then r.doc #> {p} else '[]'::jsonb end) with ordinality s(v, n) order by coalesce(s.v ->> 'primary', 'false') desc, s.n limit 1)",
                    text(format!("(s.v ->> {f})"))
                )
                } else {
                    format!(
                    "(select {} from json_each(r.doc, {p}) s order by coalesce(json_extract(s.value, '$.primary'), 0) desc, s.key limit 1)",
                    text(format!("json_extract(s.value, '$.\"' || {f} || '\"')"))
                )
                },
                is_text,
            ));
        }
        let expr = self.row_expr(scope, attr, sub);
        let pg_type = match target.typ {
            AttrType::Integer | AttrType::Decimal => "float8",
            AttrType::Boolean => "boolean",
            _ => "text",
        };
        let key = match expr {
            Expr::Column { sql: c, lowered } => {
                if lowered {
                    c
                } else {
                    text(c)
                }
            }
            Expr::Micros(c) => return Some((c, false)),
            e @ Expr::Json { .. } => {
                let t = self.typed(sql, &e, pg_type);
                text(t)
            }
            _ => return None,
        };
        Some((key, is_text))
    }
}

fn ordering_sql(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => "=",
    }
}

/// The JSON keys of an attribute inside the stored document.
fn json_path(scope: Scope<'_>, attr: &Attribute) -> Vec<String> {
    let mut p = Vec::with_capacity(2);
    if let Some(k) = scope.key() {
        p.push(k.to_owned());
    }
    p.push(attr.name.clone());
    p
}

/// The SQLite spelling of a JSON path: `$."a"."b"`.
pub fn sqlite_path(keys: &[String]) -> String {
    let mut s = String::from("$");
    for k in keys {
        s.push_str(".\"");
        s.push_str(&k.replace('"', "\\\""));
        s.push('"');
    }
    s
}

/// Appends `order by …` for a sort (or the default: creation order), always ending in a unique
/// tie-break so pages never overlap.
pub fn compile_order(sql: &mut Sql, kind: Kind, sort: Option<&crate::store::Sort>) {
    sql.push(" order by ");
    if let Some(sort) = sort {
        if let Some((key, is_text)) = (Compiler { rs: kind.schema() }).sort_key(sql, &sort.by) {
            // RFC 7644 §3.4.2.3: resources without a value for sortBy come last in ascending
            // order and first in descending order.
            let dir = match sort.order {
                crate::store::SortOrder::Ascending => "asc nulls last",
                crate::store::SortOrder::Descending => "desc nulls first",
            };
            // Byte order on both backends, whatever the Postgres database's locale.
            let collate = if is_text && sql.pg() {
                " collate \"C\""
            } else {
                ""
            };
            let _ = write!(sql.text, "{key}{collate} {dir}, ");
        }
    }
    sql.push("r.created_at, r.id");
}
