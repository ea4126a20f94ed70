//! Both backends carry the same migrations under the same numbers.

#[test]
fn sqlite_and_postgres_migrations_match() {
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    let (s, p) = (names("sqlite"), names("postgres"));
    assert!(!s.is_empty());
    assert_eq!(s, p);
}
