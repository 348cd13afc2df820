//! The one test story every backend runs: the same calls and the same expectations, so that SQLite
//! and PostgreSQL behave alike. Each function panics with a message naming what went wrong.
//!
//! A backend's test connects a store to a fresh, empty database and calls [`run_all`], then
//! [`closing_makes_it_unavailable`]. [`concurrent_writers_store_each_event_once`] and
//! [`measure_write_rate`] take stores of their own.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "a failed expectation ends the test with its message"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tollgate_core::time::{hour_start, now_ms};
use tollgate_core::usage::{HISTOGRAM_LEN, latency_bucket};
use tollgate_core::{ApiKey, KeyHash, Role, RouteKind, TokenUsage, UsageEvent, UsageSource};
use uuid::Uuid;

use crate::{
    DEFAULT_TEAM, HourlyRollup, KeyRecord, KeyUpdate, NewKey, NewRoute, RouteRecord, RouteUpdate,
    Store, StoreError, Team,
};

pub mod accounts;
pub mod analytics;
mod call_log;
pub mod counters;
pub mod governance;
pub mod models;
pub mod summaries;

pub use accounts::{
    access_tokens_create_list_revoke_touch, audit_filters_and_pages,
    concurrent_changes_keep_an_owner, invitations_accept_once, members_keep_an_owner,
    sessions_create_revoke_purge, settings_overwrite, users_create_find_update,
};

use tollgate_core::time::HOUR_MS;

/// Runs every behaviour below, in order, on a store connected to an empty database.
pub async fn run_all(store: &dyn Store) {
    default_team_exists_after_migrate(store).await;
    migrate_twice_is_fine(store).await;
    ping_answers(store).await;
    ensure_team_is_idempotent(store).await;
    keys_create_get_list_revoke_delete(store).await;
    key_errors(store).await;
    routes_create_list_delete(store).await;
    deleting_a_route_removes_it_from_keys(store).await;
    keys_update_each_field(store).await;
    routes_update_each_field(store).await;
    revision_grows_on_changes_not_on_usage(store).await;
    users_create_find_update(store).await;
    sessions_create_revoke_purge(store).await;
    access_tokens_create_list_revoke_touch(store).await;
    members_keep_an_owner(store).await;
    concurrent_changes_keep_an_owner(store).await;
    invitations_accept_once(store).await;
    teams_create_rename_delete(store).await;
    audit_filters_and_pages(store).await;
    settings_overwrite(store).await;
    counters::counters_story(store).await;
    governance::governance_story(store).await;
    models::models_story(store).await;
    usage_rollups_match_the_events(store).await;
    usage_dedupes_repeated_event_ids(store).await;
    usage_dedupes_reported_events_replayed_at_another_time(store).await;
    usage_large_batches_count_each_event_once(store).await;
    last_used_moves_forward_only(store).await;
    analytics::usage_analytics(store).await;
    // Last: its events are the newest, which recent_usage's ordering check relies on.
    recent_usage_round_trips_every_field(store).await;
}

/// A name no other run or step uses.
fn unique(label: &str) -> String {
    let id = Uuid::now_v7().simple().to_string();
    format!("{label}-{}", &id[id.len() - 12..])
}

/// A fresh key for `team_id` and the secret it hashes.
fn new_key(team_id: i64, route_ids: Option<Vec<i64>>) -> (ApiKey, NewKey) {
    let secret = ApiKey::generate();
    let key = NewKey {
        team_id,
        name: unique("key"),
        description: "made by the test story".to_owned(),
        key_hash: secret.hash(),
        prefix: secret.display_prefix(),
        sealed_key: Some(vec![1, 2, 3, 0, 255]),
        created_by: Some("cli:story".to_owned()),
        expires_at_ms: Some(now_ms() + 86_400_000),
        route_ids,
    };
    (secret, key)
}

/// A new route named `name` at `/name`.
fn new_route(team_id: Option<i64>, name: &str) -> NewRoute {
    NewRoute {
        team_id,
        name: name.to_owned(),
        prefix: format!("/{name}"),
        upstream_url: "http://127.0.0.1:9/base".to_owned(),
        kind: RouteKind::Openai,
        strip_prefix: true,
        connect_timeout_ms: 1_500,
        timeout_ms: 45_000,
        sealed_credential: Some(vec![9, 8, 7]),
        credential_header: Some(header("x-internal-token", "Token {key}")),
    }
}

fn header(name: &str, format: &str) -> tollgate_core::llm::CredentialHeader {
    tollgate_core::llm::CredentialHeader::new(name, format).expect("a valid credential header")
}

async fn team(store: &dyn Store) -> Team {
    store
        .ensure_team(&unique("team"))
        .await
        .expect("ensure_team")
}

async fn route(store: &dyn Store, team_id: Option<i64>) -> RouteRecord {
    store
        .create_route(new_route(team_id, &unique("route")))
        .await
        .expect("create_route")
}

async fn key(store: &dyn Store, team_id: i64) -> KeyRecord {
    store
        .create_key(new_key(team_id, None).1)
        .await
        .expect("create_key")
}

