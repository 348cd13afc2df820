//! The story of what the console stores: users, sessions, access tokens, membership,
//! invitations, the audit log and settings.

use std::time::Duration;

use tollgate_core::Role;
use tollgate_core::time::now_ms;
use uuid::Uuid;

use super::{HOUR_MS, expect_conflict, expect_not_found, team, unique};
use crate::{
    AccessToken, AuditEntry, AuditFilter, Membership, NewAccessToken, NewAuditEntry, NewInvitation,
    NewUser, SessionRecord, Store, StoreError, User,
};

use tollgate_core::time::DAY_MS;
/// Ids no step creates.
const MISSING: i64 = 987_654_321;
const MISSING_TOO: i64 = 987_654_322;

/// A stand-in for the SHA-256 hex of a fresh secret: 64 hex digits no other step uses.
pub(super) fn secret_hash() -> String {
    format!("{}{}", Uuid::now_v7().simple(), Uuid::now_v7().simple())
}

/// A new account with a lower-cased address starting with `label`.
pub(super) fn new_user(label: &str) -> NewUser {
    let name = unique(label);
    NewUser {
        email: format!("{name}@example.com"),
        display_name: format!("Story {name}"),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}")),
        is_admin: false,
    }
}

/// A stored account whose address starts with `label`.
pub(super) async fn user(store: &dyn Store, label: &str) -> User {
    store
        .create_user(new_user(label))
        .await
        .expect("create_user")
}

/// A new invitation to `team_id` as a member, valid for a week.
pub(super) fn new_invitation(team_id: i64, invited_by: Option<i64>) -> NewInvitation {
    NewInvitation {
        token_hash: secret_hash(),
        email: format!("{}@example.com", unique("invitee")),
        team_id,
        role: Role::Member,
        invited_by,
        expires_at_ms: now_ms() + 7 * DAY_MS,
    }
}

fn new_session(user_id: i64, created_at_ms: i64, expires_at_ms: i64) -> SessionRecord {
    SessionRecord {
        id_hash: secret_hash(),
        user_id,
        csrf_token: unique("csrf"),
        created_at_ms,
        expires_at_ms,
        revoked_at_ms: None,
        ip: Some("2001:db8::7".to_owned()),
        user_agent: Some("Mozilla/5.0 (story; \"quoted\")".to_owned()),
    }
}

fn new_token(user_id: i64, expires_at_ms: Option<i64>) -> NewAccessToken {
    let name = unique("token");
    NewAccessToken {
        user_id,
        token_hash: secret_hash(),
        prefix: format!("tgp_{}…", &name[name.len() - 4..]),
        name,
        expires_at_ms,
    }
}

async fn user_by_id(store: &dyn Store, id: i64) -> User {
    store
        .user_by_id(id)
        .await
        .expect("user_by_id")
        .expect("the user exists")
}

async fn session(store: &dyn Store, id_hash: &str) -> Option<SessionRecord> {
    store
        .session_by_hash(id_hash)
        .await
        .expect("session_by_hash")
}

