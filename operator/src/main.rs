//! mooc-operator: reconciles DataLoad, TrainingRun, ALSJob and StreamDeployment resources, and
//! serves `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use mooc_operator::context::{Config, Context};
use mooc_operator::controllers::{self, Scope};
use mooc_operator::metrics::Metrics;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Image of `mooc-worker`, used where a resource's `spec.pod.image` is unset.
    #[arg(long, env = "MOOC_WORKER_IMAGE", default_value = concat!("mooc-recsys/mooc-worker:", env!("CARGO_PKG_VERSION")))]
    worker_image: String,
    /// Seconds a finished run Job is kept before Kubernetes deletes it (results stay in status).
    #[arg(long, env = "MOOC_JOB_TTL_SECONDS", default_value_t = 3600)]
    job_ttl_seconds: i32,
    /// Watch this namespace only (a namespaced install); all namespaces when unset.
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "MOOC_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes credentials: set KUBECONFIG or run in a pod")?;
    let version = client
        .apiserver_version()
        .await
        .context("the Kubernetes API server did not answer")?;
    tracing::info!(server = %version.git_version, namespace = ?args.namespace, "connected to the Kubernetes API server");

    let metrics = Arc::new(Metrics::default());
    let config = Config {
        worker_image: args.worker_image,
        job_ttl_seconds: args.job_ttl_seconds,
    };
    let ctx = Arc::new(Context::new(
        client,
        config,
        metrics.clone(),
        Arc::new(chrono::Utc::now),
    ));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    tracing::info!(address = %args.metrics_addr, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(|| async { StatusCode::OK }))
        .route("/readyz", get(|| async { StatusCode::OK }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    controllers::run(ctx, Scope(args.namespace)).await;
    server.abort();
    tracing::info!("stopped");
    Ok(())
}
