//! mooc-operator: reconciles DataLoad, TrainingRun, ALSJob and StreamDeployment resources, and
//! serves `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use mooc_operator::context::{Config, Context};
use mooc_operator::controllers::{self, Scope};
use mooc_operator::leader::LeaderElection;
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
    /// Reconcile only while holding a Lease, so that several replicas can run (one leads).
    #[arg(long, env = "MOOC_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the Lease; the operator's own (`POD_NAMESPACE`) in a pod.
    #[arg(long, env = "POD_NAMESPACE", required_if_eq("leader_elect", "true"))]
    leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        env = "MOOC_LEADER_ELECTION_LEASE",
        default_value = "mooc-operator"
    )]
    leader_election_lease: String,
    /// Seconds a leader's Lease lasts without renewal; a standby takes over after it.
    #[arg(long, env = "MOOC_LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    leader_election_lease_seconds: u64,
}

/// Who this replica is in the Lease: its pod name, else host and process id.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}-{}", std::process::id())
    })
}

/// SIGTERM (a pod being stopped) or Ctrl-C.
async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
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
        client.clone(),
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
    let scope = Scope(args.namespace);
    let outcome = match args.leader_election_namespace.filter(|_| args.leader_elect) {
        None => {
            controllers::run(ctx, scope).await;
            Ok(())
        }
        Some(namespace) => {
            let election = LeaderElection::new(
                client,
                &namespace,
                &args.leader_election_lease,
                identity(),
                Duration::from_secs(args.leader_election_lease_seconds),
            );
            let lease = format!("{namespace}/{}", args.leader_election_lease);
            tracing::info!(%lease, identity = election.identity(), "waiting to lead");
            tokio::select! {
                _ = election.acquire() => lead(&election, &lease, ctx, scope).await,
                _ = stop_signal() => Ok(()),
            }
        }
    };
    server.abort();
    tracing::info!("stopped");
    outcome
}

/// Reconciles while holding the Lease; gives it up on a graceful stop, fails when it is lost.
async fn lead(
    election: &LeaderElection,
    lease: &str,
    ctx: Arc<Context>,
    scope: Scope,
) -> anyhow::Result<()> {
    tracing::info!(%lease, identity = election.identity(), "leading");
    tokio::select! {
        _ = controllers::run(ctx, scope) => {
            election.release().await;
            Ok(())
        }
        _ = election.keep() => anyhow::bail!("lost the Lease {lease}; stopping so that only one replica reconciles"),
    }
}
