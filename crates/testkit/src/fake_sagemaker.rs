//! A fast fake of the SageMaker control plane, for paging, fault and performance tests.
//!
//! moto answers ~150 calls/s and ignores `MaxResults`; this fake speaks the same awsJson1.1
//! protocol (`POST /` with `X-Amz-Target: SageMaker.<Op>`), pages like AWS, and answers from
//! JSON precomputed at start, so a client can ingest 10,000 models in seconds.
//!
//! Behaviour can be changed while it runs, through [`FakeHandle`]: latency, a per-operation
//! rate limit (a token bucket answering `ThrottlingException`), injected failures (any
//! operation, ListModels on page K, or `Search` for one resource), the index lag of `Search`
//! (resources created in the last N seconds are not found yet), and per-operation counters.
//!
//! `Search` serves `Model` (a `ModelDashboardModel`: the model with its tags and the endpoints
//! that host it), `TrainingJob` and `Endpoint` (each the describe answer with its tags) and
//! `FeatureGroup`, paged like AWS (`MaxResults` 1 to 100, default 10, and `NextToken`); other
//! resources of the API's enum answer no results, and a name outside it is a validation
//! error. The hot path takes no
//! global lock: counters and switches are atomics; a per-operation mutex is taken only while
//! that operation is rate limited or has a failure armed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::IntoFuture as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

/// Epoch seconds of the first resource's creation time; resource `i` is `i` seconds later.
const BASE_EPOCH: u64 = 1_700_000_000;

/// What the fake account holds. Names are deterministic: `model-00000`, `train-00000`,
/// `endpoint-00000`, `feature-group-0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSpec {
    /// Number of models.
    pub models: usize,
    /// Tags per model (`team`, `env`, then `tag-NN`).
    pub tags_per_model: usize,
    /// Give every model a training job `train-NNNNN` whose artifacts are its `ModelDataUrl`.
    pub training_jobs: bool,
    /// Number of endpoints; endpoint `i` serves model `i` through config `endpoint-config-i`.
    pub endpoints: usize,
    /// Number of feature groups; every third training job reads one's offline store.
    pub feature_groups: usize,
    /// The last `recent_models` models (and their training jobs) are created when the fake
    /// starts instead of in 2023: with a `Search` index lag
    /// ([`FakeHandle::set_search_index_lag`]) they are missing from `Search`.
    pub recent_models: usize,
    /// When the recent models were created (epoch seconds); the fake's start when `None`.
    /// Two fakes meant to hold the same account set it to the same second.
    pub recent_created_at: Option<u64>,
    /// Region in ARNs.
    pub region: String,
    /// Account in ARNs.
    pub account_id: String,
}

impl Default for FakeSpec {
    fn default() -> Self {
        Self {
            models: 100,
            tags_per_model: 3,
            training_jobs: true,
            endpoints: 3,
            feature_groups: 2,
            recent_models: 0,
            recent_created_at: None,
            region: crate::aws::DEFAULT_REGION.to_owned(),
            account_id: crate::aws::DEFAULT_ACCOUNT_ID.to_owned(),
        }
    }
}

impl FakeSpec {
    /// `models` models with default extras.
    pub fn with_models(models: usize) -> Self {
        Self {
            models,
            ..Self::default()
        }
    }
}

/// The operations the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// `ListModels`
    ListModels,
    /// `DescribeModel`
    DescribeModel,
    /// `ListTags`
    ListTags,
    /// `ListTrainingJobs`
    ListTrainingJobs,
    /// `DescribeTrainingJob`
    DescribeTrainingJob,
    /// `ListEndpoints`
    ListEndpoints,
    /// `DescribeEndpoint`
    DescribeEndpoint,
    /// `DescribeEndpointConfig`
    DescribeEndpointConfig,
    /// `Search`
    Search,
    /// `ListFeatureGroups`
    ListFeatureGroups,
    /// `DescribeFeatureGroup`
    DescribeFeatureGroup,
    /// `ListModelPackageGroups`: the fake holds no model registry, so always an empty page
    /// (what an account that never used the registry answers). moto serves the registry.
    ListModelPackageGroups,
    /// The Resource Groups Tagging API's `GetResources` (target
    /// `ResourceGroupsTaggingAPI_20170126.GetResources`), for `sagemaker:model`: the tagged
    /// models with their tags, in creation order, `ResourcesPerPage` up to 100.
    GetResources,
    /// Any other target: answered with `UnknownOperationException`.
    Unknown,
}

impl Operation {
    /// Every operation, in counter order.
    pub const ALL: [Operation; 14] = [
        Operation::ListModels,
        Operation::DescribeModel,
        Operation::ListTags,
        Operation::ListTrainingJobs,
        Operation::DescribeTrainingJob,
        Operation::ListEndpoints,
        Operation::DescribeEndpoint,
        Operation::DescribeEndpointConfig,
        Operation::Search,
        Operation::ListFeatureGroups,
        Operation::DescribeFeatureGroup,
        Operation::ListModelPackageGroups,
        Operation::GetResources,
        Operation::Unknown,
    ];

    /// The API name, e.g. `DescribeModel`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListModels => "ListModels",
            Operation::DescribeModel => "DescribeModel",
            Operation::ListTags => "ListTags",
            Operation::ListTrainingJobs => "ListTrainingJobs",
            Operation::DescribeTrainingJob => "DescribeTrainingJob",
            Operation::ListEndpoints => "ListEndpoints",
            Operation::DescribeEndpoint => "DescribeEndpoint",
            Operation::DescribeEndpointConfig => "DescribeEndpointConfig",
            Operation::Search => "Search",
            Operation::ListFeatureGroups => "ListFeatureGroups",
            Operation::DescribeFeatureGroup => "DescribeFeatureGroup",
            Operation::ListModelPackageGroups => "ListModelPackageGroups",
            Operation::GetResources => "GetResources",
            Operation::Unknown => "Unknown",
        }
    }

    /// The operation named `name` (`DescribeModel` or `SageMaker.DescribeModel`, and
    /// `ResourceGroupsTaggingAPI_20170126.GetResources`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name
            .strip_prefix("SageMaker.")
            .or_else(|| name.strip_prefix("ResourceGroupsTaggingAPI_20170126."))
            .unwrap_or(name);
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A failure to answer instead of the real response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status, e.g. 500.
    pub status: u16,
    /// `__type`, e.g. `InternalFailure`, `AccessDeniedException`.
    pub error_type: String,
    /// `message`.
    pub message: String,
    /// How many calls fail before the operation recovers; `None` fails until cleared.
    pub times: Option<u64>,
}

