//! Crashes and faults, with real processes on loopback: `kill -9` of scimd in the middle of a
//! write load (SQLite and Postgres), Postgres going away under load (a private cluster really
//! stopped and started; sessions ended with `pg_terminate_backend`), and two replicas on one
//! Postgres under concurrent identity-provider traffic. Every wait has a deadline.

use crate::both;
use crate::helpers::{TestApp, GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA};
use crate::process::{admin_token, client, eventually, one_at_a_time, Db, PgCluster, Scimd};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One HTTP exchange: the status, the `Retry-After` header and the JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: Value,
}

/// A client of one scimd: an identity provider's token and a provider admin's.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    pub base: String,
    scim_token: String,
    admin_token: String,
}

impl Api {
    pub fn new(base: &str, scim_token: &str, admin_token: &str) -> Api {
        Api {
            // Longer than the pool's acquire timeout, so a 503 always arrives before it.
            http: client(Duration::from_secs(20)),
            base: base.to_owned(),
            scim_token: scim_token.to_owned(),
            admin_token: admin_token.to_owned(),
        }
    }

    /// `path` under `/scim/v2` or `/admin/v1` (the token follows), or any other path (none).
    /// `Err` when no answer came: the connection was refused or cut, or the request timed out.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, reqwest::Error> {
        let token = if path.starts_with("/scim/") {
            Some(&self.scim_token)
        } else if path.starts_with("/admin/") {
            Some(&self.admin_token)
        } else {
            None
        };
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            let ct = if path.starts_with("/scim/") {
                "application/scim+json"
            } else {
                "application/json"
            };
            req = req.header("content-type", ct).body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after");
        let content_type = header("content-type").unwrap_or_default();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            retry_after,
            content_type,
            body,
        })
    }
}

fn user_body(name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": name, "displayName": "v0",
           "emails": [{"value": name, "primary": true}]})
}

fn replace(path: &str, value: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": path, "value": value}]})
}

