//! Metadata ingestion: SageMaker models into the catalog (or OpenMetadata).
//!
//! # Layout
//! - [`config`]: the OpenMetadata workflow YAML (`source`, `sink`, `workflowConfig`), strict.
//! - [`test_connection`]: the permission checks behind `sagebridge test-connection`.
//! - [`facts`]: `ModelFacts`, everything gathered about one SageMaker model (plain structs).
//! - [`source`]: the SageMaker source (listing, DescribeModel, tags, enrichments, call stats).
//! - [`openmetadata`]: the `metadata-rest` sink (OpenMetadata's REST API).
//! - [`pacing`]: per-API client-side rate limits learned from throttling answers.
//! - [`runner`]: one run: filter, bounded concurrency, catalog writes, mark-deleted, report.
//! - [`schedule`]: cron schedules for `sagebridge ingest --schedule`.
//! - [`shutdown`]: the one shutdown signal shared by the server, the schedule loop and runs.
//! - [`mapping`]: `to_ml_model()`, the pure mapping from facts to OpenMetadata's `MlModel`.

pub mod config;
pub mod facts;
pub mod mapping;
pub mod openmetadata;
pub mod pacing;
pub mod runner;
pub mod schedule;
pub mod shutdown;
pub mod source;
pub mod test_connection;