impl Failure {
    /// HTTP 500 `InternalFailure` until cleared.
    pub fn internal() -> Self {
        Self {
            status: 500,
            error_type: "InternalFailure".to_owned(),
            message: "We encountered an internal error. Please try again.".to_owned(),
            times: None,
        }
    }

    /// HTTP 400 `AccessDeniedException` for `action` until cleared.
    pub fn access_denied(action: &str) -> Self {
        Self {
            status: 400,
            error_type: "AccessDeniedException".to_owned(),
            message: format!(
                "User: arn:aws:iam::123456789012:user/test is not authorized to perform: {action}"
            ),
            times: None,
        }
    }

    /// HTTP 400 `ValidationException` with `message` until cleared (how moto answers `Search`
    /// for a resource it does not support).
    pub fn validation(message: &str) -> Self {
        Self {
            status: 400,
            error_type: "ValidationException".to_owned(),
            message: message.to_owned(),
            times: None,
        }
    }

    /// The same failure for only the next `times` calls.
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }
}

struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            tokens: rate.max(1.0),
            last: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let burst = self.rate.max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Microseconds value meaning "no per-operation latency, use the global one".
const NO_LATENCY: u64 = u64::MAX;

struct OpState {
    calls: AtomicU64,
    throttled: AtomicU64,
    failed: AtomicU64,
    latency_us: AtomicU64,
    limited: AtomicBool,
    bucket: Mutex<Option<TokenBucket>>,
    failing: AtomicBool,
    failure: Mutex<Option<Failure>>,
}

impl Default for OpState {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency_us: AtomicU64::new(NO_LATENCY),
            limited: AtomicBool::new(false),
            bucket: Mutex::new(None),
            failing: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }
}

/// A listed resource: its list-summary JSON fragment and its full describe answer.
struct Row {
    name: String,
    summary: String,
    describe: Bytes,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    by_name: HashMap<String, usize>,
}

impl Table {
    fn push(&mut self, name: String, summary: &Value, describe: &Value) {
        self.by_name.insert(name.clone(), self.rows.len());
        self.rows.push(Row {
            name,
            summary: summary.to_string(),
            describe: Bytes::from(describe.to_string()),
        });
    }

    fn get(&self, name: &str) -> Option<&Row> {
        self.by_name.get(name).map(|&i| &self.rows[i])
    }
}

/// One `Search` record and when its resource was created (epoch seconds), for the index lag.
struct Indexed {
    name: String,
    created: u64,
    record: String,
}

struct Dataset {
    spec: FakeSpec,
    models: Table,
    training_jobs: Table,
    endpoints: Table,
    endpoint_configs: Table,
    feature_groups: Table,
    /// `{"FeatureGroup": {...}}` fragments for Search, in feature group order.
    feature_group_search: Vec<String>,
    /// `Search` records of `Model`, `TrainingJob` and `Endpoint`, in creation order.
    model_search: Vec<Indexed>,
    training_job_search: Vec<Indexed>,
    endpoint_search: Vec<Indexed>,
    /// Tag fragments `{"Key":..,"Value":..}` by resource ARN.
    tags: HashMap<String, Vec<String>>,
}

struct Shared {
    data: Dataset,
    ops: [OpState; Operation::ALL.len()],
    latency_us: AtomicU64,
    /// ListModels page (1-based) that fails with 500, 0 for none.
    fail_list_models_page: AtomicU64,
    /// How many more times that page fails.
    fail_list_models_remaining: AtomicU64,
    /// Each ListModels page after the first starts this many models early, repeating the end
    /// of the previous page (a listing that shifted while it was paged).
    list_models_overlap: AtomicU64,
    /// Resources created less than this many seconds ago are missing from `Search`.
    search_lag_s: AtomicU64,
    /// `Search` failures by resource (`Model`, ...), until cleared or used up.
    search_failures: Mutex<HashMap<String, Failure>>,
    /// Models whose `Search` record is stale: that of an older model of the same name.
    stale_search: Mutex<std::collections::HashSet<String>>,
    request_ids: AtomicU64,
}

/// A running fake; the server task is aborted on drop.
pub struct FakeSageMaker {
    endpoint: String,
    handle: FakeHandle,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeSageMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSageMaker")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Shared control of a running fake: counters and injected behaviour (cheap to clone).
#[derive(Clone)]
pub struct FakeHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHandle")
            .field("calls", &self.all_calls())
            .finish_non_exhaustive()
    }
}

