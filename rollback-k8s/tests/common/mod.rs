//! Shared by the simulator tests that need one plain Deployment.

use k8s_openapi::api::apps::v1 as apps;
use kube::api::{Api, PostParams};
use rollback_k8s::{Deployment, K8s};
use serde_json::json;

/// Creates the Deployment `production/frontend` (one `pause` container, `replicas`
/// replicas) and returns it as a target.
pub async fn create_frontend(k8s: &K8s, replicas: i32) -> Deployment {
    let api: Api<apps::Deployment> = Api::namespaced(k8s.client().clone(), "production");
    let object = serde_json::from_value(json!({
        "metadata": {"name": "frontend"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "frontend"}},
            "template": {
                "metadata": {"labels": {"app": "frontend"}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}
            }
        }
    }))
    .expect("a Deployment");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create the Deployment");
    Deployment::new(k8s, "production", "frontend").expect("a Deployment target")
}
