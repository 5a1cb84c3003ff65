//! Proof that the local platform's S3 store works with aws-sdk-s3 the way the workers use it:
//! plain and multipart uploads read back byte for byte, and listings paginate.
//! Needs `eval "$(dev/env)"`; fails (never skips) when the store is down.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use mooc_worker::settings::S3Settings;
use mooc_worker::stores;

fn settings() -> S3Settings {
    S3Settings::from_env().expect("S3 settings")
}

/// A prefix of its own per test run, so reruns and parallel tests never see each other's keys.
fn unique_prefix(test: &str) -> String {
    format!("proof/{test}/{}/", uuid::Uuid::new_v4())
}

async fn read_all(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get_object")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn an_object_round_trips_through_s3() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let key = format!("{}user_info.csv", unique_prefix("object"));
    let body = "user_id,gender,education,birth\r\n\u{feff}7,女,Bachelor's,1990\r\n".as_bytes();

    let put = client
        .put_object()
        .bucket(&settings.bucket)
        .key(&key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .expect("S3 must be running (dev/up)");
    assert_eq!(read_all(&client, &settings.bucket, &key).await, body);

    let head = client
        .head_object()
        .bucket(&settings.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.e_tag(), put.e_tag());
}

#[tokio::test]
async fn a_multipart_upload_is_read_back_whole() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let key = format!("{}train.csv", unique_prefix("multipart"));
    // S3 requires every part but the last to be at least 5 MiB.
    let parts: Vec<Vec<u8>> = vec![
        (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect(),
        b"the last, short part".to_vec(),
    ];

    let upload = client
        .create_multipart_upload()
        .bucket(&settings.bucket)
        .key(&key)
        .send()
        .await
        .expect("S3 must be running (dev/up)");
    let upload_id = upload.upload_id().expect("an upload id");
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = index as i32 + 1;
        let uploaded = client
            .upload_part()
            .bucket(&settings.bucket)
            .key(&key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_owned))
                .build(),
        );
    }
    let done = client
        .complete_multipart_upload()
        .bucket(&settings.bucket)
        .key(&key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();

    // A multipart ETag is the MD5 of the parts' MD5s with the part count: `"<hex>-2"`.
    assert!(
        done.e_tag().unwrap().trim_matches('"').ends_with("-2"),
        "multipart ETag {:?}",
        done.e_tag()
    );
    assert_eq!(
        read_all(&client, &settings.bucket, &key).await,
        parts.concat()
    );
}

#[tokio::test]
async fn a_listing_pages_through_every_key() {
    let settings = settings();
    let client = stores::s3::client(&settings);
    let prefix = unique_prefix("listing");
    let mut expected: Vec<String> = (0..7).map(|i| format!("{prefix}part-{i:02}.csv")).collect();
    for key in &expected {
        client
            .put_object()
            .bucket(&settings.bucket)
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("S3 must be running (dev/up)");
    }

    let mut pages = client
        .list_objects_v2()
        .bucket(&settings.bucket)
        .prefix(&prefix)
        .max_keys(3)
        .into_paginator()
        .send();
    let mut listed = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        page_count += 1;
        assert!(page.contents().len() <= 3);
        listed.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(page_count, 3, "7 keys at 3 per page");
}
