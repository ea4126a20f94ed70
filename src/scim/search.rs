//! A list request's parameters (RFC 7644 §3.4.2, from a query string or a SearchRequest body),
//! checked and bounded into a [`ListQuery`], and the cursors of RFC 9865. Pure protocol: no
//! transport, no database.

use crate::error::{Error, Result, ScimType};
use crate::scim::filter::{self, parse_attr_path, AttrPath, Filter};
use crate::scim::resource::Projection;
use crate::scim::schema::{Kind, SEARCH_REQUEST};
use serde_json::Value;

/// Most resources in one list answer (`filter.maxResults` and `maxPageSize` in discovery).
pub const MAX_RESULTS: i64 = 1000;
/// Resources in a list answer when the client names no `count`.
pub const DEFAULT_COUNT: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

#[derive(Debug, Clone)]
pub struct Sort {
    pub by: AttrPath,
    pub order: SortOrder,
}

/// One page of a list, as the store runs it.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    /// 1-based (RFC 7644 §3.4.2.4).
    pub start_index: i64,
    pub count: i64,
    /// Cursor paging (RFC 9865): only records after this (created_at, id) in the default order.
    pub after: Option<(i64, String)>,
}

/// A query parameter, named case-insensitively.
pub fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// List parameters from a query string or a SearchRequest body, before they are checked.
#[derive(Default)]
pub struct SearchParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    /// RFC 9865: present (even empty) asks for cursor paging.
    pub cursor: Option<String>,
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

fn int_param(name: &str, v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| {
        Error::bad(
            ScimType::InvalidValue,
            format!("{name} must be an integer; got {v:?}"),
        )
    })
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

impl SearchParams {
    pub fn from_query(q: &[(String, String)]) -> Result<Self> {
        Ok(SearchParams {
            filter: param(q, "filter").map(str::to_owned),
            sort_by: param(q, "sortBy").map(str::to_owned),
            sort_order: param(q, "sortOrder").map(str::to_owned),
            start_index: param(q, "startIndex")
                .map(|v| int_param("startIndex", v))
                .transpose()?,
            count: param(q, "count")
                .map(|v| int_param("count", v))
                .transpose()?,
            cursor: param(q, "cursor").map(str::to_owned),
            attributes: param(q, "attributes").map(split_list).unwrap_or_default(),
            excluded: param(q, "excludedAttributes")
                .map(split_list)
                .unwrap_or_default(),
        })
    }

    /// RFC 7644 §3.4.3: the body of a POST to `/.search`.
    pub fn from_body(body: &Value) -> Result<Self> {
        let Value::Object(o) = body else {
            return Err(Error::bad(
                ScimType::InvalidSyntax,
                "a SearchRequest must be a JSON object",
            ));
        };
        let get = |k: &str| {
            o.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        if let Some(schemas) = get("schemas") {
            let ok = schemas
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SEARCH_REQUEST)));
            if !ok {
                return Err(Error::bad(
                    ScimType::InvalidValue,
                    format!("schemas must contain {SEARCH_REQUEST}"),
                ));
            }
        }
        let string = |k: &str| -> Result<Option<String>> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::bad(
                    ScimType::InvalidValue,
                    format!("{k} must be a string"),
                )),
            }
        };
        let int = |k: &str| -> Result<Option<i64>> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                    Error::bad(ScimType::InvalidValue, format!("{k} must be an integer"))
                }),
                Some(Value::String(s)) => int_param(k, s).map(Some),
                Some(_) => Err(Error::bad(
                    ScimType::InvalidValue,
                    format!("{k} must be an integer"),
                )),
            }
        };
        let list = |k: &str| -> Result<Vec<String>> {
            match get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(split_list(s)),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            Error::bad(ScimType::InvalidValue, format!("{k} must list strings"))
                        })
                    })
                    .collect(),
                Some(_) => Err(Error::bad(
                    ScimType::InvalidValue,
                    format!("{k} must be an array of strings"),
                )),
            }
        };
        Ok(SearchParams {
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            start_index: int("startIndex")?,
            count: int("count")?,
            cursor: string("cursor")?,
            attributes: list("attributes")?,
            excluded: list("excludedAttributes")?,
        })
    }

    /// Checks and bounds the parameters (RFC 7644 §3.4.2.2–§3.4.2.4).
    pub fn query(&self) -> Result<ListQuery> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(filter::parse(f)?),
        };
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(by) => Some(Sort {
                by: parse_attr_path(by).ok_or_else(|| {
                    Error::bad(
                        ScimType::InvalidValue,
                        format!("sortBy {by:?} is not an attribute path"),
                    )
                })?,
                order: match self
                    .sort_order
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("") | Some("ascending") => SortOrder::Ascending,
                    Some("descending") => SortOrder::Descending,
                    Some(o) => {
                        return Err(Error::bad(
                            ScimType::InvalidValue,
                            format!("sortOrder must be ascending or descending; got {o:?}"),
                        ))
                    }
                },
            }),
        };
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) => {
                if self.start_index.is_some() {
                    return Err(Error::bad(
                        ScimType::InvalidValue,
                        "startIndex and cursor are mutually exclusive (RFC 9865)",
                    ));
                }
                if sort.is_some() {
                    return Err(Error::bad(
                        ScimType::InvalidValue,
                        "cursor paging follows the default order; sortBy needs startIndex paging",
                    ));
                }
                decode_cursor(c)?
            }
        };
        Ok(ListQuery {
            filter,
            sort,
            // "A value less than 1 SHALL be interpreted as 1"; a negative count as 0.
            start_index: self.start_index.unwrap_or(1).max(1),
            count: self.count.unwrap_or(DEFAULT_COUNT).clamp(0, MAX_RESULTS),
            after,
        })
    }

    pub fn projection(&self, kind: Kind) -> Result<Projection> {
        Projection::from_lists(kind.schema(), &self.attributes, &self.excluded)
    }
}

