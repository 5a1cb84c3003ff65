//! Proof that the local platform's Kubernetes is a real one: the API server, the controllers and a
//! node that runs locally built images, this project's own binary among them. Needs
//! `eval "$(dev/env)"` (KUBECONFIG); fails, never skips, when the cluster is down.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

mod cluster;
use cluster::{delete_namespace, env, namespace, wait_for};

/// Images on the dev node, built by dev/ and by these tests from this repository, never pulled.
const PROBE_IMAGE: &str = "mooc.local/probe:dev";
const WORKER_IMAGE: &str = "mooc.local/mooc-worker:test";

fn pod_template(image: &str, args: &[&str], env: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": { "labels": { "app": "proof" } },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "Never",
                "args": args, "env": env,
            }],
        },
    })
}

fn job(name: &str, image: &str, args: &[&str], env: serde_json::Value) -> Job {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "backoffLimit": 0, "template": pod_template(image, args, env) },
    }))
    .unwrap()
}

/// `Complete` or `Failed`, once the Job has finished.
async fn finished(jobs: &Api<Job>, name: &str) -> Option<String> {
    let job = jobs.get(name).await.unwrap();
    job.status?.conditions?.into_iter().find_map(|c| {
        (c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed")).then_some(c.type_)
    })
}

async fn wait_for_job(jobs: &Api<Job>, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(outcome) = finished(jobs, name).await {
            return outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Job {name} did not finish in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn termination_message(pods: &Api<Pod>, job: &str) -> Option<String> {
    let pods = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap();
    let statuses = pods
        .items
        .first()?
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?;
    statuses
        .first()?
        .state
        .as_ref()?
        .terminated
        .as_ref()?
        .message
        .clone()
}

#[tokio::test]
async fn a_job_runs_a_local_image_and_its_termination_message_is_readable() {
    let (client, ns) = namespace("proof-job").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let spec = job("echo", PROBE_IMAGE, &["echo", "ran on the node"], json!([]));
    jobs.create(&PostParams::default(), &spec).await.unwrap();
    assert_eq!(wait_for_job(&jobs, "echo").await, "Complete");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        termination_message(&pods, "echo").await.as_deref(),
        Some("ran on the node")
    );
    delete_namespace(&client, &ns).await;
}

/// Our own binary, packed by dev/k8s/binary-image.sh, queries PostgreSQL, S3 and Kafka from a
/// pod, with the addresses pods use (the node IP stands for the host's loopback).
#[tokio::test]
async fn our_worker_image_reaches_every_service_from_a_pod() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../dev/k8s/binary-image.sh");
    let status = std::process::Command::new(script)
        .args([WORKER_IMAGE, env!("CARGO_BIN_EXE_mooc-worker")])
        .status()
        .expect("binary-image.sh runs");
    assert!(status.success(), "the worker image was built and imported");

    let host = env("MOOC_POD_HOST_IP");
    let for_pods = |url: String| url.replace("127.0.0.1", &host);
    let (client, ns) = namespace("proof-worker").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let settings = json!([
        { "name": "DATABASE_URL", "value": for_pods(env("DATABASE_URL")) },
        { "name": "S3_ENDPOINT", "value": for_pods(env("S3_ENDPOINT")) },
        { "name": "S3_BUCKET", "value": env("S3_BUCKET") },
        { "name": "AWS_ACCESS_KEY_ID", "value": env("AWS_ACCESS_KEY_ID") },
        { "name": "AWS_SECRET_ACCESS_KEY", "value": env("AWS_SECRET_ACCESS_KEY") },
        { "name": "KAFKA_BOOTSTRAP", "value": env("MOOC_POD_KAFKA_BOOTSTRAP") },
    ]);
    let spec = job("check", WORKER_IMAGE, &["check"], settings);
    jobs.create(&PostParams::default(), &spec).await.unwrap();
    let outcome = wait_for_job(&jobs, "check").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = pods
        .list(&ListParams::default().labels("job-name=check"))
        .await
        .unwrap()
        .items
        .remove(0);
    let logs = pods
        .logs(&pod.metadata.name.unwrap(), &Default::default())
        .await
        .unwrap();
    assert_eq!(outcome, "Complete", "mooc-worker check in a pod:\n{logs}");
    assert!(logs.contains("postgres  ok      PostgreSQL 15"), "{logs}");
    assert!(logs.contains("kafka     ok      1 broker(s)"), "{logs}");
    delete_namespace(&client, &ns).await;
}

/// A Deployment whose pod stays up only while PostgreSQL answers it becomes Available; deleting
/// the Deployment removes its ReplicaSet and pods through the garbage collector.
#[tokio::test]
async fn a_deployment_reaching_postgres_becomes_available_and_its_deletion_cascades() {
    let (client, ns) = namespace("proof-deploy").await;
    let postgres = format!("{}:{}", env("MOOC_POD_HOST_IP"), pg_port());
    let mut template = pod_template(PROBE_IMAGE, &["serve-tcp", &postgres], json!([]));
    template["spec"]["restartPolicy"] = json!("Always");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "reach-postgres" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "proof" } },
            "minReadySeconds": 3,
            "template": template,
        },
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    wait_for("the Deployment to become Available", 120, || async {
        let status = deployments.get("reach-postgres").await.unwrap().status;
        status.and_then(|s| s.conditions).is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
    })
    .await;

    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let everything = ListParams::default();
    assert_eq!(replica_sets.list(&everything).await.unwrap().items.len(), 1);
    assert_eq!(pods.list(&everything).await.unwrap().items.len(), 1);
    deployments
        .delete("reach-postgres", &DeleteParams::background())
        .await
        .unwrap();
    wait_for("the ReplicaSet and pod to be collected", 60, || async {
        replica_sets
            .list(&everything)
            .await
            .unwrap()
            .items
            .is_empty()
            && pods.list(&everything).await.unwrap().items.is_empty()
    })
    .await;
    delete_namespace(&client, &ns).await;
}

fn pg_port() -> String {
    let url = env("DATABASE_URL");
    let after_host = url.rsplit('@').next().unwrap();
    after_host.split(['/', ':']).nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn a_cronjob_fires_and_its_job_completes() {
    let (client, ns) = namespace("proof-cron").await;
    let cron_job: CronJob = serde_json::from_value(json!({
        "metadata": { "name": "every-minute" },
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": { "spec": {
                "backoffLimit": 0,
                "template": pod_template(PROBE_IMAGE, &["echo", "fired"], json!([])),
            }},
        },
    }))
    .unwrap();
    Api::<CronJob>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cron_job)
        .await
        .unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let name = loop {
        let created = jobs.list(&ListParams::default()).await.unwrap().items;
        if let Some(name) = created.into_iter().find_map(|job| job.metadata.name) {
            break name;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CronJob created no Job in 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(name.starts_with("every-minute-"), "{name}");
    assert_eq!(wait_for_job(&jobs, &name).await, "Complete");
    delete_namespace(&client, &ns).await;
}
