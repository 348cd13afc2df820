//! Model routing in the story: targets and models created, listed, changed and deleted; names
//! unique; every change visible to the gateways through the revision.

use tollgate_core::llm::Provider;

use super::unique;
use crate::{NewTarget, Store, StoreError, TargetUpdate};

/// Targets and models on one store.
pub async fn models_story(store: &dyn Store) {
    let name = unique("target");
    let before = store.revision().await.expect("revision");
    let target = store
        .create_target(NewTarget {
            name: name.clone(),
            provider: Provider::Azure,
            base_url: "https://example.openai.azure.com".to_owned(),
            settings: r#"{"deployment":"d","weight":2}"#.to_owned(),
        })
        .await
        .expect("create_target");
    assert_eq!(target.name, name);
    assert_eq!(target.provider, Provider::Azure);
    assert_eq!(target.sealed_credential, None);
    assert!(
        store.revision().await.expect("revision") > before,
        "a new target did not grow the revision"
    );
    match store
        .create_target(NewTarget {
            name: name.clone(),
            provider: Provider::Openai,
            base_url: "https://api.openai.com/v1".to_owned(),
            settings: r#"{"weight":1}"#.to_owned(),
        })
        .await
    {
        Err(StoreError::Conflict(message)) => assert!(message.contains(&name), "{message}"),
        other => panic!("a taken target name gave {other:?}"),
    }

    let sealed = vec![2_u8, 0, 255, 7];
    let changed = store
        .update_target(
            target.id,
            TargetUpdate {
                base_url: Some("https://other.openai.azure.com".to_owned()),
                settings: None,
                sealed_credential: Some(Some(sealed.clone())),
            },
        )
        .await
        .expect("update_target");
    assert_eq!(changed.base_url, "https://other.openai.azure.com");
    assert_eq!(changed.settings, target.settings, "settings kept");
    assert_eq!(changed.sealed_credential, Some(sealed));
    let cleared = store
        .update_target(
            target.id,
            TargetUpdate {
                sealed_credential: Some(None),
                ..TargetUpdate::default()
            },
        )
        .await
        .expect("update_target");
    assert_eq!(cleared.sealed_credential, None);
    assert!(matches!(
        store.update_target(i64::MAX, TargetUpdate::default()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .list_targets()
            .await
            .expect("list_targets")
            .contains(&cleared)
    );

    let model_name = format!("{}-*", unique("claude"));
    let settings = format!(r#"{{"pool":[{{"target":"{name}"}}]}}"#);
    let model = store
        .create_model(&model_name, &settings)
        .await
        .expect("create_model");
    assert_eq!(model.name, model_name);
    assert_eq!(model.settings, settings);
    match store.create_model(&model_name, &settings).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains(&model_name), "{message}"),
        other => panic!("a taken model name gave {other:?}"),
    }
    let before = store.revision().await.expect("revision");
    let updated = store
        .update_model(model.id, r#"{"pool":[],"strategy":"least_busy"}"#)
        .await
        .expect("update_model");
    assert_eq!(updated.settings, r#"{"pool":[],"strategy":"least_busy"}"#);
    assert!(store.revision().await.expect("revision") > before);
    assert!(
        store
            .list_models()
            .await
            .expect("list_models")
            .contains(&updated)
    );
    store.delete_model(model.id).await.expect("delete_model");
    assert!(matches!(
        store.delete_model(model.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_target(target.id).await.expect("delete_target");
    assert!(matches!(
        store.delete_target(target.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        !store
            .list_targets()
            .await
            .expect("list_targets")
            .iter()
            .any(|t| t.id == target.id)
    );
}