impl FakeSageMaker {
    /// Build the data set and serve it on `127.0.0.1:<free port>`.
    pub async fn start(spec: FakeSpec) -> anyhow::Result<Self> {
        let data = build_dataset(spec);
        let shared = Arc::new(Shared {
            data,
            ops: Default::default(),
            latency_us: AtomicU64::new(0),
            fail_list_models_page: AtomicU64::new(0),
            fail_list_models_remaining: AtomicU64::new(0),
            list_models_overlap: AtomicU64::new(0),
            search_lag_s: AtomicU64::new(0),
            search_failures: Mutex::new(HashMap::new()),
            stale_search: Mutex::new(std::collections::HashSet::new()),
            request_ids: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind 127.0.0.1:0")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/", axum::routing::post(handle))
            .with_state(shared.clone());
        let serve = axum::serve(listener, app).into_future();
        let task = tokio::spawn(async move {
            if let Err(error) = serve.await {
                tracing::warn!(%error, "fake sagemaker stopped");
            }
        });
        tracing::debug!(%endpoint, "fake sagemaker started");
        Ok(Self {
            endpoint,
            handle: FakeHandle { shared },
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Control and counters (clone it to keep it past the server).
    pub fn handle(&self) -> FakeHandle {
        self.handle.clone()
    }

    /// An SDK client for this fake with standard retries (3 attempts).
    pub fn client(&self) -> aws_sdk_sagemaker::Client {
        crate::aws::sagemaker_client(&self.endpoint, None)
    }
}

impl Drop for FakeSageMaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHandle {
    fn op(&self, op: &str) -> &OpState {
        let op = Operation::from_name(op)
            .unwrap_or_else(|| panic!("the fake does not serve an operation named {op:?}"));
        &self.shared.ops[op.index()]
    }

    /// Calls received for `op` (`DescribeModel`), including throttled and failed ones.
    ///
    /// # Panics
    /// If `op` is not an operation the fake serves (to catch typos in tests).
    pub fn calls(&self, op: &str) -> u64 {
        self.op(op).calls.load(Ordering::Relaxed)
    }

    /// Calls received per operation, operations never called left out.
    pub fn all_calls(&self) -> BTreeMap<String, u64> {
        Operation::ALL
            .iter()
            .filter_map(|op| {
                let n = self.shared.ops[op.index()].calls.load(Ordering::Relaxed);
                (n > 0).then(|| (op.name().to_owned(), n))
            })
            .collect()
    }

    /// Calls received in total.
    pub fn total_calls(&self) -> u64 {
        self.shared
            .ops
            .iter()
            .map(|s| s.calls.load(Ordering::Relaxed))
            .sum()
    }

    /// Calls answered with `ThrottlingException`, all operations.
    pub fn throttled(&self) -> u64 {
        self.shared
            .ops
            .iter()
            .map(|s| s.throttled.load(Ordering::Relaxed))
            .sum()
    }

    /// Calls of `op` answered with `ThrottlingException`.
    pub fn throttled_calls(&self, op: &str) -> u64 {
        self.op(op).throttled.load(Ordering::Relaxed)
    }

    /// Calls answered with an injected failure, all operations.
    pub fn failed(&self) -> u64 {
        self.shared
            .ops
            .iter()
            .map(|s| s.failed.load(Ordering::Relaxed))
            .sum()
    }

    /// Zero every counter.
    pub fn reset_counters(&self) {
        for state in &self.shared.ops {
            state.calls.store(0, Ordering::Relaxed);
            state.throttled.store(0, Ordering::Relaxed);
            state.failed.store(0, Ordering::Relaxed);
        }
    }

    /// Delay every answer by `latency` (zero for none).
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Delay answers of `op` by `latency`, overriding the global latency; `None` restores it.
    pub fn set_op_latency(&self, op: &str, latency: Option<Duration>) {
        let us = latency.map_or(NO_LATENCY, |l| l.as_micros() as u64);
        self.op(op).latency_us.store(us, Ordering::Relaxed);
    }

    /// Limit `op` to `tps` calls per second (burst of `tps`); calls over the limit get HTTP
    /// 400 `ThrottlingException: Rate exceeded`. `None` removes the limit.
    pub fn set_rate_limit(&self, op: &str, tps: Option<f64>) {
        let state = self.op(op);
        let mut bucket = state.bucket.lock().unwrap_or_else(|e| e.into_inner());
        *bucket = tps.map(TokenBucket::new);
        state.limited.store(bucket.is_some(), Ordering::Release);
    }

    /// Answer `op` with `failure` (see [`Failure::times`]); `None` clears it.
    pub fn set_failure(&self, op: &str, failure: Option<Failure>) {
        let state = self.op(op);
        let mut slot = state.failure.lock().unwrap_or_else(|e| e.into_inner());
        *slot = failure;
        state.failing.store(slot.is_some(), Ordering::Release);
    }

    /// Answer ListModels page `page` (1-based: the call without a NextToken is page 1) with
    /// HTTP 500 `InternalFailure`, `times` times (`u64::MAX` for always); `page` 0 disables.
    pub fn fail_list_models_page(&self, page: u64, times: u64) {
        self.shared
            .fail_list_models_remaining
            .store(times, Ordering::Relaxed);
        self.shared
            .fail_list_models_page
            .store(page, Ordering::Release);
    }

    /// Makes every ListModels page after the first repeat the last `models` names of the page
    /// before (as a listing that shifts under a paging client does); 0 turns it off.
    pub fn overlap_list_models_pages(&self, models: u64) {
        self.shared
            .list_models_overlap
            .store(models, Ordering::Release);
    }

    /// Makes `Search` miss every resource created less than `lag` ago (zero: none), as its
    /// index lags behind the Describe APIs in AWS.
    pub fn set_search_index_lag(&self, lag: Duration) {
        self.shared
            .search_lag_s
            .store(lag.as_secs(), Ordering::Release);
    }

    /// Answers `Search` for `resource` (`Model`, `TrainingJob`, ...) with `failure` (see
    /// [`Failure::times`]), other resources as usual; `None` clears it. For an API that does
    /// not support a resource (moto answers `Model` with a validation error), or a policy that
    /// denies it.
    pub fn set_search_failure(&self, resource: &str, failure: Option<Failure>) {
        let mut failures = self
            .shared
            .search_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match failure {
            Some(f) => failures.insert(resource.to_owned(), f),
            None => failures.remove(resource),
        };
    }

    /// Makes `Search` refuse the resources a run reads in bulk (`Model`, `TrainingJob`,
    /// `Endpoint`) with a validation error, as an API without them would: for tests of the
    /// one-by-one reads (DescribeModel, ListTags, DescribeTrainingJob, DescribeEndpoint).
    pub fn disable_bulk_search(&self) {
        for resource in ["Model", "TrainingJob", "Endpoint"] {
            self.set_search_failure(
                resource,
                Some(Failure::validation(&format!(
                    "1 validation error detected: Value '{resource}' at 'resource' failed to satisfy constraint"
                ))),
            );
        }
    }

    /// Makes `Search` answer for model `name` the record of an older model of the same name
    /// (deleted and created again, the index not caught up): the same ARN, created a day
    /// earlier.
    pub fn stale_search_record(&self, name: &str) {
        self.shared
            .stale_search
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
    }

    /// Model names in creation order.
    pub fn model_names(&self) -> Vec<String> {
        self.shared
            .data
            .models
            .rows
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// The spec the data set was built from.
    pub fn spec(&self) -> &FakeSpec {
        &self.shared.data.spec
    }

    /// ARN of model `name` as the fake reports it.
    pub fn model_arn(&self, name: &str) -> String {
        let spec = &self.shared.data.spec;
        arn(spec, "model", name)
    }
}

fn arn(spec: &FakeSpec, kind: &str, name: &str) -> String {
    format!(
        "arn:aws:sagemaker:{}:{}:{kind}/{name}",
        spec.region, spec.account_id
    )
}

fn epoch(i: usize) -> f64 {
    (BASE_EPOCH + i as u64) as f64
}

fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `{"<key>": <describe with "Tags">}`: a `Search` record of a resource.
fn search_record(key: &str, describe: &Value, tags: Option<&Vec<String>>) -> String {
    let mut record = describe.clone();
    let tags: Vec<Value> = tags
        .into_iter()
        .flatten()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    record["Tags"] = Value::Array(tags);
    json!({ key: record }).to_string()
}

fn tag_json(key: &str, value: &str) -> String {
    json!({ "Key": key, "Value": value }).to_string()
}

fn build_dataset(spec: FakeSpec) -> Dataset {
    let role = format!(
        "arn:aws:iam::{}:role/SageMakerExecutionRole",
        spec.account_id
    );
    let region = spec.region.clone();
    let images = [
        format!("683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1"),
        format!("763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.1.0-gpu-py310"),
        format!(
            "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-tgi-inference:2.1.1-tgi2.0.0-gpu-py310-cu121-ubuntu22.04"
        ),
    ];
    let mut tags = HashMap::new();

    let mut feature_groups = Table::default();
    let mut feature_group_search = Vec::new();
    let mut offline_uris = Vec::new();
    for i in 0..spec.feature_groups {
        let name = format!("feature-group-{i}");
        let fg_arn = arn(&spec, "feature-group", &name);
        let s3_uri = format!("s3://fake-feature-store/{name}");
        let resolved = format!(
            "{s3_uri}/{}/sagemaker/{region}/offline-store/{name}-{}/data",
            spec.account_id,
            BASE_EPOCH + i as u64
        );
        offline_uris.push(resolved.clone());
        let describe = json!({
            "FeatureGroupArn": fg_arn,
            "FeatureGroupName": name,
            "RecordIdentifierFeatureName": "record_id",
            "EventTimeFeatureName": "event_time",
            "FeatureDefinitions": [
                { "FeatureName": "record_id", "FeatureType": "String" },
                { "FeatureName": "event_time", "FeatureType": "Fractional" },
                { "FeatureName": "count_30d", "FeatureType": "Integral" },
                { "FeatureName": "amount_avg", "FeatureType": "Fractional" },
                { "FeatureName": "segment", "FeatureType": "String" },
            ],
            "CreationTime": epoch(i),
            "LastModifiedTime": epoch(i),
            "OfflineStoreConfig": {
                "S3StorageConfig": { "S3Uri": s3_uri, "ResolvedOutputS3Uri": resolved },
                "DisableGlueTableCreation": false,
                "DataCatalogConfig": {
                    "TableName": format!("{}_{}", name.replace('-', "_"), BASE_EPOCH + i as u64),
                    "Catalog": "AwsDataCatalog",
                    "Database": "sagemaker_featurestore"
                }
            },
            "RoleArn": role,
            "FeatureGroupStatus": "Created",
            "OfflineStoreStatus": { "Status": "Active" },
            "Description": format!("fake feature group {i}"),
        });
        let summary = json!({
            "FeatureGroupName": name,
            "FeatureGroupArn": fg_arn,
            "CreationTime": epoch(i),
            "FeatureGroupStatus": "Created",
            "OfflineStoreStatus": { "Status": "Active" },
        });
        feature_group_search.push(json!({ "FeatureGroup": describe }).to_string());
        tags.insert(fg_arn, vec![tag_json("team", "data-platform")]);
        feature_groups.push(name, &summary, &describe);
    }

    let mut models = Table::default();
    let mut training_jobs = Table::default();
    let now = spec.recent_created_at.unwrap_or_else(now_epoch);
    let first_recent = spec.models.saturating_sub(spec.recent_models);
    let mut training_job_search = Vec::new();
    let mut model_describes = Vec::new();
    for i in 0..spec.models {
        let name = format!("model-{i:05}");
        let created = if i >= first_recent {
            now
        } else {
            BASE_EPOCH + i as u64
        };
        let at = created as f64;
        let model_arn = arn(&spec, "model", &name);
        let image = &images[i % images.len()];
        let job_name = format!("train-{i:05}");
        let model_data_url = if spec.training_jobs {
            format!("s3://fake-artifacts/output/{job_name}/output/model.tar.gz")
        } else {
            format!("s3://fake-artifacts/models/{name}/model.tar.gz")
        };
        if spec.training_jobs {
            let job_arn = arn(&spec, "training-job", &job_name);
            let input = if i % 3 == 0 && !offline_uris.is_empty() {
                offline_uris[i / 3 % offline_uris.len()].clone()
            } else {
                format!("s3://fake-datasets/{name}/train/")
            };
            let describe = json!({
                "TrainingJobName": job_name,
                "TrainingJobArn": job_arn,
                "ModelArtifacts": { "S3ModelArtifacts": model_data_url },
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "HyperParameters": {
                    "epochs": (10 + i % 5).to_string(),
                    "learning_rate": "0.001",
                    "max_depth": "6",
                },
                "AlgorithmSpecification": {
                    "TrainingImage": image,
                    "TrainingInputMode": "File",
                    "EnableSageMakerMetricsTimeSeries": false
                },
                "RoleArn": role,
                "InputDataConfig": [{
                    "ChannelName": "train",
                    "DataSource": { "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": input,
                        "S3DataDistributionType": "FullyReplicated"
                    } },
                    "CompressionType": "None",
                    "RecordWrapperType": "None"
                }],
                "OutputDataConfig": { "S3OutputPath": "s3://fake-artifacts/output" },
                "ResourceConfig": {
                    "InstanceType": "ml.m5.xlarge",
                    "InstanceCount": 1,
                    "VolumeSizeInGB": 30
                },
                "StoppingCondition": { "MaxRuntimeInSeconds": 86400 },
                "CreationTime": at,
                "TrainingStartTime": at,
                "TrainingEndTime": at + 600.0,
                "LastModifiedTime": at + 600.0,
                "EnableNetworkIsolation": false,
                "EnableInterContainerTrafficEncryption": false,
                "EnableManagedSpotTraining": false,
            });
            let summary = json!({
                "TrainingJobName": job_name,
                "TrainingJobArn": job_arn,
                "CreationTime": at,
                "TrainingEndTime": at + 600.0,
                "LastModifiedTime": at + 600.0,
                "TrainingJobStatus": "Completed",
            });
            training_job_search.push(Indexed {
                name: job_name.clone(),
                created,
                record: search_record("TrainingJob", &describe, None),
            });
            training_jobs.push(job_name, &summary, &describe);
        }
        let mut environment = serde_json::Map::new();
        if i % images.len() == 2 {
            environment.insert(
                "HF_MODEL_ID".to_owned(),
                json!("meta-llama/Llama-2-7b-chat-hf"),
            );
            environment.insert("SM_NUM_GPUS".to_owned(), json!("1"));
        }
        let describe = json!({
            "ModelName": name,
            "ModelArn": model_arn,
            "PrimaryContainer": {
                "Image": image,
                "Mode": "SingleModel",
                "ModelDataUrl": model_data_url,
                "Environment": environment,
            },
            "ExecutionRoleArn": role,
            "CreationTime": at,
            "EnableNetworkIsolation": false,
        });
        let summary = json!({ "ModelName": name, "ModelArn": model_arn, "CreationTime": at });
        let mut model_tags = Vec::with_capacity(spec.tags_per_model);
        for t in 0..spec.tags_per_model {
            model_tags.push(match t {
                0 => tag_json("team", ["growth", "risk", "genai"][i % 3]),
                1 => tag_json("env", ["prod", "staging", "dev"][i % 3]),
                _ => tag_json(&format!("tag-{t:02}"), &format!("value-{i}-{t}")),
            });
        }
        tags.insert(model_arn, model_tags);
        models.push(name, &summary, &describe);
        model_describes.push((created, describe));
    }

    let mut endpoints = Table::default();
    let mut endpoint_search = Vec::new();
    let mut endpoint_configs = Table::default();
    let instance_types = ["ml.m5.xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge"];
    for i in 0..spec.endpoints.min(spec.models) {
        let name = format!("endpoint-{i:05}");
        let config_name = format!("endpoint-config-{i:05}");
        let endpoint_arn = arn(&spec, "endpoint", &name);
        let image = &images[i % images.len()];
        let config = json!({
            "EndpointConfigName": config_name,
            "EndpointConfigArn": arn(&spec, "endpoint-config", &config_name),
            "ProductionVariants": [{
                "VariantName": "AllTraffic",
                "ModelName": format!("model-{i:05}"),
                "InitialInstanceCount": 1,
                "InstanceType": instance_types[i % instance_types.len()],
                "InitialVariantWeight": 1.0
            }],
            "CreationTime": epoch(i),
        });
        endpoint_configs.push(config_name.clone(), &json!({}), &config);
        let describe = json!({
            "EndpointName": name,
            "EndpointArn": endpoint_arn,
            "EndpointConfigName": config_name,
            "ProductionVariants": [{
                "VariantName": "AllTraffic",
                "DeployedImages": [{
                    "SpecifiedImage": image,
                    "ResolvedImage": image,
                    "ResolutionTime": epoch(i)
                }],
                "CurrentWeight": 1.0,
                "DesiredWeight": 1.0,
                "CurrentInstanceCount": 1,
                "DesiredInstanceCount": 1
            }],
            "EndpointStatus": "InService",
            "CreationTime": epoch(i),
            "LastModifiedTime": epoch(i),
        });
        let summary = json!({
            "EndpointName": name,
            "EndpointArn": endpoint_arn,
            "CreationTime": epoch(i),
            "LastModifiedTime": epoch(i),
            "EndpointStatus": "InService",
        });
        tags.insert(endpoint_arn.clone(), vec![tag_json("env", "prod")]);
        endpoint_search.push(Indexed {
            name: name.clone(),
            created: BASE_EPOCH + i as u64,
            record: search_record("Endpoint", &describe, tags.get(&endpoint_arn)),
        });
        endpoints.push(name, &summary, &describe);
    }

    // A `ModelDashboardModel` per model: the model with its tags, and the endpoints hosting it
    // (endpoint `i` serves model `i`).
    let model_search = model_describes
        .into_iter()
        .enumerate()
        .map(|(i, (created, describe))| {
            let model_arn = describe["ModelArn"].as_str().unwrap_or_default().to_owned();
            let hosted: Vec<Value> = endpoints
                .get(&format!("endpoint-{i:05}"))
                .and_then(|row| serde_json::from_slice::<Value>(&row.describe).ok())
                .map(|ep| {
                    json!({
                        "EndpointName": ep["EndpointName"],
                        "EndpointArn": ep["EndpointArn"],
                        "CreationTime": ep["CreationTime"],
                        "LastModifiedTime": ep["LastModifiedTime"],
                        "EndpointStatus": ep["EndpointStatus"],
                    })
                })
                .into_iter()
                .collect();
            let mut model = describe;
            model["Tags"] = Value::Array(
                tags.get(&model_arn)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| serde_json::from_str(t).ok())
                    .collect(),
            );
            Indexed {
                name: format!("model-{i:05}"),
                created,
                record: json!({ "Model": { "Model": model, "Endpoints": hosted } }).to_string(),
            }
        })
        .collect();

    Dataset {
        spec,
        models,
        training_jobs,
        endpoints,
        endpoint_configs,
        feature_groups,
        feature_group_search,
        model_search,
        training_job_search,
        endpoint_search,
        tags,
    }
}

/// The request fields the fake reads; everything else is ignored, as AWS ignores nothing but
/// tests do not need more.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    max_results: Option<i64>,
    next_token: Option<String>,
    sort_order: Option<String>,
    name_contains: Option<String>,
    model_name: Option<String>,
    resource_arn: Option<String>,
    training_job_name: Option<String>,
    endpoint_name: Option<String>,
    endpoint_config_name: Option<String>,
    feature_group_name: Option<String>,
    resource: Option<String>,
    resources_per_page: Option<i64>,
    pagination_token: Option<String>,
    resource_type_filters: Option<Vec<String>>,
}

struct ApiError {
    status: StatusCode,
    error_type: String,
    message: String,
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error_type: "ValidationException".to_owned(),
        message: message.into(),
    }
}

fn json_response(shared: &Shared, status: StatusCode, body: Bytes) -> Response {
    let id = shared.request_ids.fetch_add(1, Ordering::Relaxed);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("fake-{id:016x}")) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

fn error_response(shared: &Shared, error: ApiError) -> Response {
    let body = json!({ "__type": error.error_type, "message": error.message }).to_string();
    json_response(shared, error.status, Bytes::from(body))
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(Operation::from_name)
        .unwrap_or(Operation::Unknown);
    let state = &shared.ops[op.index()];
    state.calls.fetch_add(1, Ordering::Relaxed);

    let latency = match state.latency_us.load(Ordering::Relaxed) {
        NO_LATENCY => shared.latency_us.load(Ordering::Relaxed),
        us => us,
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }

    if state.limited.load(Ordering::Acquire) {
        let allowed = state
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_none_or(TokenBucket::try_take);
        if !allowed {
            state.throttled.fetch_add(1, Ordering::Relaxed);
            return error_response(
                &shared,
                ApiError {
                    status: StatusCode::BAD_REQUEST,
                    error_type: "ThrottlingException".to_owned(),
                    message: "Rate exceeded".to_owned(),
                },
            );
        }
    }

    if state.failing.load(Ordering::Acquire) {
        if let Some(error) = take_failure(state) {
            state.failed.fetch_add(1, Ordering::Relaxed);
            return error_response(&shared, error);
        }
    }

    let request: Request = if body.is_empty() {
        Request::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return error_response(
                    &shared,
                    ApiError {
                        status: StatusCode::BAD_REQUEST,
                        error_type: "SerializationException".to_owned(),
                        message: format!("could not parse the request body: {error}"),
                    },
                )
            }
        }
    };
    match answer(&shared, op, &request) {
        Ok(body) => json_response(&shared, StatusCode::OK, body),
        Err(error) => error_response(&shared, error),
    }
}

