//! The rules in-process, against an in-memory SQLite store: the same call as a console user and
//! as the command-line operator gives the same verdict, refused changes write nothing (no row, no
//! audit entry), and who may do what.

use std::collections::BTreeMap;

use tollgate_core::Role;
use tollgate_store::{AuditFilter, NewUser, Store, User};
use tollgate_store_sqlite::SqliteStore;

use super::counters::{self, ReadingNote};
use super::keys::{self, Expiry, KeyDraft};
use super::limits;
use super::members;
use super::routes::{self, RouteChange, RouteDraft};
use super::teams;
use super::tokens;
use super::{Actor, RuleError, Rules};
use crate::auth::{Caller, Via};

const OPERATOR: &str = "cli:tester";

async fn store() -> Box<dyn Store> {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    Box::new(store)
}

async fn user(store: &dyn Store, email: &str, is_admin: bool) -> User {
    store
        .create_user(NewUser {
            email: email.into(),
            display_name: email.into(),
            password_hash: None,
            is_admin,
        })
        .await
        .unwrap()
}

fn caller(user: &User, roles: &[(i64, Role)]) -> Caller {
    Caller {
        user: user.clone(),
        via: Via::Session {
            id_hash: "0".repeat(64),
        },
        roles: roles.iter().copied().collect::<BTreeMap<_, _>>(),
        ip: None,
    }
}

async fn audit_count(store: &dyn Store) -> i64 {
    store
        .list_audit(&AuditFilter::default(), 1, 0)
        .await
        .unwrap()
        .1
}

fn field_of(result: Result<impl std::fmt::Debug, RuleError>) -> &'static str {
    match result {
        Err(RuleError::Invalid { field, .. }) => field,
        other => panic!("expected a refused field, got {other:?}"),
    }
}

fn route(name: &str, prefix: &str) -> RouteDraft {
    RouteDraft {
        name: name.into(),
        prefix: prefix.into(),
        upstream_url: "http://127.0.0.1:9".into(),
        ..RouteDraft::default()
    }
}

/// The drift that motivated this layer: a timeout of 0 ms was refused by the API and quietly
/// made 1 ms by the command line. Now one rule answers both, with the same verdict.
#[tokio::test]
async fn a_zero_timeout_is_refused_for_the_console_and_the_operator_alike() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let admin = user(store.as_ref(), "admin@example.com", true).await;
    let admin = caller(&admin, &[]);
    for actor in [Actor::Console(&admin), Actor::Operator(OPERATOR)] {
        for (draft, field) in [
            (
                RouteDraft {
                    timeout_ms: Some(0),
                    ..route("t", "/t")
                },
                "timeout_ms",
            ),
            (
                RouteDraft {
                    connect_timeout_ms: Some(0),
                    ..route("c", "/c")
                },
                "connect_timeout_ms",
            ),
            (
                RouteDraft {
                    timeout_ms: Some(3_600_001),
                    ..route("h", "/h")
                },
                "timeout_ms",
            ),
        ] {
            assert_eq!(
                field_of(routes::create(&rules, &actor, draft).await),
                field,
                "{actor:?}"
            );
        }
    }
    assert!(store.list_routes().await.unwrap().is_empty());
    assert_eq!(
        audit_count(store.as_ref()).await,
        0,
        "a refused change audits nothing"
    );

    // And on update: the route keeps its timeouts.
    let made = routes::create(&rules, &Actor::Operator(OPERATOR), route("svc", "/svc"))
        .await
        .unwrap();
    for actor in [Actor::Console(&admin), Actor::Operator(OPERATOR)] {
        let change = RouteChange {
            timeout_ms: Some(0),
            ..RouteChange::default()
        };
        assert_eq!(
            field_of(routes::update(&rules, &actor, made.id, change).await),
            "timeout_ms"
        );
    }
    let now = store.route_by_id(made.id).await.unwrap().unwrap();
    assert_eq!(now.timeout_ms, routes::DEFAULT_TIMEOUT_MS);
}