/// A cursor is the position of the last record of a page, opaque to clients.
pub fn encode_cursor(created_at: i64, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

/// `""` starts at the beginning; anything scimd did not issue is `invalidCursor` (RFC 9865).
pub fn decode_cursor(c: &str) -> Result<Option<(i64, String)>> {
    use base64::Engine;
    if c.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::bad(
            ScimType::InvalidCursor,
            format!("cursor {c:?} was not issued by this server"),
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ts, id) = text.split_once(':').ok_or_else(invalid)?;
    // Ids are printable; a NUL would not even reach Postgres (its text cannot hold one).
    if id.chars().any(char::is_control) {
        return Err(invalid());
    }
    Ok(Some((ts.parse().map_err(|_| invalid())?, id.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ListQuery> {
        let q: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SearchParams::from_query(&q)?.query()
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = encode_cursor(1_700_000_000_000_000, "0190-abc");
        let q = query(&[("cursor", &c)]).unwrap();
        assert_eq!(
            q.after,
            Some((1_700_000_000_000_000, "0190-abc".to_owned()))
        );
        assert_eq!(query(&[("cursor", "")]).unwrap().after, None);
        let nul = encode_cursor(1, "a\0b");
        for bad in ["not base64!", "bm9jb2xvbg", "eDp5", nul.as_str()] {
            let e = query(&[("cursor", bad)]).unwrap_err();
            assert_eq!(e.scim_type(), Some(ScimType::InvalidCursor), "{bad}");
        }
    }

    #[test]
    fn cursor_paging_excludes_start_index_and_sorting() {
        for pairs in [
            &[("cursor", ""), ("startIndex", "1")][..],
            &[("cursor", ""), ("sortBy", "userName")][..],
        ] {
            let e = query(pairs).unwrap_err();
            assert_eq!(e.scim_type(), Some(ScimType::InvalidValue));
        }
    }

    #[test]
    fn paging_is_bounded_as_rfc_7644_says() {
        let q = query(&[("startIndex", "-5"), ("count", "5000")]).unwrap();
        assert_eq!((q.start_index, q.count), (1, MAX_RESULTS));
        let q = query(&[("count", "-1")]).unwrap();
        assert_eq!(q.count, 0);
        assert_eq!(query(&[]).unwrap().count, DEFAULT_COUNT);
        let e = query(&[("count", "ten")]).unwrap_err();
        assert_eq!(e.scim_type(), Some(ScimType::InvalidValue));
    }

    #[test]
    fn parameter_names_are_case_insensitive() {
        let q = query(&[("COUNT", "7"), ("Filter", "userName eq \"a\"")]).unwrap();
        assert_eq!(q.count, 7);
        assert!(q.filter.is_some());
    }
}
