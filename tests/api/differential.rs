//! Differential filter test: random filters over a random population must select the same
//! users on SQLite, on Postgres, and in the in-memory reference evaluator (`scim::eval`), which
//! reads the RFC directly rather than SQL.

use crate::helpers::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use scimd::scim::eval::{matches, Ctx};
use scimd::scim::schema::Kind;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// ASCII only: SQLite's lower() folds ASCII alone (see the README).
const WORDS: &[&str] = &[
    "alpha", "Alpha", "ALPHA", "beta", "bet", "a", "", "zeta", "Zed", "al", "ha", "b.c", "x y",
];
const TYPES: &[&str] = &["work", "home", "Work", "other"];
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// A deterministic population with every attribute sometimes present, sometimes not.
fn population(n: usize) -> Vec<Value> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |m: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    (0..n)
        .map(|i| {
            let mut u = json!({"userName": format!("{}{i}", WORDS[next(WORDS.len())])});
            let word = |k: usize| WORDS[k % WORDS.len()];
            if next(2) == 0 {
                u["displayName"] = json!(word(next(99)));
            }
            if next(2) == 0 {
                u["title"] = json!(word(next(99)));
            }
            if next(3) > 0 {
                u["active"] = json!(next(2) == 0);
            }
            if next(2) == 0 {
                u["externalId"] = json!(format!("{}{}", word(next(99)), next(3)));
            }
            if next(2) == 0 {
                u["name"] = json!({"givenName": word(next(99)), "familyName": word(next(99))});
            }
            let emails: Vec<Value> = (0..next(3))
                // Unique per user: an address names one person, who has one User here.
                .map(|k| json!({"value": format!("{}{k}.{i}@{}.test", word(next(99)), word(next(99)).replace(' ', "")), "type": TYPES[next(TYPES.len())]}))
                .collect();
            if !emails.is_empty() {
                u["emails"] = Value::Array(emails);
            }
            if next(2) == 0 {
                u[ENTERPRISE] = json!({"department": word(next(99)), "employeeNumber": format!("{}", next(20))});
            }
            match next(3) {
                0 => u[ORGANIZATION] = json!({"role": "admin"}),
                1 => u[ORGANIZATION] = json!({"role": "member"}),
                _ => {}
            }
            u
        })
        .collect()
}

fn string_attr() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "userName",
        "USERNAME",
        "displayName",
        "title",
        "name.givenName",
        "name.familyName",
        "externalId",
        "emails.value",
        "emails.type",
        "emails",
        "nickName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        "department",
    ])
}

fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(WORDS.to_vec()).prop_map(str::to_owned),
        prop::sample::select(TYPES.to_vec()).prop_map(str::to_owned),
        "[a-z]{0,3}"
    ]
}

