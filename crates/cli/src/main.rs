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

mod progress;

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
        /// Catalog file shown read-only by the web UI (/) and the catalog API (/api/catalog/...).
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
        Command::TestConnection {
            config,
            json,
            model,
            invoke,
        } => {
            if is_gateway_config(&config) {
                gateway_check(&config, json, model.as_deref(), invoke).await
            } else {
                test_connection(&config, json).await
            }
        }
        Command::Ingest {
            config,
            json,
            catalog,
            full,
            schedule,
        } => {
            if schedule {
                ingest_on_schedule(&config, json, catalog, full).await
            } else {
                ingest(&config, json, catalog, full).await
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
    let mut report = sagebridge_ingest::test_connection::test_connection(&clients).await;
    if let Some(sink) = sagebridge_ingest::test_connection::check_sink(&cfg).await {
        let mut steps = report.steps;
        steps.push(sink);
        report = sagebridge_aws::CheckReport::from_steps(steps);
    }
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

/// A gateway config has `models:` or `server:` at the top; a workflow has `source:`.
fn is_gateway_config(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| !t.lines().any(|l| l.starts_with("source:")))
        .unwrap_or(false)
}

async fn gateway_check(
    path: &std::path::Path,
    json: bool,
    model: Option<&str>,
    invoke: bool,
) -> ExitCode {
    init_logging("warn");
    let cfg = match sagebridge_gateway::load_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn ingest(
    path: &std::path::Path,
    json: bool,
    catalog: Option<PathBuf>,
    full: bool,
) -> ExitCode {
    let cfg = match WorkflowConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            init_logging("warn");
            eprint!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match cfg.workflow_config.logger_level {
        Some(sagebridge_ingest::config::LoggerLevel::Debug) => "debug",
        Some(sagebridge_ingest::config::LoggerLevel::Warn) => "warn",
        Some(sagebridge_ingest::config::LoggerLevel::Error) => "error",
        _ => "info",
    };
    init_logging(level);
    let (hook, bar) = progress::hook();
    let opts = sagebridge_ingest::runner::RunOptions {
        catalog_path: catalog,
        full,
        progress: Some(hook),
        shutdown: None,
    };
    let result = sagebridge_ingest::runner::run(&cfg, &opts).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.summary());
            }
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `ingest --schedule`: one run at each fire time of the workflow's cron schedule.
async fn ingest_on_schedule(
    path: &std::path::Path,
    json: bool,
    catalog: Option<PathBuf>,
    full: bool,
) -> ExitCode {
    use sagebridge_ingest::schedule::{rfc3339, Cron};
    let cron = match WorkflowConfig::load(path) {
        Ok(cfg) => match cfg.metadata().schedule.as_deref().map(Cron::parse) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            None => {
                eprintln!("error: --schedule needs sourceConfig.config.schedule (a cron expression, e.g. `0 */6 * * *`) in {}", path.display());
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            eprint!("error: {e}");
            return ExitCode::from(2);
        }
    };
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let Some(next) = cron.next_after(now) else {
            eprintln!("error: the schedule `{cron}` never fires");
            return ExitCode::from(2);
        };
        eprintln!("next ingestion at {} (schedule `{cron}`)", rfc3339(next));
        let wait = std::time::Duration::from_secs(u64::try_from(next - now).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = sagebridge_server::shutdown_signal() => return ExitCode::SUCCESS,
        }
        // The workflow file is read again for every run, so edits apply without a restart;
        // a run's failure (exit code) is reported and the schedule goes on.
        let code = ingest(path, json, catalog.clone(), full).await;
        if code != ExitCode::SUCCESS {
            eprintln!(
                "the run at {} did not fully succeed ({code:?})",
                rfc3339(next)
            );
        }
    }
}

fn models(cmd: ModelsCommand) -> ExitCode {
    init_logging("warn");
    use sagebridge_catalog::{Catalog, ListQuery, SqliteCatalog};
    let open = |p: &std::path::Path| {
        if !p.exists() {
            return Err(format!(
                "no catalog at {}; run `sagebridge ingest` first or pass --catalog",
                p.display()
            ));
        }
        SqliteCatalog::open(p).map_err(|e| e.to_string())
    };
    match cmd {
        ModelsCommand::List {
            service,
            deleted,
            json,
            catalog,
        } => {
            let cat = match open(&catalog) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let q = ListQuery {
                service,
                include_deleted: deleted,
                ..Default::default()
            };
            match cat.list_models(&q) {
                Ok(models) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&models).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(models) => {
                    println!(
                        "{:<44} {:<22} {:<8} SERVED BY",
                        "MODEL", "ALGORITHM", "VERSION"
                    );
                    for m in &models {
                        println!(
                            "{:<44} {:<22} {:<8} {}{}",
                            m.fully_qualified_name,
                            m.algorithm,
                            m.version.map(|v| format!("{v:.1}")).unwrap_or_default(),
                            m.server.as_deref().unwrap_or("-"),
                            if m.deleted { " (deleted)" } else { "" }
                        );
                    }
                    println!("{} model(s)", models.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        ModelsCommand::Show {
            name,
            service,
            json,
            catalog,
        } => {
            let cat = match open(&catalog) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            match cat.get_model(service.as_deref(), &name) {
                Ok(Some(m)) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
                    } else {
                        println!("name:       {}", m.fully_qualified_name);
                        println!("algorithm:  {}", m.algorithm);
                        println!(
                            "version:    {}",
                            m.version.map(|v| format!("{v:.1}")).unwrap_or_default()
                        );
                        println!("deleted:    {}", m.deleted);
                        println!("server:     {}", m.server.as_deref().unwrap_or("-"));
                        println!("tags:       {}", m.tags.len());
                        println!("(--json for the whole MlModel document)");
                    }
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!("error: model `{name}` not found in the catalog");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn serve(path: &std::path::Path, listen: Option<String>, catalog: PathBuf) -> ExitCode {
    init_logging("info");
    let cfg = match sagebridge_gateway::load_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = sagebridge_server::ServeOptions {
        listen,
        catalog_path: Some(catalog),
    };
    match sagebridge_server::serve(&cfg, &opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
