//! The PATCH engine (RFC 7644 §3.5.2), run as the service runs it: parse the PatchOp, apply
//! every operation to a copy of a stored document, normalise the result.
//!
//! Input: the first byte picks the resource type (even: User, odd: Group), the rest is the
//! PatchOp body. Invariants, beyond "never panics":
//! - every refusal is a client error (4xx with a `scimType`), never an internal one;
//! - an accepted PATCH yields a document that validates: normalising it again changes nothing,
//!   so what is stored is exactly what a later read and PUT would see;
//! - the stored document the PATCH started from is untouched whatever happens (a PATCH applies
//!   completely or not at all).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::error::Error;
use scimd::scim::patch::{apply, parse_request};
use scimd::scim::resource::normalize;
use scimd::scim::schema::Kind;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

fn stored(kind: Kind, body: Value) -> Map<String, Value> {
    normalize(kind.schema(), &body).unwrap_or_else(|e| panic!("the seed document is valid: {e}"))
}

static USER: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    stored(
        Kind::User,
        json!({
            "userName": "ada@example.com",
            "externalId": "00u1",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
            "displayName": "Ada",
            "active": true,
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": true},
                {"value": "ada@home.example", "type": "home"}
            ],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "addresses": [{"streetAddress": "1 Main St", "locality": "London", "type": "work"}],
            "title": "Engineer",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "42",
                "department": "R&D",
                "manager": {"value": "0190c0de-0000-7000-8000-000000000001"}
            },
            "urn:scimd:params:scim:schemas:extension:organization:2.0:User": {"role": "admin"}
        }),
    )
});

static GROUP: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    stored(
        Kind::Group,
        json!({
            "displayName": "Engineering",
            "externalId": "g1",
            "members": [{"value": "0190c0de-0000-7000-8000-000000000001"}]
        }),
    )
});

fn client_error(e: &Error, what: &str) {
    let (status, body) = e.body();
    assert!(
        (400..500).contains(&status),
        "{what}: a {status} instead of a client error: {body}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let (kind, start) = if pick % 2 == 0 {
        (Kind::User, &*USER)
    } else {
        (Kind::Group, &*GROUP)
    };
    let rs = kind.schema();
    let ops = match parse_request(&body) {
        Ok(ops) => ops,
        Err(e) => return client_error(&e, "parsing the PatchOp"),
    };
    let before = start.clone();
    let mut doc = start.clone();
    for op in &ops {
        if let Err(e) = apply(rs, &mut doc, op) {
            assert_eq!(start, &before);
            return client_error(&e, "applying an operation");
        }
    }
    assert_eq!(start, &before, "the stored document changed");
    match normalize(rs, &Value::Object(doc)) {
        Ok(result) => match normalize(rs, &Value::Object(result.clone())) {
            Ok(again) => assert_eq!(again, result, "the PATCH result is not canonical"),
            Err(e) => panic!("the PATCH result does not validate: {e}\n{result:?}"),
        },
        Err(e) => client_error(&e, "normalising the result"),
    }
});
