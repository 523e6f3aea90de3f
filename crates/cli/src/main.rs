//! The `sagebridge` binary: parses arguments, sets up logging, calls one library function per
//! subcommand and maps the outcome to an exit code.
//!
//! Each subcommand returns an [`Outcome`]; [`outcome::exit`] is the one place that prints its
//! error and maps it to the exit code: 0 success; 1 a fatal error (or a mandatory check failed);
//! 2 a bad configuration or usage; 3 a run that completed with failures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sagebridge_aws::{ClientOptions, Clients};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::schedule::{Cron, RunOutcome};
use sagebridge_ingest::shutdown::{self, Shutdown};

mod alloc;
mod file_kind;
mod outcome;
mod progress;
mod table;

use file_kind::FileKind;
use outcome::{Done, Failure, Outcome};

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
        /// With a gateway config: check only this model.
        #[arg(long)]
        model: Option<String>,
        /// With a gateway config: also send one tiny request to each endpoint.
        #[arg(long)]
        invoke: bool,
    },
    /// Ingest SageMaker models into the catalog (the main job).
    Ingest {
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Print the run report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Catalog file (overrides sink.config.path).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Describe every model again, also those unchanged since the last run (by default
        /// a model with the same ARN and creation time only has its tags refreshed).
        #[arg(long)]
        full: bool,
        /// Mark models deleted even when more than `markDeletedMaxFraction` (default 0.5) of the
        /// service's live models are gone from the listing (by default such a run deletes none
        /// and exits 3).
        #[arg(long)]
        allow_mass_delete: bool,
        /// Keep running: ingest at every time `sourceConfig.config.schedule` (cron, UTC)
        /// names, until SIGTERM or Ctrl-C. A failed run is reported and the next one still
        /// happens.
        #[arg(long)]
        schedule: bool,
    },
    /// Browse the embedded catalog.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Serve the OpenAI-compatible gateway (and the catalog's read API).
    Serve {
        /// Gateway config (sagebridge.yaml).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Overrides server.listen (e.g. 127.0.0.1:0).
        #[arg(long)]
        listen: Option<String>,
        /// The embedded catalog (created when missing): models, services, pipelines, gateway
        /// models and keys; secrets in it are encrypted with SAGEBRIDGE_SECRET_KEY or the key
        /// file beside it.
        #[arg(long, default_value = "sagebridge.db")]
        catalog: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List models (a JSON array of MlModel documents with --json).
    List {
        #[arg(long)]
        service: Option<String>,
        /// Include soft-deleted models.
        #[arg(long)]
        deleted: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "sagebridge.db")]
        catalog: PathBuf,
    },
    /// Show one model (also a soft-deleted one).
    Show {
        name: String,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "sagebridge.db")]
        catalog: PathBuf,
    },
}

/// Crates whose TRACE events print whole HTTP requests and responses (signed headers, session
/// tokens, container environments): their TRACE events are dropped whatever `SAGEBRIDGE_LOG`
/// asks for (DEBUG and above still show when asked).
const WIRE_LEVEL_TARGETS: [&str; 8] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_sigv4",
    "aws_runtime",
    "hyper",
    "h2",
];

