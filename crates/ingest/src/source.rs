//! The SageMaker source: lists models and gathers [`ModelFacts`] for each.
//!
//! Per model: DescribeModel and ListTags (paginated). Per run, loaded once and shared: the
//! endpoints that serve each model (ListEndpoints, DescribeEndpoint, DescribeEndpointConfig)
//! and the feature groups with their features (ListFeatureGroups, falling back to `Search`).
//! Per training job, cached: DescribeTrainingJob for the job named in the model's artifact path
//! (`s3://.../<job>/output/model.tar.gz`), kept only when its `S3ModelArtifacts` is exactly the
//! model's `ModelDataUrl`. Every enrichment is optional: a denied permission turns it off for
//! the run with one warning.
//!
//! With `sagemaker:Search`, models, training jobs and endpoints are read 100 a call instead
//! (see [`search`]); what Search does not return is read as above.
//!
//! The model registry (model package groups and their versions) is listed and read by
//! [`registry`], the same way: ListModelPackageGroups is authoritative, Search is the fast way.
//!
//! The enrichment calls go through their own client without SDK retries and are retried by
//! [`OptionalRetry`]: patiently when throttled, but an API that keeps answering 5xx is given up
//! within about two seconds, its enrichment skipped with one warning (moto answers 500 to
//! ListFeatureGroups, which the bulk policy of the per-model calls retried for ~19 s before the
//! first model was read).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::types::{ContainerDefinition, ResourceType};
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use sagebridge_aws::{classify, AwsError};
use tokio::sync::OnceCell;

mod registry;
mod search;
mod tagging;

pub use self::registry::{Deployments, ListedGroup};

use self::registry::SearchedGroup;
use self::search::{training_facts, Described, ListedEndpoint, SearchedJob, SearchedModel};
use crate::facts::{
    ContainerFacts, EndpointFacts, FeatureFacts, FeatureType, ModelFacts, TrainingFacts,
};
use crate::mapping::invocation_url;
use crate::pacing::{is_throttling, jitter, Failure, OptionalRetry, Pacer};

/// The enrichment deadline of a [`Source`] that was given none.
const NO_DEADLINE: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Upper bound on the pages of one listing of an optional index (100 items a page).
const MAX_PAGES: usize = 10_000;

/// AWS calls made in a run, per API, and HTTP attempts (attempts - calls = retries).
#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<String, u64>>,
    attempts: AtomicU64,
}

impl CallStats {
    fn add(&self, api: &str) {
        let mut calls = self.calls.lock().expect("stats lock");
        match calls.get_mut(api) {
            Some(n) => *n += 1,
            None => {
                calls.insert(api.to_owned(), 1);
            }
        }
    }
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
    /// The last call of `api` was a retry of the one before (sent by [`OptionalRetry`], not by
    /// the SDK, so the interceptor counted it as a call): count it as an attempt only.
    fn count_as_retry(&self, api: &str) {
        if let Some(n) = self.calls.lock().expect("stats lock").get_mut(api) {
            *n = n.saturating_sub(1);
        }
    }
    pub fn total_calls(&self) -> u64 {
        self.calls.lock().expect("stats lock").values().sum()
    }
    pub fn retries(&self) -> u64 {
        self.attempts
            .load(Ordering::Relaxed)
            .saturating_sub(self.total_calls())
    }
}

/// Counts the calls (per operation) and HTTP attempts of the client it is registered on, and
/// tells the [`Pacer`] how each attempt was answered.
#[derive(Debug, Clone)]
pub struct CallCounter(pub Arc<CallStats>, pub Arc<Pacer>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "sagebridge-call-counter"
    }
    // Once per operation, after the operation's own config (with its name) is in the bag.
    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(op) = cfg.load::<Metadata>() {
            self.0.add(op.name());
        }
        Ok(())
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(op) = cfg.load::<Metadata>() {
            let r = ctx.response();
            let throttled = is_throttling(
                r.status().as_u16(),
                r.headers().get("x-amzn-errortype"),
                r.body().bytes(),
            );
            self.1.answered(op.name(), throttled);
        }
        Ok(())
    }
}