/// Accounts: create, find by id and address, list, count, and change each field; a taken address
/// and missing users are refused, naming them.
pub async fn users_create_find_update(store: &dyn Store) {
    let count = store.count_users().await.expect("count_users");
    let before = now_ms();
    let new = new_user("ann");
    let ann = store.create_user(new.clone()).await.expect("create_user");
    assert_eq!(ann.email, new.email);
    assert_eq!(ann.display_name, new.display_name);
    assert_eq!(ann.password_hash, new.password_hash);
    assert!(!ann.is_admin);
    assert_eq!(ann.disabled_at_ms, None);
    assert_eq!(ann.last_login_at_ms, None);
    assert!(ann.created_at_ms >= before && ann.created_at_ms <= now_ms());
    assert_eq!(store.count_users().await.expect("count_users"), count + 1);

    assert_eq!(
        store.user_by_id(ann.id).await.expect("user_by_id"),
        Some(ann.clone())
    );
    assert_eq!(
        store
            .user_by_email(&ann.email)
            .await
            .expect("user_by_email"),
        Some(ann.clone())
    );
    assert_eq!(store.user_by_id(i64::MAX).await.expect("user_by_id"), None);
    assert_eq!(
        store
            .user_by_email(&format!("{}@example.com", unique("nobody")))
            .await
            .expect("user_by_email"),
        None
    );

    let duplicate = NewUser {
        display_name: "Someone else".to_owned(),
        password_hash: None,
        ..new
    };
    expect_conflict(
        store.create_user(duplicate).await,
        &ann.email,
        "a taken e-mail address",
    );
    assert_eq!(store.count_users().await.expect("count_users"), count + 1);

    // An invited admin: no password yet.
    let invited = NewUser {
        password_hash: None,
        is_admin: true,
        ..new_user("bob")
    };
    let bob = store
        .create_user(invited)
        .await
        .expect("create_user without a password");
    assert_eq!(bob.password_hash, None);
    assert!(bob.is_admin);
    assert_eq!(store.count_users().await.expect("count_users"), count + 2);
    let all = store.list_users().await.expect("list_users");
    assert!(all.contains(&ann) && all.contains(&bob));
    assert!(
        all.windows(2).all(|w| w[0].email < w[1].email),
        "users not sorted by e-mail"
    );

    store
        .set_password(ann.id, "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3")
        .await
        .expect("set_password");
    let ann = User {
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".to_owned()),
        ..ann
    };
    assert_eq!(user_by_id(store, ann.id).await, ann);

    let at = now_ms();
    let disabled = store
        .set_user_disabled(ann.id, Some(at))
        .await
        .expect("set_user_disabled");
    assert_eq!(
        disabled,
        User {
            disabled_at_ms: Some(at),
            ..ann.clone()
        }
    );
    assert_eq!(user_by_id(store, ann.id).await, disabled);
    let enabled = store
        .set_user_disabled(ann.id, None)
        .await
        .expect("re-enable");
    assert_eq!(enabled, ann);

    let admin = store
        .set_user_admin(ann.id, true)
        .await
        .expect("set_user_admin");
    assert_eq!(
        admin,
        User {
            is_admin: true,
            ..ann.clone()
        }
    );
    let not_admin = store
        .set_user_admin(ann.id, false)
        .await
        .expect("set_user_admin");
    assert_eq!(not_admin, ann);

    let renamed = store
        .set_display_name(ann.id, "Ann Ünïcode 名前")
        .await
        .expect("set_display_name");
    let ann = User {
        display_name: "Ann Ünïcode 名前".to_owned(),
        ..ann
    };
    assert_eq!(renamed, ann);

    store
        .touch_login(ann.id, at + 5)
        .await
        .expect("touch_login");
    let ann = User {
        last_login_at_ms: Some(at + 5),
        ..ann
    };
    assert_eq!(user_by_id(store, ann.id).await, ann);
    assert_eq!(
        user_by_id(store, bob.id).await,
        bob,
        "changing one user changed another"
    );

    let missing = &MISSING.to_string();
    expect_not_found(
        store.set_password(MISSING, "x").await,
        missing,
        "set_password of a missing user",
    );
    expect_not_found(
        store.set_user_disabled(MISSING, Some(at)).await,
        missing,
        "disabling a missing user",
    );
    expect_not_found(
        store.set_user_admin(MISSING, true).await,
        missing,
        "set_user_admin of a missing user",
    );
    expect_not_found(
        store.set_display_name(MISSING, "x").await,
        missing,
        "set_display_name of a missing user",
    );
    expect_not_found(
        store.touch_login(MISSING, at).await,
        missing,
        "touch_login of a missing user",
    );
}

