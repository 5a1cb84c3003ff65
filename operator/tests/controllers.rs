//! The operator against the local platform's real API server and node: each test runs the
//! operator binary on a namespace of its own, applies resources and reads back what a user sees
//! (status, conditions, Jobs, ConfigMaps, Deployments, Events). Worker stand-ins (the probe image
//! writing a fixed termination message) are named as such; the DataLoad test runs the real ETL.

mod support;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use mooc_worker::settings::{PostgresSettings, S3Settings};
use serde_json::{Value, json};
use support::*;

/// The mooc-worker binary of this build, packed into the image the operator's Jobs use.
fn build_worker_image() {
    let cargo = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "-p",
            "mooc-worker",
            "--bin",
            "mooc-worker",
        ])
        .status()
        .expect("cargo runs");
    assert!(cargo.success(), "mooc-worker builds");
    // target/<profile>/deps/<this test> → target/<profile>/mooc-worker
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("mooc-worker");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../dev/k8s/binary-image.sh");
    let status = std::process::Command::new(script)
        .arg(WORKER_IMAGE)
        .arg(&binary)
        .status()
        .expect("binary-image.sh runs");
    assert!(status.success(), "the worker image was built and imported");
}

fn dataload(name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "DataLoad", "metadata": { "name": name }, "spec": spec })
}

fn source(prefix: &str) -> Value {
    let mut source = bucket();
    source["prefix"] = json!(prefix);
    source
}

fn target() -> Value {
    json!({ "uriSecretRef": { "name": "mooc-postgres", "key": "uri" } })
}