fn take_failure(state: &OpState) -> Option<ApiError> {
    let mut slot = state.failure.lock().unwrap_or_else(|e| e.into_inner());
    let failure = slot.as_mut()?;
    let error = ApiError {
        status: StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        error_type: failure.error_type.clone(),
        message: failure.message.clone(),
    };
    if let Some(times) = failure.times.as_mut() {
        *times = times.saturating_sub(1);
        if *times == 0 {
            *slot = None;
            state.failing.store(false, Ordering::Release);
        }
    }
    Some(error)
}

fn answer(shared: &Shared, op: Operation, request: &Request) -> Result<Bytes, ApiError> {
    let data = &shared.data;
    let not_found = |what: &str, kind: &str, name: &str| {
        validation(format!(
            "Could not find {what} \"{}\".",
            arn(&data.spec, kind, name)
        ))
    };
    match op {
        Operation::ListModels => {
            let page = Page::parse(request, 10, 100)?;
            let failing_page = shared.fail_list_models_page.load(Ordering::Acquire);
            if failing_page != 0 && failing_page == page.number {
                let remaining = shared.fail_list_models_remaining.load(Ordering::Relaxed);
                if remaining > 0 {
                    if remaining != u64::MAX {
                        shared
                            .fail_list_models_remaining
                            .fetch_sub(1, Ordering::Relaxed);
                    }
                    shared.ops[op.index()]
                        .failed
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(ApiError {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        error_type: "InternalFailure".to_owned(),
                        message: format!("injected failure on ListModels page {failing_page}"),
                    });
                }
            }
            let overlap = shared.list_models_overlap.load(Ordering::Acquire) as usize;
            let page = if page.number > 1 && overlap > 0 {
                Page {
                    offset: page.offset.saturating_sub(overlap),
                    ..page
                }
            } else {
                page
            };
            Ok(list(&data.models, request, &page, "Models"))
        }
        Operation::ListTrainingJobs => {
            let page = Page::parse(request, 10, 100)?;
            Ok(list(
                &data.training_jobs,
                request,
                &page,
                "TrainingJobSummaries",
            ))
        }
        Operation::ListEndpoints => {
            let page = Page::parse(request, 10, 100)?;
            Ok(list(&data.endpoints, request, &page, "Endpoints"))
        }
        Operation::ListFeatureGroups => {
            let page = Page::parse(request, 10, 100)?;
            Ok(list(
                &data.feature_groups,
                request,
                &page,
                "FeatureGroupSummaries",
            ))
        }
        Operation::ListModelPackageGroups => {
            Page::parse(request, 10, 100)?;
            Ok(page_body(
                "ModelPackageGroupSummaryList",
                std::iter::empty(),
                None,
            ))
        }
        Operation::DescribeModel => {
            let name = required(request.model_name.as_deref(), "modelName")?;
            data.models
                .get(name)
                .map(|r| r.describe.clone())
                .ok_or_else(|| not_found("model", "model", name))
        }
        Operation::DescribeTrainingJob => {
            let name = required(request.training_job_name.as_deref(), "trainingJobName")?;
            data.training_jobs
                .get(name)
                .map(|r| r.describe.clone())
                .ok_or_else(|| validation("Requested resource not found."))
        }
        Operation::DescribeEndpoint => {
            let name = required(request.endpoint_name.as_deref(), "endpointName")?;
            data.endpoints
                .get(name)
                .map(|r| r.describe.clone())
                .ok_or_else(|| not_found("endpoint", "endpoint", name))
        }
        Operation::DescribeEndpointConfig => {
            let name = required(
                request.endpoint_config_name.as_deref(),
                "endpointConfigName",
            )?;
            data.endpoint_configs
                .get(name)
                .map(|r| r.describe.clone())
                .ok_or_else(|| not_found("endpoint configuration", "endpoint-config", name))
        }
        Operation::DescribeFeatureGroup => {
            let name = required(request.feature_group_name.as_deref(), "featureGroupName")?;
            data.feature_groups
                .get(name)
                .map(|r| r.describe.clone())
                .ok_or_else(|| ApiError {
                    status: StatusCode::BAD_REQUEST,
                    error_type: "ResourceNotFound".to_owned(),
                    message: format!(
                        "Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}"
                    ),
                })
        }
        Operation::ListTags => {
            let resource = required(request.resource_arn.as_deref(), "resourceArn")?;
            let page = Page::parse(request, 50, 100)?;
            let Some(tags) = data.tags.get(resource) else {
                return Err(validation(format!("Resource {resource} not found")));
            };
            let end = (page.offset + page.size).min(tags.len());
            let start = page.offset.min(end);
            Ok(page_body(
                "Tags",
                tags[start..end].iter().map(String::as_str),
                (end < tags.len()).then(|| page.next(end)),
            ))
        }
        Operation::Search => search(shared, request),
        Operation::GetResources => get_resources(data, request),
        Operation::Unknown => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            error_type: "UnknownOperationException".to_owned(),
            message: "the fake does not implement this operation".to_owned(),
        }),
    }
}