fn init_logging(default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SAGEBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let no_wire_trace = tracing_subscriber::filter::filter_fn(|meta| {
        let wire = WIRE_LEVEL_TARGETS
            .iter()
            .any(|t| meta.target() == *t || meta.target().starts_with(&format!("{t}::")));
        !(wire && *meta.level() == tracing::Level::TRACE)
    });
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(no_wire_trace);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        alloc::tune_for_batch();
    }
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(Failure::Fatal(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    outcome::exit(outcome)
}

async fn run(cli: Cli) -> Outcome {
    match cli.command {
        Command::TestConnection {
            config,
            json,
            model,
            invoke,
        } => match file_kind::detect(&config).map_err(Failure::Config)? {
            FileKind::Gateway => gateway_check(&config, json, model.as_deref(), invoke).await,
            FileKind::Workflow | FileKind::Unparsed => test_connection(&config, json).await,
        },
        Command::Ingest {
            config,
            json,
            catalog,
            full,
            allow_mass_delete,
            schedule,
        } => {
            let run = IngestArgs {
                json,
                catalog,
                full,
                allow_mass_delete,
            };
            if schedule {
                ingest_on_schedule(&config, run).await
            } else {
                // Ctrl-C / SIGTERM stop the run at its next batch boundary (exit 3, interrupted).
                ingest(&config, &run, os_shutdown()).await
            }
        }
        Command::Models { command } => models(command),
        Command::Serve {
            config,
            listen,
            catalog,
        } => serve(&config, listen, catalog).await,
    }
}

/// The process's one shutdown signal, fired on Ctrl-C or SIGTERM. Only the long-running
/// commands (`serve`, `ingest --schedule`) install it: a one-off command keeps the default
/// Ctrl-C behaviour.
fn os_shutdown() -> Shutdown {
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(async move {
        shutdown::os_signal().await;
        trigger.trigger();
    });
    shutdown
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(Failure::fatal)?;
    println!("{text}");
    Ok(())
}

async fn test_connection(path: &Path, json: bool) -> Outcome {
    init_logging("warn");
    let cfg = WorkflowConfig::load(path).map_err(Failure::config)?;
    let aws = cfg.aws();
    if !json {
        println!(
            "testing {} in {} ({})",
            cfg.source.service_name,
            aws.region(),
            aws.credential_source()
        );
    }
    let clients = Clients::new(aws, &ClientOptions::no_retries())
        .await
        .map_err(Failure::fatal)?;
    let mut report = sagebridge_ingest::test_connection::test_connection(&clients).await;
    if let Some(sink) = sagebridge_ingest::test_connection::check_sink(&cfg).await {
        let mut steps = report.steps;
        steps.push(sink);
        report = sagebridge_aws::CheckReport::from_steps(steps);
    }
    if json {
        print_json(&report)?;
    } else {
        print!("{}", report.to_table());
    }
    Ok(if report.passed {
        Done::Ok
    } else {
        Done::ChecksFailed
    })
}

async fn gateway_check(path: &Path, json: bool, model: Option<&str>, invoke: bool) -> Outcome {
    init_logging("warn");
    let cfg = sagebridge_gateway::load_file(path).map_err(Failure::config)?;
    let results = sagebridge_gateway::check_models(&cfg, model, invoke).await;
    let passed = results.iter().all(|r| r.passed() || !r.mandatory);
    if json {
        println!(
            "{}",
            serde_json::json!({"steps": results, "passed": passed})
        );
    } else {
        for r in &results {
            println!(
                "{:<28} {:<6} {}",
                r.name,
                if r.passed() { "ok" } else { "FAILED" },
                r.error.as_deref().or(r.detail.as_deref()).unwrap_or("")
            );
        }
    }
    Ok(if passed { Done::Ok } else { Done::ChecksFailed })
}

/// The default log level of a workflow's runs (`workflowConfig.loggerLevel`).
fn log_level(cfg: &WorkflowConfig) -> &'static str {
    use sagebridge_ingest::config::LoggerLevel;
    match cfg.workflow_config.logger_level {
        Some(LoggerLevel::Debug) => "debug",
        Some(LoggerLevel::Warn) => "warn",
        Some(LoggerLevel::Error) => "error",
        _ => "info",
    }
}

/// What `ingest` takes besides the workflow file.
#[derive(Clone)]
struct IngestArgs {
    json: bool,
    catalog: Option<PathBuf>,
    full: bool,
    allow_mass_delete: bool,
}

/// One ingestion run; `shutdown` stops it at its next batch boundary (reported interrupted).
async fn ingest(path: &Path, args: &IngestArgs, shutdown: Shutdown) -> Outcome {
    let IngestArgs {
        json,
        catalog,
        full,
        allow_mass_delete,
    } = args.clone();
    let cfg = WorkflowConfig::load(path).map_err(|e| {
        init_logging("warn");
        Failure::config(e)
    })?;
    init_logging(log_level(&cfg));
    let (hook, bar) = progress::hook();
    let opts = sagebridge_ingest::runner::RunOptions {
        catalog_path: catalog,
        full,
        progress: Some(hook),
        shutdown: Some(shutdown),
        allow_mass_delete,
        ..Default::default()
    };
    let result = sagebridge_ingest::runner::run(&cfg, &opts).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result.map_err(Failure::fatal)?;
    if json {
        print_json(&report)?;
    } else {
        print!("{}", report.summary());
    }
    Ok(if report.exit_code() == 0 {
        Done::Ok
    } else {
        Done::CompletedWithFailures
    })
}