fn run_jobs(jobs: &[Job]) -> Vec<String> {
    let mut names: Vec<String> = jobs
        .iter()
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// A database schema of the test's own, as a DATABASE_URL.
async fn schema_url() -> String {
    let base = PostgresSettings::from_env().expect("PostgreSQL settings");
    let schema = format!("op_{}", uuid::Uuid::new_v4().simple());
    let pool = mooc_worker::stores::postgres::connect(&base, 1)
        .await
        .expect("PostgreSQL must be running (dev/up)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    format!("{}?options=-c%20search_path%3D{schema}", base.url)
}

/// A namespace for a test with the real workers: the worker image built, the CRDs, Secrets for a
/// database schema of its own, and an S3 prefix of its own.
struct RealWorkers {
    client: kube::Client,
    ns: String,
    database_url: String,
    s3: S3Settings,
    store: aws_sdk_s3::Client,
    prefix: String,
}

impl RealWorkers {
    async fn new(name: &str) -> Self {
        build_worker_image();
        let (client, ns) = namespace(name).await;
        install_crds(&client).await;
        let database_url = schema_url().await;
        secrets(&client, &ns, &database_url).await;
        let s3 = S3Settings::from_env().unwrap();
        let store = mooc_worker::stores::s3::client(&s3);
        let prefix = format!("operator-test/{ns}/");
        Self {
            client,
            ns,
            database_url,
            s3,
            store,
            prefix,
        }
    }

    /// Puts `body` at `<prefix><file>`.
    async fn upload(&self, file: &str, body: Vec<u8>) {
        self.store
            .put_object()
            .bucket(&self.s3.bucket)
            .key(format!("{}{file}", self.prefix))
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_dataload_runs_the_etl_worker_reports_rows_and_is_ready_for_kubectl_wait() {
    let bed = RealWorkers::new("op-dataload").await;
    let RealWorkers {
        client,
        ns,
        database_url,
        prefix,
        ..
    } = &bed;
    let (client, ns) = (client.clone(), ns.clone());
    let header = "username,course_id,truth,action_click_about,action_click_courseware,action_click_forum,action_click_info,action_click_progress,action_close_courseware,action_close_forum,action_create_comment,action_create_thread,action_delete_comment,action_delete_thread,action_load_video,action_pause_video,action_play_video,action_problem_check,action_problem_check_correct,action_problem_check_incorrect,action_problem_get,action_problem_save,action_reset_problem,action_seek_video,action_stop_video,unique_session_count,avg_nActions_per_session,timestamp";
    let row = |user: &str| format!("{user},c1,1{},3,2.5,1404777600", ",1".repeat(22));
    let train = format!(
        "{header}\n{}\n{}\n{}\nu4,c1,1,1\n",
        row("u1"),
        row("u2"),
        row("u3")
    );
    bed.upload("train.csv", train.into_bytes()).await;

    let operator = Operator::start(&client, &ns, 3600).await;
    let spec = json!({ "source": source(prefix), "target": target(), "maxRejectRatio": 0.5 });
    create(&client, &ns, "dataloads", dataload("mooc-data", spec))
        .await
        .unwrap();

    // What a user runs: kubectl wait returns once the load finished.
    let waited = std::process::Command::new("kubectl")
        .args([
            "wait",
            "--for=condition=Ready",
            "dataload/mooc-data",
            "-n",
            &ns,
            "--timeout=180s",
        ])
        .output()
        .expect("kubectl runs");
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let loaded = get(&client, &ns, "dataloads", "mooc-data").await;
    let status = &loaded["status"];
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(
        (
            status["rowsLoaded"].as_u64(),
            status["rowsRejected"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(status["objectsLoaded"], 1);
    assert_eq!(status["observedGeneration"], 1);
    assert!(
        status["dataFingerprint"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "{status:#}"
    );
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(
        (
            runs.len(),
            runs[0]["id"].as_str(),
            runs[0]["phase"].as_str()
        ),
        (1, Some("g1"), Some("Succeeded"))
    );
    assert_eq!(runs[0]["result"]["rowsLoaded"], 3);

    // The rows are really there, the rejected one kept.
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let enrollments: i64 = sqlx::query_scalar("SELECT count(*) FROM enrollments")
        .fetch_one(&pool)
        .await
        .unwrap();
    let rejects: i64 = sqlx::query_scalar("SELECT count(*) FROM load_rejects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((enrollments, rejects), (3, 1));

    let jobs_now = jobs(&client, &ns).await;
    assert_eq!(run_jobs(&jobs_now), ["mooc-data-g1"]);
    let owner = &jobs_now[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("DataLoad", "mooc-data")
    );
    let reasons = event_reasons(&client, &ns, "mooc-data").await;
    assert!(
        reasons.contains(&"RunStarted".into()) && reasons.contains(&"RunSucceeded".into()),
        "{reasons:?}"
    );

    // Deleting the resource deletes its Jobs.
    delete(&ns, "dataloads", "mooc-data");
    wait_for("the run Job to be garbage-collected", 60, || async {
        jobs(&client, &ns).await.is_empty()
    })
    .await;
    drop(operator);
    delete_namespace_and_wait(&client, &ns).await;
}

/// `../shared/data/real/<set>/<file>`.
fn real_data(set: &str, file: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(set)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn real_kdd2015_through_a_dataload_a_trainingrun_and_an_alsjob_with_the_real_workers() {
    let bed = RealWorkers::new("op-train").await;
    let RealWorkers {
        s3, store, prefix, ..
    } = &bed;
    let (client, ns) = (bed.client.clone(), bed.ns.clone());
    for file in ["train.csv", "user_info.csv"] {
        bed.upload(file, real_data("kdd2015", file)).await;
    }
    let _operator = Operator::start(&client, &ns, 3600).await;
    let spec = json!({ "source": source(prefix), "target": target() });
    create(&client, &ns, "dataloads", dataload("data", spec))
        .await
        .unwrap();
    let mut artifacts = bucket();
    artifacts["prefix"] = json!(format!("{prefix}models/dropout"));
    let training = json!({
        "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "TrainingRun", "metadata": { "name": "dropout" },
        "spec": {
            "dataLoadRef": { "name": "data" }, "artifacts": artifacts,
            "hyperparameters": { "maxRounds": 200, "earlyStoppingRounds": 20 },
        },
    });
    create(&client, &ns, "trainingruns", training)
        .await
        .unwrap();
    let mut als_artifacts = bucket();
    als_artifacts["prefix"] = json!(format!("{prefix}models/als"));
    let als = json!({
        "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "ALSJob", "metadata": { "name": "courses" },
        "spec": {
            "dataLoadRef": { "name": "data" }, "artifacts": als_artifacts,
            "hyperparameters": { "factors": 16, "iterations": 5 },
        },
    });
    create(&client, &ns, "alsjobs", als).await.unwrap();
    wait_condition(&client, &ns, "trainingruns", "dropout", "Ready", 300).await;

    let tr = get(&client, &ns, "trainingruns", "dropout").await;
    let status = &tr["status"];
    let version = status["activeVersion"].as_str().unwrap().to_owned();
    let auc = status["activeScore"].as_f64().unwrap();
    assert!((0.80..0.99).contains(&auc), "test AUC {auc}: {status:#}");
    let recorded = &status["versions"][0];
    assert_eq!(recorded["version"], version.as_str());
    assert_eq!(recorded["metrics"]["auc"], auc);
    assert!(recorded["metrics"]["validationAuc"].as_f64().unwrap() > 0.8);
    let run = &status["runs"][0];
    assert_eq!(
        run["result"]["samples"]["train"]
            .as_u64()
            .map(|n| n > 7_000),
        Some(true)
    );
    // The bundle the status points at is whole in S3.
    let uri = recorded["artifactUri"].as_str().unwrap();
    let directory = mooc_worker::prune::parse_uri(uri, &s3.bucket).unwrap();
    let bundle = mooc_worker::bundle::read(store, &directory).await.unwrap();
    assert_eq!(bundle.manifest.version, version);

    // The ALSJob trained on the same load: promoted on its held-out NDCG@10, the bundle whole.
    wait_condition(&client, &ns, "alsjobs", "courses", "Ready", 300).await;
    let als = get(&client, &ns, "alsjobs", "courses").await;
    let recorded = &als["status"]["versions"][0];
    let ndcg = als["status"]["activeScore"].as_f64().unwrap();
    assert!(ndcg > 0.0 && ndcg <= 1.0, "{:#}", als["status"]);
    assert_eq!(recorded["metrics"]["ndcgAt10"], ndcg);
    assert!(recorded["metrics"]["recallAt10"].as_f64().unwrap() > 0.0);
    let uri = recorded["artifactUri"].as_str().unwrap();
    let directory = mooc_worker::prune::parse_uri(uri, &s3.bucket).unwrap();
    let bundle = mooc_worker::bundle::read(store, &directory).await.unwrap();
    assert_eq!(bundle.manifest.kind, "als");
    assert_eq!(bundle.manifest.hyperparameters["factors"], 16);

    // Run again on demand: the data is unchanged, so the run succeeds as skipped.
    let again = json!({ "metadata": { "annotations": { "mooc.recsys.io/run-now": "again" } } });
    patch(&client, &ns, "trainingruns", "dropout", again)
        .await
        .unwrap();
    let tr = wait_runs(&client, &ns, "trainingruns", "dropout", 2).await;
    assert_eq!(
        tr["status"]["runs"][0]["result"]["skipped"], true,
        "{:#}",
        tr["status"]
    );
    assert_eq!(versions(&tr), [version.as_str()]);
    assert!(
        event_reasons(&client, &ns, "dropout")
            .await
            .contains(&"RunSkipped".into())
    );
    delete_namespace_and_wait(&client, &ns).await;
}

/// A DataLoad whose worker is a stand-in reporting a load with fingerprint `fp1`.
fn stand_in_dataload(name: &str) -> Value {
    let mut spec = json!({ "source": source("in/"), "target": target() });
    spec["pod"] = stand_in(
        json!({ "rowsLoaded": 10, "rowsRejected": 0, "objectsLoaded": 2, "dataFingerprint": "fp1" }),
    );
    dataload(name, spec)
}

/// A model resource whose stand-in worker reports version `v-<run id>` with metric `metric`.
fn stand_in_model(kind: &str, name: &str, metric: &str, score: f64, versions: Value) -> Value {
    let message = json!({
        "version": "v-$(MOOC_RUN_ID)",
        "artifactUri": format!("s3://{}/models/{name}/v-$(MOOC_RUN_ID)/", env("S3_BUCKET")),
        "metrics": { metric: score },
        "dataFingerprint": "$(MOOC_DATA_FINGERPRINT)",
    });
    json!({
        "apiVersion": "mooc.recsys.io/v1alpha1", "kind": kind, "metadata": { "name": name },
        "spec": { "dataLoadRef": { "name": "data" }, "artifacts": bucket(), "versions": versions, "pod": stand_in(message) },
    })
}

fn versions(object: &Value) -> Vec<String> {
    object["status"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until a resource has recorded `count` runs, all succeeded; returns it.
async fn wait_runs(
    client: &kube::Client,
    ns: &str,
    plural: &str,
    name: &str,
    count: usize,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let object = get(client, ns, plural, name).await;
        let runs = object["status"]["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if runs.len() == count && runs.iter().all(|r| r["phase"] == "Succeeded") {
            return object;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {count} succeeded runs of {plural}/{name}: {:#}",
            object["status"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn stand_in_workers_drive_dependencies_versions_promotion_pinning_retention_and_serving() {
    let (client, ns) = namespace("op-models").await;
    install_crds(&client).await;
    secrets(&client, &ns, &env("DATABASE_URL")).await;
    let _operator = Operator::start(&client, &ns, 3600).await;

    // The TrainingRun waits for its DataLoad.
    let training = stand_in_model("TrainingRun", "dropout", "auc", 0.8, json!({ "keep": 2 }));
    create(&client, &ns, "trainingruns", training)
        .await
        .unwrap();
    wait_for("DependenciesReady=False on the TrainingRun", 60, || async {
        let tr = get(&client, &ns, "trainingruns", "dropout").await;
        tr["status"]["phase"] == "Waiting" && !condition(&tr, "DependenciesReady")
    })
    .await;
    assert!(
        jobs(&client, &ns).await.is_empty(),
        "no run before the data is loaded"
    );

    create(&client, &ns, "dataloads", stand_in_dataload("data"))
        .await
        .unwrap();
    let tr = wait_condition(&client, &ns, "trainingruns", "dropout", "Ready", 120).await;
    assert_eq!(tr["status"]["activeVersion"], "v-g1");
    assert_eq!(tr["status"]["activeScore"], 0.8);
    assert_eq!(tr["status"]["trainedFingerprint"], "fp1");
    assert!(condition(&tr, "DependenciesReady"));
    assert_eq!(
        tr["status"]["runs"][0]["parameters"]["hyperparameters"]["numLeaves"],
        31
    );

    // On-demand runs with notes: each adds a version; equal AUC is promoted; keep 2 prunes v-g1.
    for (token, count) in [("first", 2), ("second", 3)] {
        let annotations = json!({ "metadata": { "annotations": { "mooc.recsys.io/run-now": token, "mooc.recsys.io/run-notes": format!("run {token}") } } });
        patch(&client, &ns, "trainingruns", "dropout", annotations)
            .await
            .unwrap();
        let tr = wait_runs(&client, &ns, "trainingruns", "dropout", count).await;
        assert_eq!(tr["status"]["runs"][0]["notes"], format!("run {token}"));
        assert_eq!(tr["status"]["runs"][0]["trigger"], "RunNow");
    }
    let tr = get(&client, &ns, "trainingruns", "dropout").await;
    let kept = versions(&tr);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&"v-g1".to_owned()), "{kept:?}");
    let newest = format!("v-{}", tr["status"]["runs"][0]["id"].as_str().unwrap());
    assert_eq!(
        tr["status"]["activeVersion"].as_str(),
        Some(newest.as_str())
    );
    let older = kept.iter().find(|v| **v != newest).unwrap().clone();
    let prune_jobs: Vec<Job> = jobs(&client, &ns)
        .await
        .into_iter()
        .filter(|j| {
            j.metadata
                .name
                .as_deref()
                .unwrap_or("")
                .starts_with("dropout-prune-")
        })
        .collect();
    assert_eq!(prune_jobs.len(), 1, "one prune Job for v-g1");
    let pruned = prune_jobs[0]
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();
    assert_eq!(pruned["mooc.recsys.io/pruned-versions"], "v-g1");
    let reasons = event_reasons(&client, &ns, "dropout").await;
    assert!(reasons.contains(&"VersionsPruned".into()), "{reasons:?}");

    // The ALSJob and the StreamDeployment: the pointer ConfigMap and a consumer Deployment.
    let als = stand_in_model("ALSJob", "als", "ndcgAt10", 0.3, json!({}));
    create(&client, &ns, "alsjobs", als).await.unwrap();
    wait_condition(&client, &ns, "alsjobs", "als", "Ready", 120).await;
    let stream = json!({
        "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "StreamDeployment", "metadata": { "name": "live" },
        "spec": {
            "kafka": { "bootstrapServers": env("MOOC_POD_KAFKA_BOOTSTRAP") },
            "trainingRunRef": { "name": "dropout" }, "alsJobRef": { "name": "als" },
            "pod": { "podOverrides": { "containers": [{ "name": "worker", "image": PROBE_IMAGE, "imagePullPolicy": "Never", "args": ["sleep"] }] } },
        },
    });
    create(&client, &ns, "streamdeployments", stream)
        .await
        .unwrap();
    let sd = wait_condition(&client, &ns, "streamdeployments", "live", "Ready", 120).await;
    assert_eq!(sd["status"]["phase"], "Available");
    assert_eq!(sd["status"]["availableReplicas"], 1);
    assert_eq!(
        sd["status"]["models"]["dropout"]["version"].as_str(),
        Some(newest.as_str())
    );
    assert_eq!(sd["status"]["models"]["als"]["version"], "v-g1");
    let pointer = |client: kube::Client, ns: String| async move {
        let map = Api::<ConfigMap>::namespaced(client, &ns)
            .get("live-models")
            .await
            .unwrap();
        serde_json::from_str::<Value>(&map.data.unwrap()["models.json"]).unwrap()
    };
    assert_eq!(
        pointer(client.clone(), ns.clone()).await["dropout"]["version"].as_str(),
        Some(newest.as_str())
    );

    // Rollback: pinning the older kept version makes it active and republishes the pointer.
    patch(
        &client,
        &ns,
        "trainingruns",
        "dropout",
        json!({ "spec": { "versions": { "pinnedVersion": older } } }),
    )
    .await
    .unwrap();
    wait_for("the pinned version to be published", 60, || async {
        pointer(client.clone(), ns.clone()).await["dropout"]["version"].as_str()
            == Some(older.as_str())
    })
    .await;
    let tr = get(&client, &ns, "trainingruns", "dropout").await;
    assert_eq!(tr["status"]["activeVersion"].as_str(), Some(older.as_str()));
    // A pin to a version that does not exist stalls with a message naming the known ones.
    patch(
        &client,
        &ns,
        "trainingruns",
        "dropout",
        json!({ "spec": { "versions": { "pinnedVersion": "v-nope" } } }),
    )
    .await
    .unwrap();
    let tr = wait_condition(&client, &ns, "trainingruns", "dropout", "Stalled", 60).await;
    let stalled = tr["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap()
        .clone();
    assert!(
        stalled["message"].as_str().unwrap().contains("v-nope"),
        "{stalled}"
    );

    // Scaling through the scale subresource reaches the Deployment.
    let scaled = std::process::Command::new("kubectl")
        .args(["scale", "streamdeployment/live", "--replicas=2", "-n", &ns])
        .output()
        .unwrap();
    assert!(
        scaled.status.success(),
        "{}",
        String::from_utf8_lossy(&scaled.stderr)
    );
    wait_for("two consumers", 120, || async {
        let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get("live-consumer")
            .await
            .unwrap();
        deployment.status.and_then(|s| s.available_replicas) == Some(2)
    })
    .await;

    // New data retrains: unpinned, the TrainingRun follows the DataLoad's new fingerprint.
    patch(
        &client,
        &ns,
        "trainingruns",
        "dropout",
        json!({ "spec": { "versions": { "pinnedVersion": null } } }),
    )
    .await
    .unwrap();
    let reload = json!({ "rowsLoaded": 12, "rowsRejected": 0, "objectsLoaded": 1, "dataFingerprint": "fp2" });
    patch(
        &client,
        &ns,
        "dataloads",
        "data",
        // The pod is not part of what defines a load: a run-now annotation starts one.
        json!({ "spec": { "pod": stand_in(reload) }, "metadata": { "annotations": { "mooc.recsys.io/run-now": "reload" } } }),
    )
    .await
    .unwrap();
    wait_for("a run on the new data", 120, || async {
        let tr = get(&client, &ns, "trainingruns", "dropout").await;
        let newest = &tr["status"]["runs"][0];
        newest["trigger"] == "NewData"
            && newest["phase"] == "Succeeded"
            && tr["status"]["trainedFingerprint"] == "fp2"
    })
    .await;
    let tr = get(&client, &ns, "trainingruns", "dropout").await;
    assert!(!condition(&tr, "Stalled"));
    let retrained = format!("v-{}", tr["status"]["runs"][0]["id"].as_str().unwrap());
    assert_eq!(
        tr["status"]["activeVersion"].as_str(),
        Some(retrained.as_str())
    );
    wait_for("the retrained version to be published", 60, || async {
        pointer(client.clone(), ns.clone()).await["dropout"]["version"].as_str()
            == Some(retrained.as_str())
    })
    .await;
    delete_namespace_and_wait(&client, &ns).await;
}

/// The keys under `prefix` in the platform's bucket, sorted.
async fn keys(store: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = store
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn retention_and_deletion_remove_real_bundles_through_prune_jobs_and_the_finalizer() {
    build_worker_image();
    let (client, ns) = namespace("op-bundles").await;
    install_crds(&client).await;
    secrets(&client, &ns, &env("DATABASE_URL")).await;
    let s3 = S3Settings::from_env().unwrap();
    let store = mooc_worker::stores::s3::client(&s3);
    let prefix = format!("operator-test/{ns}/dropout");
    for version in ["v1", "v2", "v3"] {
        for file in ["model.txt", "manifest.json"] {
            store
                .put_object()
                .bucket(&s3.bucket)
                .key(format!("{prefix}/{version}/{file}"))
                .body(ByteStream::from_static(b"bundle"))
                .send()
                .await
                .unwrap();
        }
    }
    let _operator = Operator::start(&client, &ns, 3600).await;
    let mut artifacts = bucket();
    artifacts["prefix"] = json!(prefix);
    artifacts["deletionPolicy"] = json!("Delete");
    let training = json!({
        "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "TrainingRun", "metadata": { "name": "dropout" },
        // Its DataLoad never comes: no run starts, the versions below are all it has.
        "spec": { "dataLoadRef": { "name": "absent" }, "artifacts": artifacts, "versions": { "keep": 1 } },
    });
    create(&client, &ns, "trainingruns", training)
        .await
        .unwrap();
    wait_for("the finalizer and a first status", 60, || async {
        let tr = get(&client, &ns, "trainingruns", "dropout").await;
        tr["metadata"]["finalizers"] == json!(["mooc.recsys.io/bundle-cleanup"])
            && tr["status"]["phase"] == "Waiting"
    })
    .await;

    // Three versions an earlier run recorded; with keep 1, v1 and v2 go.
    let version = |name: &str, day: u32| {
        json!({
            "version": name, "run": "g0", "created": format!("2026-12-0{day}T02:00:00Z"),
            "artifactUri": format!("s3://{}/{prefix}/{name}/", s3.bucket), "metrics": { "auc": 0.8 },
        })
    };
    patch_status(
        &client,
        &ns,
        "trainingruns",
        "dropout",
        json!({ "versions": [version("v3", 3), version("v2", 2), version("v1", 1)], "activeVersion": "v3" }),
    )
    .await;
    wait_for("the bundles of v1 and v2 to be deleted", 120, || async {
        keys(&store, &s3.bucket, &format!("{prefix}/")).await
            == [
                format!("{prefix}/v3/manifest.json"),
                format!("{prefix}/v3/model.txt"),
            ]
    })
    .await;
    wait_for("the prune to be confirmed in status", 60, || async {
        let tr = get(&client, &ns, "trainingruns", "dropout").await;
        tr["status"]["pruning"].is_null() && versions(&tr) == ["v3"]
    })
    .await;
    let reasons = event_reasons(&client, &ns, "dropout").await;
    assert!(
        reasons.contains(&"VersionsPruned".into()) && reasons.contains(&"BundlesDeleted".into()),
        "{reasons:?}"
    );

    // Deleted with deletionPolicy Delete: the finalizer holds it until v3's bundle is gone too.
    delete(&ns, "trainingruns", "dropout");
    wait_for("the TrainingRun to be gone", 120, || async {
        !exists(&client, &ns, "trainingruns", "dropout").await
    })
    .await;
    assert_eq!(
        keys(&store, &s3.bucket, &format!("{prefix}/")).await,
        Vec::<String>::new()
    );
    let cleanup: Vec<Job> = jobs(&client, &ns)
        .await
        .into_iter()
        .filter(|j| {
            j.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("dropout-cleanup-"))
        })
        .collect();
    assert_eq!(cleanup.len(), 1, "one cleanup Job");
    assert_eq!(
        cleanup[0].metadata.annotations.as_ref().unwrap()["mooc.recsys.io/pruned-versions"],
        "v3"
    );
    let reasons = event_reasons(&client, &ns, "dropout").await;
    assert!(reasons.contains(&"CleanupStarted".into()), "{reasons:?}");
    delete_namespace_and_wait(&client, &ns).await;
}

#[tokio::test]
async fn with_leader_election_one_replica_reconciles_and_a_standby_takes_over_when_it_dies() {
    let (client, ns) = namespace("op-leader").await;
    install_crds(&client).await;
    secrets(&client, &ns, &env("DATABASE_URL")).await;
    let flags = [
        "--leader-elect",
        "--leader-election-namespace",
        &ns,
        "--leader-election-lease-seconds",
        "4",
    ];
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &ns);
    let holder = || async {
        leases
            .get_opt("mooc-operator")
            .await
            .unwrap()
            .and_then(|l| l.spec)
            .unwrap_or_default()
    };
    let first = Operator::start_with(&client, &ns, 3600, &flags).await;
    let first_id = format!("-{}", first.pid());
    wait_for("the first replica to lead", 60, || async {
        holder()
            .await
            .holder_identity
            .is_some_and(|h| h.ends_with(&first_id))
    })
    .await;
    let second = Operator::start_with(&client, &ns, 3600, &flags).await;
    let second_id = format!("-{}", second.pid());
    create(&client, &ns, "dataloads", stand_in_dataload("one"))
        .await
        .unwrap();
    wait_condition(&client, &ns, "dataloads", "one", "Ready", 120).await;
    assert!(
        holder()
            .await
            .holder_identity
            .is_some_and(|h| h.ends_with(&first_id)),
        "the leader keeps its Lease while it renews it"
    );

    // The leader dies without giving the Lease up: the standby takes it once it expires.
    first.kill();
    wait_for("the standby to lead", 60, || async {
        holder()
            .await
            .holder_identity
            .is_some_and(|h| h.ends_with(&second_id))
    })
    .await;
    assert_eq!(holder().await.lease_transitions, Some(1));
    create(&client, &ns, "dataloads", stand_in_dataload("two"))
        .await
        .unwrap();
    wait_condition(&client, &ns, "dataloads", "two", "Ready", 120).await;
    assert_eq!(run_jobs(&jobs(&client, &ns).await), ["one-g1", "two-g1"]);
    drop(second);
    delete_namespace_and_wait(&client, &ns).await;
}

#[tokio::test]
async fn restarting_the_operator_mid_run_creates_no_second_job() {
    let (client, ns) = namespace("op-restart").await;
    install_crds(&client).await;
    secrets(&client, &ns, &env("DATABASE_URL")).await;
    let operator = Operator::start(&client, &ns, 3600).await;
    // A stand-in worker that runs until it is stopped: the run stays in progress.
    let mut spec = json!({ "source": source("in/"), "target": target() });
    spec["pod"] = json!({ "podOverrides": { "containers": [{ "name": "worker", "image": PROBE_IMAGE, "imagePullPolicy": "Never", "args": ["sleep"] }] } });
    create(&client, &ns, "dataloads", dataload("long", spec))
        .await
        .unwrap();
    wait_for("the run to be Running", 120, || async {
        get(&client, &ns, "dataloads", "long").await["status"]["runs"][0]["phase"] == "Running"
    })
    .await;
    operator.kill();
    let before = get(&client, &ns, "dataloads", "long").await;

    let _operator = Operator::start(&client, &ns, 3600).await;
    // A change that makes the new operator reconcile, without a new generation.
    patch(
        &client,
        &ns,
        "dataloads",
        "long",
        json!({ "metadata": { "labels": { "touched": "yes" } } }),
    )
    .await
    .unwrap();
    wait_for("the restarted operator to reconcile", 60, || async {
        get(&client, &ns, "dataloads", "long").await["metadata"]["resourceVersion"]
            != before["metadata"]["resourceVersion"]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(run_jobs(&jobs(&client, &ns).await), ["long-g1"]);
    let after = get(&client, &ns, "dataloads", "long").await;
    assert_eq!(after["status"]["runs"].as_array().unwrap().len(), 1);
    assert_eq!(after["status"]["runs"][0]["phase"], "Running");
    assert!(condition(&after, "Reconciling"));
    delete_namespace_and_wait(&client, &ns).await;
}

#[tokio::test]
async fn an_invalid_schedule_stalls_with_one_event_and_no_job() {
    let (client, ns) = namespace("op-invalid").await;
    install_crds(&client).await;
    secrets(&client, &ns, &env("DATABASE_URL")).await;
    let _operator = Operator::start(&client, &ns, 3600).await;
    let spec = json!({ "source": source("in/"), "target": target(), "schedule": "0 25 * * *" });
    create(&client, &ns, "dataloads", dataload("bad", spec))
        .await
        .unwrap();
    let stalled = wait_condition(&client, &ns, "dataloads", "bad", "Stalled", 60).await;
    assert_eq!(stalled["status"]["phase"], "Invalid");
    assert!(!condition(&stalled, "Ready"));
    let message = stalled["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap()["message"]
        .clone();
    assert!(
        message.as_str().unwrap().contains("0 25 * * *"),
        "the message names the expression: {message}"
    );
    // No retry storm: the status is not rewritten and the event is sent once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = get(&client, &ns, "dataloads", "bad").await;
    assert_eq!(
        later["metadata"]["resourceVersion"],
        stalled["metadata"]["resourceVersion"]
    );
    let reasons = event_reasons(&client, &ns, "bad").await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "InvalidSpec").count(),
        1,
        "{reasons:?}"
    );
    assert!(jobs(&client, &ns).await.is_empty());

    // Fixing the spec clears Stalled; suspended, it starts nothing.
    patch(
        &client,
        &ns,
        "dataloads",
        "bad",
        json!({ "spec": { "schedule": "0 2 * * *", "suspend": true } }),
    )
    .await
    .unwrap();
    wait_for("the fixed DataLoad to be Suspended", 60, || async {
        let fixed = get(&client, &ns, "dataloads", "bad").await;
        fixed["status"]["phase"] == "Suspended"
            && !condition(&fixed, "Stalled")
            && fixed["status"]["observedGeneration"] == 2
    })
    .await;
    assert!(jobs(&client, &ns).await.is_empty());
    delete_namespace_and_wait(&client, &ns).await;
}

/// `kubectl delete`, as a user deletes.
fn delete(ns: &str, plural: &str, name: &str) {
    let deleted = std::process::Command::new("kubectl")
        .args(["delete", plural, name, "-n", ns, "--wait=false"])
        .output()
        .unwrap();
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
}
