//! sagebridge testkit: real and fake AWS peers for tests, benchmarks and the demo.
//!
//! Dev-only. Everything that talks to AWS is tested against moto (`MotoServer`), one server
//! per test so state and IAM enforcement never leak between tests. Where moto cannot help
//! (paging, throttling, failures, speed), `FakeSageMaker` is a fast in-process fake speaking
//! the same wire protocol. Both are reached through the official SDK built by `aws`, and
//! filled with the same realistic data by `seed`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sagebridge_testkit::{count, sagemaker_client, seed, MotoServer, SeedSpec};
//!
//! let moto = MotoServer::start().await?;
//! let client = sagemaker_client(&moto.endpoint(), None);
//! let summary = seed(&client, &SeedSpec::demo()).await?;
//! moto.start_recording().await?;
//! client.describe_model().model_name(&summary.models[0].name).send().await?;
//! assert_eq!(count(&moto.recording().await?, "DescribeModel"), 1);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `moto`: [`MotoServer`] launches `moto_server` on a free port, waits until it answers,
//!   kills it on drop; reset, IAM enforcement, the request recorder ([`RecordedCall`],
//!   [`count`]) and canned InvokeEndpoint results.
//! - `aws`: SDK config and SageMaker / STS clients with static test credentials, optional
//!   retries, and the `x-moto-account-id` interceptor ([`aws::MotoAccount`]).
//! - `iam`: users, policies, access keys and roles in moto over the plain IAM Query API
//!   (there is deliberately no `aws-sdk-iam` dependency).
//! - `seed`: a deterministic plan of a realistic account (XGBoost, PyTorch and Hugging Face
//!   LLM models, training jobs, feature groups, endpoints, tags) and [`seed()`], which creates
//!   it through the SDK and returns a [`SeedSummary`] to assert against. The
//!   `sagebridge-seed` binary wraps it for scripts.
//! - `fake_sagemaker`: [`FakeSageMaker`], an axum awsJson1.1 server with AWS paging,
//!   injectable latency, throttling and failures, and per-operation counters.
//! - `fake_openmetadata`: [`FakeOpenMetadata`], the part of OpenMetadata's REST API the
//!   `metadata-rest` sink uses, in memory, recording every request.
//! - `fault_proxy`: [`fault_proxy::FaultProxy`], an HTTP proxy in front of moto or a fake that
//!   injects latency, throttling, 5xx, resets, truncated bodies, stalls, slow and cut streams
//!   per AWS API (the `sagebridge-fault-proxy` binary wraps it for scripts).
//! - `fake_runtime`: a fake SageMaker runtime (InvokeEndpoint and its response stream with
//!   real event-stream framing) for the gateway's tests.

pub mod aws;
pub mod fake_openmetadata;
pub mod fake_runtime;
pub mod fake_sagemaker;
pub mod fault_proxy;
pub mod iam;
pub mod moto;
pub mod seed;

pub use aws::{
    sagemaker_client, sagemaker_client_with, sts_client, test_sdk_config, TestClientOptions,
};
pub use fake_openmetadata::{FakeOpenMetadata, OmRequest, TEST_CA_PEM};
pub use fake_sagemaker::{Failure, FakeHandle, FakeSageMaker, FakeSpec};
pub use iam::{AccessKey, MotoIam};
pub use moto::{count, CannedInvokeResult, MotoServer, RecordedCall};
pub use seed::{seed, ModelFamily, SeedSpec, SeedSummary, SeededModel};

/// Resolves on Ctrl-C or SIGTERM (the testkit's standalone fakes stop on either).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
