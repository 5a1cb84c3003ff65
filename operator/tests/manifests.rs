//! What users apply and read, checked by the local platform's real API server: every sample in
//! `manifests/samples/` passes a server-side dry run against the committed CRDs (schemas, CEL
//! rules, defaults), and `kubectl explain` serves the fields' documentation.

mod support;

use std::process::Command;

use support::*;

fn kubectl(args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn every_sample_passes_a_server_side_dry_run() {
    let (client, ns) = namespace("samples").await;
    install_crds(&client).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/samples");
    let mut samples: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 4, "one sample per kind: {samples:?}");
    for sample in &samples {
        let path = sample.to_str().unwrap();
        let applied = kubectl(&[
            "apply",
            "--dry-run=server",
            "-n",
            &ns,
            "-f",
            path,
            "-o",
            "json",
        ]);
        // The server's answer carries the defaults it filled in: proof that the schema ran.
        let object: serde_json::Value = serde_json::from_str(&applied).unwrap();
        assert!(
            object["kind"].is_string() && object["spec"].is_object(),
            "{path}: {applied}"
        );
    }
    // Nothing was created.
    let listed = kubectl(&["get", "mooc", "-n", &ns, "-o", "name"]);
    assert_eq!(listed.trim(), "", "a dry run creates nothing");
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn kubectl_explain_serves_the_field_docs_and_get_mooc_lists_every_kind() {
    let (client, ns) = namespace("explain").await;
    install_crds(&client).await;
    let spec = kubectl(&["explain", "trainingrun.spec"]);
    for field in [
        "dataLoadRef",
        "artifacts",
        "hyperparameters",
        "schedule",
        "timeZone",
        "concurrencyPolicy",
        "versions",
        "pod",
    ] {
        assert!(
            spec.contains(field),
            "`kubectl explain trainingrun.spec` lists {field}:\n{spec}"
        );
    }
    let deletion = kubectl(&["explain", "trainingrun.spec.artifacts.deletionPolicy"]);
    assert!(
        deletion.contains("Retain") && deletion.contains("every bundle"),
        "{deletion}"
    );
    let pinned = kubectl(&["explain", "tr.spec.versions.pinnedVersion"]);
    assert!(pinned.contains("rollback"), "{pinned}");

    // The category and the printer columns, as `kubectl get mooc` shows them.
    create(
        &client,
        &ns,
        "dataloads",
        serde_json::json!({
            "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "DataLoad", "metadata": { "name": "d" },
            "spec": { "source": { "endpoint": "http://s3:8333", "bucket": "data", "prefix": "in/", "credentialsSecretRef": { "name": "s3" } },
                      "target": { "uriSecretRef": { "name": "pg", "key": "uri" } } },
        }),
    )
    .await
    .unwrap();
    let table = kubectl(&["get", "mooc", "-n", &ns]);
    let header = table.lines().next().unwrap_or("");
    for column in ["NAME", "PHASE", "READY", "AGE"] {
        assert!(header.contains(column), "{table}");
    }
    assert!(table.contains("dataload.mooc.recsys.io/d"), "{table}");
    delete_namespace(&client, &ns).await;
}

/// The API server's refusal message of a create or patch.
fn refusal(result: Result<(), kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected the API server to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn cel_rules_refuse_what_the_schema_alone_cannot_say() {
    let (client, ns) = namespace("cel").await;
    install_crds(&client).await;
    let artifacts = serde_json::json!({ "endpoint": "http://s3:8333", "bucket": "models", "credentialsSecretRef": { "name": "s3" } });
    let training = |spec: serde_json::Value| serde_json::json!({ "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "TrainingRun", "metadata": { "name": "dropout" }, "spec": spec });
    let zone_alone = training(serde_json::json!({
        "dataLoadRef": { "name": "d" }, "artifacts": artifacts, "timeZone": "Europe/Berlin",
    }));
    let message = refusal(create(&client, &ns, "trainingruns", zone_alone).await);
    assert!(
        message.contains("timeZone is only valid together with schedule"),
        "{message}"
    );

    let both = serde_json::json!({
        "apiVersion": "mooc.recsys.io/v1alpha1", "kind": "DataLoad", "metadata": { "name": "d" },
        "spec": { "source": { "endpoint": "http://s3:8333", "bucket": "data", "prefix": "in/", "keys": ["a.csv"], "credentialsSecretRef": { "name": "s3" } },
                  "target": { "uriSecretRef": { "name": "pg", "key": "uri" } } },
    });
    let message = refusal(create(&client, &ns, "dataloads", both).await);
    assert!(
        message.contains("set exactly one of keys or prefix"),
        "{message}"
    );

    let valid =
        training(serde_json::json!({ "dataLoadRef": { "name": "d" }, "artifacts": artifacts }));
    create(&client, &ns, "trainingruns", valid).await.unwrap();
    let moved = serde_json::json!({ "spec": { "dataLoadRef": { "name": "other" } } });
    let message = refusal(patch(&client, &ns, "trainingruns", "dropout", moved).await);
    assert!(message.contains("dataLoadRef is immutable"), "{message}");
    let bad_policy =
        serde_json::json!({ "spec": { "artifacts": { "deletionPolicy": "Sometimes" } } });
    let message = refusal(patch(&client, &ns, "trainingruns", "dropout", bad_policy).await);
    assert!(message.contains("Unsupported value"), "{message}");
    delete_namespace(&client, &ns).await;
}
