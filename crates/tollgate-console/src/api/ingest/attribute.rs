//! Attributing reported calls to routes and keys, so that they count in every per-route,
//! per-key and per-model view like the calls the gateway proxies: the route by name, else by the
//! longest prefix of the reported route path (or of the call's path); the key by hash (the store
//! resolves it when writing) or by id (resolved here, with its team).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use tollgate_core::RouteTable;
use tollgate_core::route::normalize_path;
use tollgate_store::{KeyRecord, RouteRecord};

use super::validate::Parsed;
use crate::ConsoleState;
use crate::error::{ApiError, ApiResult};

/// The configured routes, by name and by prefix.
pub struct RouteIndex<'a> {
    by_name: HashMap<&'a str, &'a RouteRecord>,
    by_prefix: RouteTable<&'a RouteRecord>,
}

impl<'a> RouteIndex<'a> {
    /// Indexes `routes`.
    pub fn new(routes: &'a [RouteRecord]) -> Self {
        Self {
            by_name: routes.iter().map(|r| (r.name.as_str(), r)).collect(),
            by_prefix: RouteTable::new(routes.iter().map(|r| (r.prefix.clone(), r)).collect()),
        }
    }

    /// The route a report names: `reported` as a route's name, else as a path under a route's
    /// prefix, else `path` under a route's prefix.
    pub fn find(&self, reported: Option<&str>, path: &str) -> Option<&'a RouteRecord> {
        if let Some(reported) = reported {
            if let Some(route) = self.by_name.get(reported) {
                return Some(route);
            }
            if reported.starts_with('/')
                && let Some(route) = self.by_path(reported)
            {
                return Some(route);
            }
        }
        self.by_path(path)
    }

    fn by_path(&self, path: &str) -> Option<&'a RouteRecord> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        if !path.starts_with('/') {
            return None;
        }
        // Stored prefixes are in normal form; a path that has none is matched as it came.
        let normal = normalize_path(path).unwrap_or_else(|_| path.to_owned());
        self.by_prefix.find(&normal).copied()
    }
}

/// Sets the route (id and name) of every event of `parsed`, and the key and team of those that
/// name a key by id; an unknown key id, or a hash that is not that key's, refuses its event.
pub(crate) async fn attribute(state: &ConsoleState, parsed: &mut Parsed) -> ApiResult<()> {
    if parsed.events.is_empty() {
        return Ok(());
    }
    let routes = state.store.list_routes().await?;
    let index = RouteIndex::new(&routes);
    let mut keys: HashMap<i64, Option<KeyRecord>> = HashMap::new();
    let mut refused = Vec::new();
    for (i, event) in &mut parsed.events {
        if let Some(route) = index.find(event.route.as_deref(), &event.path) {
            event.route_id = Some(route.id);
            event.route = Some(route.name.clone());
        }
        let Some(key_id) = event.key_id else {
            continue;
        };
        let key = match keys.entry(key_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(state.store.key_by_id(key_id).await?),
        };
        match key {
            None => refused.push((
                *i,
                ApiError::invalid("key_id", format!("no key has id {key_id}")),
            )),
            Some(key) if event.key_hash.as_ref().is_some_and(|h| *h != key.key_hash) => {
                refused.push((
                    *i,
                    ApiError::invalid(
                        "key_hash",
                        format!("key_hash is not the hash of key {key_id}"),
                    ),
                ));
            }
            Some(key) => {
                event.key_hash = Some(key.key_hash.clone());
                event.team_id = Some(key.team_id);
            }
        }
    }
    for (i, e) in refused {
        parsed.reject(i, e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tollgate_core::RouteKind;

    use super::*;

    fn route(id: i64, name: &str, prefix: &str) -> RouteRecord {
        RouteRecord {
            id,
            team_id: None,
            name: name.into(),
            prefix: prefix.into(),
            upstream_url: "http://127.0.0.1:9".into(),
            kind: RouteKind::Http,
            strip_prefix: false,
            connect_timeout_ms: 1000,
            timeout_ms: 1000,
            enabled: true,
            sealed_credential: None,
            credential_header: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn a_report_names_its_route_or_is_matched_by_longest_prefix() {
        let routes = [
            route(1, "svc", "/svc"),
            route(2, "svc-admin", "/svc/admin"),
            route(3, "llm", "/llm"),
        ];
        let index = RouteIndex::new(&routes);
        let id = |reported: Option<&str>, path: &str| index.find(reported, path).map(|r| r.id);
        assert_eq!(id(Some("llm"), "/elsewhere"), Some(3), "by name first");
        assert_eq!(
            id(Some("/svc/admin/flags?x=1"), ""),
            Some(2),
            "longest prefix"
        );
        assert_eq!(id(Some("/svc/users"), ""), Some(1));
        assert_eq!(id(Some("/svcx"), ""), None, "on segment boundaries");
        assert_eq!(
            id(Some("not-a-route"), "/llm/v1/chat"),
            Some(3),
            "then the path"
        );
        assert_eq!(
            id(None, "/svc/%61dmin/x"),
            Some(2),
            "in the gateway's path form"
        );
        assert_eq!(id(None, "relative"), None);
    }
}
