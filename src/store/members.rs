//! The console's member list: a page of an organization's members by search, status, role and
//! team, and what the organization sees of each beyond the SCIM document; and the SQL that
//! reads it (which set drives the query, the search test).

use super::backend::for_both;
use super::shared::{placeholders, read_columns, CHUNK, COUNT_SUM};
use super::sql::{Arg, Dialect, Sql};
use super::Record;
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use async_trait::async_trait;
use sqlx::Row;
use std::fmt::Write;

/// Which members the console's Users page lists; each field narrows, `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct MemberQuery {
    /// Part of a name or address, matched case-insensitively, every character taken literally.
    pub search: Option<String>,
    pub active: Option<bool>,
    /// `Some(true)`: admins only; `Some(false)`: everyone else.
    pub admin: Option<bool>,
    /// A group's id: its members only (another organization's group has none here).
    pub group: Option<String>,
    /// Only members after this (created_at, id), in creation order.
    pub after: Option<(i64, String)>,
    pub count: i64,
    /// For a search of one or two characters (no trigram to look up): the most members tested
    /// for one page; 0 tests every member.
    pub short_walk: i64,
}

/// A page of the console's member list.
#[derive(Debug, Clone)]
pub struct MemberPage {
    /// How many members match: exact when nothing filters, else counted up to
    /// `MEMBER_COUNT_CAP + 1`; `None` for a search of one or two characters (not counted).
    pub total: Option<i64>,
    pub records: Vec<Record>,
    /// A short search stopped after `short_walk` members with the page not full: the last
    /// member tested, where the next page goes on.
    pub resume: Option<(i64, String)>,
}

/// Counting matches stops here: a list says "more than" past it, so a filter that matches most
/// of 100,000 members costs what one matching a thousand does.
pub const MEMBER_COUNT_CAP: i64 = 1000;

/// What an organization sees of a member beyond the SCIM document: only its own view.
#[derive(Debug, Clone)]
pub struct MemberDetail {
    pub member_id: String,
    /// When the person last acted in this organization (never their activity elsewhere).
    pub last_active_at: Option<i64>,
}

/// The console's view of an organization's members.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// A page of an organization's members for the console, in creation order.
    async fn list_members(&self, org: &str, q: &MemberQuery) -> Result<MemberPage>;
    /// For members of an organization: when each last acted in this organization.
    async fn member_details(&self, org: &str, ids: &[String]) -> Result<Vec<MemberDetail>>;
    /// Notes that a member acted in their organization (at most once a minute is written).
    async fn touch_membership(&self, member_id: &str, now: i64) -> Result<()>;
}

