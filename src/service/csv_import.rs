//! Reading a CSV of people to invite (the admin extension's bulk import): up to 1000 rows with
//! columns `email` and `group membership` (header names case-insensitive, other columns
//! ignored; groups comma-separated inside the cell and matched case-insensitively; an empty
//! cell means no group). Each row is judged on its own: valid rows are returned to be invited,
//! every other row is reported with its line number and reason. Pure: the caller supplies the
//! organization's groups and current members.

use std::collections::{HashMap, HashSet};

/// Most data rows in one file.
pub const MAX_ROWS: usize = 1000;

/// A row to invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub email: String,
    /// Group ids, in the order the cell named them.
    pub groups: Vec<String>,
}

/// Why a row was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    InvalidEmail(String),
    UnknownGroups(Vec<String>),
    /// The same email appeared on an earlier line.
    Duplicate {
        first_line: usize,
    },
    AlreadyMember,
    /// The row could not be read (wrong quoting, invalid UTF-8, …).
    Unreadable(String),
}

impl Skip {
    /// A machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::InvalidEmail(_) => "invalid_email",
            Skip::UnknownGroups(_) => "unknown_groups",
            Skip::Duplicate { .. } => "duplicate_row",
            Skip::AlreadyMember => "already_member",
            Skip::Unreadable(_) => "unreadable_row",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Skip::InvalidEmail(e) => format!("{e:?} is not a valid email address"),
            Skip::UnknownGroups(g) => format!(
                "no group named {}",
                g.iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Skip::Duplicate { first_line } => format!("the same email is on line {first_line}"),
            Skip::AlreadyMember => "already a member of this organization".to_owned(),
            Skip::Unreadable(why) => format!("the row could not be read: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub reason: Skip,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub invite: Vec<Invitee>,
    pub skipped: Vec<Skipped>,
}

/// A file-level problem: the whole upload is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    NoEmailColumn,
    TooManyRows { rows: usize },
    Empty,
    Unreadable(String),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::NoEmailColumn => write!(f, "the header has no 'email' column"),
            FileError::TooManyRows { rows } => {
                write!(f, "the file has {rows} rows; the limit is {MAX_ROWS}")
            }
            FileError::Empty => write!(
                f,
                "the file is empty; it needs a header with an 'email' column"
            ),
            FileError::Unreadable(why) => write!(f, "the file could not be read: {why}"),
        }
    }
}