/// Asserts a 503 that tells the client to come back: `Retry-After`, and the error body of the
/// API it called (RFC 7644 §3.12 on SCIM, `{error, message}` on the admin API).
pub(crate) fn assert_unavailable(path: &str, a: &Answer) {
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {a:?}");
    let secs: u64 = a
        .retry_after
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: a 503 without a Retry-After in seconds: {a:?}"));
    assert!(secs >= 1, "{path}: {a:?}");
    if path.starts_with("/scim/") {
        assert_eq!(a.content_type, "application/scim+json", "{path}: {a:?}");
        assert_eq!(
            a.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{path}: {a:?}"
        );
        assert_eq!(a.body["status"], "503", "{path}: {a:?}");
        assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    } else {
        assert_eq!(a.body["error"], "unavailable", "{path}: {a:?}");
        assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

// ----------------------------------------------------------------------------------------------
// kill -9 during a write load
// ----------------------------------------------------------------------------------------------

/// What one write achieved, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Sent, and no answer came back: the server died while (or before) handling it.
    Unknown,
    /// Answered 2xx: the write must survive the crash.
    Acked,
}

/// A User the load created, and what was done to it since, in order (one worker owns it).
#[derive(Debug, Default, Clone)]
struct UserLog {
    id: String,
    /// displayName values written, with their outcome; "v0" came with the create.
    names: Vec<(String, Outcome)>,
    deleted: Option<Outcome>,
}

/// Everything the load's clients were told.
#[derive(Debug, Default, Clone)]
struct Journal {
    users: Vec<UserLog>,
    /// (group, user) memberships added and acknowledged.
    members: Vec<(String, String)>,
    groups: Vec<String>,
    invitations: Vec<String>,
    /// Emails of people added through the admin API.
    added: Vec<String>,
    acked: usize,
}

/// One worker of the load: creates Users, renames them, adds them to groups, creates groups
/// with members, invites people through the admin API and deletes Users, one request at a
/// time, until `stop` or until the server stops answering.
async fn worker(
    api: Api,
    w: usize,
    round: usize,
    seed_groups: Vec<String>,
    journal: Arc<Mutex<Journal>>,
    stop: Arc<AtomicBool>,
) {
    let mut mine: Vec<usize> = Vec::new(); // indexes into journal.users
    for i in 0..2000 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let tag = format!("{round}-{w}-{i}");
        let last = mine.last().copied();
        let step = if last.is_none() { 0 } else { i % 6 };
        let ok = match step {
            1..=5 => {
                let Some(u) = last else { continue };
                let (uid, gone) = {
                    let j = journal.lock().unwrap();
                    (j.users[u].id.clone(), j.users[u].deleted.is_some())
                };
                if gone {
                    continue;
                }
                match step {
                    1 => {
                        let name = format!("v{i}");
                        let idx = {
                            let mut j = journal.lock().unwrap();
                            j.users[u].names.push((name.clone(), Outcome::Unknown));
                            j.users[u].names.len() - 1
                        };
                        let r = api
                            .call(
                                Method::PATCH,
                                &format!("/scim/v2/Users/{uid}"),
                                Some(replace("displayName", json!(name))),
                            )
                            .await;
                        expect_ok(&r, "PATCH /Users").map(|()| {
                            journal.lock().unwrap().users[u].names[idx].1 = Outcome::Acked
                        })
                    }
                    2 => {
                        let g = &seed_groups[(w + i) % seed_groups.len()];
                        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [
                            {"op": "add", "path": "members", "value": [{"value": uid}]}]});
                        let r = api
                            .call(Method::PATCH, &format!("/scim/v2/Groups/{g}"), Some(body))
                            .await;
                        expect_ok(&r, "PATCH /Groups").map(|()| {
                            journal
                                .lock()
                                .unwrap()
                                .members
                                .push((g.clone(), uid.clone()))
                        })
                    }
                    3 if i % 12 == 3 => {
                        // A person added by an admin: membership, account, setup link and its
                        // email, in one transaction.
                        let email = format!("added-{tag}@crash.test");
                        let body = json!({"email": email, "givenName": "Ad", "familyName": "Ded"});
                        let r = api
                            .call(Method::POST, "/admin/v1/orgs/acme/members", Some(body))
                            .await;
                        expect_ok(&r, "POST members")
                            .map(|()| journal.lock().unwrap().added.push(email))
                    }
                    3 => {
                        let body = json!({"email": format!("inv-{tag}@crash.test"),
                                          "firstName": "In", "lastName": format!("Vited {tag}")});
                        let r = api
                            .call(Method::POST, "/admin/v1/orgs/acme/invitations", Some(body))
                            .await;
                        expect_ok(&r, "POST invitations").map(|()| {
                            let id = r.as_ref().unwrap().body["id"].as_str().unwrap().to_owned();
                            journal.lock().unwrap().invitations.push(id)
                        })
                    }
                    4 => {
                        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": format!("team {tag}"),
                                          "members": [{"value": uid}]});
                        let r = api.call(Method::POST, "/scim/v2/Groups", Some(body)).await;
                        expect_ok(&r, "POST /Groups").map(|()| {
                            let gid = r.as_ref().unwrap().body["id"].as_str().unwrap().to_owned();
                            let mut j = journal.lock().unwrap();
                            j.members.push((gid.clone(), uid.clone()));
                            j.groups.push(gid);
                        })
                    }
                    _ => {
                        // Delete every third User; the others stay for the checks.
                        if i % 18 != 5 {
                            continue;
                        }
                        journal.lock().unwrap().users[u].deleted = Some(Outcome::Unknown);
                        let r = api
                            .call(Method::DELETE, &format!("/scim/v2/Users/{uid}"), None)
                            .await;
                        expect_ok(&r, "DELETE /Users").map(|()| {
                            journal.lock().unwrap().users[u].deleted = Some(Outcome::Acked)
                        })
                    }
                }
            }
            _ => {
                let name = format!("u-{tag}@crash.test");
                let r = api
                    .call(Method::POST, "/scim/v2/Users", Some(user_body(&name)))
                    .await;
                expect_ok(&r, "POST /Users").map(|()| {
                    let id = r.as_ref().unwrap().body["id"].as_str().unwrap().to_owned();
                    let mut j = journal.lock().unwrap();
                    j.users.push(UserLog {
                        id,
                        names: vec![("v0".into(), Outcome::Acked)],
                        deleted: None,
                    });
                    mine.push(j.users.len() - 1);
                })
            }
        };
        match ok {
            Some(()) => journal.lock().unwrap().acked += 1,
            // No answer: the server is gone. What this request did is unknown.
            None => return,
        }
    }
}

