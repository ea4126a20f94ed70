//! Flat `startIndex` paging (RFC 7644 §3.4.2.4). Identity providers such as Okta import a
//! directory page by page with `startIndex`/`count`, never with cursors, and `offset N` must step
//! over N index entries: the last page of 100,000 users cost ten times the first.
//!
//! So each list remembers where its recently served pages ended: for an unfiltered list in the
//! default order (creation order), the key `(created_at, id)` of the last record of a page, the
//! `startIndex` the next page starts at, and the organization's change count
//! (`resource_count.changes`, the sum of creates and deletes) read in the same statement as the
//! page. The next page then seeks past that key instead of counting. The seek is exact only while
//! no resource of that kind came or went, so the page query reads the change count again, in the
//! same snapshot as its rows; when it differs, the page is read again with `offset`.
//!
//! Per process and bounded: at most `PER_LIST` positions per organization and kind, and at most
//! `LISTS` organizations and kinds. A replica that never served the previous page (another
//! replica behind a load balancer did) falls back to `offset`, which stays correct.

use crate::scim::schema::Kind;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Positions remembered per organization and kind: several imports may run at once.
const PER_LIST: usize = 64;
/// Organizations (times kinds) remembered; past this the memo starts over.
const LISTS: usize = 1024;

/// Where a served page ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The `startIndex` of the page that follows.
    pub next_start: i64,
    /// `resource_count.changes` when the page was read.
    pub changes: i64,
    pub created_at: i64,
    pub id: String,
}

#[derive(Default)]
pub struct PageMemo {
    lists: Mutex<HashMap<(String, &'static str), VecDeque<Position>>>,
}

impl PageMemo {
    /// A remembered position that a page starting at `start` can seek from.
    pub fn seek(&self, org: &str, kind: Kind, start: i64) -> Option<Position> {
        let lists = self.lists.lock().ok()?;
        lists
            .get(&(org.to_owned(), kind.name()))?
            .iter()
            .find(|p| p.next_start == start)
            .cloned()
    }

    pub fn remember(&self, org: &str, kind: Kind, pos: Position) {
        let Ok(mut lists) = self.lists.lock() else {
            return;
        };
        if lists.len() >= LISTS && !lists.contains_key(&(org.to_owned(), kind.name())) {
            lists.clear();
        }
        let list = lists.entry((org.to_owned(), kind.name())).or_default();
        list.retain(|p| p.next_start != pos.next_start);
        if list.len() >= PER_LIST {
            list.pop_front();
        }
        list.push_back(pos);
    }

    /// Forgets a position that turned out stale.
    pub fn forget(&self, org: &str, kind: Kind, start: i64) {
        if let Ok(mut lists) = self.lists.lock() {
            if let Some(list) = lists.get_mut(&(org.to_owned(), kind.name())) {
                list.retain(|p| p.next_start != start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(next_start: i64) -> Position {
        Position {
            next_start,
            changes: 7,
            created_at: next_start * 10,
            id: format!("id{next_start}"),
        }
    }

    #[test]
    fn remembers_per_organization_and_kind_within_bounds() {
        let m = PageMemo::default();
        m.remember("a", Kind::User, pos(101));
        assert_eq!(m.seek("a", Kind::User, 101), Some(pos(101)));
        assert_eq!(m.seek("a", Kind::Group, 101), None);
        assert_eq!(m.seek("b", Kind::User, 101), None);
        for i in 0..(PER_LIST as i64 + 10) {
            m.remember("a", Kind::User, pos(201 + i * 100));
        }
        assert_eq!(
            m.seek("a", Kind::User, 101),
            None,
            "the oldest positions go first"
        );
        assert_eq!(
            m.lists.lock().unwrap()[&("a".to_owned(), "User")].len(),
            PER_LIST
        );
        m.forget("a", Kind::User, 201 + 20 * 100);
        assert_eq!(m.seek("a", Kind::User, 201 + 20 * 100), None);
    }
}
