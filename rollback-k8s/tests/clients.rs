//! Where rebuilt targets get their client, and what an API error keeps: against the
//! project's Kubernetes API simulator (`rollback-testkit`), which injects faults.
#![allow(clippy::unwrap_used)]

mod common;

use rollback_core::{ErrorKind, Registry, RollbackTarget};
use rollback_k8s::{Deployment, K8s, K8sConfig};
use rollback_testkit::k8s::{Fault, K8sSimulator};
use serde_json::json;

/// Every error made from a kube-rs error keeps it as its `source()`, whatever kind it
/// becomes (the message stays one sentence without kube-rs's `Debug` dump).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_keep_the_kube_error_as_their_source() {
    let sim = K8sSimulator::start().unwrap();
    // kube-rs's own retries (of 429 and 503, up to 15 times with backoff) off, so that each
    // fault answers the one call.
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.default_retry = false;
    let k8s = K8s::from_client(kube::Client::try_from(config).unwrap());
    let d = common::create_frontend(&k8s, 1).await;
    for (code, kind) in [
        (404, ErrorKind::NotFound),
        (409, ErrorKind::Conflict),
        (429, ErrorKind::Throttled),
        (400, ErrorKind::InvalidInput),
        (422, ErrorKind::InvalidInput),
        (401, ErrorKind::Backend),
        (403, ErrorKind::Backend),
        (500, ErrorKind::Backend),
    ] {
        sim.inject(Fault::new(Some("GET"), "/deployments/frontend", code))
            .await
            .unwrap();
        let err = match d.current().await {
            Err(e) => e,
            Ok(r) => panic!("{code}: no error but {r:?}"),
        };
        assert_eq!(err.kind(), kind, "{code}: {err}");
        let source =
            std::error::Error::source(&err).unwrap_or_else(|| panic!("{code}: no source: {err}"));
        match source.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => assert_eq!(status.code, code, "{err}"),
            other => panic!("{code}: the source is not the API's answer: {other:?}"),
        }
        assert!(!err.to_string().contains("ErrorResponse"), "{err}");
        sim.clear_faults().await.unwrap();
    }

    // No API server: the transport's error.
    let nowhere = Deployment::new(
        &K8s::from_url("http://127.0.0.1:9").unwrap(),
        "production",
        "frontend",
    )
    .unwrap();
    let err = nowhere.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(
        std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<kube::Error>())
            .is_some(),
        "{err}"
    );
}

/// A registry loads each configuration a journal recorded once, however many targets
/// recorded it: after the first target, the kubeconfig is not read again (here it is gone,
/// and the other targets are still rebuilt); a new registry loads it afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_loads_each_configuration_once() {
    let sim = K8sSimulator::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let k8s = K8sConfig {
        kubeconfig: Some(kubeconfig.clone()),
        ..K8sConfig::default()
    }
    .load()
    .await
    .unwrap();
    let d = common::create_frontend(&k8s, 1).await;
    let targets: Vec<std::sync::Arc<dyn RollbackTarget>> = vec![
        std::sync::Arc::new(d.clone()),
        std::sync::Arc::new(d.replicas()),
        std::sync::Arc::new(d.restart()),
    ];
    let registry = rollback_k8s::registry();
    let first = registry
        .build(&targets[0].id(), &targets[0].spec())
        .await
        .unwrap();
    std::fs::remove_file(&kubeconfig).unwrap();
    for t in &targets[1..] {
        let rebuilt = registry.build(&t.id(), &t.spec()).await.unwrap();
        assert_eq!(rebuilt.current().await.unwrap(), t.current().await.unwrap());
    }
    assert_eq!(first.current().await.unwrap(), d.current().await.unwrap());

    let err = rollback_k8s::registry()
        .build(&targets[1].id(), &targets[1].spec())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string()
            .starts_with("k8s-deployment-replicas/production/frontend: "),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err}");
}

/// `register_with` rebuilds every target on the client given, whatever configuration the
/// journal recorded; nothing is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_rebuilds_every_target_on_the_client_given() {
    let sim = K8sSimulator::start().unwrap();
    let k8s = K8s::from_url(sim.url()).unwrap();
    let d = common::create_frontend(&k8s, 1).await;
    let mut registry = Registry::with_builtins();
    rollback_k8s::register_with(&mut registry, k8s.clone());
    let targets: Vec<std::sync::Arc<dyn RollbackTarget>> = vec![
        std::sync::Arc::new(d.clone()),
        std::sync::Arc::new(d.replicas().gradual([1])),
        std::sync::Arc::new(d.restart()),
    ];
    for t in &targets {
        let mut spec = t.spec();
        // A configuration that cannot be loaded: a kubeconfig that does not exist.
        spec.params["k8s"] = json!({"kubeconfig": "/nonexistent/kubeconfig"});
        let rebuilt = registry.build(&t.id(), &spec).await.unwrap();
        assert_eq!(rebuilt.current().await.unwrap(), t.current().await.unwrap());
        assert_eq!(rebuilt.spec(), t.spec(), "records the client given");
    }
}