/// `Some(())` for a 2xx; `None` when no answer came. Any other answer fails the test: the load
/// is made only of writes that must succeed while the server is up.
fn expect_ok(r: &Result<Answer, reqwest::Error>, what: &str) -> Option<()> {
    match r {
        Ok(a) => {
            assert!(a.status.is_success(), "{what}: {a:?}");
            Some(())
        }
        Err(_) => None,
    }
}

/// Runs the load against `server` until `at_least` writes were acknowledged, then kills the
/// server with SIGKILL while the workers are in the middle of their next requests.
async fn load_then_kill(
    server: &mut Scimd,
    api: &Api,
    round: usize,
    groups: &[String],
    journal: &Arc<Mutex<Journal>>,
    at_least: usize,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = journal.lock().unwrap().acked;
    let workers: Vec<_> = (0..6)
        .map(|w| {
            tokio::spawn(worker(
                api.clone(),
                w,
                round,
                groups.to_vec(),
                journal.clone(),
                stop.clone(),
            ))
        })
        .collect();
    eventually(
        Duration::from_secs(90),
        "the load to get writes acknowledged",
        || {
            let done = journal.lock().unwrap().acked - start >= at_least;
            let failed = workers.iter().any(|w| w.is_finished());
            async move { (done || failed).then_some(()) }
        },
    )
    .await;
    assert!(
        workers.iter().all(|w| !w.is_finished()),
        "a worker ended before the kill:\n{}",
        server.log_tail()
    );
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    let j = journal.lock().unwrap().clone();
    let cut = j
        .users
        .iter()
        .flat_map(|u| u.names.iter().map(|(_, o)| *o).chain(u.deleted))
        .filter(|o| *o == Outcome::Unknown)
        .count();
    eprintln!(
        "round {round}: killed after {} acknowledged writes; {cut} renames or deletes had no answer",
        j.acked
    );
    for w in workers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("workers stop once the server is gone")
            .expect("a worker panicked");
    }
}

/// Every acknowledged write is there after the restart, and nothing is half-written.
async fn check_after_crash(api: &Api, db_url: &str, journal: &Journal) {
    // Over HTTP, as a client would see it.
    for u in &journal.users {
        let r = api
            .call(Method::GET, &format!("/scim/v2/Users/{}", u.id), None)
            .await
            .expect("the restarted server answers");
        match u.deleted {
            Some(Outcome::Acked) => assert_eq!(r.status, 404, "deleted User {} is back", u.id),
            Some(Outcome::Unknown) => assert!(r.status == 404 || r.status == 200, "{r:?}"),
            None => {
                assert_eq!(r.status, 200, "acknowledged User {} is lost: {r:?}", u.id);
                // The last acknowledged name, or the one written after it without an answer.
                let last_acked = u.names.iter().rposition(|(_, o)| *o == Outcome::Acked);
                let allowed: Vec<&str> = u.names[last_acked.unwrap_or(0)..]
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect();
                let got = r.body["displayName"].as_str().unwrap_or_default();
                assert!(
                    allowed.contains(&got),
                    "User {}: displayName {got:?}, expected one of {allowed:?}",
                    u.id
                );
            }
        }
    }
    let deleted: HashMap<&str, bool> = journal
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.deleted.is_some()))
        .collect();
    // (a query that must count exactly one row, what is lost otherwise)
    let mut expect_one: Vec<(String, String)> = Vec::new();
    for (g, u) in &journal.members {
        if !deleted.get(u.as_str()).copied().unwrap_or(false) {
            expect_one.push((
                format!("select count(*) from team_member where team_id = '{g}' and membership_id = '{u}'"),
                format!("the membership of {u} in {g}"),
            ));
        }
    }
    for g in &journal.groups {
        expect_one.push((
            format!("select count(*) from team where id = '{g}'"),
            format!("Group {g}"),
        ));
    }
    for i in &journal.invitations {
        expect_one.push((
            format!("select count(*) from invitation where id = '{i}' and status = 'pending'"),
            format!("invitation {i}"),
        ));
    }
    for email in &journal.added {
        expect_one.push((
            format!(
                "select count(*) from membership m join account a on a.id = m.account_id \
                 join account_setup s on s.account_id = a.id where a.email = '{email}'"
            ),
            format!("member {email} with their setup link"),
        ));
    }
    let mut db = Db::open(db_url).await;
    for (sql, what) in expect_one {
        assert_eq!(db.int(&sql).await, 1, "acknowledged {what} is lost");
    }
    assert_consistent(&mut db).await;
}

