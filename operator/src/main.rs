//! mooc-operator. Until the controllers land it verifies what every controller needs first: a
//! kubeconfig or in-cluster credentials that reach an API server, which it names with its version.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes credentials: set KUBECONFIG or run in a pod")?;
    let version = client
        .apiserver_version()
        .await
        .context("the Kubernetes API server did not answer")?;
    tracing::info!(
        server = %version.git_version,
        api_group = %mooc_crds::api_version(),
        "connected to the Kubernetes API server"
    );
    Ok(())
}
