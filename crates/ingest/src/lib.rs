//! Metadata ingestion: SageMaker models into the catalog (or OpenMetadata).
//!
//! # Layout
//! - [`config`]: the OpenMetadata workflow YAML (`source`, `sink`, `workflowConfig`), strict;
//!   `sink:` is a typed enum chosen by its `type:`.
//! - [`test_connection`]: the permission checks behind `sagebridge test-connection`.
//! - [`facts`]: `ModelFacts`, everything gathered about one SageMaker model (plain structs).
//! - [`source`]: the SageMaker source (listing, DescribeModel, tags, enrichments, call stats).
//! - [`sink`]: where a run writes, behind one `Sink` trait, built from `sink:` by
//!   `SinkConfig::build`: [`sink::catalog`] (the embedded catalog) and [`sink::openmetadata`]
//!   (`metadata-rest`, OpenMetadata's REST API).
//! - [`pacing`]: per-API client-side rate limits learned from throttling answers.
//! - [`runner`]: one run in stages: list -> plan (filters, incremental) -> gather -> write ->
//!   finish (mark-deleted, report); stops at a batch boundary on shutdown.
//! - [`schedule`]: cron schedules for `sagebridge ingest --schedule`.
//! - [`shutdown`]: the one shutdown signal shared by the server, the schedule loop and runs.
//! - [`mapping`]: `to_ml_model()`, the pure mapping from facts to OpenMetadata's `MlModel`.
//! - [`fingerprint`]: the `sourceHash` of the `metadata-rest` sink, which lets an incremental
//!   run prove a model unchanged from OpenMetadata's answer and the listing.

pub mod config;
pub mod facts;
pub mod fingerprint;
pub mod mapping;
pub mod pacing;
pub mod runner;
pub mod schedule;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod test_connection;
