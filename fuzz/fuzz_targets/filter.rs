//! The filter parser (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2).
//!
//! Invariants, beyond "never panics":
//! - a parsed filter's display form parses again to the same AST (the display is what error
//!   messages quote back to the client, so it must be a filter that means the same thing);
//!   the display may exceed a bound the input met only by length, or by one nesting level
//!   when the input was already at the limit;
//! - every refusal is a 400 `invalidFilter` (PATCH paths: `invalidPath`), never another error;
//! - a PATCH path's value filter is itself a filter that round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::error::ScimType;
use scimd::scim::filter::{parse, parse_patch_path, MAX_FILTER_DEPTH, MAX_FILTER_LEN};

/// Deepest `(`/`[` nesting in `s`, outside string literals.
fn nesting(s: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for c in s.chars() {
        if in_str {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => in_str = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn round_trips(input: &str, f: &scimd::scim::filter::Filter) {
    let shown = f.to_string();
    match parse(&shown) {
        Ok(again) => assert_eq!(&again, f, "{input:?} displays as {shown:?}"),
        Err(e) => {
            let within_length = shown.len() <= MAX_FILTER_LEN;
            let at_depth_limit = nesting(input) + 1 >= MAX_FILTER_DEPTH;
            assert!(
                !within_length || (at_depth_limit && e.to_string().contains("nesting")),
                "{input:?} displays as {shown:?}, which does not parse: {e}"
            );
        }
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