/// The tagging API's GetResources over the fake's models (the only resources it tags).
fn get_resources(data: &Dataset, request: &Request) -> Result<Bytes, ApiError> {
    let size = match request.resources_per_page {
        None => 50,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                error_type: "InvalidParameterException".to_owned(),
                message: format!("ResourcesPerPage must be between 1 and 100, got {n}"),
            })
        }
    };
    let offset = match request.pagination_token.as_deref() {
        None | Some("") => 0,
        Some(t) => t.parse().map_err(|_| ApiError {
            status: StatusCode::BAD_REQUEST,
            error_type: "PaginationTokenExpiredException".to_owned(),
            message: "Token does not exist".to_owned(),
        })?,
    };
    let filters = request.resource_type_filters.as_deref().unwrap_or_default();
    let models = filters.is_empty()
        || filters
            .iter()
            .any(|f| f == "sagemaker" || f == "sagemaker:model");
    let tagged: Vec<(String, &Vec<String>)> = if models {
        data.models
            .rows
            .iter()
            .filter_map(|r| {
                let a = arn(&data.spec, "model", &r.name);
                let tags = data.tags.get(&a).filter(|t| !t.is_empty())?;
                Some((a, tags))
            })
            .collect()
    } else {
        Vec::new()
    };
    let end = (offset + size).min(tagged.len());
    let items: Vec<Value> = tagged[offset.min(end)..end]
        .iter()
        .map(|(a, tags)| {
            let tags: Vec<Value> = tags
                .iter()
                .filter_map(|t| serde_json::from_str(t).ok())
                .collect();
            json!({ "ResourceARN": a, "Tags": tags })
        })
        .collect();
    let token = if end < tagged.len() {
        end.to_string()
    } else {
        String::new()
    };
    Ok(Bytes::from(
        json!({ "ResourceTagMappingList": items, "PaginationToken": token }).to_string(),
    ))
}

