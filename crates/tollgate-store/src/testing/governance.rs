//! The story of limits, key model allow-lists and alert delivery records: owners that must exist,
//! limits that go with their owner, once-only claims and leases that hold across callers.

use tollgate_core::time::now_ms;

use super::{expect_conflict, expect_not_found, key, revision, route, team, unique};
use crate::{AlertDelivery, LimitOwner, NewAlertChannel, Store};

/// An id no step creates.
const MISSING: i64 = 987_654_321;

/// Runs every step.
pub async fn governance_story(store: &dyn Store) {
    limits_follow_their_owner(store).await;
    key_models_set_and_clear(store).await;
    alert_channels_and_deliveries(store).await;
    claims_and_leases(store).await;
}

async fn limits_follow_their_owner(store: &dyn Store) {
    let t = team(store).await;
    let k = key(store, t.id).await;
    let r = route(store, Some(t.id)).await;
    let before = revision(store).await;
    let instance = store
        .create_limit(LimitOwner::Instance, r#"{"kind":"requests"}"#, "cli:story")
        .await
        .expect("instance limit");
    assert_eq!(instance.owner, LimitOwner::Instance);
    assert!(
        revision(store).await > before,
        "a new limit bumps the revision"
    );
    let on_team = store
        .create_limit(LimitOwner::Team(t.id), "{}", "user:1")
        .await
        .expect("team limit");
    let on_key = store
        .create_limit(LimitOwner::Key(k.id), "{}", "user:1")
        .await
        .expect("key limit");
    let on_route = store
        .create_limit(LimitOwner::Route(r.id), "{}", "user:1")
        .await
        .expect("route limit");
    assert_eq!(on_team.owner, LimitOwner::Team(t.id));
    assert_eq!(on_key.owner, LimitOwner::Key(k.id));
    assert_eq!(on_route.owner, LimitOwner::Route(r.id));
    assert_eq!(on_key.created_by, "user:1");

    for (owner, naming) in [
        (LimitOwner::Team(MISSING), "team"),
        (LimitOwner::Key(MISSING), "key"),
        (LimitOwner::Route(MISSING), "route"),
    ] {
        expect_not_found(
            store.create_limit(owner, "{}", "x").await,
            naming,
            "a limit on a missing owner",
        );
    }

    let updated = store
        .update_limit(on_key.id, r#"{"max":5}"#)
        .await
        .expect("update_limit");
    assert_eq!(updated.spec, r#"{"max":5}"#);
    assert_eq!(updated.owner, on_key.owner);
    assert!(updated.updated_at_ms >= on_key.updated_at_ms);
    assert_eq!(
        store.get_limit(on_key.id).await.expect("get_limit"),
        Some(updated.clone())
    );
    expect_not_found(
        store.update_limit(MISSING, "{}").await,
        "limit",
        "update a missing limit",
    );

    let ids: Vec<i64> = store
        .list_limits()
        .await
        .expect("list_limits")
        .iter()
        .map(|l| l.id)
        .collect();
    for l in [&instance, &on_team, &on_key, &on_route] {
        assert!(ids.contains(&l.id), "limit {} listed", l.id);
    }

    // A key's, a route's and a team's limits go with them.
    store.delete_key(k.id).await.expect("delete_key");
    assert_eq!(store.get_limit(on_key.id).await.expect("get"), None);
    store.delete_route(&r.name).await.expect("delete_route");
    assert_eq!(store.get_limit(on_route.id).await.expect("get"), None);
    store.delete_team(t.id).await.expect("delete_team");
    assert_eq!(store.get_limit(on_team.id).await.expect("get"), None);

    store.delete_limit(instance.id).await.expect("delete_limit");
    assert_eq!(store.get_limit(instance.id).await.expect("get"), None);
    expect_not_found(
        store.delete_limit(instance.id).await,
        "limit",
        "delete a limit twice",
    );
}

async fn key_models_set_and_clear(store: &dyn Store) {
    let t = team(store).await;
    let k = key(store, t.id).await;
    let before = revision(store).await;
    store
        .set_key_models(k.id, Some("gpt-4o*,claude-*"))
        .await
        .expect("set_key_models");
    assert!(
        revision(store).await > before,
        "model patterns bump the revision"
    );
    let listed = store.key_models().await.expect("key_models");
    assert!(listed.contains(&(k.id, "gpt-4o*,claude-*".to_owned())));
    store
        .set_key_models(k.id, Some("o3"))
        .await
        .expect("replace");
    assert!(
        store
            .key_models()
            .await
            .expect("key_models")
            .contains(&(k.id, "o3".to_owned()))
    );
    store.set_key_models(k.id, None).await.expect("clear");
    assert!(
        !store
            .key_models()
            .await
            .expect("key_models")
            .iter()
            .any(|(id, _)| *id == k.id)
    );
    expect_not_found(
        store.set_key_models(MISSING, Some("x")).await,
        "key",
        "models of a missing key",
    );
    store
        .set_key_models(k.id, Some("gpt-*"))
        .await
        .expect("set again");
    store.delete_key(k.id).await.expect("delete_key");
    assert!(
        !store
            .key_models()
            .await
            .expect("key_models")
            .iter()
            .any(|(id, _)| *id == k.id),
        "a deleted key's patterns go with it"
    );
}

async fn alert_channels_and_deliveries(store: &dyn Store) {
    let name = unique("channel");
    let channel = store
        .create_alert_channel(NewAlertChannel {
            name: name.clone(),
            format: "generic".to_owned(),
            sealed_url: vec![4, 5, 6],
            url_display: "https://hooks.example.com/T0…/****".to_owned(),
            sealed_secret: vec![1, 2, 3],
            created_by: "user:1".to_owned(),
        })
        .await
        .expect("create_alert_channel");
    assert_eq!(channel.name, name);
    assert_eq!(channel.sealed_secret, vec![1, 2, 3]);
    assert_eq!(channel.sealed_url, Some(vec![4, 5, 6]));
    assert_eq!(channel.url_display, "https://hooks.example.com/T0…/****");
    assert_eq!(channel.legacy_url, None, "a new channel holds no plain URL");
    let shown = format!("{channel:?}");
    assert!(
        !shown.contains("[4, 5, 6]"),
        "Debug leaves the sealed bytes out: {shown}"
    );
    expect_conflict(
        store
            .create_alert_channel(NewAlertChannel {
                name: name.clone(),
                format: "slack".to_owned(),
                sealed_url: vec![8],
                url_display: "https://x.example/".to_owned(),
                sealed_secret: vec![9],
                created_by: String::new(),
            })
            .await,
        &name,
        "a channel name taken twice",
    );
    assert_eq!(
        store
            .get_alert_channel(channel.id)
            .await
            .expect("get_alert_channel"),
        Some(channel.clone())
    );
    assert!(
        store
            .list_alert_channels()
            .await
            .expect("list")
            .contains(&channel)
    );
    store
        .seal_alert_channel_url(channel.id, &[7, 7], "https://hooks.example.com/x")
        .await
        .expect("seal_alert_channel_url");
    let resealed = store
        .get_alert_channel(channel.id)
        .await
        .expect("get_alert_channel")
        .expect("still there");
    assert_eq!(resealed.sealed_url, Some(vec![7, 7]));
    assert_eq!(resealed.url_display, "https://hooks.example.com/x");
    assert_eq!(resealed.legacy_url, None);
    expect_not_found(
        store.seal_alert_channel_url(MISSING, &[1], "x").await,
        "alert channel",
        "seal the URL of a missing channel",
    );

    let base = now_ms();
    for attempt in 1..=3 {
        let status = if attempt == 3 { "delivered" } else { "failed" };
        store
            .record_alert_delivery(&AlertDelivery {
                id: 0,
                channel_id: channel.id,
                dedup_key: "budget:1:0:80".to_owned(),
                kind: "budget_crossing".to_owned(),
                summary: "team a used 80 %".to_owned(),
                attempt,
                at_ms: base + i64::from(attempt),
                status: status.to_owned(),
                http_status: Some(if attempt == 3 { 200 } else { 500 }),
                latency_ms: 12,
                error: (attempt < 3).then(|| "HTTP 500".to_owned()),
            })
            .await
            .expect("record_alert_delivery");
    }
    let newest = store
        .list_alert_deliveries(Some(channel.id), 2)
        .await
        .expect("list deliveries");
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0].attempt, 3);
    assert_eq!(newest[0].status, "delivered");
    assert_eq!(newest[0].http_status, Some(200));
    assert_eq!(newest[1].attempt, 2);
    assert_eq!(newest[1].error.as_deref(), Some("HTTP 500"));
    assert!(
        store
            .list_alert_deliveries(None, 100)
            .await
            .expect("all deliveries")
            .iter()
            .filter(|d| d.channel_id == channel.id)
            .count()
            == 3
    );
    expect_not_found(
        store
            .record_alert_delivery(&AlertDelivery {
                channel_id: MISSING,
                ..newest[0].clone()
            })
            .await,
        "channel",
        "a delivery to a missing channel",
    );

    store
        .delete_alert_channel(channel.id)
        .await
        .expect("delete channel");
    assert!(
        store
            .list_alert_deliveries(Some(channel.id), 10)
            .await
            .expect("list")
            .is_empty(),
        "a channel's deliveries go with it"
    );
    expect_not_found(
        store.delete_alert_channel(channel.id).await,
        "channel",
        "delete a channel twice",
    );
}

async fn claims_and_leases(store: &dyn Store) {
    let key = unique("budget");
    let now = now_ms();
    assert!(store.claim_alert(&key, now, 1_000).await.expect("claim"));
    assert!(
        !store
            .claim_alert(&key, now + 10, 1_000)
            .await
            .expect("claim again"),
        "a held claim refuses a second claimer"
    );
    assert!(
        store
            .claim_alert(&key, now + 1_000, 1_000)
            .await
            .expect("claim after expiry"),
        "an expired claim can be taken again"
    );

    let lease = unique("lease");
    assert!(
        store
            .hold_lease(&lease, "a", now, 5_000)
            .await
            .expect("take")
    );
    assert!(
        store
            .hold_lease(&lease, "a", now + 1, 5_000)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .hold_lease(&lease, "b", now + 2, 5_000)
            .await
            .expect("other"),
        "another holder waits while the lease holds"
    );
    assert!(
        store
            .hold_lease(&lease, "b", now + 5_001, 5_000)
            .await
            .expect("take over"),
        "an expired lease passes to another holder"
    );
    assert!(
        !store
            .hold_lease(&lease, "a", now + 5_002, 5_000)
            .await
            .expect("old holder"),
        "the old holder lost it"
    );
}
