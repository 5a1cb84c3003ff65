use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mooc_worker::settings::{KafkaSettings, PostgresSettings, S3Settings};
use mooc_worker::{als, dropout, etl, generate, health, prune, termination, training};
use tracing_subscriber::EnvFilter;

/// The mooc-recsys workers; the operator runs one subcommand per Job or Deployment.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks that PostgreSQL, the S3 bucket and Kafka answer, with the settings from the
    /// environment; exits non-zero when any does not.
    Check,
    /// Loads user_info and train CSV objects from S3 into PostgreSQL (a DataLoad run).
    Etl(etl::EtlArgs),
    /// Writes seeded synthetic user_info.csv and train.csv files of any size.
    Generate(generate::GenerateArgs),
    /// Deletes every object under S3 prefixes (model bundles past retention).
    Prune(prune::PruneArgs),
    /// Trains the LightGBM dropout model into a new bundle (a TrainingRun run).
    TrainDropout(training::TrainArgs),
    /// Trains implicit-feedback ALS course recommendations into a new bundle (an ALSJob run).
    TrainAls(als::AlsArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Check => check().await,
        Command::Etl(args) => run_etl(&args).await,
        Command::Generate(args) => match generate::generate(&args) {
            Ok(generated) => {
                println!("{}", serde_json::to_string(&generated).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!("{error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Prune(args) => run_prune(&args).await,
        Command::TrainDropout(ref args) => {
            run_training(&args.termination_log, |postgres, s3| async move {
                dropout::run(args, &postgres, &s3).await
            })
            .await
        }
        Command::TrainAls(ref args) => {
            run_training(&args.training.termination_log, |postgres, s3| async move {
                als::run(args, &postgres, &s3).await
            })
            .await
        }
    }
}

async fn run_etl(args: &etl::EtlArgs) -> ExitCode {
    let settings = PostgresSettings::from_env().and_then(|pg| Ok((pg, S3Settings::from_env()?)));
    let outcome = match settings {
        Ok((postgres, s3)) => etl::run(args, &postgres, &s3).await,
        Err(error) => Err(error.into()),
    };
    let outcome =
        outcome.and_then(|summary| etl::report(args, &summary).map(|()| summary.failed()));
    match outcome {
        // Reported, with the objects that failed.
        Ok(true) => ExitCode::FAILURE,
        other => finish(&args.termination_log, other.map(drop)),
    }
}

async fn run_prune(args: &prune::PruneArgs) -> ExitCode {
    let outcome = match S3Settings::from_env() {
        Ok(s3) => prune::run(args, &s3).await,
        Err(error) => Err(error.into()),
    };
    finish(
        &args.termination_log,
        outcome.and_then(|summary| prune::report(args, &summary)),
    )
}

/// A training job: settings from the environment, the outcome reported for the operator.
async fn run_training<T, F>(
    termination_log: &std::path::Path,
    train: impl FnOnce(PostgresSettings, S3Settings) -> F,
) -> ExitCode
where
    T: serde::Serialize,
    F: Future<Output = anyhow::Result<T>>,
{
    let settings = PostgresSettings::from_env().and_then(|pg| Ok((pg, S3Settings::from_env()?)));
    let outcome = match settings {
        Ok((postgres, s3)) => train(postgres, s3).await,
        Err(error) => Err(error.into()),
    };
    finish(
        termination_log,
        outcome.and_then(|o| termination::report(termination_log, &o)),
    )
}

/// Exit code of a job whose result was reported; an error is reported as `{"error": …}`.
fn finish(termination_log: &std::path::Path, outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            let message = serde_json::json!({ "error": format!("{error:#}") });
            if let Err(error) = termination::report(termination_log, &message) {
                tracing::error!("{error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn check() -> ExitCode {
    let probes = [
        ("postgres", probe_postgres().await),
        ("s3", probe_s3().await),
        ("kafka", probe_kafka().await),
    ];
    let mut healthy = true;
    for (service, result) in probes {
        match result {
            Ok(detail) => println!("{service:<9} ok      {detail}"),
            Err(error) => {
                healthy = false;
                println!("{service:<9} FAILED  {error:#}");
            }
        }
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn probe_postgres() -> anyhow::Result<String> {
    health::postgres(&PostgresSettings::from_env()?).await
}

async fn probe_s3() -> anyhow::Result<String> {
    health::s3(&S3Settings::from_env()?).await
}

async fn probe_kafka() -> anyhow::Result<String> {
    health::kafka(&KafkaSettings::from_env()?).await
}
