//! Kubernetes helpers of the tests that use the local platform's cluster; shared by the worker
//! and operator tests (`#[path]`), so each test gets a namespace of its own and polls the same way.
#![allow(dead_code)] // each test file uses a different part of this module

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: eval \"$(dev/env)\""))
}

/// A client and a fresh namespace of the test's own.
pub async fn namespace(test: &str) -> (Client, String) {
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG must point at a running cluster (dev/up)");
    let name = format!("{test}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("the API server accepts a namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    wait_for("the namespace's default ServiceAccount", 60, || async {
        accounts.get_opt("default").await.unwrap().is_some()
    })
    .await;
    (client, name)
}

pub async fn delete_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

/// Polls `check` every half second until it holds; panics after `seconds`.
pub async fn wait_for<F, Fut>(what: &str, seconds: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