/// Sessions: stored and found as given; revoked once (the first time stays), all of a user's open
/// ones at once, and purged once expired.
pub async fn sessions_create_revoke_purge(store: &dyn Store) {
    let ann = user(store, "ann").await;
    let bob = user(store, "bob").await;
    let now = now_ms();
    let full = new_session(ann.id, now, now + HOUR_MS);
    store
        .create_session(full.clone())
        .await
        .expect("create_session");
    assert_eq!(session(store, &full.id_hash).await, Some(full.clone()));
    let bare = SessionRecord {
        ip: None,
        user_agent: None,
        ..new_session(ann.id, now, now + HOUR_MS)
    };
    store
        .create_session(bare.clone())
        .await
        .expect("create_session without client details");
    assert_eq!(session(store, &bare.id_hash).await, Some(bare.clone()));
    let expired = new_session(ann.id, now - 2 * HOUR_MS, now - 1_000);
    store
        .create_session(expired.clone())
        .await
        .expect("create_session");
    let bobs = new_session(bob.id, now, now + HOUR_MS);
    store
        .create_session(bobs.clone())
        .await
        .expect("create_session");
    assert_eq!(session(store, &secret_hash()).await, None);

    expect_conflict(
        store
            .create_session(SessionRecord {
                csrf_token: unique("csrf"),
                ..full.clone()
            })
            .await,
        "hash",
        "a duplicate session hash",
    );
    let orphan = new_session(MISSING, now, now + HOUR_MS);
    let orphan_hash = orphan.id_hash.clone();
    expect_not_found(
        store.create_session(orphan).await,
        &MISSING.to_string(),
        "a session of a missing user",
    );
    assert_eq!(session(store, &orphan_hash).await, None);

    store
        .revoke_session(&full.id_hash, now + 10)
        .await
        .expect("revoke_session");
    let full = SessionRecord {
        revoked_at_ms: Some(now + 10),
        ..full
    };
    assert_eq!(session(store, &full.id_hash).await, Some(full.clone()));
    store
        .revoke_session(&full.id_hash, now + 20)
        .await
        .expect("revoke_session again");
    assert_eq!(
        session(store, &full.id_hash).await,
        Some(full.clone()),
        "revoking twice must keep the first time"
    );
    store
        .revoke_session(&secret_hash(), now)
        .await
        .expect("signing out of an unknown session is not an error");

    // Open: neither revoked (full) nor expired (expired); bob's stay open.
    assert_eq!(
        store
            .revoke_user_sessions(ann.id, now + 30)
            .await
            .expect("revoke_user_sessions"),
        1
    );
    let bare = SessionRecord {
        revoked_at_ms: Some(now + 30),
        ..bare
    };
    assert_eq!(session(store, &bare.id_hash).await, Some(bare.clone()));
    assert_eq!(session(store, &full.id_hash).await, Some(full.clone()));
    assert_eq!(
        session(store, &expired.id_hash).await,
        Some(expired.clone())
    );
    assert_eq!(session(store, &bobs.id_hash).await, Some(bobs.clone()));
    assert_eq!(
        store
            .revoke_user_sessions(ann.id, now + 40)
            .await
            .expect("revoke_user_sessions again"),
        0
    );

    // Long expired: no other step makes sessions this old.
    let mut old = Vec::new();
    for expires in [1_000, 2_000, 5_000] {
        let s = new_session(ann.id, 500, expires);
        store
            .create_session(s.clone())
            .await
            .expect("create_session");
        old.push(s);
    }
    assert_eq!(
        store.purge_sessions(3_000).await.expect("purge_sessions"),
        2
    );
    assert_eq!(session(store, &old[0].id_hash).await, None);
    assert_eq!(session(store, &old[1].id_hash).await, None);
    assert_eq!(session(store, &old[2].id_hash).await, Some(old[2].clone()));
    assert_eq!(
        store.purge_sessions(3_000).await.expect("purge_sessions"),
        0
    );
    assert_eq!(
        store.purge_sessions(now).await.expect("purge_sessions"),
        2,
        "purging at now removes the two expired sessions, and only those"
    );
    assert_eq!(session(store, &old[2].id_hash).await, None);
    assert_eq!(session(store, &expired.id_hash).await, None);
    assert_eq!(session(store, &full.id_hash).await, Some(full));
    assert_eq!(session(store, &bare.id_hash).await, Some(bare));
    assert_eq!(session(store, &bobs.id_hash).await, Some(bobs));
}