/// Reads `data` into rows to invite and rows skipped. `groups` maps lower-cased group names to
/// ids; `members` holds the lower-cased emails already in the organization.
pub fn plan(
    data: &[u8],
    groups: &HashMap<String, String>,
    members: &HashSet<String>,
) -> Result<Plan, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| FileError::Unreadable(e.to_string()))?
        .clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(FileError::Empty);
    }
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let email_col = col("email").ok_or(FileError::NoEmailColumn)?;
    let groups_col = col("group membership");
    let mut out = Plan::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rows = 0;
    // Line numbers are counted from the bytes, so blank lines (which the reader skips) count
    // as a person reading the file in an editor would count them.
    // A record's position is where the reader began, before the blank lines it skipped.
    let line_at = |byte: u64| {
        let mut at = (byte as usize).min(data.len());
        while at < data.len() && (data[at] == b'\n' || data[at] == b'\r') {
            at += 1;
        }
        // A lone CR ends a line too (the reader splits records there, as old Mac files do).
        let breaks = data[..at]
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
            .count();
        1 + breaks
    };
    for (i, record) in reader.records().enumerate() {
        let line = match &record {
            Ok(r) => r.position().map(|p| line_at(p.byte())).unwrap_or(i + 2),
            Err(e) => e.position().map(|p| line_at(p.byte())).unwrap_or(i + 2),
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows += 1;
                out.skipped.push(Skipped {
                    line,
                    reason: Skip::Unreadable(e.to_string()),
                });
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue; // blank lines are not rows
        }
        rows += 1;
        if rows > MAX_ROWS {
            let total = rows + reader.records().count();
            return Err(FileError::TooManyRows { rows: total });
        }
        let email = record.get(email_col).unwrap_or_default().to_owned();
        if !super::invitations::valid_email(&email) {
            out.skipped.push(Skipped {
                line,
                reason: Skip::InvalidEmail(email),
            });
            continue;
        }
        let norm = email.to_lowercase();
        if let Some(&first_line) = seen.get(&norm) {
            out.skipped.push(Skipped {
                line,
                reason: Skip::Duplicate { first_line },
            });
            continue;
        }
        seen.insert(norm.clone(), line);
        let cell = groups_col.and_then(|c| record.get(c)).unwrap_or_default();
        let names: Vec<&str> = cell
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| !groups.contains_key(&n.to_lowercase()))
            .map(|n| n.to_string())
            .collect();
        if !unknown.is_empty() {
            out.skipped.push(Skipped {
                line,
                reason: Skip::UnknownGroups(unknown),
            });
            continue;
        }
        if members.contains(&norm) {
            out.skipped.push(Skipped {
                line,
                reason: Skip::AlreadyMember,
            });
            continue;
        }
        let mut ids: Vec<String> = Vec::new();
        for n in names {
            if let Some(id) = groups.get(&n.to_lowercase()) {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        out.invite.push(Invitee {
            line,
            email,
            groups: ids,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> (HashMap<String, String>, HashSet<String>) {
        let groups = [("engineering", "g1"), ("sales eu", "g2")]
            .iter()
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect();
        let members = ["already@acme.test".to_owned()].into_iter().collect();
        (groups, members)
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_and_reason() {
        let (g, m) = org();
        let csv = "Name,EMAIL,Group Membership\n\
                   Ann,ann@acme.test,\"Engineering, sales EU\"\n\
                   Bob,not-an-email,\n\
                   Cy,cy@acme.test,Marketing\n\
                   Ann again,ANN@acme.test,\n\
                   Old,already@acme.test,\n\
                   \n\
                   Dee,dee@acme.test,\n";
        let p = plan(csv.as_bytes(), &g, &m).unwrap();
        assert_eq!(
            p.invite,
            vec![
                Invitee {
                    line: 2,
                    email: "ann@acme.test".into(),
                    groups: vec!["g1".into(), "g2".into()]
                },
                Invitee {
                    line: 8,
                    email: "dee@acme.test".into(),
                    groups: vec![]
                },
            ]
        );
        let reasons: Vec<(usize, &str)> = p
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.code()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (3, "invalid_email"),
                (4, "unknown_groups"),
                (5, "duplicate_row"),
                (6, "already_member")
            ]
        );
        assert_eq!(
            p.skipped[1].reason,
            Skip::UnknownGroups(vec!["Marketing".into()])
        );
        assert_eq!(p.skipped[2].reason, Skip::Duplicate { first_line: 2 });
    }

    /// Found by the `csv_import` fuzz target: with bare CR line ends, two rows were reported
    /// on the same line, because only LF was counted.
    #[test]
    fn bare_carriage_returns_end_lines() {
        let (g, m) = org();
        let p = plan(
            b"email\rbad one\rann@acme.test\r\rbad two\r\nbad three\n",
            &g,
            &m,
        )
        .unwrap();
        let lines: Vec<usize> = p.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 5, 6]);
        assert_eq!(p.invite[0].line, 3);
    }

    #[test]
    fn file_level_limits() {
        let (g, m) = org();
        assert_eq!(
            plan(b"name\nx\n", &g, &m).unwrap_err(),
            FileError::NoEmailColumn
        );
        assert_eq!(plan(b"", &g, &m).unwrap_err(), FileError::Empty);
        let mut big = String::from("email\n");
        for i in 0..=MAX_ROWS {
            big.push_str(&format!("u{i}@acme.test\n"));
        }
        assert_eq!(
            plan(big.as_bytes(), &g, &m).unwrap_err(),
            FileError::TooManyRows { rows: MAX_ROWS + 1 }
        );
        let exact: String = std::iter::once("email\n".to_owned())
            .chain((0..MAX_ROWS).map(|i| format!("u{i}@acme.test\n")))
            .collect();
        assert_eq!(
            plan(exact.as_bytes(), &g, &m).unwrap().invite.len(),
            MAX_ROWS
        );
    }
}
