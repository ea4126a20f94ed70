//! The CSV import of invitations (`POST /orgs/{slug}/invitations/import`).
//!
//! Invariants, beyond "never panics":
//! - the import never reports more rows than the file has: every reported row (to invite or
//!   skipped) has its own line number, on a line after the header and inside the file, and at
//!   most `MAX_ROWS` rows are reported;
//! - rows are reported in file order, each once;
//! - every row to invite has a valid email, unique in the file (case-insensitively), is not
//!   already a member nor already invited, and names only known groups (as ids, each once);
//! - a file refused as too long really has more than `MAX_ROWS` rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::domain::valid_email;
use scimd::service::csv_import::{plan, read, FileError, Known, Skip, MAX_ROWS};
use std::collections::{HashMap, HashSet};

fuzz_target!(|data: &[u8]| {
    let groups: HashMap<String, String> = [("engineering", "g1"), ("sales eu", "g2"), ("", "g3")]
        .iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect();
    let members: HashSet<String> = ["member@acme.test".to_owned()].into_iter().collect();
    let invited: HashSet<String> = ["pending@acme.test".to_owned()].into_iter().collect();
    // Lines as an editor counts them: LF, CRLF and a lone CR each end one.
    let lines = 1 + data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    let rows = match read(data) {
        Ok(rows) => rows,
        Err(FileError::TooManyRows { rows }) => {
            assert!(
                rows > MAX_ROWS && rows < lines,
                "{rows} rows in {lines} lines"
            );
            return;
        }
        Err(_) => return,
    };
    // Every record counts toward the limit, empty ones too.
    assert!(rows.len() <= MAX_ROWS, "{} rows read", rows.len());
    let known = Known {
        groups: groups.clone(),
        members: members.clone(),
        invited: invited.clone(),
    };
    let plan = plan(&rows, &known);
    let reported = plan.invite.len() + plan.skipped.len();
    assert!(reported <= MAX_ROWS, "{reported} rows reported");
    let mut at: Vec<usize> = plan
        .invite
        .iter()
        .map(|i| i.line)
        .chain(plan.skipped.iter().map(|s| s.line))
        .collect();
    at.sort_unstable();
    let before = at.len();
    at.dedup();
    assert_eq!(at.len(), before, "a line is reported twice: {at:?}");
    assert!(
        at.iter().all(|&l| l >= 2 && l <= lines),
        "a line outside 2..={lines}: {at:?}"
    );
    for seq in [
        plan.invite.iter().map(|i| i.line).collect::<Vec<_>>(),
        plan.skipped.iter().map(|s| s.line).collect(),
    ] {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "out of file order: {seq:?}"
        );
    }
    let mut emails = HashSet::new();
    let ids: HashSet<&String> = groups.values().collect();
    for i in &plan.invite {
        assert!(valid_email(&i.email), "{:?}", i.email);
        assert!(emails.insert(i.email.to_lowercase()), "{:?} twice", i.email);
        assert!(!members.contains(&i.email.to_lowercase()));
        assert!(!invited.contains(&i.email.to_lowercase()));
        assert!(i.groups.iter().all(|g| ids.contains(g)), "{:?}", i.groups);
        assert_eq!(
            i.groups.iter().collect::<HashSet<_>>().len(),
            i.groups.len()
        );
    }
    for s in &plan.skipped {
        if let Skip::Duplicate { first_line } = s.reason {
            assert!(first_line < s.line, "{first_line} ≥ {}", s.line);
        }
    }
});