/// The values of `Search`'s `Resource` enum.
const SEARCH_RESOURCES: [&str; 17] = [
    "TrainingJob",
    "Experiment",
    "ExperimentTrial",
    "ExperimentTrialComponent",
    "Endpoint",
    "Model",
    "ModelPackage",
    "ModelPackageGroup",
    "Pipeline",
    "PipelineExecution",
    "FeatureGroup",
    "FeatureMetadata",
    "Image",
    "ImageVersion",
    "Project",
    "HyperParameterTuningJob",
    "ModelCard",
];

/// `Search` over one resource: the records its index holds (those created at least the index
/// lag ago), one page of them.
fn search<'a>(shared: &'a Shared, request: &Request) -> Result<Bytes, ApiError> {
    let resource = required(request.resource.as_deref(), "resource")?;
    if !SEARCH_RESOURCES.contains(&resource) {
        return Err(validation(format!(
            "1 validation error detected: Value '{resource}' at 'resource' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            SEARCH_RESOURCES.join(", ")
        )));
    }
    if let Some(error) = take_search_failure(shared, resource) {
        shared.ops[Operation::Search.index()]
            .failed
            .fetch_add(1, Ordering::Relaxed);
        return Err(error);
    }
    let page = Page::parse(request, 10, 100)?;
    let data = &shared.data;
    let visible_before = now_epoch().saturating_sub(shared.search_lag_s.load(Ordering::Acquire));
    let stale = shared
        .stale_search
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let indexed = |all: &'a [Indexed]| -> Vec<Cow<'a, str>> {
        all.iter()
            .filter(|r| r.created <= visible_before)
            .map(|r| {
                if resource == "Model" && stale.contains(&r.name) {
                    Cow::Owned(older_record(&r.record))
                } else {
                    Cow::Borrowed(r.record.as_str())
                }
            })
            .collect()
    };
    let all: Vec<Cow<'a, str>> = match resource {
        "FeatureGroup" => data
            .feature_group_search
            .iter()
            .map(|r| Cow::Borrowed(r.as_str()))
            .collect(),
        "Model" => indexed(&data.model_search),
        "TrainingJob" => indexed(&data.training_job_search),
        "Endpoint" => indexed(&data.endpoint_search),
        _ => Vec::new(),
    };
    let end = (page.offset + page.size).min(all.len());
    let start = page.offset.min(end);
    Ok(page_body(
        "Results",
        all[start..end].iter().map(|r| r.as_ref()),
        (end < all.len()).then(|| page.next(end)),
    ))
}

