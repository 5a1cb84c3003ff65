//! What every controller shares: the client, the operator's settings, the clock, metrics and the
//! event recorder; and the error type whose static categories label the error metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::metrics::Metrics;

/// Settings of the operator itself (flags of the binary).
#[derive(Clone, Debug)]
pub struct Config {
    /// Image of `mooc-worker`, used where a resource names none.
    pub worker_image: String,
    /// Finished Jobs are deleted this long after they end; their results live on in status.
    pub job_ttl_seconds: i32,
}

/// The clock, injected so that tests can move time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    recorder: Recorder,
    /// Consecutive failed reconciles per object, for its backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, config: Config, metrics: Arc<Metrics>, clock: Clock) -> Self {
        let reporter = Reporter {
            controller: "mooc-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            metrics,
            clock,
            failures: Mutex::default(),
        }
    }

    /// Counts a failed reconcile of `key`; returns how many in a row.
    pub fn count_failure(&self, key: &str) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count += 1;
        *count
    }

    pub fn reset_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Publishes a Kubernetes Event about `object`; a failure to publish is logged, not fatal.
    pub async fn event<K>(&self, object: &K, warning: bool, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, reason, "publishing an event failed");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    InvalidSpec(String),
    #[error("building a child object: {0}")]
    Build(String),
}

impl Error {
    /// A fixed label for metrics (never a message: cardinality stays bounded).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(_) => "kube_api",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Build(_) => "build",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