fn leaf() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec!["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]);
    prop_oneof![
        (string_attr(), op, string_value())
            .prop_map(|(a, o, v)| format!("{a} {o} {}", Value::String(v))),
        string_attr().prop_map(|a| format!("{a} pr")),
        (prop::sample::select(vec!["eq", "ne"]), any::<bool>())
            .prop_map(|(o, b)| format!("active {o} {b}")),
        Just("active pr".to_owned()),
        (prop::sample::select(TYPES.to_vec()), string_value()).prop_map(|(t, v)| format!(
            "emails[type eq \"{t}\" and value co {}]",
            Value::String(v)
        )),
        (prop::sample::select(vec!["eq", "ne"]), string_attr())
            .prop_map(|(o, a)| format!("{a} {o} null")),
        // `schemas` (RFC 7643 §3) is filterable like any multi-valued attribute.
        (
            prop::sample::select(vec!["eq", "ne", "co", "sw", "ew"]),
            prop::sample::select(vec![
                CORE,
                ENTERPRISE,
                ORGANIZATION,
                "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:user",
                "enterprise",
                "urn:scimd",
                ":User",
                "Group",
            ])
        )
            .prop_map(|(o, v)| format!("schemas {o} {}", Value::String(v.to_owned()))),
        Just("schemas pr".to_owned()),
        // The organization role (its own column) and the version (meta.version) too.
        (
            prop::sample::select(vec!["eq", "ne", "sw", "gt"]),
            prop::sample::select(vec!["admin", "MEMBER", "m", ""])
        )
            .prop_map(|(o, v)| format!("{ORGANIZATION}:role {o} {}", Value::String(v.to_owned()))),
        Just(format!("{ORGANIZATION}:role pr")),
        (
            prop::sample::select(vec!["eq", "ne", "gt", "le"]),
            prop::sample::select(vec!["W/\"1\"", "W/\"2\"", "w/\"2\""])
        )
            .prop_map(|(o, v)| format!("meta.version {o} {}", Value::String(v.to_owned()))),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn names(r: &Resp) -> BTreeSet<String> {
    r.user_names().into_iter().collect()
}

#[test]
fn random_filters_agree_on_sqlite_postgres_and_the_reference() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sqlite, pg) = rt.block_on(async { (TestApp::sqlite().await, TestApp::postgres().await) });
    let people = population(60);
    rt.block_on(async {
        for (i, u) in people.iter().enumerate() {
            for app in [&sqlite, &pg] {
                let r = app.post("/Users", u.clone()).await;
                assert_eq!(r.status, axum::http::StatusCode::CREATED, "{u}: {}", r.body);
                // Some users are changed once, so versions differ.
                if i % 3 == 0 {
                    let path = format!("/Users/{}", id(&r.body));
                    let p = app
                        .patch(
                            &path,
                            ops(json!([{"op": "replace", "path": "nickName", "value": "n"}])),
                        )
                        .await;
                    assert_eq!(p.status, axum::http::StatusCode::OK, "{}", p.body);
                }
            }
        }
    });
    let docs: Vec<Value> = rt.block_on(sqlite.get("/Users?count=1000")).body["Resources"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(docs.len(), people.len());
    let rs = Kind::User.schema();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let nonempty = std::cell::Cell::new(0usize);
    runner
        .run(&filter(), |f| {
            let parsed = scimd::scim::filter::parse(&f)
                .map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
            let mut want = BTreeSet::new();
            let mut refused = false;
            for d in &docs {
                match matches(&parsed, d, Ctx::Resource(rs)) {
                    Ok(true) => {
                        want.insert(d["userName"].as_str().unwrap().to_owned());
                    }
                    Ok(false) => {}
                    Err(_) => refused = true,
                }
            }
            let path = format!("/Users?count=1000&filter={}", encode(&f));
            let (a, b) = rt.block_on(async { (sqlite.get(&path).await, pg.get(&path).await) });
            if refused {
                // An operator the attribute's type does not allow: every side refuses it.
                prop_assert_eq!(a.status.as_u16(), 400, "{}: {}", f, a.body);
                prop_assert_eq!(b.status.as_u16(), 400, "{}: {}", f, b.body);
                return Ok(());
            }
            prop_assert_eq!(a.status.as_u16(), 200, "{}: {}", f, a.body);
            prop_assert_eq!(b.status.as_u16(), 200, "{}: {}", f, b.body);
            prop_assert_eq!(
                &names(&a),
                &want,
                "SQLite disagrees with the reference on {}",
                f
            );
            prop_assert_eq!(
                &names(&b),
                &want,
                "Postgres disagrees with the reference on {}",
                f
            );
            nonempty.set(nonempty.get() + usize::from(!want.is_empty() && want.len() < docs.len()));
            Ok(())
        })
        .unwrap();
    // The generator must produce selective filters, or agreement would prove little.
    let nonempty = nonempty.get();
    assert!(
        nonempty > 50,
        "only {nonempty} filters selected a proper subset"
    );
}

/// The key RFC 7644 §3.4.2.3 sorts a resource by: a singular attribute's value, or the primary
/// (else first) value of a multi-valued one; strings case-folded unless caseExact. `None`: no
/// data, which sorts last ascending and first descending.
fn sort_key(doc: &Value, path: &str) -> Option<String> {
    let (container, rest) = match path.rsplit_once(':') {
        Some((urn, attr)) => (doc.get(urn)?, attr),
        None => (doc, path),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    let value = container.get(name)?;
    let value = match value {
        Value::Array(items) => {
            let chosen = items
                .iter()
                .find(|e| e["primary"] == true)
                .or_else(|| items.first())?;
            chosen.get(sub.unwrap_or("value"))?
        }
        v => match sub {
            Some(s) => v.get(s)?,
            None => v,
        },
    };
    let case_exact = matches!(path, "externalId" | "meta.version");
    match value {
        Value::String(s) if case_exact => Some(s.clone()),
        Value::String(s) => Some(s.to_lowercase()),
        Value::Bool(b) => Some(u8::from(*b).to_string()),
        _ => None,
    }
}

/// Sorting by every kind of attribute, ascending and descending, gives the same order on
/// SQLite, on Postgres and by the RFC's rules applied in memory, resources without a value
/// included (last ascending, first descending).
#[test]
fn sort_orders_agree_on_sqlite_postgres_and_the_reference() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sqlite, pg) = rt.block_on(async { (TestApp::sqlite().await, TestApp::postgres().await) });
    let people = population(40);
    rt.block_on(async {
        for u in &people {
            for app in [&sqlite, &pg] {
                let r = app.post("/Users", u.clone()).await;
                assert_eq!(r.status, axum::http::StatusCode::CREATED, "{u}: {}", r.body);
            }
        }
    });
    // Creation order: the tie-break of every sort.
    let docs: Vec<Value> = rt.block_on(sqlite.get("/Users?count=1000")).body["Resources"]
        .as_array()
        .unwrap()
        .clone();
    let attrs = [
        "displayName",
        "title",
        "name.givenName",
        "externalId",
        "emails",
        "emails.type",
        "active",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:scimd:params:scim:schemas:extension:organization:2.0:User:role",
    ];
    for attr in attrs {
        let mut missing = 0;
        for (order, descending) in [("ascending", false), ("descending", true)] {
            let mut want: Vec<(Option<String>, String)> = docs
                .iter()
                .map(|d| {
                    (
                        sort_key(d, attr),
                        d["userName"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            missing = want.iter().filter(|(k, _)| k.is_none()).count();
            // Stable: equal keys keep creation order.
            want.sort_by(|(a, _), (b, _)| match (a, b, descending) {
                (None, None, _) => std::cmp::Ordering::Equal,
                (None, Some(_), false) | (Some(_), None, true) => std::cmp::Ordering::Greater,
                (Some(_), None, false) | (None, Some(_), true) => std::cmp::Ordering::Less,
                (Some(x), Some(y), false) => x.cmp(y),
                (Some(x), Some(y), true) => y.cmp(x),
            });
            let want: Vec<String> = want.into_iter().map(|(_, n)| n).collect();
            let path = format!(
                "/Users?count=1000&sortBy={}&sortOrder={order}",
                encode(attr)
            );
            let (a, b) = rt.block_on(async { (sqlite.get(&path).await, pg.get(&path).await) });
            assert_eq!(a.user_names(), want, "SQLite, sortBy={attr} {order}");
            assert_eq!(b.user_names(), want, "Postgres, sortBy={attr} {order}");
        }
        // Both kinds of resources are there, or the null ordering would go untested.
        assert!(
            missing > 0 && missing < docs.len(),
            "sortBy={attr}: {missing} of {} without a value",
            docs.len()
        );
    }
}
