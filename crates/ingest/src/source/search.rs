//! Bulk reads through SageMaker `Search`: models (with their containers and tags), training
//! jobs and endpoints, 100 a call, instead of a DescribeModel + ListTags per model, a
//! DescribeTrainingJob per job and a ListEndpoints page + DescribeEndpoint per endpoint.
//!
//! Each resource's index is read once per run, when first needed. ListModels stays the
//! authoritative listing: a model whose record is missing (Search's index lags behind the
//! Describe APIs) or differs from its listing (another ARN or creation time) is read the
//! classic way, as is a training job that Search does not return. When Search is denied or
//! not supported for a resource (moto answers `Model` with a validation error), that resource
//! is read the classic way for the whole run, with one note in the report.
//!
//! Both ways build the same [`ModelFacts`]: the same conversions ([`Described`],
//! [`training_facts`]) run on the Describe answer and on the Search record, so switching
//! between them versions nothing.

use std::collections::HashMap;

use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, ContainerDefinition, ResourceType, SearchRecord, Tag,
};
use aws_smithy_types::DateTime;

use super::{container, OptionalError, Source, MAX_PAGES};
use crate::facts::{ContainerFacts, TrainingFacts};

/// At most this many characters of the error a note quotes.
const NOTE_CAUSE_CHARS: usize = 200;

/// A model as DescribeModel (or its Search record) tells it, without tags.
#[derive(Debug, Clone)]
pub(super) struct Described {
    pub arn: String,
    pub creation_time: i64,
    pub creation_time_rfc3339: String,
    pub execution_role_arn: Option<String>,
    pub primary_container: Option<ContainerFacts>,
    pub containers: Vec<ContainerFacts>,
}

impl Described {
    pub(super) fn new(
        arn: Option<&str>,
        creation: Option<&DateTime>,
        execution_role_arn: Option<&str>,
        primary: Option<&ContainerDefinition>,
        containers: &[ContainerDefinition],
    ) -> Self {
        Self {
            arn: arn.unwrap_or_default().to_owned(),
            creation_time: creation
                .and_then(|t| t.to_millis().ok())
                .unwrap_or_default(),
            creation_time_rfc3339: creation
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                .unwrap_or_default(),
            execution_role_arn: execution_role_arn.map(str::to_owned),
            primary_container: primary.map(container).filter(worth_keeping),
            containers: containers
                .iter()
                .map(container)
                .filter(worth_keeping)
                .collect(),
        }
    }
}

/// Whether a container says anything: where the model lives, or the model package (registry
/// version) it was created from, which links the model to its model package group.
fn worth_keeping(c: &ContainerFacts) -> bool {
    !c.is_empty()
        || c.model_package_name
            .as_deref()
            .is_some_and(|p| !p.trim().is_empty())
}

/// A model's Search record: what DescribeModel and ListTags would have answered.
#[derive(Debug, Clone)]
pub(super) struct SearchedModel {
    pub described: Described,
    pub tags: Vec<(String, String)>,
}

/// A training job's Search record: its artifacts, and its facts.
#[derive(Debug, Clone)]
pub(super) struct SearchedJob {
    pub artifacts: Option<String>,
    pub facts: TrainingFacts,
}

/// One endpoint as the endpoint index needs it.
#[derive(Debug, Clone)]
pub(super) struct ListedEndpoint {
    pub name: String,
    pub status: String,
    pub config_name: Option<String>,
}

/// The parts of DescribeTrainingJob (or its Search record) a model keeps.
pub(super) fn training_facts(
    job: &str,
    spec: Option<&AlgorithmSpecification>,
    hyperparameters: Option<&HashMap<String, String>>,
    inputs: &[Channel],
) -> TrainingFacts {
    TrainingFacts {
        name: job.to_owned(),
        algorithm_name: spec.and_then(|s| s.algorithm_name()).map(str::to_owned),
        training_image: spec.and_then(|s| s.training_image()).map(str::to_owned),
        hyperparameters: hyperparameters
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        input_s3_uris: inputs
            .iter()
            .filter_map(|c| {
                c.data_source()?
                    .s3_data_source()?
                    .s3_uri()
                    .map(str::to_owned)
            })
            .collect(),
    }
}

/// The cause of an optional read's failure, for a report note: moto's validation error lists
/// every object it holds, so the note keeps the start.
pub(super) fn short_cause(e: &OptionalError) -> String {
    let mut why = e.to_string();
    if let Some((cut, _)) = why.char_indices().nth(NOTE_CAUSE_CHARS) {
        why.truncate(cut);
        why.push_str("...");
    }
    why
}

