//! `sagebridge-fake-sagemaker`: the testkit's fast fake SageMaker control plane as a process,
//! for the ingestion benchmark (`scripts/bench/ingest.sh`) and for trying things by hand.
//!
//! ```text
//! sagebridge-fake-sagemaker [--models N] [--latency-ms MS] [--rate-limit TPS] [--tags N]
//! ```
//! Prints `fake sagemaker listening on http://127.0.0.1:PORT`, serves until SIGTERM or
//! Ctrl-C, then prints its counters as one JSON line: calls per operation and throttled calls.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sagebridge_testkit::fake_sagemaker::{FakeSageMaker, FakeSpec, Operation};

#[derive(Debug, Parser)]
#[command(version, about = "A fast fake SageMaker control plane on 127.0.0.1")]
struct Args {
    /// Number of models (each with a training job).
    #[arg(long, default_value_t = 2_000)]
    models: usize,
    /// Tags per model.
    #[arg(long, default_value_t = 3)]
    tags: usize,
    /// Latency added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Calls per second allowed per API; more are answered with ThrottlingException.
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Answer `Search` with a validation error for every resource (an account or emulator
    /// without bulk reads), so ingestion reads model by model.
    #[arg(long)]
    no_search: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let spec = FakeSpec {
        models: args.models,
        tags_per_model: args.tags,
        ..FakeSpec::default()
    };
    let fake = match FakeSageMaker::start(spec).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let handle = fake.handle();
    handle.set_latency(Duration::from_millis(args.latency_ms));
    if args.no_search {
        handle.disable_bulk_search();
    }
    if let Some(tps) = args.rate_limit {
        for op in Operation::ALL {
            handle.set_rate_limit(op.name(), Some(tps));
        }
    }
    println!("fake sagemaker listening on {}", fake.endpoint());

    sagebridge_testkit::shutdown_signal().await;
    let stats = serde_json::json!({
        "calls": handle.all_calls(),
        "throttled": handle.throttled(),
    });
    println!("{stats}");
    ExitCode::SUCCESS
}