macro_rules! members {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        #[async_trait]
        impl MemberStore for $store {
            async fn list_members(&self, org: &str, q: &MemberQuery) -> Result<MemberPage> {
                let needle = q.search.as_deref().and_then(Needle::new);
                let short = needle.as_ref().is_some_and(|n| !n.indexed()) && q.short_walk > 0;
                // SQLite: a small set (a rare search, a small group) drives the query: its rows
                // are found and sorted. Else the walk in page order tests each member and stops
                // after a page of matches, which come often.
                let small = |sql: Sql| async move {
                    Ok::<_, Error>(self.count_rows(&sql.text, &sql.args).await? <= MEMBER_COUNT_CAP)
                };
                // A whole address: its members by the userName and email indexes, when there
                // are any under the other filters (else the substring search, which also finds
                // it inside longer addresses). Decided without the cursor, so every page of a
                // list reads it the same way.
                let exact = match needle.as_ref() {
                    Some(n) if crate::domain::valid_email(&n.folded) => {
                        let mut any = Sql::new($dialect);
                        any.push("select count(*) as n from (select 1 as one");
                        member_from(&mut any, org, q, needle.as_ref(), MemberDriver::Exact, None);
                        any.push(" limit 1) x");
                        self.count_rows(&any.text, &any.args).await? > 0
                    }
                    _ => false,
                };
                let driver = if exact {
                    MemberDriver::Exact
                } else if $dialect == Dialect::Postgres {
                    // Postgres' statistics (pg_trgm estimates a pattern's matches) already
                    // choose between these plans.
                    MemberDriver::Order
                } else if needle.as_ref().is_some_and(|n| n.indexed())
                    && small(member_driver_count(needle.as_ref(), None, MEMBER_COUNT_CAP)).await?
                {
                    MemberDriver::Search
                } else if q.group.is_some()
                    && small(member_driver_count(None, q.group.as_deref(), MEMBER_COUNT_CAP)).await?
                {
                    MemberDriver::Group
                } else {
                    MemberDriver::Order
                };
                let mut inner = Sql::new($dialect);
                if short {
                    // One or two characters: the next `short_walk` members (by the other
                    // filters) are tested, no more.
                    inner.push("select w.id as page_id from (select r.id, r.created_at, r.search");
                    member_from(&mut inner, org, q, None, driver, q.after.as_ref());
                    inner.push(" order by r.created_at, r.id limit ").bind(Arg::Int(q.short_walk));
                    inner.push(") w where ");
                    member_search_test(&mut inner, "w", needle.as_ref().map(|n| n.folded.as_str()).unwrap_or_default());
                    inner.push(" order by w.created_at, w.id");
                } else {
                    inner.push("select r.id as page_id");
                    member_from(&mut inner, org, q, needle.as_ref(), driver, q.after.as_ref());
                    inner.push(" order by r.created_at, r.id");
                }
                inner.push(" limit ").bind(Arg::Int(q.count.max(0)));
                let cols = read_columns(Kind::User, $groups);
                let text = format!(
                    "select {cols} from membership r join ({inner}) p on p.page_id = r.id order by r.created_at, r.id",
                    inner = inner.text,
                );
                let (records, _) = self.page(&text, &inner.args).await?;
                let n = records.len() as i64;
                if short {
                    let mut resume = None;
                    if n < q.count {
                        // Did the walk stop before the last member? Its last member and the
                        // one after it, if any.
                        let mut end = Sql::new($dialect);
                        end.push("select r.id as page_id");
                        member_from(&mut end, org, q, None, driver, q.after.as_ref());
                        end.push(" order by r.created_at, r.id limit 2 offset ").bind(Arg::Int(q.short_walk - 1));
                        let text = format!(
                            "select {cols} from membership r join ({inner}) p on p.page_id = r.id order by r.created_at, r.id",
                            inner = end.text,
                        );
                        let (ends, _) = self.page(&text, &end.args).await?;
                        if let [last, _] = ends.as_slice() {
                            resume = Some((last.created_at, last.id.clone()));
                        }
                    }
                    return Ok(MemberPage { total: None, records, resume });
                }
                let filtered = needle.is_some() || q.active.is_some() || q.admin.is_some() || q.group.is_some();
                let total = if !filtered {
                    let args = [Arg::Text(org.to_owned()), Arg::Text(Kind::User.name().to_owned())];
                    self.page(COUNT_SUM, &args).await?.1.map_or(0, |c| c.0)
                } else if q.after.is_none() && n < q.count {
                    n
                } else {
                    let mut count = Sql::new($dialect);
                    count.push("select count(*) as n from (select 1 as one");
                    member_from(&mut count, org, q, needle.as_ref(), driver, None);
                    count.push(" limit ").bind(Arg::Int(MEMBER_COUNT_CAP + 1)).push(") x");
                    self.count_rows(&count.text, &count.args).await?
                };
                Ok(MemberPage { total: Some(total), records, resume: None })
            }

            async fn member_details(&self, org: &str, ids: &[String]) -> Result<Vec<MemberDetail>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    // `|| ''` keeps SQLite's planner off the organization's indexes: with them it
                    // walked every member of the organization (45 ms at 100,000) instead of
                    // looking up each id by its primary key.
                    let text = format!(
                        "select m.id, m.last_active_at from membership m where m.organization_id || '' = $1 and m.id in ({})",
                        placeholders(2, chunk.len())
                    );
                    let mut q = sqlx::query(&text).bind(org);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for r in q.fetch_all(&self.read).await? {
                        out.push(MemberDetail {
                            member_id: r.try_get("id")?,
                            last_active_at: r.try_get("last_active_at")?,
                        });
                    }
                }
                Ok(out)
            }

            async fn touch_membership(&self, member_id: &str, now: i64) -> Result<()> {
                sqlx::query("update membership set last_active_at = $2 where id = $1")
                    .bind(member_id)
                    .bind(now)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }
        }
    };
}

for_both!(members);

/// How the console's member list is read on SQLite: which set, if any, drives it. (SQLite's
/// planner knows neither how many rows an FTS5 query matches nor how large a group is; the
/// store counts the candidates, up to a bound, and chooses. Postgres' statistics choose there.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberDriver {
    /// Walk the organization's members in page order (an index on the order, or on a status or
    /// role and then the order) and test each: right when the matches are many, so the walk
    /// stops early.
    Order,
    /// Start from the search index's matches (few), then sort them.
    Search,
    /// Start from the group's member rows (few), then sort them.
    Group,
    /// Start from the members whose userName or one of whose emails is the search text (a whole
    /// address), looked up in their unique and email indexes: on both databases. No substring
    /// test: such a member's search text holds the address.
    Exact,
}

/// What a member search looks for: the case-folded text, with `%`, `_` and `"` taken literally.
pub struct Needle {
    pub folded: String,
}

impl Needle {
    pub fn new(text: &str) -> Option<Self> {
        let folded = text.to_lowercase();
        (!folded.is_empty()).then_some(Needle { folded })
    }

    /// Whether the trigram indexes can answer it (three characters or more).
    pub fn indexed(&self) -> bool {
        self.folded.chars().count() >= 3
    }

    /// An FTS5 query for the text as one phrase: with the trigram tokenizer, a substring.
    pub fn fts_phrase(&self) -> String {
        format!("\"{}\"", self.folded.replace('"', "\"\""))
    }

