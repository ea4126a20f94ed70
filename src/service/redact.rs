//! What the SCIM request log must never keep: passwords, tokens, and every attribute the
//! schemas mark `mutability: writeOnly` or `returned: never` (RFC 7643 §7). Bodies are redacted
//! as JSON (keys at any depth, dotted or URN-qualified, and PATCH operations whose `path` names
//! a secret), then cut to a bound. A body that is not JSON and mentions a secret is withheld
//! whole: it cannot be redacted reliably.

use crate::scim::schema::{Attribute, Mutability, Returned, REGISTRY};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::LazyLock;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Attribute names (lowercase) the schemas say are never returned or only written.
static SECRET_ATTRIBUTES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    fn walk(attrs: &[Attribute], out: &mut HashSet<String>) {
        for a in attrs {
            if a.mutability == Mutability::WriteOnly || a.returned == Returned::Never {
                out.insert(a.name.to_lowercase());
            }
            walk(&a.sub_attributes, out);
        }
    }
    let mut out = HashSet::new();
    for s in &REGISTRY.schemas {
        walk(&s.attributes, &mut out);
    }
    out.insert("password".into());
    out
});

/// Whether a key or attribute path names a secret: a schema's secret attribute (by its last
/// segment, URN prefix and sub-attribute dots set aside), or anything called a password, a
/// token or a secret.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_lowercase();
    // `urn:…:User:password`, `name.givenName`, `emails[type eq "work"].value`.
    let bare = name.split('[').next().unwrap_or_default();
    let bare = bare.rsplit(':').next().unwrap_or_default();
    bare.split('.').any(|part| {
        SECRET_ATTRIBUTES.contains(part)
            || part.contains("password")
            || part.contains("token")
            || part.contains("secret")
            || part == "authorization"
    })
}

/// Replaces every secret in a JSON document with [`REDACTED`], in place.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            // A PATCH operation (RFC 7644 §3.5.2) whose path names a secret: its value goes.
            let secret_path = map.get("op").is_some()
                && map
                    .get("path")
                    .and_then(Value::as_str)
                    .is_some_and(is_secret);
            for (k, child) in map.iter_mut() {
                if (is_secret(k) || (secret_path && k.eq_ignore_ascii_case("value")))
                    && !child.is_null()
                {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Whether any word of a text names a secret (for text that is not JSON: filters, odd bodies).
pub fn mentions_secret(text: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '.' || c == '_'))
        .filter(|w| !w.is_empty())
        .any(is_secret)
}

/// Whether a body could hold a secret: it names a secret attribute or word (in any case), or
/// has a JSON escape that could spell one. Most bodies do not, and are kept as sent without
/// being parsed (the log's cost is mostly this parsing).
fn may_hold_secret(bytes: &[u8]) -> bool {
    let lower = bytes.to_ascii_lowercase();
    let Ok(text) = std::str::from_utf8(&lower) else {
        return true;
    };
    text.contains("\\u")
        || ["password", "token", "secret", "authorization"]
            .iter()
            .any(|w| text.contains(w))
        || SECRET_ATTRIBUTES.iter().any(|a| text.contains(a.as_str()))
}

/// A body as the log keeps it: redacted JSON, or text without secrets, cut to `limit` bytes.
/// `None` for an empty body.
pub fn body(bytes: &[u8], limit: usize) -> Option<String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if !may_hold_secret(bytes) {
        return Some(cut(String::from_utf8_lossy(bytes).into_owned(), limit));
    }
    let text = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            redact(&mut v);
            v.to_string()
        }
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            if mentions_secret(&text) {
                return Some(format!(
                    "[{} bytes, not JSON, withheld: they mention a secret attribute]",
                    bytes.len()
                ));
            }
            text.into_owned()
        }
    };
    Some(cut(text, limit))
}

/// Cuts a text to at most `limit` bytes (on a character boundary), saying how long it was.
pub fn cut(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut: {} bytes in all]", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passwords_and_tokens_are_redacted_at_any_depth() {
        let mut v = json!({
            "userName": "pat",
            "password": "hunter2",
            "urn:ietf:params:scim:schemas:core:2.0:User:password": "x",
            "nested": {"Password": "y", "accessToken": "z", "keep": "ok"},
            "Operations": [
                {"op": "replace", "path": "password", "value": "p1"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": "p2"},
                {"op": "replace", "value": {"password": "p3", "active": false}},
                {"op": "replace", "path": "active", "value": false}
            ]
        });
        redact(&mut v);
        let text = v.to_string();
        for secret in ["hunter2", "\"x\"", "\"y\"", "\"z\"", "p1", "p2", "p3"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(v["userName"], "pat");
        assert_eq!(v["nested"]["keep"], "ok");
        assert_eq!(v["Operations"][3]["value"], false);
        assert_eq!(v["Operations"][2]["value"]["active"], false);
    }

    #[test]
    fn the_schemas_secret_attributes_are_known() {
        // User.json marks password writeOnly and returned: never.
        assert!(SECRET_ATTRIBUTES.contains("password"));
        assert!(!is_secret("userName"));
        assert!(!is_secret("emails[type eq \"work\"].value"));
        assert!(is_secret("Password"));
    }

    #[test]
    fn text_that_mentions_a_secret_is_withheld_and_long_text_is_cut() {
        let b = body(b"{\"password\": \"hunter2\" oops", 100).unwrap();
        assert!(!b.contains("hunter2"), "{b}");
        assert!(body(b"  ", 10).is_none());
        let long = "é".repeat(100);
        let c = cut(long, 11);
        assert!(
            c.starts_with(&"é".repeat(5)) && c.contains("200 bytes in all"),
            "{c}"
        );
        assert!(mentions_secret("password eq \"x\""));
        // A key spelled with a JSON escape is still found.
        let escaped = body(br#"{"pass\u0077ord": "hunter2"}"#, 100).unwrap();
        assert!(!escaped.contains("hunter2"), "{escaped}");
        assert_eq!(
            body(br#"{"userName": "pat"}"#, 100).unwrap(),
            r#"{"userName": "pat"}"#
        );
        assert!(!mentions_secret("userName eq \"pat\""));
    }
}