/// Personal access tokens: create, find, list newest first, revoke only by their owner (the first
/// time stays), and `last_used_at` only moves forward.
pub async fn access_tokens_create_list_revoke_touch(store: &dyn Store) {
    let owner = user(store, "owner").await;
    let stranger = user(store, "stranger").await;
    let before = now_ms();
    let new = new_token(owner.id, Some(before + 30 * DAY_MS));
    let first = store
        .create_access_token(new.clone())
        .await
        .expect("create_access_token");
    assert_eq!(first.user_id, owner.id);
    assert_eq!(first.name, new.name);
    assert_eq!(first.token_hash, new.token_hash);
    assert_eq!(first.prefix, new.prefix);
    assert_eq!(first.expires_at_ms, new.expires_at_ms);
    assert_eq!(first.revoked_at_ms, None);
    assert_eq!(first.last_used_at_ms, None);
    assert!(first.created_at_ms >= before && first.created_at_ms <= now_ms());
    assert_eq!(
        store
            .access_token_by_hash(&new.token_hash)
            .await
            .expect("access_token_by_hash"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .access_token_by_hash(&secret_hash())
            .await
            .expect("access_token_by_hash"),
        None
    );
    let second = store
        .create_access_token(new_token(owner.id, None))
        .await
        .expect("create_access_token without expiry");
    assert_eq!(second.expires_at_ms, None);
    assert_eq!(
        store
            .list_access_tokens(owner.id)
            .await
            .expect("list_access_tokens"),
        vec![second.clone(), first.clone()],
        "a user's tokens, newest first"
    );
    assert!(
        store
            .list_access_tokens(stranger.id)
            .await
            .expect("list_access_tokens")
            .is_empty()
    );

    expect_conflict(
        store
            .create_access_token(NewAccessToken {
                name: unique("dup"),
                ..new
            })
            .await,
        "hash",
        "a duplicate token hash",
    );
    let orphan = new_token(MISSING, None);
    let orphan_hash = orphan.token_hash.clone();
    expect_not_found(
        store.create_access_token(orphan).await,
        &MISSING.to_string(),
        "a token of a missing user",
    );
    assert_eq!(
        store
            .access_token_by_hash(&orphan_hash)
            .await
            .expect("access_token_by_hash"),
        None
    );

    let at = now_ms();
    expect_not_found(
        store.revoke_access_token(stranger.id, first.id, at).await,
        &first.id.to_string(),
        "revoking another user's token",
    );
    assert_eq!(
        store
            .access_token_by_hash(&first.token_hash)
            .await
            .expect("access_token_by_hash"),
        Some(first.clone()),
        "another user revoked the token"
    );
    let revoked = store
        .revoke_access_token(owner.id, first.id, at)
        .await
        .expect("revoke_access_token");
    assert_eq!(
        revoked,
        AccessToken {
            revoked_at_ms: Some(at),
            ..first.clone()
        }
    );
    let again = store
        .revoke_access_token(owner.id, first.id, at + 60_000)
        .await
        .expect("revoke again");
    assert_eq!(
        again.revoked_at_ms,
        Some(at),
        "revoking twice must keep the first time"
    );
    expect_not_found(
        store.revoke_access_token(owner.id, MISSING, at).await,
        &MISSING.to_string(),
        "revoking a missing token",
    );

    async fn last_used(store: &dyn Store, hash: &str) -> Option<i64> {
        store
            .access_token_by_hash(hash)
            .await
            .expect("access_token_by_hash")
            .expect("token")
            .last_used_at_ms
    }
    store
        .touch_access_token(second.id, at)
        .await
        .expect("touch_access_token");
    assert_eq!(last_used(store, &second.token_hash).await, Some(at));
    store
        .touch_access_token(second.id, at - 5_000)
        .await
        .expect("touch_access_token");
    assert_eq!(
        last_used(store, &second.token_hash).await,
        Some(at),
        "an older use moved last_used_at back"
    );
    store
        .touch_access_token(second.id, at + 5_000)
        .await
        .expect("touch_access_token");
    assert_eq!(last_used(store, &second.token_hash).await, Some(at + 5_000));
    assert_eq!(
        last_used(store, &first.token_hash).await,
        None,
        "touching one token touched another"
    );
    store
        .touch_access_token(MISSING, at)
        .await
        .expect("touching a missing token is not an error");
}

/// Membership: roles set and changed (joining time kept), listed by e-mail and by team name; a
/// team never loses its last owner, by a role change or a removal.
pub async fn members_keep_an_owner(store: &dyn Store) {
    let team = team(store).await;
    // Labels in e-mail order.
    let ann = user(store, "ann").await;
    let bob = user(store, "bob").await;
    let cyd = user(store, "cyd").await;

    expect_not_found(
        store.set_member(MISSING, ann.id, Role::Owner).await,
        &MISSING.to_string(),
        "a member of a missing team",
    );
    expect_not_found(
        store.set_member(team.id, MISSING_TOO, Role::Owner).await,
        &MISSING_TOO.to_string(),
        "a missing user as a member",
    );
    assert!(
        store
            .list_members(team.id)
            .await
            .expect("list_members")
            .is_empty()
    );

    // A team without an owner yet (made by an instance admin) takes members of any role.
    let before = now_ms();
    let bob_admin = store
        .set_member(team.id, bob.id, Role::Admin)
        .await
        .expect("set_member on a team without owner");
    assert_eq!(
        bob_admin,
        Membership {
            team_id: team.id,
            team_name: team.name.clone(),
            user_id: bob.id,
            email: bob.email.clone(),
            display_name: bob.display_name.clone(),
            role: Role::Admin,
            joined_at_ms: bob_admin.joined_at_ms,
        }
    );
    assert!(bob_admin.joined_at_ms >= before && bob_admin.joined_at_ms <= now_ms());
    let ann_owner = store
        .set_member(team.id, ann.id, Role::Owner)
        .await
        .expect("set_member owner");
    assert_eq!(ann_owner.role, Role::Owner);

    expect_conflict(
        store.set_member(team.id, ann.id, Role::Admin).await,
        &team.name,
        "demoting the last owner",
    );
    expect_conflict(
        store.remove_member(team.id, ann.id).await,
        &team.name,
        "removing the last owner",
    );
    assert_eq!(
        store.list_members(team.id).await.expect("list_members"),
        vec![ann_owner.clone(), bob_admin.clone()],
        "members by e-mail, unchanged by the refusals"
    );
    assert_eq!(
        store
            .set_member(team.id, ann.id, Role::Owner)
            .await
            .expect("the same role again"),
        ann_owner
    );

    // With a second owner, the first may step down, and the second becomes the last.
    let bob_owner = store
        .set_member(team.id, bob.id, Role::Owner)
        .await
        .expect("promote");
    assert_eq!(
        bob_owner,
        Membership {
            role: Role::Owner,
            ..bob_admin.clone()
        },
        "a role change keeps the joining time"
    );
    let ann_viewer = store
        .set_member(team.id, ann.id, Role::Viewer)
        .await
        .expect("demoting one of two owners");
    assert_eq!(
        ann_viewer,
        Membership {
            role: Role::Viewer,
            ..ann_owner.clone()
        }
    );
    expect_conflict(
        store.set_member(team.id, bob.id, Role::Member).await,
        &team.name,
        "demoting the new last owner",
    );
    expect_conflict(
        store.remove_member(team.id, bob.id).await,
        &team.name,
        "removing the new last owner",
    );

    // Everyone else comes and goes freely.
    let cyd_member = store
        .set_member(team.id, cyd.id, Role::Member)
        .await
        .expect("set_member");
    assert_eq!(
        store.list_members(team.id).await.expect("list_members"),
        vec![ann_viewer, bob_owner.clone(), cyd_member]
    );
    store
        .remove_member(team.id, ann.id)
        .await
        .expect("remove_member");
    store
        .remove_member(team.id, cyd.id)
        .await
        .expect("remove_member");
    expect_not_found(
        store.remove_member(team.id, ann.id).await,
        &ann.id.to_string(),
        "removing a former member",
    );
    expect_not_found(
        store.remove_member(MISSING, ann.id).await,
        &MISSING.to_string(),
        "removing from a missing team",
    );
    assert_eq!(
        store.list_members(team.id).await.expect("list_members"),
        vec![bob_owner.clone()]
    );
    assert!(
        store
            .list_members(MISSING)
            .await
            .expect("list_members of a missing team")
            .is_empty()
    );

    let second = self::team(store).await;
    let bob_viewer = store
        .set_member(second.id, bob.id, Role::Viewer)
        .await
        .expect("set_member");
    let mut expected = vec![bob_owner, bob_viewer];
    expected.sort_by(|a, b| a.team_name.cmp(&b.team_name));
    assert_eq!(
        store.memberships_of(bob.id).await.expect("memberships_of"),
        expected,
        "a user's memberships, by team name"
    );
    assert!(
        store
            .memberships_of(ann.id)
            .await
            .expect("memberships_of")
            .is_empty()
    );
}

/// Two owners demoted or removed at the same moment: exactly one change wins, one owner stays.
pub async fn concurrent_changes_keep_an_owner(store: &dyn Store) {
    fn one_refused(outcomes: [Result<(), StoreError>; 2], what: &str) {
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::Conflict(_))))
            .count();
        let done = outcomes.iter().filter(|o| o.is_ok()).count();
        assert!(
            refused == 1 && done == 1,
            "{what}: expected one success and one Conflict, got {outcomes:?}"
        );
    }
    async fn owners(store: &dyn Store, team_id: i64) -> usize {
        store
            .list_members(team_id)
            .await
            .expect("list_members")
            .iter()
            .filter(|m| m.role == Role::Owner)
            .count()
    }
    for _ in 0..4 {
        let team = team(store).await;
        let ann = user(store, "ann").await;
        let bob = user(store, "bob").await;
        for u in [&ann, &bob] {
            store
                .set_member(team.id, u.id, Role::Owner)
                .await
                .expect("set_member");
        }
        let (a, b) = tokio::join!(
            store.set_member(team.id, ann.id, Role::Admin),
            store.set_member(team.id, bob.id, Role::Member),
        );
        one_refused([a.map(|_| ()), b.map(|_| ())], "concurrent demotions");
        assert_eq!(owners(store, team.id).await, 1);

        for u in [&ann, &bob] {
            store
                .set_member(team.id, u.id, Role::Owner)
                .await
                .expect("set_member");
        }
        let (a, b) = tokio::join!(
            store.remove_member(team.id, ann.id),
            store.remove_member(team.id, bob.id),
        );
        one_refused([a, b], "concurrent removals");
        assert_eq!(owners(store, team.id).await, 1);
        assert_eq!(
            store
                .list_members(team.id)
                .await
                .expect("list_members")
                .len(),
            1
        );
    }
}

