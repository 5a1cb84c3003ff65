use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;

use crate::settings::KafkaSettings;

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap)
        .set("client.id", "mooc-worker");
    config
}

/// A producer that waits for every in-sync replica and never writes a message twice on retry.
pub fn producer(settings: &KafkaSettings) -> KafkaResult<FutureProducer> {
    base_config(settings)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
}

/// A consumer in `group` that commits only when told to: offsets move after outputs are durable
/// (at-least-once), never on a timer. A group with no committed offset starts from the earliest.
pub fn group_consumer(settings: &KafkaSettings, group: &str) -> KafkaResult<StreamConsumer> {
    base_config(settings)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
}