/// A feature group, as needed to link models to it.
#[derive(Debug, Clone)]
struct FeatureGroup {
    name: String,
    arn: Option<String>,
    offline_uri: Option<String>,
    features: Vec<(String, FeatureType)>,
}

/// Why an optional call did not succeed.
#[derive(Debug, Clone)]
enum OptionalError {
    /// Answered with an error that asking again does not change (denied, not found, invalid),
    /// or still throttled after the patient retries.
    Failed(AwsError),
    /// Kept failing (5xx, timeouts) through the short retry budget: the API is unusable now,
    /// its enrichment is skipped for the run.
    GaveUp { error: AwsError, attempts: u32 },
}

impl fmt::Display for OptionalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionalError::Failed(e) => write!(f, "{e}"),
            OptionalError::GaveUp { error, attempts } => {
                write!(f, "{error} (gave up after {attempts} attempts)")
            }
        }
    }
}

/// The IAM action of an API an optional call uses.
fn iam_action(api: &str) -> String {
    match api {
        "GetResources" => "tag:GetResources".to_owned(),
        _ => format!("sagemaker:{api}"),
    }
}

/// How one failed attempt was answered, for [`OptionalRetry`].
fn failure_of<E>(err: &SdkError<E, HttpResponse>) -> Failure {
    let answered = |r: &HttpResponse| {
        let status = r.status().as_u16();
        if is_throttling(
            status,
            r.headers().get("x-amzn-errortype"),
            r.body().bytes(),
        ) {
            Failure::Throttled
        } else if status >= 500 {
            Failure::Transient
        } else {
            Failure::Permanent
        }
    };
    match err {
        SdkError::ServiceError(ctx) => answered(ctx.raw()),
        SdkError::ResponseError(ctx) => answered(ctx.raw()),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Failure::Transient,
        _ => Failure::Permanent,
    }
}

/// The SageMaker side of a run.
pub struct Source {
    pub client: aws_sdk_sagemaker::Client,
    /// The same client without SDK retries, for the optional enrichment calls (see
    /// [`Source::optional`]).
    optional_client: aws_sdk_sagemaker::Client,
    optional_retry: OptionalRetry,
    /// The Resource Groups Tagging API, for bulk tags (see [`tagging`]); like
    /// `optional_client`, without SDK retries.
    tagging_client: aws_sdk_resourcegroupstagging::Client,
    pub stats: Arc<CallStats>,
    pub pacer: Arc<Pacer>,
    pub region: String,
    pub feature_group_tag_key: String,
    warnings: Mutex<Vec<String>>,
    training_enabled: AtomicBool,
    training_cache: Mutex<HashMap<String, Arc<OnceCell<Option<TrainingFacts>>>>>,
    /// Training jobs whose read failed this run (not "not found"): their models are stored
    /// incomplete and read again next run.
    training_failed: Mutex<HashSet<String>>,
    endpoints: OnceCell<HashMap<String, Vec<EndpointFacts>>>,
    feature_groups: OnceCell<Vec<FeatureGroup>>,
    /// Search's indexes (`None`: Search not usable for the resource this run).
    /// Models leave theirs as they are read, so the index shrinks as the run goes.
    search_models: OnceCell<Option<Mutex<HashMap<String, SearchedModel>>>>,
    search_training: OnceCell<Option<HashMap<String, SearchedJob>>>,
    search_groups: OnceCell<Option<HashMap<String, SearchedGroup>>>,
    /// Versioned model packages by group name.
    search_packages: OnceCell<Option<HashMap<String, Vec<crate::facts::PackageFacts>>>>,
    /// The tagging API's tags (`None`: not used this run).
    tag_index: OnceCell<Option<tagging::TagIndex>>,
    /// One line per resource read one by one because Search was not usable for it.
    notes: Mutex<Vec<String>>,
    /// Models whose facts came from Search (no DescribeModel, no ListTags).
    from_search: AtomicU64,
    /// Models whose tags came from the tagging API (no ListTags).
    from_tag_index: AtomicU64,
    /// Until when linking waits for the enrichment indexes (see [`Source::by_deadline`]).
    enrichment_deadline: tokio::time::Instant,
    enrichment_budget: std::time::Duration,
    /// Set once the deadline passed with an index still loading: from then on nothing waits.
    indexes_abandoned: AtomicBool,
}

