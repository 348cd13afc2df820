//! `RouteTable::find` agrees with the definition it implements: of the prefixes covering the path
//! on a segment boundary, the longest wins.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::route::{RouteTable, prefix_matches};

fuzz_target!(|input: (Vec<String>, String)| {
    let (prefixes, path) = input;
    let prefixes: Vec<String> = prefixes.into_iter().take(32).collect();
    let entries = prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), i))
        .collect::<Vec<_>>();
    let table = RouteTable::new(entries);
    let expected = prefixes
        .iter()
        .filter(|p| prefix_matches(p, &path))
        .map(String::len)
        .max();
    let found = table.find(&path).map(|&i| prefixes[i].len());
    assert_eq!(found, expected, "path `{path}` among {prefixes:?}");
    if let Some(&i) = table.find(&path) {
        let p = &prefixes[i];
        assert!(p == "/" || path == *p || path.starts_with(&format!("{p}/")));
    }
});