#[tokio::test]
async fn routes_get_the_same_defaults_and_upstream_form_from_every_front_end() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let admin = user(store.as_ref(), "admin@example.com", true).await;
    let admin = caller(&admin, &[]);
    let a = routes::create(
        &rules,
        &Actor::Console(&admin),
        RouteDraft {
            upstream_url: "http://127.0.0.1:9/".into(),
            ..route("a", "/a")
        },
    )
    .await
    .unwrap();
    let b = routes::create(
        &rules,
        &Actor::Operator(OPERATOR),
        RouteDraft {
            upstream_url: "http://127.0.0.1:9/".into(),
            ..route("b", "/b")
        },
    )
    .await
    .unwrap();
    for r in [&a, &b] {
        assert_eq!(r.upstream_url, "http://127.0.0.1:9");
        assert_eq!(r.connect_timeout_ms, routes::DEFAULT_CONNECT_TIMEOUT_MS);
        assert_eq!(r.timeout_ms, routes::DEFAULT_TIMEOUT_MS);
        assert!(r.enabled);
    }
    // A credential needs a master key, whoever asks.
    for actor in [Actor::Console(&admin), Actor::Operator(OPERATOR)] {
        let draft = RouteDraft {
            credential: Some("sk-x".into()),
            ..route("cred", "/cred")
        };
        assert!(matches!(
            routes::create(&rules, &actor, draft).await,
            Err(RuleError::NotConfigured {
                code: "no_master_key",
                ..
            })
        ));
    }
    let entries = store
        .list_audit(&AuditFilter::default(), 10, 0)
        .await
        .unwrap()
        .0;
    let actors: Vec<&str> = entries.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, [OPERATOR, "user:admin@example.com"]);
}

#[tokio::test]
async fn team_admins_manage_only_their_team_routes() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let team = store.create_team("alpha").await.unwrap();
    let ada = user(store.as_ref(), "ada@example.com", false).await;
    let ada_admin = caller(&ada, &[(team.id, Role::Admin)]);
    let ada_member = caller(&ada, &[(team.id, Role::Member)]);
    // Shared routes are for instance admins.
    assert!(matches!(
        routes::create(&rules, &Actor::Console(&ada_admin), route("s", "/s")).await,
        Err(RuleError::Forbidden(_))
    ));
    let own = RouteDraft {
        team_id: Some(team.id),
        upstream_url: "http://192.0.2.10".into(),
        ..route("own", "/own")
    };
    assert!(matches!(
        routes::create(&rules, &Actor::Console(&ada_member), own.clone()).await,
        Err(RuleError::Forbidden(_))
    ));
    routes::create(&rules, &Actor::Console(&ada_admin), own)
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_follow_the_same_rules_for_every_actor() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let team = store.create_team("alpha").await.unwrap();
    let other = store.create_team("beta").await.unwrap();
    let foreign = routes::create(
        &rules,
        &Actor::Operator(OPERATOR),
        RouteDraft {
            team_id: Some(other.id),
            ..route("theirs", "/theirs")
        },
    )
    .await
    .unwrap();
    let admin = user(store.as_ref(), "admin@example.com", true).await;
    let admin = caller(&admin, &[]);
    let bad: [(KeyDraft, &str); 5] = [
        (KeyDraft::default(), "name"),
        (
            KeyDraft {
                name: "x".repeat(101),
                ..KeyDraft::default()
            },
            "name",
        ),
        (
            KeyDraft {
                name: "k".into(),
                expiry: Expiry::In("0s".into()),
                ..KeyDraft::default()
            },
            "expires_in",
        ),
        (
            KeyDraft {
                name: "k".into(),
                team_id: Some(team.id),
                route_ids: Some(Vec::new()),
                ..KeyDraft::default()
            },
            "route_ids",
        ),
        (
            KeyDraft {
                name: "k".into(),
                team_id: Some(team.id),
                route_ids: Some(vec![foreign.id]),
                ..KeyDraft::default()
            },
            "route_ids",
        ),
    ];
    let audited = audit_count(store.as_ref()).await;
    for (draft, field) in bad {
        for actor in [Actor::Console(&admin), Actor::Operator(OPERATOR)] {
            assert_eq!(
                field_of(keys::create(&rules, &actor, draft.clone()).await),
                field,
                "{draft:?}"
            );
        }
    }
    assert!(store.list_keys(None).await.unwrap().is_empty());
    assert_eq!(audit_count(store.as_ref()).await, audited);

    // No team named: the operator's key goes to the default team, as an admin's does.
    let named = KeyDraft {
        name: " ci ".into(),
        ..KeyDraft::default()
    };
    let (k, _) = keys::create(&rules, &Actor::Operator(OPERATOR), named)
        .await
        .unwrap();
    assert_eq!(k.team_name, tollgate_store::DEFAULT_TEAM);
    assert_eq!(k.name, "ci");
    assert_eq!(k.created_by.as_deref(), Some(OPERATOR));
}