async fn revision(store: &dyn Store) -> i64 {
    store.revision().await.expect("revision")
}

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, naming: &str, what: &str) {
    match result {
        Err(StoreError::NotFound(msg)) => {
            assert!(
                msg.contains(naming),
                "{what}: NotFound message `{msg}` should name `{naming}`"
            );
        }
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn expect_conflict<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    naming: &str,
    what: &str,
) -> String {
    match result {
        Err(StoreError::Conflict(msg)) => {
            assert!(
                msg.contains(naming),
                "{what}: Conflict message `{msg}` should name `{naming}`"
            );
            msg
        }
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

/// `migrate` creates the `default` team.
pub async fn default_team_exists_after_migrate(store: &dyn Store) {
    store.migrate().await.expect("first migrate");
    let default = store
        .team_by_name(DEFAULT_TEAM)
        .await
        .expect("team_by_name")
        .expect("the default team exists after migrate");
    assert_eq!(default.name, DEFAULT_TEAM);
    let teams = store.list_teams().await.expect("list_teams");
    assert!(
        teams.contains(&default),
        "list_teams {teams:?} lacks the default team"
    );
}

/// A second `migrate` changes nothing: same default team, same revision.
pub async fn migrate_twice_is_fine(store: &dyn Store) {
    let before = store
        .team_by_name(DEFAULT_TEAM)
        .await
        .expect("team_by_name");
    let rev = revision(store).await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert_eq!(
        store
            .team_by_name(DEFAULT_TEAM)
            .await
            .expect("team_by_name"),
        before
    );
    assert_eq!(
        revision(store).await,
        rev,
        "migrating an up-to-date store changed the revision"
    );
}

/// `ping` answers and `backend` names the backend.
pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.expect("ping");
    assert!(
        ["sqlite", "postgres"].contains(&store.backend()),
        "unexpected backend name {}",
        store.backend()
    );
}

/// `ensure_team` creates once, then returns the same team without touching the revision.
pub async fn ensure_team_is_idempotent(store: &dyn Store) {
    let name = unique("team");
    let before = now_ms();
    let rev0 = revision(store).await;
    let first = store.ensure_team(&name).await.expect("ensure_team");
    assert_eq!(first.name, name);
    assert!(first.created_at_ms >= before && first.created_at_ms <= now_ms());
    let rev1 = revision(store).await;
    assert!(
        rev1 > rev0,
        "creating a team did not grow the revision ({rev0} → {rev1})"
    );
    let again = store.ensure_team(&name).await.expect("ensure_team again");
    assert_eq!(again, first);
    assert_eq!(
        revision(store).await,
        rev1,
        "ensuring an existing team changed the revision"
    );
    assert_eq!(
        store.team_by_name(&name).await.expect("team_by_name"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .team_by_name(&unique("absent"))
            .await
            .expect("team_by_name"),
        None
    );
    let teams = store.list_teams().await.expect("list_teams");
    assert!(teams.contains(&first));
    assert!(
        teams.windows(2).all(|w| w[0].name < w[1].name),
        "teams not sorted by name: {teams:?}"
    );
}

/// The whole life of a key: create, look up by hash and id, list, revoke (twice), delete.
pub async fn keys_create_get_list_revoke_delete(store: &dyn Store) {
    let team = team(store).await;
    let other_team = self::team(store).await;
    let own_route = route(store, Some(team.id)).await;
    let shared_route = route(store, None).await;
    let foreign_route = route(store, Some(other_team.id)).await;

    let before = now_ms();
    // Unsorted, with a repeat: stored as a set.
    let listed = vec![shared_route.id, own_route.id, shared_route.id];
    let (secret, new) = new_key(team.id, Some(listed));
    let first = store
        .create_key(new.clone())
        .await
        .expect("create_key with routes");
    let mut expected_routes = vec![own_route.id, shared_route.id];
    expected_routes.sort_unstable();
    assert_eq!(first.team_id, team.id);
    assert_eq!(first.team_name, team.name);
    assert_eq!(first.name, new.name);
    assert_eq!(first.description, new.description);
    assert_eq!(first.key_hash, secret.hash());
    assert_eq!(first.prefix, secret.display_prefix());
    assert_eq!(first.sealed_key, new.sealed_key);
    assert_eq!(first.created_by, new.created_by);
    assert_eq!(first.expires_at_ms, new.expires_at_ms);
    assert_eq!(first.revoked_at_ms, None);
    assert_eq!(first.last_used_at_ms, None);
    assert_eq!(first.route_ids, Some(expected_routes));
    assert!(first.created_at_ms >= before && first.created_at_ms <= now_ms());
    assert!(first.may_call(&own_route) && first.may_call(&shared_route));
    assert!(!first.may_call(&foreign_route));

    assert_eq!(
        store
            .key_by_hash(&secret.hash())
            .await
            .expect("key_by_hash"),
        Some(first.clone())
    );
    assert_eq!(
        store.key_by_id(first.id).await.expect("key_by_id"),
        Some(first.clone())
    );
    let absent = KeyHash::of(ApiKey::generate().expose());
    assert_eq!(store.key_by_hash(&absent).await.expect("key_by_hash"), None);
    assert_eq!(store.key_by_id(i64::MAX).await.expect("key_by_id"), None);

    let (_, plain) = new_key(team.id, None);
    let second = store
        .create_key(plain)
        .await
        .expect("create_key for all routes");
    assert_eq!(second.route_ids, None);
    assert!(second.may_call(&own_route) && second.may_call(&shared_route));
    assert!(
        !second.may_call(&foreign_route),
        "a team key may not call another team's route"
    );

    let other_key = key(store, other_team.id).await;
    let listed = store
        .list_keys(Some(team.id))
        .await
        .expect("list_keys of a team");
    assert_eq!(
        listed,
        vec![second.clone(), first.clone()],
        "keys of a team, newest first"
    );
    let all = store.list_keys(None).await.expect("list_keys");
    for k in [&first, &second, &other_key] {
        assert!(all.contains(k), "list_keys(None) lacks key {}", k.id);
    }
    assert!(
        all.windows(2)
            .all(|w| (w[0].created_at_ms, w[0].id) > (w[1].created_at_ms, w[1].id)),
        "list_keys is not newest first"
    );

    let revoked_at = now_ms();
    let revoked = store
        .revoke_key(first.id, revoked_at)
        .await
        .expect("revoke_key");
    assert_eq!(revoked.revoked_at_ms, Some(revoked_at));
    assert_eq!(
        KeyRecord {
            revoked_at_ms: None,
            ..revoked.clone()
        },
        first
    );
    let again = store
        .revoke_key(first.id, revoked_at + 60_000)
        .await
        .expect("revoke again");
    assert_eq!(
        again.revoked_at_ms,
        Some(revoked_at),
        "revoking twice must keep the first time"
    );
    let by_hash = store
        .key_by_hash(&secret.hash())
        .await
        .expect("key_by_hash");
    assert_eq!(
        by_hash,
        Some(revoked),
        "a revoked key is still found by hash"
    );

    store.delete_key(second.id).await.expect("delete_key");
    assert_eq!(store.key_by_id(second.id).await.expect("key_by_id"), None);
    assert_eq!(
        store
            .key_by_hash(&second.key_hash)
            .await
            .expect("key_by_hash"),
        None
    );
    let listed = store.list_keys(Some(team.id)).await.expect("list_keys");
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![first.id]
    );
}

/// Duplicate hashes, missing teams, routes and keys: the right error, naming the culprit, and
/// nothing stored.
pub async fn key_errors(store: &dyn Store) {
    let team = team(store).await;
    let (_, new) = new_key(team.id, None);
    store.create_key(new.clone()).await.expect("create_key");
    let duplicate = NewKey {
        name: unique("dup"),
        ..new
    };
    expect_conflict(
        store.create_key(duplicate).await,
        "hash",
        "a duplicate key hash",
    );

    let missing_team = 987_654_321_i64;
    let (_, orphan) = new_key(missing_team, None);
    let hash = orphan.key_hash.clone();
    expect_not_found(
        store.create_key(orphan).await,
        &missing_team.to_string(),
        "a missing team",
    );
    assert_eq!(store.key_by_hash(&hash).await.expect("key_by_hash"), None);

    let real_route = route(store, Some(team.id)).await;
    let missing_route = 876_543_210_i64;
    let (_, bad_routes) = new_key(team.id, Some(vec![real_route.id, missing_route]));
    let hash = bad_routes.key_hash.clone();
    let rev = revision(store).await;
    expect_not_found(
        store.create_key(bad_routes).await,
        &missing_route.to_string(),
        "a missing route",
    );
    assert_eq!(
        store.key_by_hash(&hash).await.expect("key_by_hash"),
        None,
        "a refused key was stored"
    );
    assert_eq!(
        revision(store).await,
        rev,
        "a refused key changed the revision"
    );

    expect_not_found(
        store.revoke_key(765_432_109, now_ms()).await,
        "765432109",
        "revoking a missing key",
    );
    expect_not_found(
        store.delete_key(765_432_109).await,
        "765432109",
        "deleting a missing key",
    );
}

/// Routes: create with every field, look up, list by prefix, refuse taken names and prefixes,
/// delete.
pub async fn routes_create_list_delete(store: &dyn Store) {
    let team = team(store).await;
    let name = unique("r");
    let before = now_ms();
    let new = new_route(Some(team.id), &name);
    let created = store.create_route(new.clone()).await.expect("create_route");
    assert_eq!(created.team_id, Some(team.id));
    assert_eq!(created.name, name);
    assert_eq!(created.prefix, new.prefix);
    assert_eq!(created.upstream_url, new.upstream_url);
    assert_eq!(created.kind, RouteKind::Openai);
    assert!(created.strip_prefix && created.enabled);
    assert_eq!(created.connect_timeout_ms, 1_500);
    assert_eq!(created.timeout_ms, 45_000);
    assert_eq!(created.sealed_credential, new.sealed_credential);
    assert!(created.created_at_ms >= before && created.created_at_ms <= now_ms());
    assert_eq!(created.updated_at_ms, created.created_at_ms);

    let shared = NewRoute {
        team_id: None,
        kind: RouteKind::Http,
        strip_prefix: false,
        sealed_credential: None,
        credential_header: None,
        ..new_route(None, &unique("shared"))
    };
    let shared = store
        .create_route(shared)
        .await
        .expect("create shared route");
    assert_eq!(shared.team_id, None);
    assert_eq!(shared.kind, RouteKind::Http);
    assert_eq!(shared.sealed_credential, None);

    assert_eq!(
        store.route_by_name(&name).await.expect("route_by_name"),
        Some(created.clone())
    );
    assert_eq!(
        store
            .route_by_name(&unique("absent"))
            .await
            .expect("route_by_name"),
        None
    );
    let all = store.list_routes().await.expect("list_routes");
    assert!(all.contains(&created) && all.contains(&shared));
    assert!(
        all.windows(2).all(|w| w[0].prefix < w[1].prefix),
        "routes not sorted by prefix"
    );

    let other_prefix = format!("/{}", unique("q"));
    let same_name = NewRoute {
        prefix: other_prefix.clone(),
        ..new.clone()
    };
    let msg = expect_conflict(
        store.create_route(same_name).await,
        &name,
        "a taken route name",
    );
    assert!(
        !msg.contains(&other_prefix),
        "`{msg}` blames the prefix for a taken name"
    );
    let other_name = unique("s");
    let same_prefix = NewRoute {
        name: other_name.clone(),
        ..new.clone()
    };
    let msg = expect_conflict(
        store.create_route(same_prefix).await,
        &new.prefix,
        "a taken prefix",
    );
    assert!(
        !msg.contains(&other_name),
        "`{msg}` blames the name for a taken prefix"
    );
    assert_eq!(
        store
            .route_by_name(&other_name)
            .await
            .expect("route_by_name"),
        None
    );

    let orphan = new_route(Some(987_654_321), &unique("orphan"));
    expect_not_found(
        store.create_route(orphan).await,
        "987654321",
        "a route of a missing team",
    );

    store.delete_route(&name).await.expect("delete_route");
    assert_eq!(
        store.route_by_name(&name).await.expect("route_by_name"),
        None
    );
    assert!(
        !store
            .list_routes()
            .await
            .expect("list_routes")
            .contains(&created)
    );
    expect_not_found(
        store.delete_route(&name).await,
        &name,
        "deleting a deleted route",
    );
}

/// A key's route list loses a deleted route; the key stays restricted.
pub async fn deleting_a_route_removes_it_from_keys(store: &dyn Store) {
    let team = team(store).await;
    let kept = route(store, Some(team.id)).await;
    let gone = route(store, Some(team.id)).await;
    let (_, new) = new_key(team.id, Some(vec![kept.id, gone.id]));
    let key = store.create_key(new).await.expect("create_key");
    store.delete_route(&gone.name).await.expect("delete_route");
    let key = store
        .key_by_id(key.id)
        .await
        .expect("key_by_id")
        .expect("the key still exists");
    assert_eq!(key.route_ids, Some(vec![kept.id]));
}

/// Teams: created once by name, found by id, renamed, deleted with their memberships and
/// invitations; taken names, missing ids, the `default` team and teams still owning keys or routes
/// are refused, naming the team.
pub async fn teams_create_rename_delete(store: &dyn Store) {
    let name = unique("team");
    let before = now_ms();
    let rev = revision(store).await;
    let created = store.create_team(&name).await.expect("create_team");
    assert_eq!(created.name, name);
    assert!(created.created_at_ms >= before && created.created_at_ms <= now_ms());
    assert!(
        revision(store).await > rev,
        "creating a team did not grow the revision"
    );
    expect_conflict(store.create_team(&name).await, &name, "a taken team name");
    assert_eq!(
        store.team_by_id(created.id).await.expect("team_by_id"),
        Some(created.clone())
    );
    assert_eq!(store.team_by_id(i64::MAX).await.expect("team_by_id"), None);

    let new_name = unique("renamed");
    let rev = revision(store).await;
    let renamed = store
        .rename_team(created.id, &new_name)
        .await
        .expect("rename_team");
    assert_eq!(
        renamed,
        Team {
            name: new_name.clone(),
            ..created.clone()
        }
    );
    assert!(
        revision(store).await > rev,
        "renaming a team did not grow the revision"
    );
    assert_eq!(store.team_by_name(&name).await.expect("team_by_name"), None);
    assert_eq!(
        store.team_by_name(&new_name).await.expect("team_by_name"),
        Some(renamed.clone())
    );
    let other = team(store).await;
    expect_conflict(
        store.rename_team(created.id, &other.name).await,
        &other.name,
        "renaming to a taken name",
    );
    expect_not_found(
        store.rename_team(987_654_321, &unique("x")).await,
        "987654321",
        "renaming a missing team",
    );
    assert_eq!(
        store.team_by_id(created.id).await.expect("team_by_id"),
        Some(renamed.clone()),
        "a refused rename changed the team"
    );

    // Keys and routes keep their team alive.
    let key = key(store, renamed.id).await;
    expect_conflict(
        store.delete_team(renamed.id).await,
        &new_name,
        "deleting a team that owns a key",
    );
    let route = route(store, Some(renamed.id)).await;
    store.delete_key(key.id).await.expect("delete_key");
    expect_conflict(
        store.delete_team(renamed.id).await,
        &new_name,
        "deleting a team that owns a route",
    );
    store.delete_route(&route.name).await.expect("delete_route");
    assert_eq!(
        store.team_by_id(renamed.id).await.expect("team_by_id"),
        Some(renamed.clone()),
        "a refused delete removed the team"
    );

    let default = store
        .team_by_name(DEFAULT_TEAM)
        .await
        .expect("team_by_name")
        .expect("the default team");
    expect_conflict(
        store.delete_team(default.id).await,
        DEFAULT_TEAM,
        "deleting the default team",
    );
    assert_eq!(
        store.team_by_id(default.id).await.expect("team_by_id"),
        Some(default)
    );

    // Memberships and invitations go with the team; the users stay.
    let member = accounts::user(store, "member").await;
    store
        .set_member(renamed.id, member.id, Role::Owner)
        .await
        .expect("set_member");
    let invitation = store
        .create_invitation(accounts::new_invitation(renamed.id, Some(member.id)))
        .await
        .expect("create_invitation");
    let rev = revision(store).await;
    store.delete_team(renamed.id).await.expect("delete_team");
    assert!(
        revision(store).await > rev,
        "deleting a team did not grow the revision"
    );
    assert_eq!(
        store.team_by_id(renamed.id).await.expect("team_by_id"),
        None
    );
    assert!(
        !store
            .list_teams()
            .await
            .expect("list_teams")
            .contains(&renamed)
    );
    assert!(
        store
            .memberships_of(member.id)
            .await
            .expect("memberships_of")
            .is_empty(),
        "a deleted team kept its members"
    );
    assert_eq!(
        store
            .invitation_by_hash(&invitation.token_hash)
            .await
            .expect("invitation_by_hash"),
        None,
        "a deleted team kept its invitations"
    );
    assert!(
        store
            .user_by_id(member.id)
            .await
            .expect("user_by_id")
            .is_some()
    );
    expect_not_found(
        store.delete_team(renamed.id).await,
        &renamed.id.to_string(),
        "deleting a deleted team",
    );
}

/// `update_key` changes exactly the fields it is given, in one transaction: a refused update
/// (a missing route) changes nothing at all.
pub async fn keys_update_each_field(store: &dyn Store) {
    let team = team(store).await;
    let own = route(store, Some(team.id)).await;
    let shared = route(store, None).await;
    let created = key(store, team.id).await;
    let update = |u: KeyUpdate| store.update_key(created.id, u);

    let rev = revision(store).await;
    assert_eq!(
        update(KeyUpdate::default()).await.expect("an empty update"),
        created
    );
    assert_eq!(
        revision(store).await,
        rev,
        "an empty update changed the revision"
    );

    let name = unique("renamed-key");
    let renamed = update(KeyUpdate {
        name: Some(name.clone()),
        ..KeyUpdate::default()
    })
    .await
    .expect("update the name");
    assert_eq!(
        renamed,
        KeyRecord {
            name,
            ..created.clone()
        }
    );
    assert!(
        revision(store).await > rev,
        "updating a key did not grow the revision"
    );

    let described = update(KeyUpdate {
        description: Some("now with ünïcode".to_owned()),
        ..KeyUpdate::default()
    })
    .await
    .expect("update the description");
    assert_eq!(
        described,
        KeyRecord {
            description: "now with ünïcode".to_owned(),
            ..renamed
        }
    );

    let later = now_ms() + 30 * 86_400_000;
    let extended = update(KeyUpdate {
        expires_at_ms: Some(Some(later)),
        ..KeyUpdate::default()
    })
    .await
    .expect("update the expiry");
    assert_eq!(
        extended,
        KeyRecord {
            expires_at_ms: Some(later),
            ..described
        }
    );
    let lasting = update(KeyUpdate {
        expires_at_ms: Some(None),
        ..KeyUpdate::default()
    })
    .await
    .expect("remove the expiry");
    assert_eq!(
        lasting,
        KeyRecord {
            expires_at_ms: None,
            ..extended
        }
    );

    // Unsorted, with a repeat: stored as a set.
    let listed = update(KeyUpdate {
        route_ids: Some(Some(vec![shared.id, own.id, shared.id])),
        ..KeyUpdate::default()
    })
    .await
    .expect("list the routes");
    let mut both = vec![own.id, shared.id];
    both.sort_unstable();
    assert_eq!(
        listed,
        KeyRecord {
            route_ids: Some(both),
            ..lasting.clone()
        }
    );
    let narrowed = update(KeyUpdate {
        route_ids: Some(Some(vec![shared.id])),
        ..KeyUpdate::default()
    })
    .await
    .expect("narrow the routes");
    assert_eq!(narrowed.route_ids, Some(vec![shared.id]));
    assert!(narrowed.may_call(&shared) && !narrowed.may_call(&own));
    let none = update(KeyUpdate {
        route_ids: Some(Some(Vec::new())),
        ..KeyUpdate::default()
    })
    .await
    .expect("an empty route list");
    assert_eq!(none.route_ids, Some(Vec::new()));
    assert!(!none.may_call(&own) && !none.may_call(&shared));
    let all = update(KeyUpdate {
        route_ids: Some(None),
        ..KeyUpdate::default()
    })
    .await
    .expect("every route of the team");
    assert_eq!(all, lasting);
    assert!(all.may_call(&own) && all.may_call(&shared));

    let name = unique("everything");
    let soon = now_ms() + 3_600_000;
    let everything = update(KeyUpdate {
        name: Some(name.clone()),
        description: Some(String::new()),
        expires_at_ms: Some(Some(soon)),
        route_ids: Some(Some(vec![own.id])),
        sealed_key: Some(vec![2, 7, 7]),
    })
    .await
    .expect("update every field");
    assert_eq!(
        everything,
        KeyRecord {
            name,
            description: String::new(),
            expires_at_ms: Some(soon),
            route_ids: Some(vec![own.id]),
            sealed_key: Some(vec![2, 7, 7]),
            ..all
        }
    );
    assert_eq!(
        store.key_by_id(created.id).await.expect("key_by_id"),
        Some(everything.clone())
    );

    let rev = revision(store).await;
    expect_not_found(
        update(KeyUpdate {
            name: Some(unique("never")),
            expires_at_ms: Some(None),
            route_ids: Some(Some(vec![shared.id, 876_543_210])),
            ..KeyUpdate::default()
        })
        .await,
        "876543210",
        "a missing route in an update",
    );
    assert_eq!(
        store.key_by_id(created.id).await.expect("key_by_id"),
        Some(everything),
        "a refused update changed the key"
    );
    assert_eq!(
        revision(store).await,
        rev,
        "a refused update changed the revision"
    );
    expect_not_found(
        store
            .update_key(
                765_432_109,
                KeyUpdate {
                    name: Some(unique("ghost")),
                    ..KeyUpdate::default()
                },
            )
            .await,
        "765432109",
        "updating a missing key",
    );
}

/// `update_route` changes exactly the fields it is given and moves `updated_at`; a taken name or
/// prefix, a missing team or route is refused, naming it, and changes nothing.
pub async fn routes_update_each_field(store: &dyn Store) {
    /// `got` equals `want` but for a later `updated_at`.
    fn changed(got: &RouteRecord, want: RouteRecord, what: &str) {
        assert!(
            got.updated_at_ms >= want.updated_at_ms && got.updated_at_ms <= now_ms(),
            "{what}: updated_at did not move forward"
        );
        assert_eq!(
            *got,
            RouteRecord {
                updated_at_ms: got.updated_at_ms,
                ..want
            },
            "{what}"
        );
    }
    let team = team(store).await;
    let other_team = self::team(store).await;
    let created = route(store, Some(team.id)).await;
    assert_eq!(
        store.route_by_id(created.id).await.expect("route_by_id"),
        Some(created.clone())
    );
    assert_eq!(
        store.route_by_id(i64::MAX).await.expect("route_by_id"),
        None
    );
    let update = |u: RouteUpdate| store.update_route(created.id, u);

    let rev = revision(store).await;
    let name = unique("moved");
    let prefix = format!("/{}", unique("moved-prefix"));
    let moved = update(RouteUpdate {
        name: Some(name.clone()),
        prefix: Some(prefix.clone()),
        upstream_url: Some("https://upstream.example/v2".to_owned()),
        kind: Some(RouteKind::Anthropic),
        strip_prefix: Some(false),
        connect_timeout_ms: Some(2_500),
        timeout_ms: Some(90_000),
        enabled: Some(false),
        sealed_credential: Some(Some(vec![4, 5, 6, 0])),
        credential_header: Some(Some(header("api-key", "{key}"))),
        team_id: Some(Some(other_team.id)),
    })
    .await
    .expect("update every field");
    changed(
        &moved,
        RouteRecord {
            team_id: Some(other_team.id),
            name: name.clone(),
            prefix,
            upstream_url: "https://upstream.example/v2".to_owned(),
            kind: RouteKind::Anthropic,
            strip_prefix: false,
            connect_timeout_ms: 2_500,
            timeout_ms: 90_000,
            enabled: false,
            sealed_credential: Some(vec![4, 5, 6, 0]),
            credential_header: Some(header("api-key", "{key}")),
            ..created.clone()
        },
        "every field",
    );
    assert!(
        revision(store).await > rev,
        "updating a route did not grow the revision"
    );
    assert_eq!(
        store.route_by_name(&name).await.expect("route_by_name"),
        Some(moved.clone())
    );
    assert_eq!(
        store
            .route_by_name(&created.name)
            .await
            .expect("route_by_name"),
        None
    );

    let shared = update(RouteUpdate {
        team_id: Some(None),
        ..RouteUpdate::default()
    })
    .await
    .expect("share the route");
    changed(
        &shared,
        RouteRecord {
            team_id: None,
            ..moved.clone()
        },
        "shared",
    );
    let plain = update(RouteUpdate {
        sealed_credential: Some(None),
        credential_header: Some(None),
        ..RouteUpdate::default()
    })
    .await
    .expect("remove the credential");
    changed(
        &plain,
        RouteRecord {
            sealed_credential: None,
            credential_header: None,
            ..shared.clone()
        },
        "credential removed",
    );
    let enabled = update(RouteUpdate {
        enabled: Some(true),
        kind: Some(RouteKind::Http),
        ..RouteUpdate::default()
    })
    .await
    .expect("enable");
    changed(
        &enabled,
        RouteRecord {
            enabled: true,
            kind: RouteKind::Http,
            ..plain.clone()
        },
        "enabled, kind",
    );
    let touched = update(RouteUpdate::default())
        .await
        .expect("an empty update");
    changed(&touched, enabled.clone(), "an empty update");

    let taken = route(store, None).await;
    let msg = expect_conflict(
        update(RouteUpdate {
            prefix: Some(taken.prefix.clone()),
            ..RouteUpdate::default()
        })
        .await,
        &taken.prefix,
        "a taken prefix",
    );
    assert!(msg.contains("prefix"), "`{msg}` does not blame the prefix");
    let msg = expect_conflict(
        update(RouteUpdate {
            name: Some(taken.name.clone()),
            ..RouteUpdate::default()
        })
        .await,
        &taken.name,
        "a taken name",
    );
    assert!(!msg.contains("prefix"), "`{msg}` blames the prefix");
    expect_not_found(
        update(RouteUpdate {
            name: Some(unique("never")),
            team_id: Some(Some(987_654_321)),
            ..RouteUpdate::default()
        })
        .await,
        "987654321",
        "moving a route to a missing team",
    );
    assert_eq!(
        store.route_by_id(created.id).await.expect("route_by_id"),
        Some(touched),
        "a refused update changed the route"
    );
    expect_not_found(
        store
            .update_route(
                765_432_109,
                RouteUpdate {
                    enabled: Some(true),
                    ..RouteUpdate::default()
                },
            )
            .await,
        "765432109",
        "updating a missing route",
    );
}

/// Every change of a team, key or route grows the revision; usage does not.
pub async fn revision_grows_on_changes_not_on_usage(store: &dyn Store) {
    async fn grows(store: &dyn Store, last: &mut i64, what: &str) {
        let now = revision(store).await;
        assert!(
            now > *last,
            "{what} did not grow the revision ({last} → {now})"
        );
        *last = now;
    }
    let mut rev = revision(store).await;
    let team = team(store).await;
    grows(store, &mut rev, "creating a team").await;
    let route = route(store, Some(team.id)).await;
    grows(store, &mut rev, "creating a route").await;
    let key = store
        .create_key(new_key(team.id, Some(vec![route.id])).1)
        .await
        .expect("create_key");
    grows(store, &mut rev, "creating a key").await;
    let plain = self::key(store, team.id).await;
    grows(store, &mut rev, "creating a key for all routes").await;
    store
        .revoke_key(key.id, now_ms())
        .await
        .expect("revoke_key");
    grows(store, &mut rev, "revoking a key").await;

    let mut by_hash = UsageEvent::new(now_ms(), "GET", "/x", 200);
    by_hash.key_hash = Some(plain.key_hash.clone());
    let mut by_id = UsageEvent::new(now_ms(), "GET", "/x", 200);
    by_id.key_id = Some(key.id);
    by_id.team_id = Some(team.id);
    assert_eq!(
        store
            .write_usage(&[by_hash, by_id])
            .await
            .expect("write_usage"),
        2
    );
    assert_eq!(
        revision(store).await,
        rev,
        "write_usage changed the revision"
    );
    let plain = store
        .key_by_id(plain.id)
        .await
        .expect("key_by_id")
        .expect("key");
    assert!(
        plain.last_used_at_ms.is_some(),
        "write_usage did not set last_used_at"
    );

    store.delete_key(key.id).await.expect("delete_key");
    grows(store, &mut rev, "deleting a key").await;
    store.delete_route(&route.name).await.expect("delete_route");
    grows(store, &mut rev, "deleting a route").await;
    store.ensure_team(&team.name).await.expect("ensure_team");
    assert_eq!(
        revision(store).await,
        rev,
        "ensuring an existing team changed the revision"
    );
}

/// The roll-up rows the events should produce, computed here independently of any backend.
/// `owners` maps a key hash to (key id, team id) for events that carry only the hash.
fn expected_rollups(events: &[UsageEvent], owners: &[(KeyHash, i64, i64)]) -> Vec<HourlyRollup> {
    let mut rows: BTreeMap<(i64, i64, i64, i64, String, i16), HourlyRollup> = BTreeMap::new();
    for e in events {
        let owner = match (e.key_id, &e.key_hash) {
            (None, Some(hash)) => owners.iter().find(|o| &o.0 == hash).map(|o| (o.1, o.2)),
            _ => None,
        };
        let key_id = e.key_id.or(owner.map(|o| o.0)).unwrap_or(0);
        let team_id = e.team_id.or(owner.map(|o| o.1)).unwrap_or(0);
        let model = e.model.clone().unwrap_or_default();
        let class = match e.status {
            100..=599 => i16::try_from(e.status / 100).expect("class fits"),
            _ => 0,
        };
        let hour = e.ts_ms - e.ts_ms.rem_euclid(HOUR_MS);
        let row = rows
            .entry((
                hour,
                team_id,
                key_id,
                e.route_id.unwrap_or(0),
                model.clone(),
                class,
            ))
            .or_insert_with(|| HourlyRollup {
                hour_ms: hour,
                team_id,
                key_id,
                route_id: e.route_id.unwrap_or(0),
                model,
                status_class: class,
                calls: 0,
                errors: 0,
                latency_sum_us: 0,
                latency_hist: [0; HISTOGRAM_LEN],
                prompt_tokens: 0,
                completion_tokens: 0,
                total_tokens: 0,
                cached_tokens: 0,
                reasoning_tokens: 0,
                estimated_calls: 0,
                cost_usd: 0.0,
                unpriced_calls: 0,
            });
        row.calls += 1;
        row.errors += i64::from(e.status >= 400);
        row.latency_sum_us += e.latency_us;
        row.latency_hist[latency_bucket(e.latency_us)] += 1;
        row.prompt_tokens += e.tokens.prompt;
        row.completion_tokens += e.tokens.completion;
        row.total_tokens += e.tokens.total;
        row.cached_tokens += e.tokens.cached;
        row.reasoning_tokens += e.tokens.reasoning;
        row.estimated_calls += i64::from(e.estimated);
        row.cost_usd += e.cost_usd.unwrap_or(0.0);
        row.unpriced_calls += i64::from(e.cost_usd.is_none());
    }
    rows.into_values().collect()
}

/// A varied batch over three hours from `base`: every status class, models and none, key by
/// hash, by id, and none, latencies across the histogram, estimated and reported tokens.
/// Costs are multiples of 1/8 so that sums are exact in any order.
fn varied_events(base: i64, count: usize, keys: &[&KeyRecord], route_id: i64) -> Vec<UsageEvent> {
    const STATUSES: [u16; 8] = [200, 201, 302, 404, 499, 500, 503, 0];
    const LATENCIES_US: [i64; 7] = [0, 400, 1_800, 45_000, 950_000, 12_000_000, 90_000_000];
    (0..count)
        .map(|i| {
            let n = i64::try_from(i).expect("small count");
            let mut e = UsageEvent::new(
                base + (n * 1_234_567) % (3 * HOUR_MS),
                "POST",
                "/v1/chat/completions",
                STATUSES[i % STATUSES.len()],
            );
            let key = keys[i % keys.len()];
            match i % 3 {
                0 => e.key_hash = Some(key.key_hash.clone()),
                1 => {
                    e.key_id = Some(key.id);
                    e.key_hash = Some(key.key_hash.clone());
                    e.team_id = Some(key.team_id);
                }
                _ => {}
            }
            e.route_id = (!i.is_multiple_of(4)).then_some(route_id);
            e.model = match i % 3 {
                0 => Some("gpt-4o".to_owned()),
                1 => Some("claude-sonnet-4".to_owned()),
                _ => None,
            };
            e.latency_us = LATENCIES_US[i % LATENCIES_US.len()] + n;
            e.tokens = TokenUsage {
                prompt: 10 + n,
                completion: 3 * n,
                total: 10 + 4 * n,
                cached: n % 5,
                reasoning: n % 7,
            };
            e.estimated = i.is_multiple_of(5);
            // Every seventh call has no price: stored as such, counted apart from the cost.
            e.cost_usd = (!i.is_multiple_of(7))
                .then(|| f64::from(u32::try_from(i % 9).expect("small")) * 0.125);
            // Reported events too: a backend may dedupe them by another path than its own.
            e.source = match i % 5 {
                1 => UsageSource::Ingest,
                3 => UsageSource::Middleware,
                _ => UsageSource::Gateway,
            };
            e
        })
        .collect()
}

fn owners_of(keys: &[&KeyRecord]) -> Vec<(KeyHash, i64, i64)> {
    keys.iter()
        .map(|k| (k.key_hash.clone(), k.id, k.team_id))
        .collect()
}

/// Roll-up sums, histograms and attributions equal what the events add up to.
pub async fn usage_rollups_match_the_events(store: &dyn Store) {
    let team = team(store).await;
    let first = key(store, team.id).await;
    let second = key(store, team.id).await;
    let route = route(store, Some(team.id)).await;
    // 2001-01-01: a range no other step writes to.
    let base = 978_307_200_000;
    let keys = [&first, &second];
    let mut events = varied_events(base, 300, &keys, route.id);
    // A hash no key has: stays unattributed.
    let mut stranger = UsageEvent::new(base + 5, "GET", "/models", 401);
    stranger.key_hash = Some(KeyHash::of("not a key of this store"));
    events.push(stranger);

    let count = store.count_usage().await.expect("count_usage");
    assert_eq!(store.write_usage(&events).await.expect("write_usage"), 301);
    assert_eq!(store.count_usage().await.expect("count_usage"), count + 301);
    assert_eq!(store.write_usage(&[]).await.expect("an empty batch"), 0);

    let expected = expected_rollups(&events, &owners_of(&keys));
    let stored = store
        .rollups(base, base + 3 * HOUR_MS)
        .await
        .expect("rollups");
    assert_eq!(stored.len(), expected.len(), "number of roll-up rows");
    for (got, want) in stored.iter().zip(&expected) {
        assert_eq!(got, want, "roll-up row");
    }
    assert_eq!(stored.iter().map(|r| r.calls).sum::<i64>(), 301);
    assert!(
        stored
            .iter()
            .any(|r| r.key_id == first.id && r.team_id == team.id)
    );
    assert!(
        stored
            .iter()
            .any(|r| r.key_id == 0 && r.team_id == 0 && r.status_class == 4)
    );
    // The range is half-open and hour-aligned.
    let middle = store
        .rollups(base + HOUR_MS, base + 2 * HOUR_MS)
        .await
        .expect("rollups");
    assert!(!middle.is_empty() && middle.iter().all(|r| r.hour_ms == base + HOUR_MS));
    assert!(store.rollups(base, base).await.expect("rollups").is_empty());

    let first = store
        .key_by_id(first.id)
        .await
        .expect("key_by_id")
        .expect("key");
    let newest = events
        .iter()
        .filter(|e| e.key_hash.as_ref() == Some(&first.key_hash))
        .map(|e| e.ts_ms)
        .max();
    assert_eq!(
        first.last_used_at_ms, newest,
        "last_used_at is the newest event of the key"
    );
}

/// A repeated event id is stored and counted once, within a batch and across batches.
pub async fn usage_dedupes_repeated_event_ids(store: &dyn Store) {
    let team = team(store).await;
    let key = key(store, team.id).await;
    let route = route(store, None).await;
    // 2002-01-01.
    let base = 1_009_843_200_000;
    let keys = [&key];
    let events = varied_events(base, 40, &keys, route.id);
    let count = store.count_usage().await.expect("count_usage");

    let (old, new) = events.split_at(25);
    assert_eq!(store.write_usage(old).await.expect("write_usage"), 25);
    assert_eq!(
        store.write_usage(old).await.expect("the same batch again"),
        0
    );
    let mut mixed: Vec<UsageEvent> = old[..10].to_vec();
    mixed.extend_from_slice(new);
    mixed.push(new[0].clone());
    // A replay with changed figures is still the same event: the first copy wins.
    let mut changed = old[3].clone();
    changed.tokens.prompt += 1_000;
    mixed.push(changed);
    assert_eq!(store.write_usage(&mixed).await.expect("a mixed batch"), 15);
    assert_eq!(store.count_usage().await.expect("count_usage"), count + 40);

    let stored = store
        .rollups(base, base + 3 * HOUR_MS)
        .await
        .expect("rollups");
    assert_eq!(stored, expected_rollups(&events, &owners_of(&keys)));
}

/// Batches as large as a busy writer sends (which a backend may store in parts, concurrently)
/// store and count each event once, a replay of half of one included.
pub async fn usage_large_batches_count_each_event_once(store: &dyn Store) {
    let team = team(store).await;
    let first = key(store, team.id).await;
    let second = key(store, team.id).await;
    let route = route(store, None).await;
    // 2005-01-01.
    let base = 1_104_537_600_000;
    let keys = [&first, &second];
    let events = varied_events(base, 4_000, &keys, route.id);
    let count = store.count_usage().await.expect("count_usage");

    let (old, new) = events.split_at(2_500);
    assert_eq!(store.write_usage(old).await.expect("a large batch"), 2_500);
    // Stored events first and last, new ones between: a replay overlapping every part.
    let mut replay: Vec<UsageEvent> = old[..700].to_vec();
    replay.extend_from_slice(new);
    replay.extend_from_slice(&old[1_800..]);
    assert_eq!(
        store.write_usage(&replay).await.expect("a large replay"),
        1_500
    );
    assert_eq!(
        store.count_usage().await.expect("count_usage"),
        count + 4_000
    );
    let stored = store
        .rollups(base, base + 3 * HOUR_MS)
        .await
        .expect("rollups");
    assert_eq!(stored, expected_rollups(&events, &owners_of(&keys)));
}

/// A reported event (ingest, middleware) is identified by the reporter's id alone: a retry that
/// carries another time, even another day, is the same event, stored and counted once.
pub async fn usage_dedupes_reported_events_replayed_at_another_time(store: &dyn Store) {
    let team = team(store).await;
    let key = key(store, team.id).await;
    let route = route(store, None).await;
    // 2004-01-01.
    let base = 1_072_915_200_000;
    let keys = [&key];
    let events: Vec<UsageEvent> = varied_events(base, 30, &keys, route.id)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.source = if i % 2 == 0 {
                UsageSource::Ingest
            } else {
                UsageSource::Middleware
            };
            e
        })
        .collect();
    let count = store.count_usage().await.expect("count_usage");
    assert_eq!(store.write_usage(&events).await.expect("write_usage"), 30);

    // The same ids an hour, a day and a month later: nothing new.
    for shift in [HOUR_MS, 24 * HOUR_MS, 31 * 24 * HOUR_MS] {
        let retried: Vec<UsageEvent> = events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.ts_ms += shift;
                e.tokens.prompt += 7;
                e
            })
            .collect();
        assert_eq!(
            store.write_usage(&retried).await.expect("a retry"),
            0,
            "a retry {shift} ms later was stored again"
        );
    }
    // A batch mixing retries and new events stores the new ones only.
    let mut fresh = varied_events(base + HOUR_MS, 5, &keys, route.id);
    for e in &mut fresh {
        e.source = UsageSource::Ingest;
    }
    let mut mixed = fresh.clone();
    mixed.extend(events.iter().take(10).map(|e| {
        let mut e = e.clone();
        e.ts_ms += 2 * 24 * HOUR_MS;
        e
    }));
    assert_eq!(store.write_usage(&mixed).await.expect("a mixed batch"), 5);
    assert_eq!(store.count_usage().await.expect("count_usage"), count + 35);

    let mut all = events.clone();
    all.extend(fresh);
    let stored = store
        .rollups(base, base + 40 * 24 * HOUR_MS)
        .await
        .expect("rollups");
    assert_eq!(
        stored,
        expected_rollups(&all, &owners_of(&keys)),
        "the retries changed the roll-ups"
    );
    let key = store
        .key_by_id(key.id)
        .await
        .expect("key_by_id")
        .expect("key");
    assert_eq!(
        key.last_used_at_ms,
        all.iter()
            .filter(|e| e.key_hash.is_some())
            .map(|e| e.ts_ms)
            .max(),
        "the retries moved last_used_at"
    );
}