/// A model's `Search` record as that of a model of the same name created a day earlier.
fn older_record(record: &str) -> String {
    let mut value: Value = serde_json::from_str(record).unwrap_or_default();
    let model = &mut value["Model"]["Model"];
    if let Some(t) = model["CreationTime"].as_f64() {
        model["CreationTime"] = json!(t - 86_400.0);
    }
    value.to_string()
}

fn take_search_failure(shared: &Shared, resource: &str) -> Option<ApiError> {
    let mut failures = shared
        .search_failures
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let failure = failures.get_mut(resource)?;
    let error = ApiError {
        status: StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        error_type: failure.error_type.clone(),
        message: failure.message.clone(),
    };
    if let Some(times) = failure.times.as_mut() {
        *times = times.saturating_sub(1);
        if *times == 0 {
            failures.remove(resource);
        }
    }
    Some(error)
}

fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, ApiError> {
    value.ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// One page request: `offset` into the (filtered, ordered) list, `number` 1-based.
struct Page {
    offset: usize,
    size: usize,
    number: u64,
}

impl Page {
    fn parse(request: &Request, default_size: usize, max_size: usize) -> Result<Self, ApiError> {
        let size = match request.max_results {
            None => default_size,
            Some(n) if n >= 1 && n as usize <= max_size => n as usize,
            Some(n) => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {max_size}"
                )))
            }
        };
        let (offset, number) = match request.next_token.as_deref() {
            None | Some("") => (0, 1),
            Some(token) => token
                .split_once(':')
                .and_then(|(o, n)| Some((o.parse().ok()?, n.parse().ok()?)))
                .ok_or_else(|| validation("Invalid pagination token"))?,
        };
        Ok(Self {
            offset,
            size,
            number,
        })
    }

    /// The token of the page starting at `offset`.
    fn next(&self, offset: usize) -> String {
        format!("{offset}:{}", self.number + 1)
    }
}

