//! `sagebridge-seed`: fill a SageMaker endpoint (moto, usually) with the testkit's realistic
//! data set. Used by `scripts/demo.sh` and the benchmark scripts.
//!
//! ```text
//! sagebridge-seed --endpoint http://127.0.0.1:5000 [--preset demo|bulk] [--models N]
//! ```
//! Prints one summary line (or the full summary as JSON with `--json`).

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sagebridge_testkit::aws::{sagemaker_client_with, TestClientOptions};
use sagebridge_testkit::seed::{seed, validate, SeedSpec};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// 40 models, training jobs, feature groups, endpoints, a multi-container model.
    Demo,
    /// Many models with training jobs and three tags each.
    Bulk,
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Seed a SageMaker endpoint (moto) with realistic models"
)]
struct Args {
    /// SageMaker endpoint URL, e.g. http://127.0.0.1:5000.
    #[arg(long, env = "SAGEBRIDGE_SEED_ENDPOINT")]
    endpoint: String,
    /// Data set preset; defaults to `demo`, or `bulk` when --models is given.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Number of models (overrides the preset's).
    #[arg(long)]
    models: Option<usize>,
    /// Tags per model (overrides the preset's).
    #[arg(long)]
    tags_per_model: Option<usize>,
    /// Skip training jobs.
    #[arg(long)]
    no_training_jobs: bool,
    /// Resource name prefix (overrides the preset's).
    #[arg(long)]
    prefix: Option<String>,
    /// Region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// moto account to seed (sent as x-moto-account-id).
    #[arg(long)]
    account: Option<String>,
    /// SDK calls in flight at once.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Print the whole summary as JSON instead of one line.
    #[arg(long)]
    json: bool,
}

fn spec_from(args: &Args) -> SeedSpec {
    let preset = args.preset.unwrap_or(if args.models.is_some() {
        Preset::Bulk
    } else {
        Preset::Demo
    });
    let mut spec = match preset {
        Preset::Demo => SeedSpec::demo(),
        Preset::Bulk => SeedSpec::bulk(args.models.unwrap_or(1000)),
    };
    if let Some(models) = args.models {
        spec.models = models;
    }
    if let Some(tags) = args.tags_per_model {
        spec.tags_per_model = tags;
    }
    if args.no_training_jobs {
        spec.with_training_jobs = false;
    }
    if let Some(prefix) = &args.prefix {
        spec.name_prefix = prefix.clone();
    }
    if let Some(concurrency) = args.concurrency {
        spec.concurrency = concurrency;
    }
    spec
}

async fn run(args: Args) -> anyhow::Result<()> {
    let spec = spec_from(&args);
    validate(&spec)?;
    let options = TestClientOptions {
        region: args.region.clone(),
        account: args.account.clone(),
        ..TestClientOptions::default()
    };
    let client = sagemaker_client_with(&args.endpoint, &options);
    let summary = seed(&client, &spec).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{} at {}", summary.one_line(), args.endpoint);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sagebridge-seed: {error:#}");
            ExitCode::FAILURE
        }
    }
}
