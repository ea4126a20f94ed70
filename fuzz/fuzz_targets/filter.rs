//! The filter parser (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2).
//!
//! Invariants, beyond "never panics":
//! - a parsed filter's display form parses again to the same AST (the display is what error
//!   messages quote back to the client, so it must be a filter that means the same thing);
//!   it never nests deeper than the parser allowed, and may exceed a bound only by length;
//! - every refusal is a 400 `invalidFilter` (PATCH paths: `invalidPath`), never another error;
//! - a PATCH path's value filter is itself a filter that round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::error::ScimType;
use scimd::scim::filter::{parse, parse_patch_path, MAX_FILTER_LEN};

fn round_trips(input: &str, f: &scimd::scim::filter::Filter) {
    let shown = f.to_string();
    match parse(&shown) {
        Ok(again) => assert_eq!(&again, f, "{input:?} displays as {shown:?}"),
        // Spaces and canonical numbers (`1e300` in full) may make the display longer than
        // the input: only then may it fail, on length.
        Err(e) => assert!(
            shown.len() > MAX_FILTER_LEN,
            "{input:?} displays as {shown:?}, which does not parse: {e}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match parse(input) {
        Ok(f) => round_trips(input, &f),
        Err(e) => assert_eq!(
            e.scim_type(),
            Some(ScimType::InvalidFilter),
            "{input:?}: {e}"
        ),
    }
    match parse_patch_path(input) {
        Ok(p) => {
            if let Some(f) = &p.filter {
                round_trips(input, f);
            }
        }
        Err(e) => assert_eq!(e.scim_type(), Some(ScimType::InvalidPath), "{input:?}: {e}"),
    }
});
