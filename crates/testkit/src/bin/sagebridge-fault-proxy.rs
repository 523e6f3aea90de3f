//! `sagebridge-fault-proxy`: the fault-injecting proxy of `sagebridge_testkit::fault_proxy` as a
//! standalone process, for `scripts/reliability/report.sh`.
//!
//! ```text
//! sagebridge-fault-proxy --upstream http://127.0.0.1:5000 [--listen 127.0.0.1:0] [--seed 1] \
//!     [--fault 'ListTags=throttle:30%'] [--fault '*=latency:30ms'] ...
//! ```
//! Prints `fault proxy listening on http://ADDR` on stdout once it accepts connections, then
//! serves until Ctrl-C or SIGTERM, and prints what it saw (`ProxyStats` as JSON) on stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use sagebridge_testkit::fault_proxy::{FaultProxy, Rule};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "An HTTP proxy that injects AWS faults per API, on loopback"
)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where requests go (`http://host:port` of moto or a fake).
    #[arg(long)]
    upstream: String,
    /// `API=FAULT[,FAULT...]`, repeatable (see the module docs of `fault_proxy`).
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Seed of the generator that decides which requests fail.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!("error: the fault proxy listens on loopback only");
        return ExitCode::from(2);
    }
    let rules = match args.faults.iter().map(|f| Rule::parse(f)).collect() {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(&args, rules)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: &Args, rules: Vec<Rule>) -> anyhow::Result<()> {
    let proxy = FaultProxy::start(args.listen, &args.upstream, rules, args.seed).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "fault proxy listening on {}", proxy.endpoint())?;
    out.flush()?;
    drop(out);
    sagebridge_testkit::shutdown_signal().await;
    eprintln!("{}", serde_json::to_string(&proxy.stats())?);
    Ok(())
}