/// Invitations: create, find, list newest first; accepted once only, also by racing callers;
/// deleted once.
pub async fn invitations_accept_once(store: &dyn Store) {
    let team = team(store).await;
    let other_team = self::team(store).await;
    let inviter = user(store, "inviter").await;
    let before = now_ms();
    let new = new_invitation(team.id, Some(inviter.id));
    let first = store
        .create_invitation(new.clone())
        .await
        .expect("create_invitation");
    assert_eq!(first.token_hash, new.token_hash);
    assert_eq!(first.email, new.email);
    assert_eq!(first.team_id, team.id);
    assert_eq!(first.team_name, team.name);
    assert_eq!(first.role, Role::Member);
    assert_eq!(first.invited_by, Some(inviter.id));
    assert_eq!(first.expires_at_ms, new.expires_at_ms);
    assert_eq!(first.accepted_at_ms, None);
    assert!(first.created_at_ms >= before && first.created_at_ms <= now_ms());
    assert_eq!(
        store
            .invitation_by_hash(&first.token_hash)
            .await
            .expect("invitation_by_hash"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .invitation_by_hash(&secret_hash())
            .await
            .expect("invitation_by_hash"),
        None
    );
    let second = store
        .create_invitation(NewInvitation {
            role: Role::Owner,
            ..new_invitation(team.id, None)
        })
        .await
        .expect("create_invitation without inviter");
    assert_eq!(second.invited_by, None);
    assert_eq!(second.role, Role::Owner);
    let third = store
        .create_invitation(new_invitation(other_team.id, Some(inviter.id)))
        .await
        .expect("create_invitation");
    assert_eq!(
        store
            .list_invitations(Some(team.id))
            .await
            .expect("list_invitations"),
        vec![second.clone(), first.clone()],
        "a team's invitations, newest first"
    );
    let all = store
        .list_invitations(None)
        .await
        .expect("list_invitations");
    for i in [&first, &second, &third] {
        assert!(all.contains(i), "list_invitations(None) lacks {}", i.id);
    }
    assert!(
        all.windows(2)
            .all(|w| (w[0].created_at_ms, w[0].id) > (w[1].created_at_ms, w[1].id)),
        "list_invitations is not newest first"
    );

    expect_not_found(
        store.create_invitation(new_invitation(MISSING, None)).await,
        &MISSING.to_string(),
        "an invitation to a missing team",
    );
    expect_not_found(
        store
            .create_invitation(new_invitation(team.id, Some(MISSING_TOO)))
            .await,
        &MISSING_TOO.to_string(),
        "an invitation by a missing user",
    );
    expect_conflict(
        store
            .create_invitation(NewInvitation {
                email: format!("{}@example.com", unique("other")),
                ..new
            })
            .await,
        "hash",
        "a duplicate invitation hash",
    );

    let at = now_ms();
    assert!(
        store
            .mark_invitation_accepted(first.id, at)
            .await
            .expect("mark_invitation_accepted"),
        "the first acceptance wins"
    );
    assert!(
        !store
            .mark_invitation_accepted(first.id, at + 1_000)
            .await
            .expect("mark_invitation_accepted again"),
        "an invitation was accepted twice"
    );
    assert_eq!(
        store
            .invitation_by_hash(&first.token_hash)
            .await
            .expect("invitation_by_hash")
            .and_then(|i| i.accepted_at_ms),
        Some(at),
        "the second acceptance changed the time"
    );
    let (a, b) = tokio::join!(
        store.mark_invitation_accepted(second.id, at),
        store.mark_invitation_accepted(second.id, at + 1),
    );
    let wins = [a, b]
        .into_iter()
        .map(|r| r.expect("racing mark_invitation_accepted"))
        .filter(|won| *won)
        .count();
    assert_eq!(wins, 1, "racing acceptances: exactly one must win");
    assert!(
        !store
            .mark_invitation_accepted(MISSING, at)
            .await
            .expect("accepting a missing invitation"),
        "a missing invitation was accepted"
    );

    store
        .delete_invitation(third.id)
        .await
        .expect("delete_invitation");
    assert_eq!(
        store
            .invitation_by_hash(&third.token_hash)
            .await
            .expect("invitation_by_hash"),
        None
    );
    expect_not_found(
        store.delete_invitation(third.id).await,
        &third.id.to_string(),
        "deleting a deleted invitation",
    );
}

/// What `append_audit` is given for one story entry.
fn audit_entry(
    actor: &(String, Option<i64>),
    action: &str,
    entity_type: &str,
    team_id: Option<i64>,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.0.clone(),
        actor_user_id: actor.1,
        action: action.to_owned(),
        entity_type: entity_type.to_owned(),
        entity_id: Some(unique("entity")),
        summary: format!("{} did {action} on a {entity_type}", actor.0),
        ip: Some("192.0.2.10".to_owned()),
        team_id,
    }
}