    /// A `like` pattern for the text anywhere, escaped with `\`.
    pub fn like_pattern(&self) -> String {
        let mut p = String::from("%");
        for c in self.folded.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }
}

/// The SQL that counts the candidates of a driver set, at most `cap + 1` of them.
pub fn member_driver_count(needle: Option<&Needle>, group: Option<&str>, cap: i64) -> Sql {
    let mut sql = Sql::new(Dialect::Sqlite);
    sql.push("select count(*) as n from (");
    member_driver_rows(&mut sql, needle, group);
    sql.push(" limit ").bind(Arg::Int(cap + 1)).push(") x");
    sql
}

/// The ids of a driver set: a search's matches (`needle`) or a group's members.
fn member_driver_rows(sql: &mut Sql, needle: Option<&Needle>, group: Option<&str>) {
    match (needle, group) {
        (Some(n), _) => {
            // Every organization's members share the index; the join keeps this one's.
            sql.push(
                "select membership_id as id from membership_search where membership_search match ",
            )
            .bind(Arg::Text(n.fts_phrase()));
        }
        (None, Some(g)) => {
            sql.push("select membership_id as id from team_member where team_id = ")
                .bind(Arg::Text(g.to_owned()));
        }
        (None, None) => {
            sql.push("select id from membership where false");
        }
    }
}

/// The `from … where …` of the member list (the row alias is `r`): the organization's members
/// that match every filter of `q`, read through `driver`, after `after` when given (the count
/// passes none).
pub fn member_from(
    sql: &mut Sql,
    org: &str,
    q: &MemberQuery,
    needle: Option<&Needle>,
    driver: MemberDriver,
    after: Option<&(i64, String)>,
) {
    match driver {
        MemberDriver::Order => sql.push(" from membership r where "),
        MemberDriver::Search | MemberDriver::Group => {
            // The few candidates first, then only their rows (`cross join` fixes SQLite's join
            // order).
            sql.push(" from (");
            let (n, g) = match driver {
                MemberDriver::Search => (needle, None),
                _ => (None, q.group.as_deref()),
            };
            member_driver_rows(sql, n, g);
            sql.push(") c cross join membership r where r.id = c.id and ")
        }
        MemberDriver::Exact => {
            let folded = needle.map(|n| n.folded.clone()).unwrap_or_default();
            sql.push(" from (select id from membership where organization_id = ")
                .bind(Arg::Text(org.to_owned()))
                .push(" and user_name_norm = ")
                .bind(Arg::Text(folded.clone()))
                .push(" union select membership_id as id from membership_email where value_norm = ")
                .bind(Arg::Text(folded));
            if sql.pg() {
                // Each candidate's row by its key (`offset 0` keeps the subquery, so the
                // planner cannot hash-join every member instead, as it does before it has
                // statistics of a table just filled).
                sql.push(") c cross join lateral (select * from membership m where m.id = c.id offset 0) r where ")
            } else {
                sql.push(") c cross join membership r where r.id = c.id and ")
            }
        }
    };
    sql.push("r.organization_id = ")
        .bind(Arg::Text(org.to_owned()));
    if let (Some(n), false) = (needle, driver == MemberDriver::Exact) {
        if sql.pg() && n.indexed() {
            // The planner weighs the trigram index against the walk in page order by its
            // statistics of the pattern.
            sql.push(" and r.search like ")
                .bind(Arg::Text(n.like_pattern()))
                .push(" escape '\\'");
        } else {
            // The exact test (behind SQLite's FTS5 index too).
            sql.push(" and ");
            member_search_test(sql, "r", &n.folded);
        }
    }
    if let (Some(g), false) = (&q.group, driver == MemberDriver::Group) {
        sql.push(" and exists (select 1 from team_member tm where tm.team_id = ")
            .bind(Arg::Text(g.clone()))
            .push(" and tm.membership_id = r.id)");
    }
    if let Some(active) = q.active {
        sql.push(" and r.active = ").bind(Arg::Bool(active));
    }
    match q.admin {
        Some(true) => {
            sql.push(" and r.role = 'admin' and r.role_assigned");
        }
        Some(false) => {
            sql.push(" and not (r.role = 'admin' and r.role_assigned)");
        }
        None => {}
    }
    if let Some((ts, id)) = after {
        sql.push(" and (r.created_at, r.id) > (")
            .bind(Arg::Int(*ts));
        sql.push(", ").bind(Arg::Text(id.clone())).push(")");
    }
}

/// Whether `alias.search` holds `folded`, as a plain substring test. (On Postgres not `like`:
/// the trigram index would read all its entries for a pattern of fewer than three characters.)
pub fn member_search_test(sql: &mut Sql, alias: &str, folded: &str) {
    let f = if sql.pg() { "strpos" } else { "instr" };
    let _ = write!(sql.text, "{f}({alias}.search, ");
    sql.bind(Arg::Text(folded.to_owned())).push(") > 0");
}
