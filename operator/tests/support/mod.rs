//! What the operator's integration tests share: the CRDs installed from `manifests/crds.yaml`, the
//! operator binary run as a process watching the test's namespace, the platform's credentials as
//! Secrets, and reading resources back. Needs `eval "$(dev/env)"`; fails, never skips.
#![allow(dead_code)] // each test file uses a different part of this module

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

#[path = "../../../workers/tests/cluster/mod.rs"]
pub mod cluster;
pub use cluster::{delete_namespace, env, namespace, wait_for};

pub const PROBE_IMAGE: &str = "mooc.local/probe:dev";
pub const WORKER_IMAGE: &str = "mooc.local/mooc-worker:test";

/// Applies the committed CRDs (server-side, so reruns are no-ops) and waits until they serve.
pub async fn install_crds(client: &Client) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/crds.yaml"
    ))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for document in text.split("\n---\n").filter(|d| d.contains("kind:")) {
        let crd: CustomResourceDefinition = serde_yaml::from_str(document).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("mooc-operator-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("the API server accepts the CRDs");
        wait_for(&format!("CRD {name} to be established"), 60, || async {
            let crd = crds.get(&name).await.unwrap();
            crd.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
        .await;
    }
}

/// The operator as a process watching one namespace, with no more rights than
/// `manifests/rbac.yaml` grants (it impersonates a ServiceAccount bound to that ClusterRole);
/// killed (SIGKILL) when dropped.
pub struct Operator(Child);

impl Operator {
    pub async fn start(client: &Client, namespace: &str, job_ttl_seconds: u32) -> Self {
        Self::start_with(client, namespace, job_ttl_seconds, &[]).await
    }

    /// With extra flags (leader election).
    pub async fn start_with(
        client: &Client,
        namespace: &str,
        job_ttl_seconds: u32,
        flags: &[&str],
    ) -> Self {
        let kubeconfig = least_privilege_kubeconfig(client, namespace).await;
        let child = Command::new(env!("CARGO_BIN_EXE_mooc-operator"))
            .args([
                "--namespace",
                namespace,
                "--worker-image",
                WORKER_IMAGE,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(["--job-ttl-seconds", &job_ttl_seconds.to_string()])
            .args(flags)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the operator binary starts");
        Self(child)
    }

    /// The process id (part of its leader-election identity).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Kills the process at once, as a crashed or evicted pod would end.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

/// Applies the committed ClusterRole, binds it in `namespace` to a ServiceAccount and writes a
/// kubeconfig that acts as that account; returns its path.
/// The ClusterRoleBinding of the operator that watches `namespace`.
fn binding_name(namespace: &str) -> String {
    format!("mooc-operator-{namespace}")
}

async fn least_privilege_kubeconfig(client: &Client, namespace: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/rbac.yaml"
    ))
    .unwrap();
    let role: ClusterRole = serde_yaml::from_str(&text).unwrap();
    let params = PatchParams::apply("mooc-operator-tests").force();
    Api::<ClusterRole>::all(client.clone())
        .patch("mooc-operator", &params, &Patch::Apply(&role))
        .await
        .unwrap();
    let account: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "mooc-operator" } })).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .patch("mooc-operator", &params, &Patch::Apply(&account))
        .await
        .unwrap();
    // Bound cluster-wide, as an operator installed in its own namespace is: deleting the
    // watched namespace must not take the operator's rights (it releases finalizers there).
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": binding_name(namespace) },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "mooc-operator" },
        "subjects": [{ "kind": "ServiceAccount", "name": "mooc-operator", "namespace": namespace }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(&binding_name(namespace), &params, &Patch::Apply(&binding))
        .await
        .unwrap();
    let admin = std::fs::read_to_string(env("KUBECONFIG")).unwrap();
    let user = format!("  user:\n    as: system:serviceaccount:{namespace}:mooc-operator\n");
    assert!(
        admin.contains("  user:\n"),
        "the dev kubeconfig has a user entry"
    );
    let path = std::env::temp_dir().join(format!("mooc-operator-{namespace}.kubeconfig"));
    std::fs::write(&path, admin.replacen("  user:\n", &user, 1)).unwrap();
    path
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `url` as pods reach it: the node IP stands for the host's loopback.
pub fn for_pods(url: &str) -> String {
    url.replace("127.0.0.1", &env("MOOC_POD_HOST_IP"))
}

/// Secrets `mooc-s3` and `mooc-postgres` (key `uri`, `database_url` given) as the samples use them.
pub async fn secrets(client: &Client, namespace: &str, database_url: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let s3: Secret = serde_json::from_value(json!({
        "metadata": { "name": "mooc-s3" },
        "stringData": { "AWS_ACCESS_KEY_ID": env("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY": env("AWS_SECRET_ACCESS_KEY") },
    }))
    .unwrap();
    let postgres: Secret = serde_json::from_value(json!({
        "metadata": { "name": "mooc-postgres" },
        "stringData": { "uri": for_pods(database_url) },
    }))
    .unwrap();
    for secret in [s3, postgres] {
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
}

/// The S3 part of a spec (source or artifacts) pointing at the platform's store.
pub fn bucket() -> Value {
    json!({
        "endpoint": for_pods(&env("S3_ENDPOINT")),
        "bucket": env("S3_BUCKET"),
        "credentialsSecretRef": { "name": "mooc-s3" },
    })
}

/// The API of one of our kinds by its plural; the kind itself is not needed to address it.
fn dynamic(client: &Client, namespace: &str, plural: &str) -> Api<kube::api::DynamicObject> {
    let resource = kube::api::ApiResource {
        group: "mooc.recsys.io".into(),
        version: "v1alpha1".into(),
        api_version: "mooc.recsys.io/v1alpha1".into(),
        kind: String::new(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// A resource as JSON (`kubectl get -o json`), through the dynamic API.
pub async fn get(client: &Client, namespace: &str, plural: &str, name: &str) -> Value {
    let api = dynamic(client, namespace, plural);
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

/// Whether a resource exists.
pub async fn exists(client: &Client, namespace: &str, plural: &str, name: &str) -> bool {
    dynamic(client, namespace, plural)
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

/// Merge-patches a resource's status, as a controller that recorded it earlier would have.
pub async fn patch_status(
    client: &Client,
    namespace: &str,
    plural: &str,
    name: &str,
    status: Value,
) {
    dynamic(client, namespace, plural)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .unwrap();
}

/// Deletes the namespace and waits until it is gone, the operator still running so that it
/// releases its finalizers (a namespace is otherwise held in Terminating).
pub async fn delete_namespace_and_wait(client: &Client, namespace: &str) {
    delete_namespace(client, namespace).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    wait_for(
        &format!("namespace {namespace} to be deleted"),
        120,
        || async { namespaces.get_opt(namespace).await.unwrap().is_none() },
    )
    .await;
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&binding_name(namespace), &Default::default())
        .await
        .unwrap();
}

/// Creates a resource from JSON (`kind` and `apiVersion` included).
pub async fn create(
    client: &Client,
    namespace: &str,
    plural: &str,
    object: Value,
) -> Result<(), kube::Error> {
    let api = dynamic(client, namespace, plural);
    let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .map(|_| ())
}

/// Merge-patches a resource (spec changes, annotations).
pub async fn patch(
    client: &Client,
    namespace: &str,
    plural: &str,
    name: &str,
    patch: Value,
) -> Result<(), kube::Error> {
    let api = dynamic(client, namespace, plural);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Whether condition `type_` of a resource read with [`get`] is `True` for its current generation.
pub fn condition(object: &Value, type_: &str) -> bool {
    let generation = &object["metadata"]["generation"];
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == type_ && c["status"] == "True" && &c["observedGeneration"] == generation
        })
}

/// Waits until a resource has condition `type_` True; returns it.
pub async fn wait_condition(
    client: &Client,
    namespace: &str,
    plural: &str,
    name: &str,
    type_: &str,
    seconds: u64,
) -> Value {
    let what = format!("{plural}/{name} to be {type_}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let last = get(client, namespace, plural, name).await;
        if condition(&last, type_) {
            return last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last status: {:#}",
            last["status"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The Jobs in `namespace` (the operator's runs and prunes).
pub async fn jobs(client: &Client, namespace: &str) -> Vec<Job> {
    Api::<Job>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// Reasons of the Events about object `name`, oldest first.
pub async fn event_reasons(client: &Client, namespace: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut listed = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap()
        .items;
    listed.sort_by_key(|e| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
    listed.into_iter().filter_map(|e| e.reason).collect()
}

/// A worker stand-in: the probe image writing `message` as its termination message, put in place
/// of the worker container through `podOverrides` (`$(VAR)` is expanded by Kubernetes).
pub fn stand_in(message: Value) -> Value {
    json!({ "podOverrides": { "containers": [{
        "name": "worker", "image": PROBE_IMAGE, "imagePullPolicy": "Never",
        "args": ["echo", message.to_string()],
    }] } })
}