fn page_body<'a>(
    key: &str,
    items: impl Iterator<Item = &'a str>,
    next_token: Option<String>,
) -> Bytes {
    let mut out = String::with_capacity(4096);
    out.push_str("{\"");
    out.push_str(key);
    out.push_str("\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    if let Some(token) = next_token {
        out.push_str(",\"NextToken\":\"");
        out.push_str(&token);
        out.push('"');
    }
    out.push('}');
    Bytes::from(out)
}

/// A page of `table` in creation order (descending unless `SortOrder: Ascending`, as AWS
/// defaults to `CreationTime` descending), filtered by `NameContains`.
fn list(table: &Table, request: &Request, page: &Page, key: &str) -> Bytes {
    let descending = request.sort_order.as_deref() != Some("Ascending");
    let n = table.rows.len();
    let at = |p: usize| {
        if descending {
            &table.rows[n - 1 - p]
        } else {
            &table.rows[p]
        }
    };
    match request.name_contains.as_deref() {
        None | Some("") => {
            let end = (page.offset + page.size).min(n);
            let start = page.offset.min(end);
            let items = (start..end).map(|p| at(p).summary.as_str());
            page_body(key, items, (end < n).then(|| page.next(end)))
        }
        Some(needle) => {
            let matching: Vec<&Row> = (0..n).map(at).filter(|r| r.name.contains(needle)).collect();
            let end = (page.offset + page.size).min(matching.len());
            let start = page.offset.min(end);
            let items = matching[start..end].iter().map(|r| r.summary.as_str());
            page_body(key, items, (end < matching.len()).then(|| page.next(end)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_the_burst_then_throttles() {
        let mut bucket = TokenBucket::new(5.0);
        let allowed = (0..20).filter(|_| bucket.try_take()).count();
        assert!((5..=6).contains(&allowed), "allowed {allowed}");
    }

    #[test]
    fn operations_round_trip_by_name() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert_eq!(
                Operation::from_name(&format!("SageMaker.{}", op.name())),
                Some(op)
            );
        }
        assert_eq!(Operation::from_name("DescribeModle"), None);
    }

    #[test]
    fn page_body_is_valid_json() {
        let tag = tag_json("a", "b\"c");
        let body = page_body(
            "Tags",
            std::iter::once(tag.as_str()),
            Some("5:2".to_owned()),
        );
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["Tags"][0]["Value"], "b\"c");
        assert_eq!(value["NextToken"], "5:2");
    }
}