#[tokio::test]
async fn members_manage_their_own_keys_and_viewers_none() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let team = store.create_team("alpha").await.unwrap();
    let (m1, m2, v) = (
        user(store.as_ref(), "m1@example.com", false).await,
        user(store.as_ref(), "m2@example.com", false).await,
        user(store.as_ref(), "v@example.com", false).await,
    );
    let m1 = caller(&m1, &[(team.id, Role::Member)]);
    let m2 = caller(&m2, &[(team.id, Role::Member)]);
    let v = caller(&v, &[(team.id, Role::Viewer)]);
    let draft = KeyDraft {
        name: "mine".into(),
        ..KeyDraft::default()
    };
    assert!(matches!(
        keys::create(&rules, &Actor::Console(&v), draft.clone()).await,
        Err(RuleError::Forbidden(_))
    ));
    let (key, _) = keys::create(&rules, &Actor::Console(&m1), draft)
        .await
        .unwrap();
    assert_eq!(key.team_id, team.id, "a one-team member's key goes to it");
    assert!(matches!(
        keys::revoke(&rules, &Actor::Console(&m2), key.id).await,
        Err(RuleError::Forbidden(_))
    ));
    let revoked = keys::revoke(&rules, &Actor::Console(&m1), key.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    // The operator manages every key.
    keys::delete(&rules, &Actor::Operator(OPERATOR), key.id)
        .await
        .unwrap();
    assert!(matches!(
        keys::delete(&rules, &Actor::Operator(OPERATOR), key.id).await,
        Err(RuleError::NotFound(_))
    ));
}

#[tokio::test]
async fn counters_check_readings_the_same_way_for_both_front_ends() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let team = store.create_team("alpha").await.unwrap();
    let m = user(store.as_ref(), "m@example.com", false).await;
    let v = user(store.as_ref(), "v@example.com", false).await;
    let m = caller(&m, &[(team.id, Role::Member)]);
    let v = caller(&v, &[(team.id, Role::Viewer)]);
    let note = |conversation: Option<&str>| ReadingNote {
        event: "e".into(),
        conversation_id: conversation.map(str::to_owned),
        sync_type: "manual".into(),
    };
    for actor in [Actor::Console(&m), Actor::Operator(OPERATOR)] {
        assert_eq!(
            field_of(counters::record(&rules, &actor, Some(team.id), "c", 5, note(Some(""))).await),
            "conversation_id"
        );
        assert_eq!(
            field_of(counters::record(&rules, &actor, Some(team.id), "c", -1, note(None)).await),
            "tokens"
        );
        assert_eq!(
            field_of(
                counters::record(&rules, &actor, Some(team.id), "no spaces", 1, note(None)).await
            ),
            "counter"
        );
    }
    assert!(store.list_counters().await.unwrap().is_empty());
    assert!(matches!(
        counters::record(
            &rules,
            &Actor::Console(&v),
            Some(team.id),
            "c",
            5,
            note(None)
        )
        .await,
        Err(RuleError::Forbidden(_))
    ));
    let (c, r) = counters::record(&rules, &Actor::Console(&m), None, "c", 500, note(None))
        .await
        .unwrap();
    assert_eq!(
        (c.team_id, c.quota, r.increment),
        (team.id, counters::DEFAULT_QUOTA, 500)
    );
    assert!(matches!(
        counters::set_quota(&rules, &Actor::Console(&m), Some(team.id), "c", 10).await,
        Err(RuleError::Forbidden(_))
    ));
    let c = counters::set_quota(&rules, &Actor::Operator(OPERATOR), Some(team.id), "c", 10)
        .await
        .unwrap();
    assert_eq!(c.quota, 10);
}