/// One entry of ListModels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub name: String,
    pub arn: Option<String>,
    /// Epoch milliseconds.
    pub creation_time: Option<i64>,
}

/// Why one model could not be read.
#[derive(Debug, Clone)]
pub struct ModelFailure {
    pub model: String,
    pub error: AwsError,
}

impl fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.model, self.error)
    }
}

impl Source {
    pub fn new(
        sdk_config: &aws_config::SdkConfig,
        region: &str,
        feature_group_tag_key: &str,
    ) -> Self {
        let stats = Arc::new(CallStats::default());
        let pacer = Arc::new(Pacer::default());
        // Throttled calls are retried without limit on their number per run (each call still
        // stops after its own max attempts): the SDK's default retry quota (500 tokens, 5 per
        // throttled retry) runs dry in a throttling storm and would fail models that one more
        // backed-off attempt, now paced (see `pacing`), gets through.
        let partition = RetryPartition::custom("sagebridge-ingest")
            .token_bucket(TokenBucket::unlimited())
            .build();
        let conf = aws_sdk_sagemaker::config::Builder::from(sdk_config)
            .interceptor(CallCounter(stats.clone(), pacer.clone()))
            .retry_partition(partition);
        let optional_conf = conf
            .clone()
            .retry_config(aws_config::retry::RetryConfig::disabled());
        let tagging_conf = aws_sdk_resourcegroupstagging::config::Builder::from(sdk_config)
            .interceptor(CallCounter(stats.clone(), pacer.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled());
        Self {
            client: aws_sdk_sagemaker::Client::from_conf(conf.build()),
            optional_client: aws_sdk_sagemaker::Client::from_conf(optional_conf.build()),
            optional_retry: OptionalRetry::default(),
            tagging_client: aws_sdk_resourcegroupstagging::Client::from_conf(tagging_conf.build()),
            stats,
            pacer,
            region: region.to_owned(),
            feature_group_tag_key: feature_group_tag_key.to_owned(),
            warnings: Mutex::new(Vec::new()),
            training_enabled: AtomicBool::new(true),
            training_cache: Mutex::new(HashMap::new()),
            training_failed: Mutex::new(HashSet::new()),
            endpoints: OnceCell::new(),
            feature_groups: OnceCell::new(),
            search_models: OnceCell::new(),
            search_training: OnceCell::new(),
            search_groups: OnceCell::new(),
            search_packages: OnceCell::new(),
            tag_index: OnceCell::new(),
            notes: Mutex::new(Vec::new()),
            from_search: AtomicU64::new(0),
            from_tag_index: AtomicU64::new(0),
            enrichment_deadline: tokio::time::Instant::now() + NO_DEADLINE,
            enrichment_budget: NO_DEADLINE,
            indexes_abandoned: AtomicBool::new(false),
        }
    }

    /// Linking a model waits for the enrichment indexes (serving endpoints, feature groups) at
    /// most `budget` from now; an index still loading then is skipped for the run with one
    /// warning, and the models are linked without it. Search's pages and the tagging index are
    /// not enrichments but cheaper ways to facts a model needs: they have no deadline (their
    /// calls have their timeouts), since giving up on them would describe every model.
    pub fn with_enrichment_deadline(mut self, budget: std::time::Duration) -> Self {
        self.enrichment_deadline = tokio::time::Instant::now() + budget;
        self.enrichment_budget = budget;
        self
    }

    /// `load` (which fills `cell`) awaited until the enrichment deadline; after it, whatever
    /// `cell` holds, without waiting.
    async fn by_deadline<'a, T>(
        &'a self,
        cell: &'a OnceCell<T>,
        load: impl Future<Output = &'a T>,
    ) -> Option<&'a T> {
        if !self.indexes_abandoned.load(Ordering::Relaxed) {
            match tokio::time::timeout_at(self.enrichment_deadline, load).await {
                Ok(v) => return Some(v),
                Err(_) => self.abandon_indexes(),
            }
        }
        cell.get()
    }

    fn abandon_indexes(&self) {
        if self.indexes_abandoned.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut late = Vec::new();
        if self.endpoints.get().is_none() {
            late.push("serving endpoints");
        }
        if self.feature_groups.get().is_none() {
            late.push("ML features");
        }
        self.warn(format!(
            "enrichments still loading after the {} s enrichment deadline were skipped for this run: {}",
            self.enrichment_budget.as_secs(),
            late.join(", ")
        ));
    }

    /// Sends an optional enrichment call (`send` builds it on [`Source::optional_client`]),
    /// paced, retried by [`OptionalRetry`].
    async fn optional<T, E, Fut>(
        &self,
        api: &'static str,
        send: impl Fn() -> Fut,
    ) -> Result<T, OptionalError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            self.pacer.ready(api).await;
            attempts += 1;
            let result = send().await;
            if attempts > 1 {
                self.stats.count_as_retry(api);
            }
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let failure = failure_of(&err);
            match self
                .optional_retry
                .next_delay(attempts, started.elapsed(), failure, jitter())
            {
                Some(delay) => {
                    tracing::debug!(api, attempts, ?failure, ?delay, "retrying optional call");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    let error = classify(&iam_action(api), &err);
                    return Err(match failure {
                        Failure::Transient => OptionalError::GaveUp { error, attempts },
                        Failure::Throttled | Failure::Permanent => OptionalError::Failed(error),
                    });
                }
            }
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().expect("warnings lock").clone()
    }

    /// Resources read one by one because Search was not usable for them, one line each.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes lock").clone()
    }

    /// Models whose facts (or, unchanged, whose tags) came from Search this run.
    pub fn models_from_search(&self) -> u64 {
        self.from_search.load(Ordering::Relaxed)
    }

    /// Models whose tags came from the tagging API this run.
    pub fn tags_from_index(&self) -> u64 {
        self.from_tag_index.load(Ordering::Relaxed)
    }

    fn warn(&self, w: String) {
        tracing::warn!(warning = %w, "enrichment disabled");
        self.warnings.lock().expect("warnings lock").push(w);
    }

    /// Every model, page by page. On a failed page, returns what was listed so far and the
    /// error: the caller must then not mark anything deleted.
    pub async fn list_models(&self) -> (Vec<ListedModel>, Option<AwsError>) {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_models()
            .max_results(100)
            .into_paginator()
            .send();
        loop {
            match pages.next().await {
                None => return (out, None),
                Some(Ok(page)) => {
                    for m in page.models() {
                        if let Some(name) = m.model_name() {
                            out.push(ListedModel {
                                name: name.to_owned(),
                                arn: m.model_arn().map(str::to_owned),
                                creation_time: m.creation_time().and_then(|t| t.to_millis().ok()),
                            });
                        }
                    }
                }
                Some(Err(e)) => return (out, Some(classify("sagemaker:ListModels", &e))),
            }
        }
    }

    /// Loads the per-run indexes (endpoints, feature groups, Search's models, the tagging
    /// index) once; later calls are free. Waits for the enrichments (endpoints, feature groups)
    /// no longer than the enrichment deadline.
    pub async fn load_indexes(&self) {
        let _ = tokio::join!(
            self.by_deadline(
                &self.endpoints,
                self.endpoints.get_or_init(|| self.load_endpoints())
            ),
            self.by_deadline(
                &self.feature_groups,
                self.feature_groups
                    .get_or_init(|| self.load_feature_groups())
            ),
            self.searched_models(),
            self.tag_index(),
        );
    }

    /// Endpoint names, statuses and configs: Search, else ListEndpoints + DescribeEndpoint.
    /// `Err` when the endpoints cannot be read this run (already warned).
    async fn list_endpoints(&self) -> Result<Vec<ListedEndpoint>, ()> {
        if let Some(found) = self.searched_endpoints().await {
            return Ok(found);
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .optional("ListEndpoints", || {
                    self.optional_client
                        .list_endpoints()
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                })
                .await;
            match page {
                Ok(p) => {
                    names.extend(
                        p.endpoints()
                            .iter()
                            .filter_map(|e| e.endpoint_name().map(str::to_owned)),
                    );
                    token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
                    if token.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    self.warn(format!("serving endpoints not ingested: {e}"));
                    return Err(());
                }
            }
        }
        let mut out = Vec::new();
        for name in names {
            match self
                .optional("DescribeEndpoint", || {
                    self.optional_client
                        .describe_endpoint()
                        .endpoint_name(&name)
                        .send()
                })
                .await
            {
                Ok(ep) => out.push(ListedEndpoint {
                    status: ep
                        .endpoint_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    config_name: ep.endpoint_config_name().map(str::to_owned),
                    name,
                }),
                Err(e @ OptionalError::GaveUp { .. }) => {
                    self.warn(format!("serving endpoints not ingested: {e}"));
                    return Err(());
                }
                Err(e) => self.warn(format!("endpoint {name} skipped: {e}")),
            }
        }
        Ok(out)
    }

    async fn load_endpoints(&self) -> HashMap<String, Vec<EndpointFacts>> {
        let mut by_model: HashMap<String, Vec<EndpointFacts>> = HashMap::new();
        let Ok(endpoints) = self.list_endpoints().await else {
            return HashMap::new();
        };
        for ListedEndpoint {
            name,
            status,
            config_name,
        } in endpoints
        {
            let Some(config_name) = config_name else {
                continue;
            };
            let cfg = match self
                .optional("DescribeEndpointConfig", || {
                    self.optional_client
                        .describe_endpoint_config()
                        .endpoint_config_name(&config_name)
                        .send()
                })
                .await
            {
                Ok(c) => c,
                Err(e @ OptionalError::GaveUp { .. }) => {
                    self.warn(format!("serving endpoints not ingested: {e}"));
                    return HashMap::new();
                }
                Err(e) => {
                    self.warn(format!("endpoint {name} skipped: {e}"));
                    continue;
                }
            };
            for v in cfg.production_variants() {
                if let Some(model) = v.model_name() {
                    by_model
                        .entry(model.to_owned())
                        .or_default()
                        .push(EndpointFacts {
                            name: name.clone(),
                            status: status.clone(),
                            url: Some(invocation_url(&self.region, &name)),
                        });
                }
            }
        }
        // By name: ListEndpoints and Search list in different orders, and the facts (so the
        // source hash) must not depend on which one was used.
        for endpoints in by_model.values_mut() {
            endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        }
        by_model
    }

    async fn load_feature_groups(&self) -> Vec<FeatureGroup> {
        let names = match self.list_feature_groups().await {
            Ok(names) => names,
            Err(e) => {
                tracing::debug!(error = %e, "ListFeatureGroups failed, trying Search");
                match self.search_feature_groups().await {
                    Ok(names) => names,
                    Err(e) => {
                        self.warn(format!("ML features not ingested: {e}"));
                        return Vec::new();
                    }
                }
            }
        };
        let mut groups = Vec::new();
        for name in names {
            match self
                .optional("DescribeFeatureGroup", || {
                    self.optional_client
                        .describe_feature_group()
                        .feature_group_name(&name)
                        .send()
                })
                .await
            {
                Ok(g) => {
                    let s3 = g.offline_store_config().and_then(|o| o.s3_storage_config());
                    let offline_uri = s3
                        .and_then(|s| s.resolved_output_s3_uri().or(s.s3_uri()))
                        .map(|u| u.trim_end_matches('/').to_owned());
                    let features = g
                        .feature_definitions()
                        .iter()
                        .filter_map(|f| {
                            let t = match f.feature_type()?.as_str() {
                                "Integral" => FeatureType::Integral,
                                "Fractional" => FeatureType::Fractional,
                                _ => FeatureType::String,
                            };
                            Some((f.feature_name()?.to_owned(), t))
                        })
                        .collect();
                    groups.push(FeatureGroup {
                        name,
                        arn: g.feature_group_arn().map(str::to_owned),
                        offline_uri,
                        features,
                    });
                }
                Err(e @ OptionalError::GaveUp { .. }) => {
                    self.warn(format!("ML features not ingested: {e}"));
                    return Vec::new();
                }
                Err(e) => self.warn(format!("feature group {name} skipped: {e}")),
            }
        }
        groups
    }

    /// Feature group names by ListFeatureGroups.
    async fn list_feature_groups(&self) -> Result<Vec<String>, OptionalError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let p = self
                .optional("ListFeatureGroups", || {
                    self.optional_client
                        .list_feature_groups()
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            names.extend(
                p.feature_group_summaries()
                    .iter()
                    .filter_map(|g| g.feature_group_name().map(str::to_owned)),
            );
            token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(names)
    }

    /// Feature group names by Search, where ListFeatureGroups is not allowed or broken.
    async fn search_feature_groups(&self) -> Result<Vec<String>, OptionalError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let p = self
                .optional("Search", || {
                    self.optional_client
                        .search()
                        .resource(ResourceType::FeatureGroup)
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            names.extend(p.results().iter().filter_map(|r| {
                r.feature_group()
                    .and_then(|g| g.feature_group_name())
                    .map(str::to_owned)
            }));
            token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(names)
    }

    /// The training job that produced `model_data_url`, cached per job name.
    async fn training_job(&self, model_data_url: &str) -> Option<TrainingFacts> {
        if !self.training_enabled.load(Ordering::Relaxed) {
            return None;
        }
        let job = job_name_from_artifact(model_data_url)?;
        // Search's index is a cache of its own: a job it holds is not copied into the cache.
        if let Some(found) = self
            .searched_training_jobs()
            .await
            .and_then(|jobs| jobs.get(&job))
        {
            return (found.artifacts.as_deref() == Some(model_data_url))
                .then(|| found.facts.clone());
        }
        let cell = self
            .training_cache
            .lock()
            .expect("cache lock")
            .entry(job.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            match self
                .optional("DescribeTrainingJob", || {
                    self.optional_client
                        .describe_training_job()
                        .training_job_name(&job)
                        .send()
                })
                .await
            {
                Ok(t) => {
                    let artifacts = t.model_artifacts().map(|a| a.s3_model_artifacts());
                    if artifacts.flatten() != Some(model_data_url) {
                        return None;
                    }
                    Some(training_facts(
                        &job,
                        t.algorithm_specification(),
                        t.hyper_parameters(),
                        t.input_data_config(),
                    ))
                }
                Err(e) => {
                    if !matches!(e, OptionalError::Failed(AwsError::NotFound { .. })) {
                        self.training_failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(job.clone());
                    }
                    let off = match &e {
                        OptionalError::GaveUp { .. } => true,
                        OptionalError::Failed(AwsError::AccessDenied { .. }) => true,
                        OptionalError::Failed(AwsError::NotFound { .. }) => false,
                        OptionalError::Failed(_) => {
                            tracing::debug!(job = %job, error = %e, "training job not read");
                            false
                        }
                    };
                    if off && self.training_enabled.swap(false, Ordering::Relaxed) {
                        self.warn(format!(
                            "hyperparameters and training algorithms not ingested: {e}"
                        ));
                    }
                    None
                }
            }
        })
        .await
        .clone()
    }

    /// The Search record of a listed model, when Search holds one that matches its listing
    /// (same ARN and creation time), taken out of the index: each listed name is read once,
    /// and 10,000 models' records held to the end of the run would be memory for nothing.
    async fn searched(&self, listed: &ListedModel) -> Option<SearchedModel> {
        let mut index = self
            .searched_models()
            .await?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let d = &index.get(&listed.name)?.described;
        (listed.arn.as_deref() == Some(d.arn.as_str())
            && listed.creation_time == Some(d.creation_time))
        .then(|| index.remove(&listed.name))
        .flatten()
    }

    /// Every fact about one listed model: from its Search record, else DescribeModel and
    /// ListTags.
    pub async fn model_facts(&self, listed: &ListedModel) -> Result<ModelFacts, ModelFailure> {
        let name = listed.name.as_str();
        let fail = |error| ModelFailure {
            model: name.to_owned(),
            error,
        };
        let (described, tags) = match self.searched(listed).await {
            Some(found) => {
                self.from_search.fetch_add(1, Ordering::Relaxed);
                (found.described, found.tags)
            }
            None => {
                self.pacer.ready("DescribeModel").await;
                let d = self
                    .client
                    .describe_model()
                    .model_name(name)
                    .send()
                    .await
                    .map_err(|e| fail(classify("sagemaker:DescribeModel", &e)))?;
                let described = Described::new(
                    d.model_arn(),
                    d.creation_time(),
                    d.execution_role_arn(),
                    d.primary_container(),
                    d.containers(),
                );
                let tags = self
                    .tags(&described.arn, Some(described.creation_time))
                    .await
                    .map_err(fail)?;
                (described, tags)
            }
        };
        let Described {
            arn,
            creation_time,
            creation_time_rfc3339,
            execution_role_arn,
            primary_container: primary,
            containers,
        } = described;
        let data_url = primary
            .as_ref()
            .or(containers.first())
            .and_then(|c| c.model_data_url.clone());
        let training_job = match &data_url {
            Some(u) => self.training_job(u).await,
            None => None,
        };
        let mut incomplete = Vec::new();
        let job = data_url.as_deref().and_then(job_name_from_artifact);
        let read_failed = job.as_ref().is_some_and(|j| {
            self.training_failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(j)
        });
        // Not read because the reads were turned off (a denial, an API that gave up) or this
        // job's read failed: the model is stored incomplete and read again next run.
        if training_job.is_none()
            && job.is_some()
            && (!self.training_enabled.load(Ordering::Relaxed) || read_failed)
        {
            incomplete.push("trainingJob".to_owned());
        }
        let account_id = arn.split(':').nth(4).unwrap_or_default().to_owned();
        let mut facts = ModelFacts {
            name: name.to_owned(),
            arn,
            creation_time,
            creation_time_rfc3339,
            execution_role_arn,
            primary_container: primary,
            containers,
            tags,
            training_job,
            features: Vec::new(),
            endpoints: Vec::new(),
            region: self.region.clone(),
            account_id,
            incomplete,
            package_group: None,
        };
        self.link(&mut facts).await;
        Ok(facts)
    }

    /// What links a model to the rest of the account and can change while the model does not:
    /// the endpoints serving it and the feature groups it read (through its training job's
    /// inputs or its tags).
    async fn link(&self, facts: &mut ModelFacts) {
        self.load_indexes().await;
        facts.endpoints = self
            .endpoints
            .get()
            .and_then(|m| m.get(&facts.name))
            .cloned()
            .unwrap_or_default();
        facts.features = self.features_for(facts.training_job.as_ref(), &facts.tags);
    }

    /// Facts for a model already ingested whose ARN and creation time have not changed: a
    /// SageMaker model is immutable, so only what can change around it is read again (its
    /// tags, the endpoints serving it and the feature groups linked through them); no
    /// DescribeModel, no training-job lookup.
    pub async fn refresh_facts(&self, mut facts: ModelFacts) -> Result<ModelFacts, ModelFailure> {
        let listed = ListedModel {
            name: facts.name.clone(),
            arn: Some(facts.arn.clone()),
            creation_time: Some(facts.creation_time),
        };
        facts.tags = match self.searched(&listed).await {
            Some(found) => {
                self.from_search.fetch_add(1, Ordering::Relaxed);
                found.tags
            }
            None => self
                .tags(&facts.arn, Some(facts.creation_time))
                .await
                .map_err(|error| ModelFailure {
                    model: facts.name.clone(),
                    error,
                })?,
        };
        self.link(&mut facts).await;
        Ok(facts)
    }

    /// What can change around a listed model that is otherwise unchanged: its tags (from
    /// Search, else ListTags) and the endpoints serving it. No DescribeModel, no training job.
    pub async fn surroundings(
        &self,
        listed: &ListedModel,
    ) -> Result<(Vec<(String, String)>, Vec<EndpointFacts>), ModelFailure> {
        let tags = match self.searched(listed).await {
            Some(found) => {
                self.from_search.fetch_add(1, Ordering::Relaxed);
                found.tags
            }
            None => {
                let arn = listed.arn.as_deref().unwrap_or_default();
                self.tags(arn, listed.creation_time)
                    .await
                    .map_err(|error| ModelFailure {
                        model: listed.name.clone(),
                        error,
                    })?
            }
        };
        self.load_indexes().await;
        let endpoints = self
            .endpoints
            .get()
            .and_then(|m| m.get(&listed.name))
            .cloned()
            .unwrap_or_default();
        Ok((tags, endpoints))
    }

    /// A digest of this run's feature group index (names, ARNs, offline stores, features), in
    /// name order; the same when the groups are the same. Call after [`Source::load_indexes`].
    pub fn feature_index_digest(&self) -> String {
        let mut groups: Vec<_> = self
            .feature_groups
            .get()
            .map(|groups| {
                groups
                    .iter()
                    .map(|g| (&g.name, &g.arn, &g.offline_uri, &g.features))
                    .collect()
            })
            .unwrap_or_default();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        let loaded = self.feature_groups.get().is_some();
        let bytes = serde_json::to_vec(&(loaded, groups)).unwrap_or_default();
        hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)[..8])
    }

    /// A model's tags in key order: from the tagging index when it can answer, else ListTags.
    async fn tags(
        &self,
        arn: &str,
        creation_time: Option<i64>,
    ) -> Result<Vec<(String, String)>, AwsError> {
        if let Some(tags) = self.indexed_tags(arn, creation_time).await {
            self.from_tag_index.fetch_add(1, Ordering::Relaxed);
            return Ok(tags);
        }
        self.list_tags(arn).await
    }

    async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        let mut out = Vec::new();
        self.pacer.ready("ListTags").await;
        let mut pages = self
            .client
            .list_tags()
            .resource_arn(arn)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("sagemaker:ListTags", &e))?;
            for t in page.tags() {
                out.push((
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ));
            }
        }
        Ok(tagging::sorted(out))
    }

    fn features_for(
        &self,
        job: Option<&TrainingFacts>,
        tags: &[(String, String)],
    ) -> Vec<FeatureFacts> {
        let Some(groups) = self.feature_groups.get() else {
            return Vec::new();
        };
        let tagged: Vec<&str> = tags
            .iter()
            .filter(|(k, _)| *k == self.feature_group_tag_key)
            .flat_map(|(_, v)| v.split(',').map(str::trim))
            .collect();
        let mut out = Vec::new();
        for g in groups {
            let read = job.is_some_and(|j| {
                g.offline_uri
                    .as_deref()
                    .is_some_and(|u| j.input_s3_uris.iter().any(|i| i.starts_with(u)))
            });
            if read || tagged.contains(&g.name.as_str()) {
                out.extend(g.features.iter().map(|(name, t)| FeatureFacts {
                    name: name.clone(),
                    feature_type: *t,
                    feature_group: g.name.clone(),
                    feature_group_arn: g.arn.clone(),
                }));
            }
        }
        out
    }
}

fn container(c: &ContainerDefinition) -> ContainerFacts {
    ContainerFacts {
        image: c.image().map(str::to_owned),
        model_data_url: c.model_data_url().map(str::to_owned),
        mode: c.mode().map(|m| m.as_str().to_owned()),
        environment: c
            .environment()
            .map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        model_package_name: c.model_package_name().map(str::to_owned),
    }
}

/// `s3://bucket/prefix/<job>/output/model.tar.gz` -> `<job>`.
pub fn job_name_from_artifact(url: &str) -> Option<String> {
    let rest = url.strip_prefix("s3://")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let n = parts.len();
    (n >= 4 && parts[n - 2] == "output" && parts[n - 1] == "model.tar.gz")
        .then(|| parts[n - 3].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names() {
        assert_eq!(
            job_name_from_artifact("s3://b/p/train-1/output/model.tar.gz").as_deref(),
            Some("train-1")
        );
        assert_eq!(
            job_name_from_artifact("s3://b/train-1/output/model.tar.gz").as_deref(),
            Some("train-1")
        );
        assert_eq!(job_name_from_artifact("s3://b/models/m.tar.gz"), None);
        assert_eq!(
            job_name_from_artifact("https://x/train/output/model.tar.gz"),
            None
        );
    }
}