/// A Search record's tags, in key order (see [`super::tagging::sorted`]).
pub(super) fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    super::tagging::sorted(
        tags.iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

impl Source {
    /// Every record of `resource`, 100 a page; `None` (with one note) when Search is not
    /// usable for it this run.
    async fn search_all(&self, resource: ResourceType) -> Option<Vec<SearchRecord>> {
        let mut records = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .optional("Search", || {
                    self.optional_client
                        .search()
                        .resource(resource.clone())
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                })
                .await;
            match page {
                Ok(p) => {
                    records.extend(p.results().iter().cloned());
                    token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
                    if token.is_none() {
                        return Some(records);
                    }
                }
                Err(e) => {
                    self.search_unavailable(resource.as_str(), &e);
                    return None;
                }
            }
        }
        Some(records)
    }

    /// [`Source::search_all`] behind a pointer: a run's future nests the source's calls
    /// deeply enough for rustc's layout computation to hit its recursion limit otherwise.
    pub(super) fn search_all_boxed(
        &self,
        resource: ResourceType,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<SearchRecord>>> + Send + '_>>
    {
        Box::pin(self.search_all(resource))
    }

    /// Every record of `resource` handed to `each` page by page, so a page's SDK records are
    /// dropped as soon as `each` has taken what it keeps (10,000 models' records held at once
    /// cost about 200 MiB); `None` (with one note) when Search is not usable for it this run.
    async fn search_each(
        &self,
        resource: ResourceType,
        each: &mut (dyn FnMut(&SearchRecord) + Send),
    ) -> Option<()> {
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .optional("Search", || {
                    self.optional_client
                        .search()
                        .resource(resource.clone())
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                })
                .await;
            match page {
                Ok(p) => {
                    p.results().iter().for_each(&mut *each);
                    token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
                    if token.is_none() {
                        return Some(());
                    }
                }
                Err(e) => {
                    self.search_unavailable(resource.as_str(), &e);
                    return None;
                }
            }
        }
        Some(())
    }

    /// [`Source::search_each`] behind a pointer (see [`Source::search_all_boxed`]).
    fn search_each_boxed<'a>(
        &'a self,
        resource: ResourceType,
        each: &'a mut (dyn FnMut(&SearchRecord) + Send),
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<()>> + Send + 'a>> {
        Box::pin(self.search_each(resource, each))
    }

    fn search_unavailable(&self, resource: &str, e: &OptionalError) {
        let why = short_cause(e);
        let note = format!(
            "bulk reads through Search not used for {resource} ({why}): read one by one instead"
        );
        tracing::info!(%note, "Search fallback");
        self.notes.lock().expect("notes lock").push(note);
    }

    /// Models by name from Search, read once per run; a model takes its record out when it
    /// is read ([`Source::searched`]).
    pub(super) async fn searched_models(
        &self,
    ) -> Option<&std::sync::Mutex<HashMap<String, SearchedModel>>> {
        let load = self.search_models.get_or_init(|| async {
            let mut by_name = HashMap::new();
            let mut keep = |r: &SearchRecord| {
                let Some(m) = r.model().and_then(|d| d.model()) else {
                    return;
                };
                let Some(name) = m.model_name() else {
                    return;
                };
                by_name.insert(
                    name.to_owned(),
                    SearchedModel {
                        described: Described::new(
                            m.model_arn(),
                            m.creation_time(),
                            m.execution_role_arn(),
                            m.primary_container(),
                            m.containers(),
                        ),
                        tags: tag_pairs(m.tags()),
                    },
                );
            };
            self.search_each_boxed(ResourceType::Model, &mut keep)
                .await?;
            Some(std::sync::Mutex::new(by_name))
        });
        load.await.as_ref()
    }

    /// Training jobs by name from Search, read once per run (when a model first needs one).
    pub(super) async fn searched_training_jobs(&self) -> Option<&HashMap<String, SearchedJob>> {
        let load = self.search_training.get_or_init(|| async {
            let mut by_name = HashMap::new();
            let mut keep = |r: &SearchRecord| {
                let Some(t) = r.training_job() else { return };
                let Some(name) = t.training_job_name() else {
                    return;
                };
                by_name.insert(
                    name.to_owned(),
                    SearchedJob {
                        artifacts: t
                            .model_artifacts()
                            .and_then(|a| a.s3_model_artifacts())
                            .map(str::to_owned),
                        facts: training_facts(
                            name,
                            t.algorithm_specification(),
                            t.hyper_parameters(),
                            t.input_data_config(),
                        ),
                    },
                );
            };
            self.search_each_boxed(ResourceType::TrainingJob, &mut keep)
                .await?;
            Some(by_name)
        });
        load.await.as_ref()
    }

    /// Every endpoint (name, status, config) through Search; `None` when not usable.
    pub(super) async fn searched_endpoints(&self) -> Option<Vec<ListedEndpoint>> {
        let records = self.search_all_boxed(ResourceType::Endpoint).await?;
        Some(
            records
                .iter()
                .filter_map(|r| r.endpoint())
                .filter_map(|e| {
                    Some(ListedEndpoint {
                        name: e.endpoint_name()?.to_owned(),
                        status: e
                            .endpoint_status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        config_name: e.endpoint_config_name().map(str::to_owned),
                    })
                })
                .collect(),
        )
    }
}