/// `last_used_at` follows the newest stored event of the key and never moves back.
pub async fn last_used_moves_forward_only(store: &dyn Store) {
    let team = team(store).await;
    let key = key(store, team.id).await;
    async fn last_used(store: &dyn Store, id: i64) -> Option<i64> {
        store
            .key_by_id(id)
            .await
            .expect("key_by_id")
            .expect("key")
            .last_used_at_ms
    }
    let t1 = now_ms() - 60_000;
    let mut by_hash = UsageEvent::new(t1, "GET", "/a", 200);
    by_hash.key_hash = Some(key.key_hash.clone());
    store.write_usage(&[by_hash]).await.expect("write_usage");
    assert_eq!(last_used(store, key.id).await, Some(t1));

    let mut older = UsageEvent::new(t1 - 30_000, "GET", "/a", 200);
    older.key_id = Some(key.id);
    store.write_usage(&[older]).await.expect("write_usage");
    assert_eq!(
        last_used(store, key.id).await,
        Some(t1),
        "an older event moved last_used_at back"
    );

    let t2 = t1 + 20_000;
    let mut newer = UsageEvent::new(t2, "GET", "/a", 500);
    newer.key_id = Some(key.id);
    newer.team_id = Some(team.id);
    let mut same_batch_older = UsageEvent::new(t2 - 1, "GET", "/a", 200);
    same_batch_older.key_hash = Some(key.key_hash.clone());
    store
        .write_usage(&[newer.clone(), same_batch_older])
        .await
        .expect("write_usage");
    assert_eq!(last_used(store, key.id).await, Some(t2));

    // A replayed event is not new: it moves nothing. The gateway's own events keep their time
    // through the spool and every replay; an event reported through ingest may come back
    // claiming another time, and is still the same event.
    assert_eq!(
        store
            .write_usage(std::slice::from_ref(&newer))
            .await
            .expect("write_usage"),
        0
    );
    let mut reported = UsageEvent::new(t2 - 5, "GET", "/a", 200);
    reported.key_id = Some(key.id);
    reported.source = UsageSource::Ingest;
    assert_eq!(
        store
            .write_usage(std::slice::from_ref(&reported))
            .await
            .expect("write_usage"),
        1
    );
    let replay = UsageEvent {
        ts_ms: t2 + 50_000,
        ..reported
    };
    assert_eq!(store.write_usage(&[replay]).await.expect("write_usage"), 0);
    assert_eq!(
        last_used(store, key.id).await,
        Some(t2),
        "a duplicate event moved last_used_at"
    );
}