#[tokio::test]
async fn teams_members_and_tokens_keep_their_rules() {
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let root = user(store.as_ref(), "root@example.com", true).await;
    let root = caller(&root, &[]);
    let team = teams::create(&rules, &Actor::Console(&root), " alpha ")
        .await
        .unwrap();
    assert_eq!(team.name, "alpha");
    let members_now = store.list_members(team.id).await.unwrap();
    assert_eq!(members_now.len(), 1, "the creating user owns the team");
    let default = store
        .team_by_name(tollgate_store::DEFAULT_TEAM)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        teams::rename(&rules, &Actor::Operator(OPERATOR), default.id, "other").await,
        Err(RuleError::Conflict(_))
    ));
    assert_eq!(
        field_of(teams::create(&rules, &Actor::Operator(OPERATOR), "no spaces").await),
        "name"
    );

    let ada = user(store.as_ref(), "ada@example.com", false).await;
    let bob = user(store.as_ref(), "bob@example.com", false).await;
    store
        .set_member(team.id, ada.id, Role::Admin)
        .await
        .unwrap();
    store
        .set_member(team.id, bob.id, Role::Member)
        .await
        .unwrap();
    let ada_c = caller(&ada, &[(team.id, Role::Admin)]);
    assert!(matches!(
        members::set_role(
            &rules,
            &Actor::Console(&ada_c),
            team.id,
            bob.id,
            Role::Admin
        )
        .await,
        Err(RuleError::Forbidden(_))
    ));
    members::set_role(
        &rules,
        &Actor::Console(&ada_c),
        team.id,
        bob.id,
        Role::Viewer,
    )
    .await
    .unwrap();
    assert_eq!(
        field_of(
            members::invite(
                &rules,
                &Actor::Console(&ada_c),
                team.id,
                "x@example.com",
                None,
                Some("31d")
            )
            .await
        ),
        "expires_in"
    );

    // A console user makes tokens for themselves only; nobody makes one for a disabled user.
    assert!(matches!(
        tokens::create(&rules, &Actor::Console(&ada_c), &bob, "t", None).await,
        Err(RuleError::NotFound(_))
    ));
    let disabled = store.set_user_disabled(bob.id, Some(1)).await.unwrap();
    assert!(matches!(
        tokens::create(&rules, &Actor::Operator(OPERATOR), &disabled, "t", None).await,
        Err(RuleError::Conflict(_))
    ));
    for actor in [Actor::Console(&ada_c), Actor::Operator(OPERATOR)] {
        assert_eq!(
            field_of(tokens::create(&rules, &actor, &ada, " ", None).await),
            "name"
        );
        assert_eq!(
            field_of(tokens::create(&rules, &actor, &ada, "t", Some("0s")).await),
            "expires_in"
        );
    }
    let (token, _) = tokens::create(&rules, &Actor::Operator(OPERATOR), &ada, "ci", Some("30d"))
        .await
        .unwrap();
    let entry = store
        .list_audit(&AuditFilter::default(), 1, 0)
        .await
        .unwrap()
        .0;
    assert_eq!(entry[0].summary, "token `ci` created for ada@example.com");
    tokens::revoke(&rules, &Actor::Console(&ada_c), &ada, token.id)
        .await
        .unwrap();
}

fn rpm(scope: tollgate_limits::Scope, max: u64) -> limits::LimitDraft {
    limits::LimitDraft {
        scope,
        kind: tollgate_limits::LimitKind::Requests {
            per: tollgate_limits::Window::Minute,
            max,
        },
        enforcement: None,
        alert_at: None,
        include_reported: None,
    }
}