/// The audit log: every field round-trips; each filter alone and combined gives exactly the
/// expected entries, newest first, with the total count; pages cut the same list.
pub async fn audit_filters_and_pages(store: &dyn Store) {
    async fn list(
        store: &dyn Store,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> (Vec<AuditEntry>, i64) {
        store
            .list_audit(filter, limit, offset)
            .await
            .expect("list_audit")
    }
    async fn ids(store: &dyn Store, filter: AuditFilter) -> Vec<i64> {
        let (entries, total) = list(store, &filter, 1_000, 0).await;
        assert_eq!(
            i64::try_from(entries.len()).expect("fits"),
            total,
            "the total of {filter:?} differs from its entries"
        );
        entries.iter().map(|e| e.id).collect()
    }
    async fn pause() {
        // Timestamps are milliseconds: make the next one strictly later.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    let baseline = list(store, &AuditFilter::default(), 0, 0).await.1;
    let t1 = self::team(store).await.id;
    let t2 = self::team(store).await.id;
    let ann = user(store, "ann").await;
    let bob = user(store, "bob").await;
    let ann_actor = (format!("user:{}", ann.email), Some(ann.id));
    let bob_actor = (format!("user:{}", bob.email), Some(bob.id));
    let guess = (format!("{}@example.com", unique("guess")), None);
    let tag = unique("audit");
    let (create, delete, failed) = (
        format!("{tag}.create"),
        format!("{tag}.delete"),
        format!("{tag}.login_failed"),
    );
    let (key, route, account) = (
        format!("{tag}-key"),
        format!("{tag}-route"),
        format!("{tag}-user"),
    );

    pause().await;
    let t0 = now_ms();
    let mut entries = Vec::new();
    for new in [
        audit_entry(&ann_actor, &create, &key, Some(t1)),
        audit_entry(&bob_actor, &delete, &route, Some(t2)),
        audit_entry(&ann_actor, &create, &route, None),
    ] {
        let before = now_ms();
        let entry = store.append_audit(new.clone()).await.expect("append_audit");
        assert!(entry.ts_ms >= before && entry.ts_ms <= now_ms());
        assert_eq!(
            entry,
            AuditEntry {
                id: entry.id,
                ts_ms: entry.ts_ms,
                actor: new.actor,
                actor_user_id: new.actor_user_id,
                action: new.action,
                entity_type: new.entity_type,
                entity_id: new.entity_id,
                summary: new.summary,
                ip: new.ip,
                team_id: new.team_id,
            }
        );
        entries.push(entry);
    }
    pause().await;
    let middle = now_ms();
    let bare = NewAuditEntry {
        entity_id: None,
        ip: None,
        ..audit_entry(&guess, &failed, &account, None)
    };
    for new in [
        audit_entry(&bob_actor, &create, &key, Some(t1)),
        bare,
        audit_entry(&ann_actor, &delete, &key, Some(t2)),
    ] {
        let entry = store.append_audit(new).await.expect("append_audit");
        entries.push(entry);
    }
    assert!(
        entries.windows(2).all(|w| w[0].id < w[1].id),
        "audit ids do not grow"
    );
    let e: Vec<i64> = entries.iter().map(|e| e.id).collect();
    let (e1, e2, e3, e4, e5, e6) = (e[0], e[1], e[2], e[3], e[4], e[5]);

    // Everything from t0: the six, newest first, every field as stored.
    let mine = AuditFilter {
        from_ms: Some(t0),
        ..AuditFilter::default()
    };
    let (page, total) = list(store, &mine, 100, 0).await;
    assert_eq!(total, 6);
    let mut newest_first = entries.clone();
    newest_first.reverse();
    assert_eq!(page, newest_first);
    assert_eq!(page[1].entity_id, None);
    assert_eq!(page[1].ip, None);
    assert_eq!(page[1].actor_user_id, None);
    assert_eq!(
        list(store, &AuditFilter::default(), 0, 0).await.1,
        baseline + 6
    );

    // Pages.
    for (offset, want) in [(0, vec![e6, e5]), (2, vec![e4, e3]), (4, vec![e2, e1])] {
        let (page, total) = list(store, &mine, 2, offset).await;
        assert_eq!(total, 6, "the total does not depend on the page");
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            want,
            "page at offset {offset}"
        );
    }
    let (page, total) = list(store, &mine, 4, 4).await;
    assert_eq!((page.len(), total), (2, 6), "a short last page");
    let (page, total) = list(store, &mine, 2, 6).await;
    assert!(page.is_empty() && total == 6, "a page past the end");
    let (page, total) = list(store, &mine, 0, 0).await;
    assert!(page.is_empty() && total == 6, "a zero limit still counts");

    // Each filter alone.
    let f = AuditFilter::default;
    let cases: Vec<(&str, AuditFilter, Vec<i64>)> = vec![
        (
            "action",
            AuditFilter {
                action: Some(create.clone()),
                ..f()
            },
            vec![e4, e3, e1],
        ),
        (
            "entity type",
            AuditFilter {
                entity_type: Some(key.clone()),
                ..f()
            },
            vec![e6, e4, e1],
        ),
        (
            "actor",
            AuditFilter {
                actor: Some(ann_actor.0.clone()),
                ..f()
            },
            vec![e6, e3, e1],
        ),
        (
            "failed sign-in actor",
            AuditFilter {
                actor: Some(guess.0.clone()),
                ..f()
            },
            vec![e5],
        ),
        (
            "from",
            AuditFilter {
                from_ms: Some(middle),
                ..f()
            },
            vec![e6, e5, e4],
        ),
        (
            "from and to",
            AuditFilter {
                from_ms: Some(t0),
                to_ms: Some(middle),
                ..f()
            },
            vec![e3, e2, e1],
        ),
        (
            "one team",
            AuditFilter {
                team_ids: Some(vec![t1]),
                ..f()
            },
            vec![e4, e1],
        ),
        (
            "two teams",
            AuditFilter {
                team_ids: Some(vec![t1, t2]),
                ..f()
            },
            vec![e6, e4, e2, e1],
        ),
        (
            "a team or the acting user",
            AuditFilter {
                team_ids: Some(vec![t1]),
                or_actor_user_id: Some(ann.id),
                ..f()
            },
            vec![e6, e4, e3, e1],
        ),
        (
            "no team",
            AuditFilter {
                team_ids: Some(Vec::new()),
                ..f()
            },
            vec![],
        ),
        (
            "no team but the acting user",
            AuditFilter {
                team_ids: Some(Vec::new()),
                or_actor_user_id: Some(bob.id),
                ..f()
            },
            vec![e4, e2],
        ),
        // Combined.
        (
            "action and actor",
            AuditFilter {
                action: Some(create.clone()),
                actor: Some(ann_actor.0.clone()),
                ..f()
            },
            vec![e3, e1],
        ),
        (
            "entity type and team",
            AuditFilter {
                entity_type: Some(key.clone()),
                team_ids: Some(vec![t1]),
                ..f()
            },
            vec![e4, e1],
        ),
        (
            "action and from",
            AuditFilter {
                action: Some(create.clone()),
                from_ms: Some(middle),
                ..f()
            },
            vec![e4],
        ),
        (
            "actor, entity type and team",
            AuditFilter {
                actor: Some(bob_actor.0.clone()),
                entity_type: Some(route.clone()),
                team_ids: Some(vec![t2]),
                ..f()
            },
            vec![e2],
        ),
        (
            "team or user, with action and time",
            AuditFilter {
                action: Some(delete.clone()),
                from_ms: Some(t0),
                to_ms: Some(middle),
                team_ids: Some(vec![t1]),
                or_actor_user_id: Some(bob.id),
                ..f()
            },
            vec![e2],
        ),
        (
            "every filter, nothing matching",
            AuditFilter {
                action: Some(create.clone()),
                entity_type: Some(key.clone()),
                actor: Some(ann_actor.0.clone()),
                from_ms: Some(middle),
                to_ms: None,
                team_ids: Some(vec![t1, t2]),
                or_actor_user_id: Some(ann.id),
            },
            vec![],
        ),
    ];
    for (what, filter, want) in cases {
        assert_eq!(ids(store, filter).await, want, "audit filter: {what}");
    }
    // Before `middle`: the story's first three and every older entry.
    let (page, total) = list(
        store,
        &AuditFilter {
            to_ms: Some(middle),
            ..f()
        },
        3,
        0,
    )
    .await;
    assert_eq!(total, baseline + 3);
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![e3, e2, e1]
    );
    // A team filter with paging.
    let two_teams = AuditFilter {
        team_ids: Some(vec![t1, t2]),
        ..f()
    };
    let (page, total) = list(store, &two_teams, 3, 1).await;
    assert_eq!(total, 4);
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![e4, e2, e1]
    );
}

