//! The two backends' migration lists stay parallel: the same numbers and names, in the same
//! order, so that one schema version means the same tables on either database.

use std::path::Path;

/// The `.sql` files of a backend's migrations folder, sorted.
fn migrations(backend: &str) -> std::io::Result<Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(backend)
        .join("migrations");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[test]
fn both_backends_list_the_same_migrations_in_the_same_order() {
    let sqlite = migrations("tollgate-store-sqlite").unwrap();
    let postgres = migrations("tollgate-store-postgres").unwrap();
    assert!(!sqlite.is_empty(), "no SQLite migrations found");
    assert_eq!(sqlite, postgres);
    // sqlx applies them by version: every name starts with its own number, numbered from 1 on.
    for (i, name) in sqlite.iter().enumerate() {
        let number = format!("{:04}_", i + 1);
        assert!(
            name.starts_with(&number),
            "`{name}` should start with `{number}`"
        );
    }
}
