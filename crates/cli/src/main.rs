//! The `sagebridge` binary: parses arguments, sets up logging, calls one library function per
//! subcommand and maps the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 a fatal error (or a mandatory check failed); 2 a bad
//! configuration; 3 a run that completed with failures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sagebridge_aws::{ClientOptions, Clients};
use sagebridge_ingest::config::WorkflowConfig;

#[derive(Parser)]
#[command(
    name = "sagebridge",
    version,
    about = "Amazon SageMaker to your metadata catalog and your AI applications"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the configured AWS identity can do what ingestion needs, step by step.
    TestConnection {
        /// Workflow YAML (OpenMetadata format).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SAGEBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::TestConnection { config, json } => test_connection(&config, json).await,
    }
}

fn load_workflow(path: &std::path::Path) -> Result<WorkflowConfig, ExitCode> {
    WorkflowConfig::load(path).map_err(|e| {
        eprint!("error: {e}");
        ExitCode::from(2)
    })
}

async fn test_connection(path: &std::path::Path, json: bool) -> ExitCode {
    init_logging("warn");
    let cfg = match load_workflow(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let aws = cfg.aws();
    if !json {
        println!(
            "testing {} in {} ({})",
            cfg.source.service_name,
            aws.region(),
            aws.credential_source()
        );
    }
    let clients = match Clients::new(aws, &ClientOptions::no_retries()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let report = sagebridge_ingest::test_connection::test_connection(&clients).await;
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print!("{}", report.to_table());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
