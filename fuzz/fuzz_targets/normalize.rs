//! Resource normalisation ("lenient in, canonical out"): what a POST or PUT body becomes before
//! it is stored, for Users and Groups.
//!
//! Invariants, beyond "never panics":
//! - every refusal is a client error (4xx with a `scimType`);
//! - normalisation is idempotent: a stored document normalises to itself, so a client that
//!   PUTs back what it read stores the same thing;
//! - the canonical form never grows without bound: it is at most a constant factor larger than
//!   the body it came from (a lone value becomes a one-element array, `"True"` becomes `true`);
//! - projection (`attributes` / `excludedAttributes`) of a canonical document never panics and
//!   never adds attributes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::resource::{normalize, Projection};
use scimd::scim::schema::Kind;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for kind in [Kind::User, Kind::Group] {
        let rs = kind.schema();
        let doc = match normalize(rs, &body) {
            Ok(doc) => doc,
            Err(e) => {
                let (status, body) = e.body();
                assert!((400..500).contains(&status), "{status}: {body}");
                assert!(body["scimType"].is_string(), "{body}");
                continue;
            }
        };
        let again = normalize(rs, &Value::Object(doc.clone()))
            .unwrap_or_else(|e| panic!("a canonical {} does not validate: {e}", kind.name()));
        assert_eq!(again, doc, "normalisation is not idempotent");
        let (input, output) = (
            body.to_string().len(),
            Value::Object(doc.clone()).to_string().len(),
        );
        assert!(output <= 4 * input + 64, "{input} bytes became {output}");
        for (attributes, excluded) in [
            (Some("userName,emails.value,members"), None),
            (None, Some("emails,name.givenName")),
        ] {
            let projection =
                Projection::parse(rs, attributes, excluded).expect("a valid projection");
            let mut shown = doc.clone();
            projection.apply(rs, &mut shown);
            assert!(
                shown.keys().all(|k| k == "schemas" || doc.contains_key(k)),
                "{shown:?}"
            );
        }
    }
});
