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
        (403, ErrorKind::PermissionDenied),
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

/// What a target or check leaves out, the registry's defaults fill in (`rollback
/// --namespace` and `--context` set them, through `ROLLBACK_KUBE_NAMESPACE` and
/// `ROLLBACK_KUBE_CONTEXT`), and its spec records them; what it gives wins. No default and
/// no namespace is refused, saying how to give one. Nothing here calls an API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_fill_in_the_namespace_and_context_a_target_leaves_out() {
    use rollback_core::{TargetId, TargetSpec};
    use rollback_k8s::K8sDefaults;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // Two contexts on one (unreached) server; the current one is "a".
    let server = "http://127.0.0.1:9";
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: {server}}}\n\
             contexts:\n- name: a\n  context: {{cluster: c, user: u}}\n- name: b\n  context: {{cluster: c, user: u}}\n\
             current-context: a\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let with = |defaults: K8sDefaults| {
        let mut r = Registry::with_builtins();
        rollback_k8s::register_defaults(&mut r, defaults);
        r
    };
    let id = TargetId::new("k8s-deployment", "(runbook)");
    let spec = |params: serde_json::Value| TargetSpec {
        kind: "k8s-deployment".into(),
        params,
    };
    let kc = kubeconfig.to_str().unwrap();
    let defaults = K8sDefaults {
        context: Some("b".into()),
        namespace: Some("production".into()),
    };

    let t = with(defaults.clone())
        .build(
            &id,
            &spec(json!({"name": "frontend", "k8s": {"kubeconfig": kc}})),
        )
        .await
        .unwrap();
    assert_eq!(t.id().to_string(), "k8s-deployment/production/frontend");
    assert_eq!(t.spec().params["namespace"], "production");
    assert_eq!(t.spec().params["k8s"]["context"], "b", "{:?}", t.spec());

    // What the entry gives wins; a URL takes no context.
    let t = with(defaults.clone())
        .build(
            &id,
            &spec(json!({"namespace": "staging", "name": "frontend", "k8s": {"kubeconfig": kc, "context": "a"}})),
        )
        .await
        .unwrap();
    assert_eq!(t.id().to_string(), "k8s-deployment/staging/frontend");
    assert_eq!(t.spec().params["k8s"]["context"], "a");
    let t = with(defaults.clone())
        .build(
            &id,
            &spec(json!({"name": "frontend", "k8s": {"url": server}})),
        )
        .await
        .unwrap();
    assert_eq!(
        t.spec().params["k8s"].get("context"),
        None,
        "{:?}",
        t.spec()
    );

    // The default context is used: one the kubeconfig lacks is refused by name.
    let err = with(K8sDefaults {
        context: Some("nope".into()),
        ..defaults.clone()
    })
    .build(
        &id,
        &spec(json!({"name": "frontend", "k8s": {"kubeconfig": kc}})),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no context \"nope\""), "{err}");

    // Checks too.
    let check = with(defaults.clone())
        .build_check(
            "k8s-pods-ready",
            json!({"deployment": "frontend", "k8s": {"url": server}}),
        )
        .await
        .unwrap();
    assert!(check.name().ends_with(" in production"), "{}", check.name());

    // No namespace and no default: a clear error, for targets and checks alike.
    for err in [
        with(K8sDefaults::default())
            .build(
                &id,
                &spec(json!({"name": "frontend", "k8s": {"url": server}})),
            )
            .await
            .map(|_| ())
            .unwrap_err(),
        with(K8sDefaults::default())
            .build_check(
                "k8s-pods-ready",
                json!({"deployment": "frontend", "k8s": {"url": server}}),
            )
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("no namespace") && msg.contains("ROLLBACK_KUBE_NAMESPACE"),
            "{msg}"
        );
    }
}
