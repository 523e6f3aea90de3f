//! `sagebridge-fake-runtime`: the fake SageMaker runtime as a standalone process, for
//! `scripts/bench/gateway.sh` and for trying the gateway by hand.
//!
//! ```text
//! sagebridge-fake-runtime [--listen 127.0.0.1:0] [--threads N] [--slow-tokens 60] [--slow-part-delay-ms 500]
//! ```
//! Prints `fake runtime listening on http://ADDR` on stdout once it accepts connections, then
//! serves until Ctrl-C or SIGTERM. Endpoints, all at zero latency and without recording:
//! - `chat`: an OpenAI-format chat container (vLLM, TGI Messages API);
//! - `tgi`: a TGI chat container (prompt in, `data:{"token"}` stream out);
//! - `embed`: a TEI embedding container (384 dimensions);
//! - `slow`: a TGI chat container whose stream sends one token every `--slow-part-delay-ms`,
//!   for holding many streams open at once;
//! - the demo account's endpoints (`scripts/demo.sh`, `examples/demo-gateway.yaml`):
//!   `demo-llm-chat` (the seeded LLM's endpoint, a TGI container), `demo-embeddings` (TEI,
//!   384 dimensions, unit length), `demo-rerank` (a TEI reranker), `demo-transcribe` (a Hugging
//!   Face speech recognition container reading WAV) and `demo-speech` (an OpenAI-compatible
//!   text-to-speech container answering WAV).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A fake SageMaker runtime (InvokeEndpoint and its response stream) on loopback"
)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Worker threads of the async runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Tokens in each answer of the `slow` endpoint.
    #[arg(long, default_value_t = 60)]
    slow_tokens: usize,
    /// Delay between two stream parts of the `slow` endpoint, in milliseconds.
    #[arg(long, default_value_t = 500)]
    slow_part_delay_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let fake = FakeRuntime::start_on(args.listen).await?;
    // A benchmark must not measure the recorder's lock and copies.
    fake.set_recording(false);
    fake.set("chat", EndpointBehaviour::new(Behaviour::OpenAiChat));
    fake.set("tgi", EndpointBehaviour::new(Behaviour::TgiChat));
    fake.set(
        "embed",
        EndpointBehaviour::new(Behaviour::TeiEmbed).dimensions(384),
    );
    let tokens: Vec<String> = (0..args.slow_tokens.max(1))
        .map(|i| format!("t{i} "))
        .collect();
    fake.set(
        "slow",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&tokens)
            .part_delay(Duration::from_millis(args.slow_part_delay_ms)),
    );
    set_demo_endpoints(&fake);
    let mut out = std::io::stdout().lock();
    writeln!(out, "fake runtime listening on {}", fake.endpoint())?;
    out.flush()?;
    drop(out);
    sagebridge_testkit::shutdown_signal().await;
    Ok(())
}

/// The endpoints of the demo account, answering like the containers they stand for.
fn set_demo_endpoints(fake: &FakeRuntime) {
    let answer: Vec<String> =
        "Hello from the demo! This answer streams token by token from a fake \
         SageMaker runtime, through the sagebridge gateway, in OpenAI's format."
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect();
    fake.set(
        "demo-llm-chat",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&answer)
            .part_delay(Duration::from_millis(40)),
    );
    fake.set(
        "demo-embeddings",
        EndpointBehaviour::new(Behaviour::TeiEmbed)
            .dimensions(384)
            .normalized(),
    );
    fake.set("demo-rerank", EndpointBehaviour::new(Behaviour::TeiRerank));
    fake.set(
        "demo-transcribe",
        EndpointBehaviour::new(Behaviour::HfTranscribe),
    );
    fake.set(
        "demo-speech",
        EndpointBehaviour::new(Behaviour::OpenAiSpeech),
    );
}