/// `recent_usage` gives back every field as written, newest first, with key and team filled in
/// from the key hash.
pub async fn recent_usage_round_trips_every_field(store: &dyn Store) {
    let team = team(store).await;
    let key = key(store, team.id).await;
    let route = route(store, Some(team.id)).await;
    // 2100-01-01: newer than every other step's events.
    let base = 4_102_444_800_000 + (now_ms() % 1_000_000);

    let full = UsageEvent {
        event_id: Uuid::now_v7(),
        ts_ms: base + 3,
        key_id: Some(key.id),
        key_hash: Some(key.key_hash.clone()),
        team_id: Some(team.id),
        route_id: Some(route.id),
        route: Some(route.name.clone()),
        method: "PATCH".to_owned(),
        path: "/v1/ünïcode/路径".to_owned(),
        status: 499,
        latency_us: 123_456_789,
        upstream_latency_us: Some(98_765),
        upstream_last_byte_us: Some(120_000_001),
        client_ip: Some("2001:db8::1".to_owned()),
        user_agent: Some("story/1.0 (\"quoted\"; 'single')".to_owned()),
        model: Some("gpt-4o-mini".to_owned()),
        tokens: TokenUsage {
            prompt: 1_234,
            completion: 567,
            total: 1_801,
            cached: 89,
            reasoning: 10,
        },
        estimated: true,
        cost_usd: Some(0.012_345_678_9),
        error: Some("client closed the connection".to_owned()),
        source: UsageSource::Ingest,
        request_id: Some("req-0123456789".to_owned()),
        attempts: Some(r#"[{"target":"a","model":"m","status":503,"ms":12}]"#.to_owned()),
    };
    let mut by_hash = UsageEvent::new(base + 2, "GET", "/v1/models", 200);
    by_hash.key_hash = Some(key.key_hash.clone());
    by_hash.source = UsageSource::Middleware;
    let mut stranger = UsageEvent::new(base + 1, "DELETE", "/x", 401);
    stranger.key_hash = Some(KeyHash::of("nobody's key"));
    stranger.error = Some(String::new());
    let bare = UsageEvent::new(base, "OPTIONS", "/", 204);

    let written = store
        .write_usage(&[
            bare.clone(),
            full.clone(),
            stranger.clone(),
            by_hash.clone(),
        ])
        .await
        .expect("write_usage");
    assert_eq!(written, 4);
    let by_hash = UsageEvent {
        key_id: Some(key.id),
        team_id: Some(team.id),
        ..by_hash
    };

    let recent = store.recent_usage(4).await.expect("recent_usage");
    assert_eq!(recent, vec![full, by_hash, stranger, bare.clone()]);
    assert_eq!(store.recent_usage(1).await.expect("recent_usage").len(), 1);
    assert!(
        store
            .recent_usage(0)
            .await
            .expect("recent_usage")
            .is_empty()
    );
    let total = store.count_usage().await.expect("count_usage");
    let everything = store.recent_usage(total + 10).await.expect("recent_usage");
    assert_eq!(i64::try_from(everything.len()).expect("fits"), total);
    assert!(
        everything.windows(2).all(|w| w[0].ts_ms >= w[1].ts_ms),
        "not newest first"
    );
    assert!(everything.contains(&bare));
}

/// After `close`, calls fail with `Unavailable` rather than hanging or panicking.
pub async fn closing_makes_it_unavailable(store: &dyn Store) {
    store.close().await;
    match store.ping().await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("ping on a closed store: expected Unavailable, got {other:?}"),
    }
    match store
        .write_usage(&[UsageEvent::new(now_ms(), "GET", "/", 200)])
        .await
    {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("write_usage on a closed store: expected Unavailable, got {other:?}"),
    }
    match store.key_by_id(1).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("key_by_id on a closed store: expected Unavailable, got {other:?}"),
    }
}

