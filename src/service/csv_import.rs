//! Reading a CSV of people to invite (the admin extension's bulk import): up to 1000 rows with
//! columns `email` and `group membership` (header names case-insensitive, other columns
//! ignored; groups comma-separated inside the cell and matched case-insensitively; an empty
//! cell means no group). Each row is judged on its own: valid rows are returned to be invited,
//! every other row is reported with its line number and reason. Pure: the caller supplies the
//! organization's groups and current members.

use std::collections::{HashMap, HashSet};

/// Most records in one file. Every record counts, empty ones too: a file of 200,000 empty rows
/// is refused at once instead of being read as nobody to invite.
pub const MAX_ROWS: usize = 1000;
/// Largest file, in bytes (the admin API's request body limit is the same).
pub const MAX_BYTES: usize = 1024 * 1024;

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
    /// The email has a pending invitation to the organization already.
    AlreadyInvited,
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
            Skip::AlreadyInvited => "already_invited",
            Skip::Unreadable(_) => "unreadable_row",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Skip::InvalidEmail(e) => format!(
                "{:?} is not a valid email address",
                crate::error::excerpt(e, 256)
            ),
            Skip::UnknownGroups(g) => format!(
                "no group named {}",
                g.iter()
                    .take(10)
                    .map(|n| format!("{:?}", crate::error::excerpt(n, 256)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Skip::Duplicate { first_line } => format!("the same email is on line {first_line}"),
            Skip::AlreadyMember => "already a member of this organization".to_owned(),
            Skip::AlreadyInvited => {
                "a pending invitation for this email exists; resend or revoke it".to_owned()
            }
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
    TooLarge { bytes: usize },
    Empty,
    Unreadable(String),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::NoEmailColumn => write!(f, "the header has no 'email' column"),
            FileError::TooManyRows { rows } => write!(
                f,
                "the file has {rows} rows (empty rows count too); the limit is {MAX_ROWS}"
            ),
            FileError::TooLarge { bytes } => {
                write!(f, "the file is {bytes} bytes; the limit is {MAX_BYTES}")
            }
            FileError::Empty => write!(
                f,
                "the file is empty; it needs a header with an 'email' column"
            ),
            FileError::Unreadable(why) => write!(f, "the file could not be read: {why}"),
        }
    }
}

/// One record of the file, as read: its line and the two cells that matter, or why it could
/// not be read. A record whose cells are all empty is `None`: it counts toward the limit, but
/// names nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub cells: Result<Option<(String, String)>, String>,
}

/// Reads the file in one pass: the header, then every record with its line number. Refuses the
/// whole file when it is over `MAX_BYTES`, has no `email` column, or has more than `MAX_ROWS`
/// records. CPU-bound: callers on an async runtime run it on a blocking thread.
pub fn read(data: &[u8]) -> Result<Vec<Row>, FileError> {
    if data.len() > MAX_BYTES {
        return Err(FileError::TooLarge { bytes: data.len() });
    }
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
    let mut lines = LineCounter::new(data);
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let read = reader.read_record(&mut record);
        let at = match &read {
            Ok(_) => record.position().map(|p| p.byte()),
            Err(e) => e.position().map(|p| p.byte()),
        };
        let cells = match read {
            Ok(false) => break,
            Ok(true) if record.iter().all(str::is_empty) => Ok(None),
            Ok(true) => Ok(Some((
                record.get(email_col).unwrap_or_default().to_owned(),
                groups_col
                    .and_then(|c| record.get(c))
                    .unwrap_or_default()
                    .to_owned(),
            ))),
            Err(e) => Err(e.to_string()),
        };
        if rows.len() == MAX_ROWS {
            // Count the rest (one more linear pass over what is left) to say how many.
            let rest = reader.records().count();
            return Err(FileError::TooManyRows {
                rows: MAX_ROWS + 1 + rest,
            });
        }
        let line = at.map_or(rows.len() + 2, |b| lines.line_of_record_at(b));
        rows.push(Row { line, cells });
    }
    Ok(rows)
}

/// Line numbers as a person reading the file in an editor counts them (blank lines, which the
/// reader skips, included), found by walking forward once: records come in order, so the
/// whole file is scanned once however many records it has.
struct LineCounter<'a> {
    data: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(data: &'a [u8]) -> Self {
        LineCounter {
            data,
            at: 0,
            line: 1,
        }
    }

    /// The line a record starts on, given where the reader began it (before the blank lines it
    /// skipped).
    fn line_of_record_at(&mut self, byte: u64) -> usize {
        let target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        while self.at < target {
            self.step();
        }
        while self.at < self.data.len() && matches!(self.data[self.at], b'\n' | b'\r') {
            self.step();
        }
        self.line
    }

    /// Moves past one byte, counting a line break at LF and at a bare CR (the reader splits
    /// records at a lone CR too, as old Mac files have them).
    fn step(&mut self) {
        let next = self.data.get(self.at + 1);
        self.line += usize::from(match self.data[self.at] {
            b'\n' => true,
            b'\r' => next != Some(&b'\n'),
            _ => false,
        });
        self.at += 1;
    }
}

/// What the organization already has, for judging rows: lower-cased group names to ids, the
/// lower-cased emails that are members, and those with a pending invitation.
#[derive(Debug, Default)]
pub struct Known {
    pub groups: HashMap<String, String>,
    pub members: HashSet<String>,
    pub invited: HashSet<String>,
}

