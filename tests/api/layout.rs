//! The code's shape, held by a test: layers only point down (no module imports one that
//! imports it back, directly or around a loop), nothing below `http` knows about the HTTP
//! framework, and no error code is read back out of a message's text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module a file defines: `src/http/console/mod.rs` → `http::console`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The file's code without its unit tests (a test module may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

struct Code {
    /// module → its source, tests removed
    text: BTreeMap<Vec<String>, String>,
    /// module → the modules it names (`crate::…` and `super::…` paths)
    uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn code() -> Code {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut text = BTreeMap::new();
    for f in &files {
        let m = module_of(&src, f);
        text.insert(
            m,
            without_tests(&std::fs::read_to_string(f).unwrap()).to_owned(),
        );
    }
    let mut uses = BTreeMap::new();
    for (m, t) in &text {
        let mut found = BTreeSet::new();
        // `super` is the parent module, whether the module is a file or a directory's mod.rs.
        let parent: Vec<String> = m[..m.len().saturating_sub(1)].to_vec();
        for (at, _) in t.match_indices("::") {
            let start = t[..at]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |i| i + 1);
            let path = &t[start..];
            let end = path
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(path.len());
            let segs: Vec<&str> = path[..end].split("::").collect();
            if start != at - segs[0].len() {
                continue; // the middle of a longer path, seen from its start
            }
            let (mut full, rest) = match segs[0] {
                "crate" => (Vec::new(), &segs[1..]),
                "super" => (parent.clone(), &segs[1..]),
                _ => continue,
            };
            for s in rest {
                full.push((*s).to_owned());
            }
            // The longest prefix that is a module of this crate.
            for k in (1..=full.len()).rev() {
                let cand = full[..k].to_vec();
                if text.contains_key(&cand) {
                    // A module's own children and ancestors are its own business.
                    if !cand.starts_with(m) && !m.starts_with(&cand) {
                        found.insert(cand);
                    }
                    break;
                }
            }
        }
        uses.insert(m.clone(), found);
    }
    Code { text, uses }
}

fn show(m: &[String]) -> String {
    m.join("::")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let c = code();
    // Every module from which `start` can be reached again is in a loop with it.
    let mut loops = Vec::new();
    for start in c.uses.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(Vec<String>, Vec<Vec<String>>)> = c.uses[start]
            .iter()
            .map(|n| (n.clone(), vec![start.clone(), n.clone()]))
            .collect();
        while let Some((m, path)) = todo.pop() {
            if &m == start {
                loops.push(path.iter().map(|p| show(p)).collect::<Vec<_>>().join(" → "));
                break;
            }
            if !seen.insert(m.clone()) {
                continue;
            }
            for n in c.uses.get(&m).into_iter().flatten() {
                let mut p = path.clone();
                p.push(n.clone());
                todo.push((n.clone(), p));
            }
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn nothing_below_http_knows_the_http_framework() {
    let c = code();
    let below: Vec<String> = c
        .text
        .iter()
        .filter(|(m, _)| {
            matches!(
                m.first().map(String::as_str),
                Some("error" | "domain" | "scim" | "service" | "store" | "email")
            )
        })
        .filter(|(_, t)| t.contains("axum"))
        .map(|(m, _)| show(m))
        .collect();
    assert!(below.is_empty(), "axum below http in: {below:?}");
}

#[test]
fn no_error_code_is_read_from_message_text() {
    let c = code();
    let found: Vec<String> = c
        .text
        .iter()
        .filter(|(_, t)| {
            t.contains("message.contains(")
                || t.contains("detail.contains(")
                || t.contains("detail().contains(")
        })
        .map(|(m, _)| show(m))
        .collect();
    assert!(found.is_empty(), "error codes read from text in: {found:?}");
}