/// Writes `batches` batches of `batch_size` realistic events (keys known by hash only, a few
/// routes and models) and returns the rate in events per second. Checks every event was stored.
pub async fn measure_write_rate(store: &dyn Store, batches: usize, batch_size: usize) -> f64 {
    store.migrate().await.expect("migrate");
    let team = team(store).await;
    let mut keys = Vec::new();
    for _ in 0..8 {
        keys.push(key(store, team.id).await);
    }
    let mut routes = Vec::new();
    for _ in 0..4 {
        routes.push(route(store, Some(team.id)).await);
    }
    let models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "claude-haiku-4"];
    let start_ts = hour_start(now_ms());
    let before = store.count_usage().await.expect("count_usage");
    let started = Instant::now();
    for b in 0..batches {
        let events: Vec<UsageEvent> = (0..batch_size)
            .map(|i| {
                let n = b * batch_size + i;
                let ts = start_ts + i64::try_from(n).expect("fits") % (2 * HOUR_MS);
                let mut e = UsageEvent::new(ts, "POST", "/v1/chat/completions", 200);
                e.key_hash = Some(keys[n % keys.len()].key_hash.clone());
                e.route_id = Some(routes[n % routes.len()].id);
                e.route = Some(routes[n % routes.len()].name.clone());
                e.model = Some(models[n % models.len()].to_owned());
                e.status = if n.is_multiple_of(50) { 500 } else { 200 };
                e.latency_us = i64::try_from(n % 5_000).expect("fits") * 97;
                e.upstream_latency_us = Some(e.latency_us / 2);
                e.client_ip = Some("10.0.0.7".to_owned());
                e.user_agent = Some("bench/1.0".to_owned());
                e.tokens = TokenUsage {
                    prompt: 120,
                    completion: 48,
                    total: 168,
                    cached: 0,
                    reasoning: 0,
                };
                e.cost_usd = Some(0.000_42);
                e.request_id = Some(Uuid::now_v7().to_string());
                e
            })
            .collect();
        let written = store.write_usage(&events).await.expect("write_usage");
        assert_eq!(written, u64::try_from(batch_size).expect("fits"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = batches * batch_size;
    assert_eq!(
        store.count_usage().await.expect("count_usage"),
        before + i64::try_from(total).expect("fits")
    );
    #[expect(
        clippy::cast_precision_loss,
        reason = "event counts are far below 2^52"
    )]
    let rate = total as f64 / elapsed.max(f64::EPSILON);
    rate
}

