//! Prometheus metrics of the operator: reconciles, errors by static category and durations per
//! kind, plus domain gauges (runs active, rows loaded, active model score).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<KindLabel, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Family<KindLabel, Histogram>,
    pub runs_started: Family<KindLabel, Counter>,
    pub rows_loaded: Family<ObjectLabels, Gauge>,
    pub active_score: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mooc_operator");
        let reconciles = Family::<KindLabel, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let runs_started = Family::<KindLabel, Counter>::default();
        let rows_loaded = Family::<ObjectLabels, Gauge>::default();
        let active_score = Family::<ObjectLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("reconciles", "Reconciles by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by kind and category",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile durations by kind",
            duration.clone(),
        );
        registry.register("runs_started", "Jobs started by kind", runs_started.clone());
        registry.register(
            "dataload_rows_loaded",
            "Rows loaded by the last successful load",
            rows_loaded.clone(),
        );
        registry.register(
            "model_active_score",
            "Promotion metric of the active model version (AUC, NDCG@10)",
            active_score.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            runs_started,
            rows_loaded,
            active_score,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