/// What no crash may leave behind, checked with SQL over the whole database: each query counts
/// rows that would be half of a write.
async fn assert_consistent(db: &mut Db) {
    let checks = [
        (
            "a membership without its User.create audit event",
            "select count(*) from membership m where not exists \
             (select 1 from audit_event a where a.target = m.id and a.action = 'User.create')",
        ),
        (
            "a team without its Group.create audit event",
            "select count(*) from team t where not exists \
             (select 1 from audit_event a where a.target = t.id and a.action = 'Group.create')",
        ),
        (
            "a User version without its User.update audit event (or the reverse)",
            "select count(*) from membership m where m.version - 1 <> \
             (select count(*) from audit_event a where a.target = m.id and a.action = 'User.update')",
        ),
        (
            "a Group version without its Group.update audit event (or the reverse)",
            "select count(*) from team t where t.version - 1 <> \
             (select count(*) from audit_event a where a.target = t.id and a.action = 'Group.update')",
        ),
        (
            "a create audit event for a User that was never created (or deleted)",
            "select count(*) from audit_event a where a.action = 'User.create' \
             and not exists (select 1 from membership m where m.id = a.target) \
             and not exists (select 1 from audit_event d where d.action = 'User.delete' and d.target = a.target)",
        ),
        (
            "a deleted User still present",
            "select count(*) from audit_event a where a.action = 'User.delete' \
             and exists (select 1 from membership m where m.id = a.target)",
        ),
        (
            "an invitation without its email in the outbox",
            "select count(*) from invitation i where not exists (select 1 from email_outbox o \
             where o.organization_id = i.organization_id and o.to_address = i.email)",
        ),
        (
            "an invitation email without its invitation",
            "select count(*) from email_outbox o where o.subject like 'You''re invited%' \
             and not exists (select 1 from invitation i \
             where i.organization_id = o.organization_id and i.email = o.to_address)",
        ),
        (
            "an invitation without its Invitation.create audit event",
            "select count(*) from invitation i where not exists \
             (select 1 from audit_event a where a.target = i.id and a.action = 'Invitation.create')",
        ),
        (
            "an account-setup link without its email in the outbox",
            "select count(*) from account_setup s join account a on a.id = s.account_id \
             where not exists (select 1 from email_outbox o where o.to_address = a.email)",
        ),
        (
            "a group member row pointing nowhere",
            "select count(*) from team_member tm \
             where not exists (select 1 from team t where t.id = tm.team_id) \
             or not exists (select 1 from membership m where m.id = tm.membership_id)",
        ),
        (
            "a membership whose emails are not indexed",
            "select count(*) from membership m where not exists \
             (select 1 from membership_email e where e.membership_id = m.id)",
        ),
        (
            "an email index row of no membership",
            "select count(*) from membership_email e where not exists \
             (select 1 from membership m where m.id = e.membership_id)",
        ),
        (
            "an organization whose User or Group count is off",
            "select count(*) from organization o \
             where (select coalesce(sum(c.n), 0) from resource_count c \
                    where c.organization_id = o.id and c.kind = 'User') \
                   <> (select count(*) from membership m where m.organization_id = o.id) \
             or (select coalesce(sum(c.n), 0) from resource_count c \
                 where c.organization_id = o.id and c.kind = 'Group') \
                <> (select count(*) from team t where t.organization_id = o.id)",
        ),
        (
            "a membership of no account",
            "select count(*) from membership m where not exists (select 1 from account a where a.id = m.account_id)",
        ),
    ];
    for (what, sql) in checks {
        assert_eq!(db.int(sql).await, 0, "found {what}");
    }
}

