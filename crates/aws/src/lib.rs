//! AWS access shared by ingestion and the gateway.
//!
//! One [`AwsConfig`] type whose YAML keys are OpenMetadata's `awsCredentials` fields; SDK
//! clients built from it with credentials resolved the way the user asked (static keys,
//! session token, named profile, default chain, AssumeRole with session name, source identity
//! and external ID, refreshed automatically); and the classification of AWS failures into
//! causes a user can act on ([`AwsError`]), reported by health checks as [`Step`]s.
//!
//! # Layout
//! - [`config`]: `AwsConfig` and its validation (region, role ARN, session name).
//! - [`clients`]: `sdk_config()` and [`Clients`], the SDK clients built from a config.
//! - [`credentials`]: the AssumeRole provider (SourceIdentity and ExternalId included).
//! - [`error`]: `AwsError` and `classify()` from SDK errors, status codes and raw bodies.
//! - [`check`]: `Step` and `CheckReport`, the health-check report shared by `test-connection`
//!   for workflows and for gateway models, with the typed `ErrorKind`.
//! - [`secret`]: `Secret`, a string that never prints.
//! - [`yaml`]: strict YAML config loading used by every sagebridge config file (it lives
//!   here, in the lowest crate, because every config embeds an `AwsConfig`).

pub mod check;
pub mod clients;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod secret;
pub mod yaml;

pub use check::{CheckReport, ErrorKind, Step, StepStatus};
pub use clients::{sdk_config, ClientOptions, Clients};
pub use config::{AwsConfig, DEFAULT_SESSION_NAME};
pub use error::{classify, AwsError};
pub use secret::Secret;