/// Who may set limits, the cap of a key by its team, and that a refused limit writes nothing.
#[tokio::test]
async fn limits_follow_roles_and_a_key_never_exceeds_its_team() {
    use tollgate_limits::Scope;
    let store = store().await;
    let rules = Rules::new(store.as_ref());
    let team = store.create_team("alpha").await.unwrap();
    let other = store.create_team("beta").await.unwrap();
    let (key, _) = keys::create(
        &rules,
        &Actor::Operator(OPERATOR),
        KeyDraft {
            team_id: Some(team.id),
            name: "k".into(),
            ..KeyDraft::default()
        },
    )
    .await
    .unwrap();
    let admin = user(store.as_ref(), "admin@example.com", false).await;
    let admin = caller(&admin, &[(team.id, Role::Admin)]);
    let viewer = user(store.as_ref(), "viewer@example.com", false).await;
    let viewer = caller(&viewer, &[(team.id, Role::Viewer)]);
    let audits = audit_count(store.as_ref()).await;

    let refused = [
        (Actor::Console(&viewer), rpm(Scope::Team(team.id), 5)),
        (Actor::Console(&admin), rpm(Scope::Instance, 5)),
        (Actor::Console(&admin), rpm(Scope::Team(other.id), 5)),
        (Actor::Console(&admin), rpm(Scope::Team(team.id), 0)),
    ];
    for (actor, draft) in refused {
        assert!(
            limits::create(&rules, &actor, draft.clone(), None)
                .await
                .is_err(),
            "{actor:?} {draft:?}"
        );
    }
    assert!(store.list_limits().await.unwrap().is_empty());
    assert_eq!(audit_count(store.as_ref()).await, audits);

    limits::create(
        &rules,
        &Actor::Console(&admin),
        rpm(Scope::Team(team.id), 100),
        None,
    )
    .await
    .unwrap();
    for actor in [Actor::Console(&admin), Actor::Operator(OPERATOR)] {
        match limits::create(&rules, &actor, rpm(Scope::Key(key.id), 101), None).await {
            Err(RuleError::Forbidden(m)) => assert!(m.starts_with("kind.max:"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let key_limit = limits::create(
        &rules,
        &Actor::Console(&admin),
        rpm(Scope::Key(key.id), 100),
        None,
    )
    .await
    .unwrap();
    assert_eq!(store.list_limits().await.unwrap().len(), 2);
    assert_eq!(audit_count(store.as_ref()).await, audits + 2);
    let seen = limits::list(
        &rules,
        &Actor::Console(&viewer),
        limits::LimitFilter::default(),
    )
    .await
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert!(matches!(
        limits::delete(&rules, &Actor::Console(&viewer), key_limit.limit.id).await,
        Err(RuleError::Forbidden(_))
    ));
}

/// The old quota settings become labelled hard budgets once, and the settings are removed.
#[tokio::test]
async fn quota_settings_migrate_once() {
    let store = store().await;
    let team = store.create_team("alpha").await.unwrap();
    store
        .set_setting("quota.instance", r#"{"tokens":1000,"period":"month"}"#)
        .await
        .unwrap();
    store
        .set_setting(
            &limits::team_quota_setting(team.id),
            r#"{"tokens":null,"period":"month"}"#,
        )
        .await
        .unwrap();
    let done = limits::migrate_quota_settings(store.as_ref(), OPERATOR)
        .await
        .unwrap();
    assert_eq!(
        done,
        limits::QuotasMigrated {
            budgets: 1,
            empty: 1
        }
    );
    let again = limits::migrate_quota_settings(store.as_ref(), OPERATOR)
        .await
        .unwrap();
    assert_eq!(again, limits::QuotasMigrated::default());
    let quota = limits::quota_limit(store.as_ref(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(quota.limit.is_hard());
    assert_eq!(quota.limit.kind.max(), 1000);
    assert_eq!(store.setting("quota.instance").await.unwrap(), None);
    assert_eq!(store.list_limits().await.unwrap().len(), 1);
}

/// Model allow-lists: patterns are checked and stored comma-separated.
#[test]
fn model_patterns_are_checked() {
    let ok = limits::check_models(Some(&["gpt-4o*".to_owned(), " claude-* ".to_owned()]));
    assert_eq!(ok.unwrap().as_deref(), Some("gpt-4o*,claude-*"));
    assert_eq!(limits::check_models(None).unwrap(), None);
    for bad in [vec![], vec![String::new()], vec!["gpt-[4".to_owned()]] {
        assert_eq!(field_of(limits::check_models(Some(&bad))), "models");
    }
}