/// Settings: missing until set, then replaced by the next value, gone once deleted.
pub async fn settings_overwrite(store: &dyn Store) {
    let name = unique("setting");
    let other = unique("setting");
    assert_eq!(store.setting(&name).await.expect("setting"), None);
    store
        .set_setting(&name, r#"{"quota":100}"#)
        .await
        .expect("set_setting");
    store
        .set_setting(&other, "\"unchanged\"")
        .await
        .expect("set_setting");
    assert_eq!(
        store.setting(&name).await.expect("setting").as_deref(),
        Some(r#"{"quota":100}"#)
    );
    store
        .set_setting(&name, r#"{"quota":250,"note":"ünïcode"}"#)
        .await
        .expect("set_setting again");
    assert_eq!(
        store.setting(&name).await.expect("setting").as_deref(),
        Some(r#"{"quota":250,"note":"ünïcode"}"#)
    );
    assert_eq!(
        store.setting(&other).await.expect("setting").as_deref(),
        Some("\"unchanged\"")
    );
    // Deleting removes only that setting; deleting a missing one is not an error.
    store.delete_setting(&name).await.expect("delete_setting");
    assert_eq!(store.setting(&name).await.expect("setting"), None);
    store
        .delete_setting(&name)
        .await
        .expect("delete_setting again");
    assert_eq!(
        store.setting(&other).await.expect("setting").as_deref(),
        Some("\"unchanged\"")
    );
}