/// Judges each row on its own: valid rows are returned to be invited, every other row is
/// reported with its line number and reason. Pure and linear in the rows.
pub fn plan(rows: &[Row], known: &Known) -> Plan {
    let mut out = Plan::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let line = row.line;
        let (email, cell) = match &row.cells {
            Err(why) => {
                out.skipped.push(Skipped {
                    line,
                    reason: Skip::Unreadable(why.clone()),
                });
                continue;
            }
            Ok(None) => continue, // counted toward the limit, but names nobody
            Ok(Some(cells)) => cells,
        };
        if !crate::domain::valid_email(email) {
            out.skipped.push(Skipped {
                line,
                reason: Skip::InvalidEmail(email.clone()),
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
        let names: Vec<&str> = cell
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| !known.groups.contains_key(&n.to_lowercase()))
            .map(|n| n.to_string())
            .collect();
        if !unknown.is_empty() {
            out.skipped.push(Skipped {
                line,
                reason: Skip::UnknownGroups(unknown),
            });
            continue;
        }
        let reason = if known.members.contains(&norm) {
            Some(Skip::AlreadyMember)
        } else if known.invited.contains(&norm) {
            Some(Skip::AlreadyInvited)
        } else {
            None
        };
        if let Some(reason) = reason {
            out.skipped.push(Skipped { line, reason });
            continue;
        }
        let mut ids: Vec<String> = Vec::new();
        for n in names {
            if let Some(id) = known.groups.get(&n.to_lowercase()) {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        out.invite.push(Invitee {
            line,
            email: email.clone(),
            groups: ids,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Known {
        Known {
            groups: [("engineering", "g1"), ("sales eu", "g2")]
                .iter()
                .map(|(n, i)| (n.to_string(), i.to_string()))
                .collect(),
            members: ["already@acme.test".to_owned()].into_iter().collect(),
            invited: ["pending@acme.test".to_owned()].into_iter().collect(),
        }
    }

    fn plan_of(data: &[u8], known: &Known) -> Result<Plan, FileError> {
        read(data).map(|rows| plan(&rows, known))
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_and_reason() {
        let known = org();
        let csv = "Name,EMAIL,Group Membership\n\
                   Ann,ann@acme.test,\"Engineering, sales EU\"\n\
                   Bob,not-an-email,\n\
                   Cy,cy@acme.test,Marketing\n\
                   Ann again,ANN@acme.test,\n\
                   Old,already@acme.test,\n\
                   \n\
                   Dee,dee@acme.test,\n\
                   Pen,pending@acme.test,\n\
                   ,,\n";
        let p = plan_of(csv.as_bytes(), &known).unwrap();
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
                (6, "already_member"),
                (9, "already_invited")
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
        let p = plan_of(
            b"email\rbad one\rann@acme.test\r\rbad two\r\nbad three\n",
            &org(),
        )
        .unwrap();
        let lines: Vec<usize> = p.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 5, 6]);
        assert_eq!(p.invite[0].line, 3);
    }

    #[test]
    fn file_level_limits() {
        let known = org();
        assert_eq!(
            plan_of(b"name\nx\n", &known).unwrap_err(),
            FileError::NoEmailColumn
        );
        assert_eq!(plan_of(b"", &known).unwrap_err(), FileError::Empty);
        let mut big = String::from("email\n");
        for i in 0..=MAX_ROWS {
            big.push_str(&format!("u{i}@acme.test\n"));
        }
        assert_eq!(
            plan_of(big.as_bytes(), &known).unwrap_err(),
            FileError::TooManyRows { rows: MAX_ROWS + 1 }
        );
        let exact: String = std::iter::once("email\n".to_owned())
            .chain((0..MAX_ROWS).map(|i| format!("u{i}@acme.test\n")))
            .collect();
        assert_eq!(
            plan_of(exact.as_bytes(), &known).unwrap().invite.len(),
            MAX_ROWS
        );
        let over = vec![b'\n'; MAX_BYTES + 1];
        assert_eq!(
            read(&over).unwrap_err(),
            FileError::TooLarge {
                bytes: MAX_BYTES + 1
            }
        );
    }

    /// Empty records count toward the limit: 999 people and two empty rows are 1001 rows.
    #[test]
    fn empty_rows_count_toward_the_limit() {
        let mut csv = String::from("email,group membership\n");
        for i in 0..MAX_ROWS - 1 {
            csv.push_str(&format!("u{i}@acme.test,\n"));
        }
        csv.push_str(",\n,\n");
        assert_eq!(
            read(csv.as_bytes()).unwrap_err(),
            FileError::TooManyRows { rows: MAX_ROWS + 1 }
        );
        // The reported attack: 400 KB of empty rows, read in one pass and refused with the
        // count of rows it has.
        let attack = format!("email,group membership\n{}", ",\n".repeat(200_000));
        assert!(attack.len() > 400_000);
        assert_eq!(
            read(attack.as_bytes()).unwrap_err(),
            FileError::TooManyRows { rows: 200_000 }
        );
    }

    /// Line numbers are found in one forward walk, blank lines and quoted line breaks included.
    #[test]
    fn line_numbers_count_blank_lines_and_quoted_breaks() {
        let csv = "email,group membership\n\n\na@acme.test,\"x,\ny\"\r\n\r\nb@acme.test,\n,\nc@acme.test,\n";
        let rows = read(csv.as_bytes()).unwrap();
        let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4, 7, 8, 9]);
        assert_eq!(rows[2].cells, Ok(None));
    }
}
