//! The SCIM filter language (RFC 7644 §3.4.2.2) and attribute paths (RFC 7644 §3.5.2, §3.10):
//! a bounded recursive-descent parser producing an AST that the stores compile to SQL and the
//! in-memory evaluator (PATCH value filters) interprets.

use crate::error::{Error, ScimType};
use std::fmt;

/// Longest filter accepted, in bytes (advertised in the README and the error message).
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of `( )`, `not( )` and `[ ]` accepted.
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most comparisons in one filter; bounds the SQL a client can make us build.
pub const MAX_FILTER_TERMS: usize = 128;

/// `[URI:]attrName[.subAttr]` (RFC 7644 §3.10). Names keep the client's spelling; they are
/// matched case-insensitively against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub uri: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.uri {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Literal::Num(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => write!(f, "null"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Literal),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`, whose paths are
    /// relative to the element.
    ValuePath(AttrPath, Box<Filter>),
}

/// How tightly an expression binds: `or` < `and` < a single term (RFC 7644 §3.4.2.2).
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Binding {
    Or,
    And,
    Term,
}

impl Filter {
    /// Writes the filter with parentheses only where the grammar needs them to give back this
    /// tree, so the text parses again to the same filter and never nests deeper than the
    /// filter the client sent (which the nesting limit admitted).
    fn show(&self, f: &mut fmt::Formatter<'_>, context: Binding) -> fmt::Result {
        let (own, left, right, word) = match self {
            Filter::Or(a, b) => (Binding::Or, a, b, "or"),
            Filter::And(a, b) => (Binding::And, a, b, "and"),
            Filter::Not(a) => {
                f.write_str("not (")?;
                a.show(f, Binding::Or)?;
                return f.write_str(")");
            }
            Filter::Present(p) => return write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => return write!(f, "{p} {} {v}", op.as_str()),
            Filter::ValuePath(p, inner) => {
                write!(f, "{p}[")?;
                inner.show(f, Binding::Or)?;
                return f.write_str("]");
            }
        };
        let parens = own < context;
        if parens {
            f.write_str("(")?;
        }
        // Both operators group to the left: `a or b or c` is `(a or b) or c`.
        left.show(f, own)?;
        write!(f, " {word} ")?;
        right.show(
            f,
            if own == Binding::Or {
                Binding::And
            } else {
                Binding::Term
            },
        )?;
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.show(f, Binding::Or)
    }
}

/// Parses a complete filter expression.
pub fn parse(input: &str) -> Result<Filter, Error> {
    parse_in(input, false)
}

/// Parses a filter; `in_value_filter` when it is the inside of a PATCH path's `[...]`.
fn parse_in(input: &str, in_value_filter: bool) -> Result<Filter, Error> {
    if input.len() > MAX_FILTER_LEN {
        return Err(Error::bad(
            ScimType::InvalidFilter,
            format!(
                "filter is {} bytes long; the limit is {MAX_FILTER_LEN}",
                input.len()
            ),
        ));
    }
    let mut p = Parser::new(input)?;
    p.in_value_filter = in_value_filter;
    let f = p.filter(0)?;
    p.expect_end()?;
    Ok(f)
}

/// A PATCH `path` (RFC 7644 §3.5.2): `attrPath` or `attrPath[valFilter][.subAttr]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute named after `]`, e.g. `value` in `emails[type eq "work"].value`.
    pub sub: Option<String>,
}