/// `ingest --schedule`: one run at each fire time of the workflow's cron schedule, until Ctrl-C
/// or SIGTERM (exit 0). The loop is [`sagebridge_ingest::schedule::run_on_schedule`].
async fn ingest_on_schedule(path: &Path, args: IngestArgs) -> Outcome {
    let cfg = WorkflowConfig::load(path).map_err(Failure::config)?;
    let schedule = cfg.metadata().schedule.as_deref().ok_or_else(|| {
        Failure::Config(format!(
            "--schedule needs sourceConfig.config.schedule (a cron expression, e.g. `0 */6 * * *`) in {}",
            path.display()
        ))
    })?;
    let cron = Cron::parse(schedule).map_err(Failure::Config)?;
    init_logging(log_level(&cfg));
    let now = sagebridge_aws::clock::now_secs;
    // The workflow file is read again for every run, so edits apply without a restart; a run's
    // failure is reported and the schedule goes on.
    let run = |shutdown: Shutdown| {
        let args = args.clone();
        async move {
            match ingest(path, &args, shutdown).await {
                Ok(Done::Ok) => RunOutcome::Succeeded,
                Ok(Done::ChecksFailed | Done::CompletedWithFailures) => {
                    RunOutcome::CompletedWithFailures
                }
                Err(failure) => {
                    failure.print();
                    RunOutcome::Failed(failure.message().trim_end().to_owned())
                }
            }
        }
    };
    sagebridge_ingest::schedule::run_on_schedule(&cron, now, os_shutdown(), run)
        .await
        .map_err(Failure::config)?;
    Ok(Done::Ok)
}

/// Opens the catalog file of `models`, which must exist.
fn open_catalog(path: &Path) -> Result<sagebridge_catalog::SqliteCatalog, Failure> {
    if !path.exists() {
        return Err(Failure::Fatal(format!(
            "no catalog at {}; run `sagebridge ingest` first or pass --catalog",
            path.display()
        )));
    }
    sagebridge_catalog::SqliteCatalog::open(path).map_err(Failure::fatal)
}

fn models(cmd: ModelsCommand) -> Outcome {
    use sagebridge_catalog::{Catalog, ListQuery};
    init_logging("warn");
    match cmd {
        ModelsCommand::List {
            service,
            deleted,
            json,
            catalog,
        } => {
            let q = ListQuery {
                service,
                include_deleted: deleted,
                ..Default::default()
            };
            let models = open_catalog(&catalog)?
                .list_models(&q)
                .map_err(Failure::fatal)?;
            if json {
                print_json(&models)?;
            } else {
                print!("{}", table::models_table(&models));
            }
        }
        ModelsCommand::Show {
            name,
            service,
            json,
            catalog,
        } => {
            let model = open_catalog(&catalog)?
                .get_model(service.as_deref(), &name)
                .map_err(Failure::fatal)?
                .ok_or_else(|| {
                    Failure::Fatal(format!("model `{name}` not found in the catalog"))
                })?;
            if json {
                print_json(&model)?;
            } else {
                print!("{}", table::model_card(&model));
            }
        }
    }
    Ok(Done::Ok)
}

async fn serve(path: &Path, listen: Option<String>, catalog: PathBuf) -> Outcome {
    init_logging("info");
    let cfg = sagebridge_gateway::load_file(path).map_err(Failure::config)?;
    let opts = sagebridge_server::ServeOptions {
        listen,
        catalog_path: Some(catalog),
    };
    sagebridge_server::serve(&cfg, &opts, os_shutdown())
        .await
        .map_err(|e| Failure::Fatal(format!("{e:#}")))?;
    Ok(Done::Ok)
}