/// `kill -9` twice in the middle of a write load: after each restart every write that was
/// answered 2xx is there, and no write is half there.
async fn kill_9_during_writes(app: TestApp) {
    let _heavy = one_at_a_time().await;
    let admin = admin_token(&app.url).await;
    let mut server = Scimd::start(&app.url, &[]).await;
    let mut api = Api::new(&server.base, &app.token, &admin);
    let mut groups = Vec::new();
    for g in 0..3 {
        let r = api
            .call(
                Method::POST,
                "/scim/v2/Groups",
                Some(json!({"schemas": [GROUP_SCHEMA], "displayName": format!("seed {g}")})),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{r:?}");
        groups.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let journal = Arc::new(Mutex::new(Journal::default()));
    for round in 0..2 {
        load_then_kill(&mut server, &api, round, &groups, &journal, 120).await;
        server = Scimd::start(&app.url, &[]).await;
        api = Api::new(&server.base, &app.token, &admin);
        let seen = journal.lock().unwrap().clone();
        check_after_crash(&api, &app.url, &seen).await;
    }
    // The restarted server takes writes as before.
    let r = api
        .call(
            Method::POST,
            "/scim/v2/Users",
            Some(user_body("after@crash.test")),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
}

both!(kill_9_during_writes);

// ----------------------------------------------------------------------------------------------
// Postgres outages
// ----------------------------------------------------------------------------------------------

/// What the steady client load saw, request by request: (path, answer).
type Seen = Arc<Mutex<Vec<(String, Answer)>>>;

/// A client that keeps reading and writing through both APIs until `stop`, one request at a
/// time. Every request must get an answer (scimd never hangs or drops the connection).
fn steady_load(api: Api, stop: Arc<AtomicBool>, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let n = AtomicUsize::new(0);
        while !stop.load(Ordering::SeqCst) {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let (method, path, body) = match i % 4 {
                0 => (
                    Method::GET,
                    "/scim/v2/Users?filter=userName%20eq%20%22nobody%40x.test%22".to_owned(),
                    None,
                ),
                1 => (
                    Method::POST,
                    "/scim/v2/Users".to_owned(),
                    Some(user_body(&format!("steady-{i}@outage.test"))),
                ),
                2 => (
                    Method::GET,
                    "/admin/v1/orgs/acme/members?count=5".to_owned(),
                    None,
                ),
                _ => (
                    Method::POST,
                    "/admin/v1/orgs/acme/invitations".to_owned(),
                    Some(
                        json!({"email": format!("steady-{i}@outage.test"), "firstName": "S", "lastName": "T"}),
                    ),
                ),
            };
            let a = api
                .call(method, &path, body)
                .await
                .unwrap_or_else(|e| panic!("{path}: no answer from scimd: {e}"));
            seen.lock().unwrap().push((path, a));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Every answer is a success or a well-formed 503; never a 500.
fn assert_no_internal_errors(seen: &Seen) {
    for (path, a) in seen.lock().unwrap().iter() {
        if a.status.is_server_error() {
            assert_unavailable(path, a);
        } else {
            assert!(a.status.is_success(), "{path}: {a:?}");
        }
    }
}

async fn readyz(api: &Api) -> StatusCode {
    api.call(Method::GET, "/readyz", None)
        .await
        .expect("/readyz answers")
        .status
}

/// Postgres really stopped and started again under a steady load: while it is down scimd
/// answers 503 with `Retry-After` and each API's error body, `/readyz` says 503; when it is
/// back, scimd serves again by itself (same process) and `/readyz` says 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_is_a_503_then_recovery() {
    let _heavy = one_at_a_time().await;
    let cluster = PgCluster::start();
    let mut conn = Db::open(&cluster.url("postgres")).await;
    if let Db::Postgres(c) = &mut conn {
        sqlx::query("create database scimd")
            .execute(c)
            .await
            .unwrap();
    }
    drop(conn);
    let url = cluster.url("scimd");
    let app = TestApp::at(url.clone()).await;
    let admin = admin_token(&url).await;
    let mut server = Scimd::start(&url, &[]).await;
    let pid = server.pid();
    let api = Api::new(&server.base, &app.token, &admin);
    let (stop, seen): (Arc<AtomicBool>, Seen) = (Arc::default(), Arc::default());
    let load = steady_load(api.clone(), stop.clone(), seen.clone());
    // Two answers of this kind among those seen since the `from`th.
    let count = |from: usize, path: &'static str, ok: bool| {
        let seen = seen.clone();
        move || {
            let n = seen.lock().unwrap()[from..]
                .iter()
                .filter(|(p, a)| p.starts_with(path) && a.status.is_success() == ok)
                .count();
            async move { (n >= 2).then_some(()) }
        }
    };
    eventually(
        Duration::from_secs(30),
        "successes before the outage",
        count(0, "/scim/", true),
    )
    .await;
    assert_eq!(readyz(&api).await, 200);

    cluster.stop();
    // Counted from here: requests can fail already while the server shuts down, before `stop`
    // returns, and those are not the outage's answers.
    let before = seen.lock().unwrap().len();
    eventually(
        Duration::from_secs(60),
        "SCIM 503s during the outage",
        count(before, "/scim/", false),
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "admin API 503s during the outage",
        count(before, "/admin/", false),
    )
    .await;
    assert_eq!(readyz(&api).await, 503);
    // Once the database is gone, nothing succeeds (the token cache aside, every request needs it).
    let during: Vec<(String, Answer)> = seen.lock().unwrap()[before + 2..].to_vec();
    for (path, a) in &during {
        assert_unavailable(path, a);
    }

    cluster.restart();
    eventually(Duration::from_secs(60), "/readyz to say 200 again", || {
        let api = api.clone();
        async move { (readyz(&api).await == 200).then_some(()) }
    })
    .await;
    let after = seen.lock().unwrap().len();
    eventually(Duration::from_secs(60), "writes to succeed again", || {
        let seen = seen.clone();
        async move {
            let s = seen.lock().unwrap();
            let ok = |p: &str| {
                s[after..]
                    .iter()
                    .any(|(path, a)| path.starts_with(p) && a.status.is_success())
            };
            (ok("/scim/v2/Users") && ok("/admin/v1/orgs/acme/invitations")).then_some(())
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), load)
        .await
        .expect("the load stops")
        .expect("the load got an answer to every request");
    assert_no_internal_errors(&seen);
    assert!(server.running(), "scimd died:\n{}", server.log_tail());
    assert_eq!(server.pid(), pid);
    assert_consistent(&mut Db::open(&url).await).await;
}

/// Postgres ends scimd's sessions (`pg_terminate_backend`, as a failover or an operator does)
/// again and again under a steady load: no answer is a 500, and scimd serves normally
/// afterwards without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_postgres_sessions_are_survived() {
    let _heavy = one_at_a_time().await;
    let app = TestApp::postgres().await;
    let admin = admin_token(&app.url).await;
    let mut server = Scimd::start(&app.url, &[]).await;
    let api = Api::new(&server.base, &app.token, &admin);
    let (stop, seen): (Arc<AtomicBool>, Seen) = (Arc::default(), Arc::default());
    let load = steady_load(api.clone(), stop.clone(), seen.clone());
    let db_name = app.url.rsplit('/').next().unwrap().to_owned();
    let mut db = Db::open(&crate::helpers::postgres_admin_url()).await;
    let mut killed = 0;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        killed += db
            .int(&format!(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = '{db_name}' and pid <> pg_backend_pid()) t"
            ))
            .await;
    }
    assert!(
        killed > 0,
        "no session of scimd was ended; the test proves nothing"
    );
    let after = seen.lock().unwrap().len();
    eventually(Duration::from_secs(60), "requests to succeed again", || {
        let seen = seen.clone();
        async move {
            let s = seen.lock().unwrap();
            let ok = s[after..]
                .iter()
                .filter(|(_, a)| a.status.is_success())
                .count();
            (ok >= 8).then_some(())
        }
    })
    .await;
    assert_eq!(readyz(&api).await, 200);
    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), load)
        .await
        .expect("the load stops")
        .expect("the load got an answer to every request");
    assert_no_internal_errors(&seen);
    assert!(server.running(), "scimd died:\n{}", server.log_tail());
    assert_consistent(&mut Db::open(&app.url).await).await;
}
