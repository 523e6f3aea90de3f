//! `sagebridge-fake-openmetadata`: the testkit's stand-in OpenMetadata server as a standalone
//! process, for `scripts/bench/ingest-vs-openmetadata.sh` (OpenMetadata's own ingestion client
//! and sagebridge's `metadata-rest` sink both write to it).
//!
//! ```text
//! sagebridge-fake-openmetadata --token JWT
//! ```
//! Prints `fake openmetadata listening on http://ADDR` once it accepts connections (clients use
//! `hostPort: http://ADDR/api`), serves until Ctrl-C or SIGTERM, then prints
//! `{"models": N, "requests": N}` on stdout.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sagebridge_testkit::FakeOpenMetadata;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A stand-in OpenMetadata server (ML models) on loopback"
)]
struct Args {
    /// The bearer token clients must send.
    #[arg(long)]
    token: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let fake = match FakeOpenMetadata::start(&args.token).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "fake openmetadata listening on {}", fake.url());
    let _ = out.flush();
    drop(out);
    sagebridge_testkit::shutdown_signal().await;
    println!(
        "{}",
        serde_json::json!({"models": fake.models().len(), "requests": fake.requests().len()})
    );
    ExitCode::SUCCESS
}