/// Several stores on one database (instances, or an instance and a spool replay) write the same
/// events at once, each in its own order: every event is stored and counted exactly once.
#[expect(
    clippy::disallowed_methods,
    reason = "the writers are awaited before the story checks the count"
)]
pub async fn concurrent_writers_store_each_event_once(stores: Vec<Arc<dyn Store>>) {
    let first = stores.first().expect("at least one store").clone();
    first.migrate().await.expect("migrate");
    let team = team(first.as_ref()).await;
    let key = key(first.as_ref(), team.id).await;
    let route = route(first.as_ref(), None).await;
    // 2003-01-01.
    let base = 1_041_379_200_000;
    let keys = [&key];
    let events = varied_events(base, 400, &keys, route.id);
    let before = first.count_usage().await.expect("count_usage");

    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for round in 0..2 {
            let store = store.clone();
            let mut mine = events.clone();
            // Each writer its own order; batches of 100 as a usage writer would send.
            mine.rotate_left((i * 2 + round) * 37 % events.len());
            if (i + round) % 2 == 1 {
                mine.reverse();
            }
            tasks.push(tokio::spawn(async move {
                let mut written = 0;
                for batch in mine.chunks(100) {
                    written += store
                        .write_usage(batch)
                        .await
                        .expect("concurrent write_usage");
                }
                written
            }));
        }
    }
    let mut written = 0;
    for task in tasks {
        written += task.await.expect("writer task");
    }
    assert_eq!(
        written, 400,
        "the writers together reported each event once"
    );
    assert_eq!(
        first.count_usage().await.expect("count_usage"),
        before + 400
    );
    let stored = first
        .rollups(base, base + 3 * HOUR_MS)
        .await
        .expect("rollups");
    assert_eq!(stored, expected_rollups(&events, &owners_of(&keys)));
    let key = first
        .key_by_id(key.id)
        .await
        .expect("key_by_id")
        .expect("key");
    let newest = events
        .iter()
        .filter(|e| e.key_hash.is_some())
        .map(|e| e.ts_ms)
        .max();
    assert_eq!(
        key.last_used_at_ms, newest,
        "last_used_at is the newest event of the key"
    );
}
