//! `mooc-worker prune` against the local platform's S3 store: exactly the objects under each
//! version prefix go, a sibling prefix (`v10/` next to `v1/`) stays, a second prune deletes
//! nothing, and a URI for another bucket is refused before anything is deleted.
//! Needs `eval "$(dev/env)"`; fails (never skips) when the store is down.

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use futures::{StreamExt, TryStreamExt};
use mooc_worker::prune::{self, PruneArgs, PruneSummary, Pruned};
use mooc_worker::settings::S3Settings;
use mooc_worker::stores;

fn settings() -> S3Settings {
    S3Settings::from_env().expect("S3 settings")
}

/// A prefix of its own per test run, so reruns and parallel tests never see each other's keys.
fn unique_prefix(test: &str) -> String {
    format!("prune-test/{test}/{}/", uuid::Uuid::new_v4())
}

fn args(uris: &[String]) -> PruneArgs {
    PruneArgs {
        uris: uris.to_vec(),
        batch_size: prune::MAX_BATCH,
        termination_log: PathBuf::from("/nonexistent/termination-log"),
    }
}

fn uri(settings: &S3Settings, prefix: &str) -> String {
    format!("s3://{}/{prefix}", settings.bucket)
}

/// Uploads a small object at each key, a few at a time.
async fn upload(client: &aws_sdk_s3::Client, bucket: &str, keys: &[String]) {
    futures::stream::iter(keys)
        .map(|key| {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(key.as_bytes().to_vec()))
                .send()
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("S3 must be running (dev/up)");
}

/// Every key under `prefix`, sorted.
async fn keys_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.expect("listing");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn pruning_versions_leaves_their_siblings_and_is_idempotent() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let root = format!("{}models/dropout/", unique_prefix("versions"));
    let at = |name: &str| format!("{root}{name}");
    upload(
        &client,
        &settings.bucket,
        &[
            at("v1/model.txt"),
            at("v1/metrics.json"),
            at("v1/features/columns.json"),
            at("v2/model.txt"),
            at("v2/metrics.json"),
            // Siblings that start with "v1" but are not under "v1/". (A key "v1" itself cannot
            // sit next to "v1/..." on the local store, which keeps objects as files.)
            at("v10/model.txt"),
            at("v1.txt"),
        ],
    )
    .await;

    let uris = [
        uri(&settings, &at("v1/")),
        uri(&settings, &at("v2/")),
        // Never written: an empty prefix prunes with 0 deleted.
        uri(&settings, &at("v3/")),
    ];
    let summary = prune::run(&args(&uris), &settings)
        .await
        .expect("the prune runs");
    assert_eq!(
        summary,
        PruneSummary {
            pruned: vec![
                Pruned {
                    uri: uris[0].clone(),
                    objects_deleted: 3
                },
                Pruned {
                    uri: uris[1].clone(),
                    objects_deleted: 2
                },
                Pruned {
                    uri: uris[2].clone(),
                    objects_deleted: 0
                },
            ],
            objects_deleted: 5,
        }
    );
    assert_eq!(
        keys_under(&client, &settings.bucket, &root).await,
        vec![at("v1.txt"), at("v10/model.txt")]
    );

    let again = prune::run(&args(&uris[..2]), &settings)
        .await
        .expect("the second prune runs");
    assert_eq!(again.objects_deleted, 0);
    assert!(again.pruned.iter().all(|p| p.objects_deleted == 0));
    assert_eq!(
        keys_under(&client, &settings.bucket, &root).await,
        vec![at("v1.txt"), at("v10/model.txt")]
    );
}

#[tokio::test]
async fn a_prefix_is_pruned_page_by_page() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let root = unique_prefix("pages");
    let keys: Vec<String> = (0..7).map(|i| format!("{root}v1/part-{i:02}")).collect();
    upload(&client, &settings.bucket, &keys).await;
    upload(&client, &settings.bucket, &[format!("{root}v10/part-00")]).await;

    // 7 keys at 2 per page: 4 listing pages and 4 DeleteObjects requests.
    let summary = prune::run(
        &PruneArgs {
            batch_size: 2,
            ..args(&[uri(&settings, &format!("{root}v1/"))])
        },
        &settings,
    )
    .await
    .expect("the prune runs");
    assert_eq!(summary.objects_deleted, 7);
    assert_eq!(
        keys_under(&client, &settings.bucket, &root).await,
        vec![format!("{root}v10/part-00")]
    );
}

#[tokio::test]
async fn more_than_one_delete_request_of_1000_keys() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let root = unique_prefix("thousand");
    let keys: Vec<String> = (0..1001).map(|i| format!("{root}v1/k{i:04}")).collect();
    upload(&client, &settings.bucket, &keys).await;

    let summary = prune::run(&args(&[uri(&settings, &format!("{root}v1/"))]), &settings)
        .await
        .expect("the prune runs");
    assert_eq!(summary.objects_deleted, 1001);
    assert!(
        keys_under(&client, &settings.bucket, &root)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_uri_for_another_bucket_is_refused_before_anything_is_deleted() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let root = unique_prefix("refused");
    let kept = vec![format!("{root}v1/model.txt"), format!("{root}v2/model.txt")];
    upload(&client, &settings.bucket, &kept).await;

    let foreign = format!("s3://not-{}/{root}v2/", settings.bucket);
    let error = prune::run(
        &args(&[uri(&settings, &format!("{root}v1/")), foreign.clone()]),
        &settings,
    )
    .await
    .expect_err("another bucket is refused");
    let message = format!("{error:#}");
    assert!(message.contains(&foreign), "{message}");
    assert!(
        message.contains(&format!("configured bucket {:?}", settings.bucket)),
        "{message}"
    );
    // The valid URI listed before it was not pruned either.
    assert_eq!(keys_under(&client, &settings.bucket, &root).await, kept);

    for bad in [
        format!("s3://{}/", settings.bucket),
        format!("s3://{}/{root}v1", settings.bucket),
        format!("s3://{}/{root}../", settings.bucket),
    ] {
        let error = prune::run(&args(std::slice::from_ref(&bad)), &settings)
            .await
            .expect_err("a bad URI is refused");
        assert!(format!("{error:#}").contains(&bad), "{error:#}");
    }
    assert_eq!(keys_under(&client, &settings.bucket, &root).await, kept);
}
