//! Proof that the local platform's Kafka works the way the streaming workers use it: a message
//! round-trips through a consumer group, and a restarted consumer resumes after the committed
//! offset. Needs `eval "$(dev/env)"`; fails (never skips) when the broker is down.

use std::time::Duration;

use mooc_worker::settings::KafkaSettings;
use mooc_worker::stores;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;

const WAIT: Duration = Duration::from_secs(30);

async fn create_topic(settings: &KafkaSettings, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(WAIT)),
        )
        .await
        .expect("Kafka must be running (dev/up)");
    for result in results {
        result.expect("topic created");
    }
}

async fn send(settings: &KafkaSettings, topic: &str, key: &str, payload: &str) {
    let producer = stores::kafka::producer(settings).unwrap();
    producer
        .send(FutureRecord::to(topic).key(key).payload(payload), WAIT)
        .await
        .map_err(|(error, _)| error)
        .expect("delivered");
}

/// The next message of `consumer`, as (offset, key, payload).
async fn receive(consumer: &StreamConsumer) -> (i64, String, String) {
    let message = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("a message within 30 s")
        .expect("no Kafka error");
    let text = |bytes: Option<&[u8]>| String::from_utf8(bytes.unwrap().to_vec()).unwrap();
    let received = (
        message.offset(),
        text(message.key()),
        text(message.payload()),
    );
    consumer
        .commit_message(&message, CommitMode::Sync)
        .expect("offset committed");
    received
}

#[tokio::test]
async fn a_restarted_group_consumer_resumes_after_the_committed_offset() {
    let settings = KafkaSettings::from_env().expect("Kafka settings");
    let run = uuid::Uuid::new_v4();
    let topic = format!("proof-events-{run}");
    let group = format!("proof-group-{run}");
    create_topic(&settings, &topic).await;

    let event = r#"{"username":"5","course_id":"course-v1:A+B+C","action":"video","timestamp":"2014-06-14T09:38:29"}"#;
    send(&settings, &topic, "5", event).await;
    {
        let consumer = stores::kafka::group_consumer(&settings, &group).unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        assert_eq!(
            receive(&consumer).await,
            (0, "5".to_owned(), event.to_owned())
        );
        // Dropping the consumer leaves the group, as a restarted pod would.
    }

    send(&settings, &topic, "6", "second").await;
    let consumer = stores::kafka::group_consumer(&settings, &group).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    // The first message was committed, so the new member starts at offset 1, not at the beginning.
    assert_eq!(
        receive(&consumer).await,
        (1, "6".to_owned(), "second".to_owned())
    );
}