pub fn parse_patch_path(input: &str) -> Result<PatchPath, Error> {
    let input = input.trim();
    let invalid = |why: &str| {
        Error::bad(
            ScimType::InvalidPath,
            format!("invalid path {input:?}: {why}"),
        )
    };
    if input.is_empty() {
        return Err(invalid("empty"));
    }
    if input.len() > MAX_FILTER_LEN {
        return Err(invalid("too long"));
    }
    match input.find('[') {
        None => Ok(PatchPath {
            attr: parse_attr_path(input).ok_or_else(|| invalid("not an attribute path"))?,
            filter: None,
            sub: None,
        }),
        Some(open) => {
            let close = input.rfind(']').ok_or_else(|| invalid("'[' without ']'"))?;
            if close < open {
                return Err(invalid("']' before '['"));
            }
            let attr = parse_attr_path(&input[..open])
                .ok_or_else(|| invalid("not an attribute path before '['"))?;
            if attr.sub.is_some() {
                return Err(invalid(
                    "a value filter applies to a multi-valued attribute, not to a sub-attribute",
                ));
            }
            let filter = parse_in(&input[open + 1..close], true).map_err(|e| match e {
                Error::Refused { detail, .. } => Error::bad(
                    ScimType::InvalidPath,
                    format!("invalid value filter in path {input:?}: {detail}"),
                ),
                other => other,
            })?;
            let rest = &input[close + 1..];
            let sub = if rest.is_empty() {
                None
            } else {
                let name = rest
                    .strip_prefix('.')
                    .ok_or_else(|| invalid("expected '.subAttribute' after ']'"))?;
                if !is_attr_name(name) {
                    return Err(invalid("not a sub-attribute name after ']'"));
                }
                Some(name.to_owned())
            };
            Ok(PatchPath {
                attr,
                filter: Some(filter),
                sub,
            })
        }
    }
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus `$ref` (RFC 7644 §3.10, RFC 7643 §2.1).
pub fn is_attr_name(s: &str) -> bool {
    if s == "$ref" {
        return true;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses `[URI:]name[.sub]`. Attribute names cannot hold ':', so the URI is everything before
/// the last ':' (URNs such as `…:enterprise:2.0:User` contain dots and colons themselves).
pub fn parse_attr_path(s: &str) -> Option<AttrPath> {
    let (uri, rest) = match s.rfind(':') {
        Some(i) => (Some(s[..i].to_owned()), &s[i + 1..]),
        None => (None, s),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, sub)) => (n, Some(sub)),
        None => (rest, None),
    };
    if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
        return None;
    }
    if uri
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.contains(char::is_whitespace))
    {
        return None;
    }
    Some(AttrPath {
        uri,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Num(f64),
    Word(String),
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
    terms: usize,
    /// Whether the parser is inside a value filter `[...]`, where RFC 7644's grammar
    /// (`valFilter`) allows no other value filter.
    in_value_filter: bool,
}

fn err_at(pos: usize, msg: impl fmt::Display) -> Error {
    Error::bad(
        ScimType::InvalidFilter,
        format!("invalid filter at character {}: {msg}", pos + 1),
    )
}

impl Parser {
    fn new(input: &str) -> Result<Self, Error> {
        Ok(Parser {
            toks: lex(input)?,
            pos: 0,
            len: input.len(),
            terms: 0,
            in_value_filter: false,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn here(&self) -> usize {
        self.toks.get(self.pos).map(|(p, _)| *p).unwrap_or(self.len)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), Error> {
        let at = self.here();
        match self.next() {
            Some(t) if t == tok => Ok(()),
            Some(_) => Err(err_at(at, format!("expected {what}"))),
            None => Err(err_at(at, format!("expected {what} but the filter ended"))),
        }
    }
    fn expect_end(&self) -> Result<(), Error> {
        if self.pos < self.toks.len() {
            return Err(err_at(
                self.here(),
                "unexpected text; expected 'and', 'or' or the end of the filter",
            ));
        }
        Ok(())
    }

    fn filter(&mut self, depth: usize) -> Result<Filter, Error> {
        let mut left = self.and(depth)?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, Error> {
        let mut left = self.unary(depth)?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.unary(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn nested(&mut self, depth: usize) -> Result<usize, Error> {
        if depth + 1 > MAX_FILTER_DEPTH {
            return Err(err_at(
                self.here(),
                format!("nesting deeper than {MAX_FILTER_DEPTH} levels"),
            ));
        }
        Ok(depth + 1)
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, Error> {
        let at = self.here();
        if self.peek_word("not") && matches!(self.toks.get(self.pos + 1), Some((_, Tok::LParen))) {
            self.pos += 2;
            let d = self.nested(depth)?;
            let inner = self.filter(d)?;
            self.expect(Tok::RParen, "')' closing 'not('")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        match self.next() {
            Some(Tok::LParen) => {
                let d = self.nested(depth)?;
                let inner = self.filter(d)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(inner)
            }
            Some(Tok::Word(w)) => {
                let path = parse_attr_path(&w)
                    .ok_or_else(|| err_at(at, format!("{w:?} is not an attribute path")))?;
                self.count_term(at)?;
                self.after_path(path, depth)
            }
            Some(_) => Err(err_at(at, "expected an attribute path, '(' or 'not ('")),
            None => Err(err_at(
                at,
                "expected an attribute path but the filter ended",
            )),
        }
    }

    /// Counts one comparison against `MAX_FILTER_TERMS`.
    fn count_term(&mut self, at: usize) -> Result<(), Error> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(err_at(
                at,
                format!("more than {MAX_FILTER_TERMS} comparisons"),
            ));
        }
        Ok(())
    }

    fn after_path(&mut self, path: AttrPath, depth: usize) -> Result<Filter, Error> {
        let at = self.here();
        match self.next() {
            Some(Tok::LBracket) => {
                if path.sub.is_some() {
                    return Err(err_at(at, "a value filter '[...]' follows a multi-valued attribute, not a sub-attribute"));
                }
                if self.in_value_filter {
                    return Err(err_at(
                        at,
                        "a value filter '[...]' cannot be nested inside another",
                    ));
                }
                let d = self.nested(depth)?;
                self.in_value_filter = true;
                let inner = self.filter(d);
                self.in_value_filter = false;
                let inner = inner?;
                self.expect(Tok::RBracket, "']'")?;
                // Entra ID matches users with `emails[type eq "work"].value eq "…"`, which is
                // not in the RFC grammar: it means some element matches both conditions.
                if let Some(Tok::Word(w)) = self.peek() {
                    if let Some(sub) = w.strip_prefix('.') {
                        let at = self.here();
                        if !is_attr_name(sub) {
                            return Err(err_at(at, format!("{sub:?} is not a sub-attribute name")));
                        }
                        let sub = AttrPath {
                            uri: None,
                            name: sub.to_owned(),
                            sub: None,
                        };
                        self.pos += 1;
                        // Only a comparison may follow: `].value[…]` would nest a value filter
                        // inside the sub-attribute of an element, which means nothing.
                        if matches!(self.peek(), Some(Tok::LBracket)) {
                            return Err(err_at(
                                self.here(),
                                "a value filter '[...]' cannot follow a sub-attribute",
                            ));
                        }
                        // The element must match both: `(inner) and cond`. An `or` inside
                        // needs those parentheses, so they count towards the nesting limit as
                        // if the client had written them.
                        if matches!(inner, Filter::Or(..)) {
                            self.nested(d)?;
                        }
                        // The comparison after `]` is one more, as it is in the display form
                        // (`emails[type eq "work" and value eq "…"]`).
                        self.count_term(at)?;
                        let cond = self.after_path(sub, d)?;
                        return Ok(Filter::ValuePath(
                            path,
                            Box::new(Filter::And(Box::new(inner), Box::new(cond))),
                        ));
                    }
                }
                Ok(Filter::ValuePath(path, Box::new(inner)))
            }
            Some(Tok::Word(op)) if op.eq_ignore_ascii_case("pr") => Ok(Filter::Present(path)),
            Some(Tok::Word(op)) => {
                let op = CompareOp::parse(&op).ok_or_else(|| {
                    err_at(
                        at,
                        format!("{op:?} is not an operator (eq ne co sw ew gt ge lt le pr)"),
                    )
                })?;
                let vat = self.here();
                let value = match self.next() {
                    Some(Tok::Str(s)) => Literal::Str(s),
                    Some(Tok::Num(n)) => Literal::Num(n),
                    Some(Tok::Word(w)) if w == "true" => Literal::Bool(true),
                    Some(Tok::Word(w)) if w == "false" => Literal::Bool(false),
                    Some(Tok::Word(w)) if w == "null" => Literal::Null,
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
                    _ => {
                        return Err(err_at(
                            vat,
                            "expected a value: a \"string\", a number, true, false or null",
                        ))
                    }
                };
                Ok(Filter::Compare(path, op, value))
            }
            _ => Err(err_at(
                at,
                "expected an operator (eq ne co sw ew gt ge lt le pr) or '['",
            )),
        }
    }
}

fn lex(input: &str) -> Result<Vec<(usize, Tok)>, Error> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((i, Tok::LParen));
                i += 1
            }
            b')' => {
                out.push((i, Tok::RParen));
                i += 1
            }
            b'[' => {
                out.push((i, Tok::LBracket));
                i += 1
            }
            b']' => {
                out.push((i, Tok::RBracket));
                i += 1
            }
            b'"' => {
                // A JSON string (RFC 7644 §3.4.2.2: values are JSON literals).
                let start = i;
                i += 1;
                let mut escaped = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if !escaped => escaped = true,
                        b'"' if !escaped => break,
                        _ => escaped = false,
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(err_at(start, "unterminated string"));
                }
                let s: String = serde_json::from_str(&input[start..=i])
                    .map_err(|_| err_at(start, "invalid escape in string"))?;
                out.push((start, Tok::Str(s)));
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let text = &input[start..i];
                let n: f64 = text
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite())
                    .ok_or_else(|| err_at(start, format!("{text:?} is not a number")))?;
                out.push((start, Tok::Num(n)));
            }
            _ if c.is_ascii_alphabetic()
                || c == b'$'
                || c == b'_'
                || (c == b'.' && matches!(out.last(), Some((_, Tok::RBracket)))) =>
            {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'-' | b'$' | b'.' | b':'))
                {
                    i += 1;
                }
                out.push((start, Tok::Word(input[start..i].to_owned())));
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(err_at(i, format!("unexpected character {ch:?}")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Filter {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = p(r#"a eq "1" or b eq "2" and c eq "3""#);
        assert_eq!(f.to_string(), r#"a eq "1" or b eq "2" and c eq "3""#);
        let g = p(r#"(a eq "1" or b eq "2") and (c eq "3" and d pr)"#);
        assert_eq!(
            g.to_string(),
            r#"(a eq "1" or b eq "2") and (c eq "3" and d pr)"#
        );
    }

    #[test]
    fn urn_paths_split_at_the_last_colon() {
        let f =
            p(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#);
        let Filter::Compare(path, CompareOp::Eq, Literal::Str(v)) = f else {
            panic!()
        };
        assert_eq!(
            path.uri.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(path.name, "manager");
        assert_eq!(path.sub.as_deref(), Some("value"));
        assert_eq!(v, "x");
    }

    #[test]
    fn value_paths_not_and_literals() {
        let f = p(
            r#"emails[type eq "work" and value co "@example.com"] and not (active eq false) or x gt 1.5e2 or y eq null"#,
        );
        assert_eq!(
            f.to_string(),
            r#"emails[type eq "work" and value co "@example.com"] and not (active eq false) or x gt 150 or y eq null"#
        );
    }

    #[test]
    fn operators_and_keywords_are_case_insensitive() {
        assert_eq!(
            p(r#"userName EQ "a" AND active Eq TRUE"#),
            p(r#"userName eq "a" and active eq true"#)
        );
    }

    #[test]
    fn errors_point_at_the_position() {
        let e = parse(r#"userName eq "a" and"#).unwrap_err();
        assert!(e.to_string().contains("character 20"), "{e}");
        let e = parse(r#"userName zz "a""#).unwrap_err();
        assert!(e.to_string().contains("character 10"), "{e}");
        assert_eq!(e.scim_type(), Some(ScimType::InvalidFilter));
        assert!(parse(r#"userName eq "unterminated"#).is_err());
        assert!(parse(r#"(userName eq "a""#).is_err());
    }

    #[test]
    fn depth_length_and_terms_are_bounded() {
        let deep = format!(
            "{}a eq 1{}",
            "(".repeat(MAX_FILTER_DEPTH + 1),
            ")".repeat(MAX_FILTER_DEPTH + 1)
        );
        assert!(parse(&deep).unwrap_err().to_string().contains("nesting"));
        let ok = format!(
            "{}a eq 1{}",
            "(".repeat(MAX_FILTER_DEPTH),
            ")".repeat(MAX_FILTER_DEPTH)
        );
        assert!(parse(&ok).is_ok());
        assert!(parse(&"a".repeat(MAX_FILTER_LEN + 1)).is_err());
        let many = vec!["a eq 1"; MAX_FILTER_TERMS + 1].join(" or ");
        assert!(parse(&many)
            .unwrap_err()
            .to_string()
            .contains("comparisons"));
    }

    /// Found by the `filter` fuzz target: a value filter inside a value filter (not in RFC
    /// 7644's grammar) displayed deeper than the parser allows. It is refused.
    #[test]
    fn value_filters_do_not_nest() {
        let e = parse(r#"emails[x[y eq "1"] and type eq "w"]"#).unwrap_err();
        assert!(e.to_string().contains("nested"), "{e}");
        assert_eq!(e.scim_type(), Some(ScimType::InvalidFilter));
        assert!(parse(r#"emails[type eq "w"] and addresses[type eq "home"]"#).is_ok());
        let e = parse_patch_path(r#"emails[x[y eq "1"]].value"#).unwrap_err();
        assert!(e.to_string().contains("nested"), "{e}");
    }

    /// Found by the `filter` fuzz target in CI: the comparison after an Entra-style `].value`
    /// was not counted, so a filter of such chains could parse while its display form
    /// (`emails[type eq "w" and value eq "x"]`) was refused as too many comparisons.
    #[test]
    fn comparisons_after_a_value_filter_count() {
        // Each chain counts three, as its display does: `emails[…]`, `type eq`, `value eq`.
        let chain = r#"emails[type eq "w"].value eq "x""#;
        let at_limit = vec![chain; MAX_FILTER_TERMS / 3].join(" or ");
        let f = parse(&at_limit).unwrap();
        assert_eq!(parse(&f.to_string()).unwrap(), f);
        let over = vec![chain; MAX_FILTER_TERMS / 3 + 1].join(" or ");
        assert!(parse(&over)
            .unwrap_err()
            .to_string()
            .contains("comparisons"));
    }

    /// Found by the `filter` fuzz target: the display wrapped every `and`/`or` in parentheses,
    /// so a chain of 17 comparisons (well inside the limits) displayed 17 levels deep and did
    /// not parse again.
    #[test]
    fn long_chains_display_as_filters_that_parse_again() {
        for word in ["and", "or"] {
            let chain = vec![r#"a eq "x""#; MAX_FILTER_DEPTH + 4].join(&format!(" {word} "));
            let f = p(&chain);
            assert_eq!(f.to_string(), chain);
            assert_eq!(p(&f.to_string()), f);
        }
        let nested = p(r#"a pr and (b pr and (c pr or d pr)) or not (e pr or f pr)"#);
        assert_eq!(p(&nested.to_string()), nested);
    }

    #[test]
    fn entra_value_path_with_a_sub_attribute_comparison() {
        let f = p(r#"emails[type eq "work"].value eq "a@x""#);
        assert_eq!(f, p(r#"emails[type eq "work" and value eq "a@x"]"#));
        assert!(parse(r#"emails[type eq "work"].9 eq "a""#).is_err());
        assert!(parse(r#"emails.value eq "a" . x"#).is_err());
        // Found by the filter fuzz target: `].sub[…]` chains nested one level per link, so
        // a chain within the limits displayed deeper than the limit.
        let e = parse(r#"emails[type eq "work"].value[x eq "1"].y eq "2""#).unwrap_err();
        assert!(
            e.to_string().contains("cannot follow a sub-attribute"),
            "{e}"
        );
        let f = p(r#"emails[type eq "work" or type eq "home"].value eq "a@x""#);
        assert_eq!(
            f.to_string(),
            r#"emails[(type eq "work" or type eq "home") and value eq "a@x"]"#
        );
        assert_eq!(p(&f.to_string()), f);
        // Its implicit parentheses count: at the limit, it is refused like its display would be.
        let deep = |inner: &str| {
            format!(
                "{}{inner}{}",
                "(".repeat(MAX_FILTER_DEPTH - 1),
                ")".repeat(MAX_FILTER_DEPTH - 1)
            )
        };
        assert!(parse(&deep(r#"emails[type eq "w"].value eq "a""#)).is_ok());
        let e = parse(&deep(r#"emails[type eq "w" or type eq "h"].value eq "a""#)).unwrap_err();
        assert!(e.to_string().contains("nesting"), "{e}");
    }

    #[test]
    fn string_escapes() {
        let Filter::Compare(_, _, Literal::Str(s)) = p(r#"userName eq "a\"b\\c\u00e9""#) else {
            panic!()
        };
        assert_eq!(s, "a\"b\\cé");
    }

    #[test]
    fn patch_paths() {
        let pp = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(pp.attr.name, "emails");
        assert_eq!(pp.sub.as_deref(), Some("value"));
        assert!(pp.filter.is_some());
        let pp = parse_patch_path("name.givenName").unwrap();
        assert_eq!(pp.attr.sub.as_deref(), Some("givenName"));
        let pp = parse_patch_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert!(pp.sub.is_none());
        assert!(parse_patch_path("emails[type eq").is_err());
        assert!(parse_patch_path("").is_err());
        assert!(parse_patch_path("9abc").is_err());
    }
}
