//! Realistic SageMaker account contents, created through the official SDK.
//!
//! One deterministic [`plan`] (pure, unit-tested) says what an account holds; [`seed`] creates
//! it against moto (or real AWS) with bounded concurrency and returns a [`SeedSummary`] that
//! tests assert against field by field. The same data backs integration tests, `scripts/demo.sh`
//! and the benchmarks (through the `sagebridge-seed` binary).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, ContainerDefinition, DataSource, FeatureDefinition,
    FeatureType, InferenceExecutionConfig, InferenceExecutionMode, OfflineStoreConfig,
    OutputDataConfig, ProductionVariant, ProductionVariantInstanceType, ResourceConfig,
    S3DataSource, S3DataType, S3StorageConfig, StoppingCondition, Tag, TrainingInputMode,
    TrainingInstanceType,
};
use aws_sdk_sagemaker::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

/// AWS accepts at most this many tags per AddTags / CreateModel call.
const TAGS_PER_CALL: usize = 50;

/// What to create. `Default` is [`SeedSpec::demo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// Number of models (families rotate XGBoost, PyTorch, Hugging Face LLM).
    pub models: usize,
    /// Tags per model: the standard ones first (`team`, `env`, `description`, and
    /// `ml:feature-groups` where it applies), padded with `extra-NN` tags; a smaller number
    /// keeps only the first standard ones.
    pub tags_per_model: usize,
    /// Create a training job for XGBoost and PyTorch models and every other LLM (fine-tuned);
    /// the model's `ModelDataUrl` is the job's `ModelArtifacts.S3ModelArtifacts`.
    pub with_training_jobs: bool,
    /// Create two feature groups that some training jobs read as input data.
    pub with_feature_groups: bool,
    /// Create three endpoints over the first model of each family.
    pub with_endpoints: bool,
    /// Make the last model a two-container serial pipeline (`Containers[]`).
    pub multi_container: bool,
    /// Prefix of every resource name, so several seeds can share an account.
    pub name_prefix: String,
    /// Execution role put on models, training jobs and feature groups (moto does not check it).
    pub role_arn: String,
    /// SDK calls in flight at once.
    pub concurrency: usize,
}

impl Default for SeedSpec {
    fn default() -> Self {
        Self::demo()
    }
}

impl SeedSpec {
    /// The demo account: 40 models over three container families, training jobs with
    /// hyperparameters, two feature groups, three endpoints, one multi-container model.
    pub fn demo() -> Self {
        Self {
            models: 40,
            tags_per_model: 4,
            with_training_jobs: true,
            with_feature_groups: true,
            with_endpoints: true,
            multi_container: true,
            name_prefix: "demo-".to_owned(),
            role_arn: "arn:aws:iam::123456789012:role/SageMakerExecutionRole".to_owned(),
            concurrency: 8,
        }
    }

    /// Many models for load tests: training jobs and three tags each, nothing else.
    pub fn bulk(models: usize) -> Self {
        Self {
            models,
            tags_per_model: 3,
            with_training_jobs: true,
            with_feature_groups: false,
            with_endpoints: false,
            multi_container: false,
            name_prefix: "bulk-".to_owned(),
            ..Self::demo()
        }
    }
}

/// The container family of a seeded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelFamily {
    /// SageMaker built-in XGBoost.
    Xgboost,
    /// AWS Deep Learning Container for PyTorch inference.
    Pytorch,
    /// Hugging Face Text Generation Inference (LLM).
    HuggingfaceLlm,
    /// A serial inference pipeline of several containers.
    MultiContainer,
}

/// One container of a multi-container model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededContainer {
    /// ECR image URI.
    pub image: String,
    /// Model artifact, if any.
    pub model_data_url: Option<String>,
    /// Container environment.
    pub environment: BTreeMap<String, String>,
}

/// A model as created, with everything a test needs to assert the ingested entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededModel {
    /// Model name.
    pub name: String,
    /// ARN as returned by CreateModel (empty in a [`plan`] before seeding).
    pub arn: String,
    /// Container family.
    pub family: ModelFamily,
    /// Image of the primary container (of the first container for multi-container models).
    pub image: String,
    /// `ModelDataUrl` of the primary (first) container.
    pub model_data_url: Option<String>,
    /// Environment of the primary (first) container.
    pub environment: BTreeMap<String, String>,
    /// All containers of a multi-container model (`Containers[]`); empty otherwise.
    pub containers: Vec<SeededContainer>,
    /// The training job whose artifacts the model serves.
    pub training_job: Option<String>,
    /// That training job's hyperparameters (empty without a job).
    pub hyperparameters: BTreeMap<String, String>,
    /// Feature groups whose offline store the training job reads (lineage through data).
    pub feature_groups: Vec<String>,
    /// Endpoint serving this model, if any.
    pub endpoint: Option<String>,
    /// Tags in creation order.
    pub tags: Vec<(String, String)>,
}

impl SeededModel {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A training job as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededTrainingJob {
    /// Job name.
    pub name: String,
    /// ARN as returned by CreateTrainingJob.
    pub arn: String,
    /// Training image.
    pub image: String,
    /// `OutputDataConfig.S3OutputPath`.
    pub s3_output_path: String,
    /// `ModelArtifacts.S3ModelArtifacts` as moto and AWS report it.
    pub model_artifacts: String,
    /// S3 URIs of the input channels, by channel name.
    pub inputs: BTreeMap<String, String>,
    /// Hyperparameters.
    pub hyperparameters: BTreeMap<String, String>,
}

/// A feature group as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededFeatureGroup {
    /// Feature group name.
    pub name: String,
    /// ARN as returned by CreateFeatureGroup.
    pub arn: String,
    /// `OfflineStoreConfig.S3StorageConfig.S3Uri` as configured.
    pub s3_uri: String,
    /// `ResolvedOutputS3Uri` as DescribeFeatureGroup reports it (training jobs read from it).
    pub resolved_output_s3_uri: String,
    /// Record identifier feature.
    pub record_identifier: String,
    /// Event time feature.
    pub event_time: String,
    /// Features as (name, `Integral` | `Fractional` | `String`).
    pub features: Vec<(String, String)>,
}

/// An endpoint as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededEndpoint {
    /// Endpoint name.
    pub name: String,
    /// ARN as returned by CreateEndpoint.
    pub arn: String,
    /// Endpoint config name.
    pub config_name: String,
    /// The model of its single production variant.
    pub model: String,
    /// Instance type of that variant.
    pub instance_type: String,
}

/// Everything [`seed`] created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedSummary {
    /// Region of the client.
    pub region: String,
    /// Models, sorted by name.
    pub models: Vec<SeededModel>,
    /// Training jobs, sorted by name.
    pub training_jobs: Vec<SeededTrainingJob>,
    /// Feature groups.
    pub feature_groups: Vec<SeededFeatureGroup>,
    /// Endpoints.
    pub endpoints: Vec<SeededEndpoint>,
    /// SDK calls made.
    pub calls: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

impl SeedSummary {
    /// The model named `name`.
    pub fn model(&self, name: &str) -> Option<&SeededModel> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Model names, sorted.
    pub fn model_names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    /// Models of one family.
    pub fn models_of(&self, family: ModelFamily) -> impl Iterator<Item = &SeededModel> + '_ {
        self.models.iter().filter(move |m| m.family == family)
    }

    /// Wall time of the seeding.
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms)
    }

    /// `seeded 40 models (24 training jobs, 2 feature groups, 3 endpoints) in us-east-1 with
    /// 90 calls in 1.2s`
    pub fn one_line(&self) -> String {
        format!(
            "seeded {} models ({} training jobs, {} feature groups, {} endpoints) in {} with {} calls in {:.1}s",
            self.models.len(),
            self.training_jobs.len(),
            self.feature_groups.len(),
            self.endpoints.len(),
            self.region,
            self.calls,
            self.elapsed().as_secs_f64()
        )
    }
}

/// What [`seed`] will create, without talking to AWS (ARNs empty, resolved offline-store URIs
/// predicted as the configured `S3Uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Models, in index order.
    pub models: Vec<SeededModel>,
    /// Training jobs, in model order.
    pub training_jobs: Vec<SeededTrainingJob>,
    /// Feature groups.
    pub feature_groups: Vec<SeededFeatureGroup>,
    /// Endpoints.
    pub endpoints: Vec<SeededEndpoint>,
}

struct UseCase {
    slug: &'static str,
    team: &'static str,
    description: &'static str,
    /// Indexes into the feature group list (customer = 0, transaction = 1).
    feature_groups: &'static [usize],
    /// Hugging Face model id for LLMs.
    hf_model_id: &'static str,
}

const XGB_USE_CASES: &[UseCase] = &[
    UseCase {
        slug: "churn",
        team: "growth",
        description: "Predicts 30-day subscriber churn from usage and billing features",
        feature_groups: &[0],
        hf_model_id: "",
    },
    UseCase {
        slug: "fraud",
        team: "risk",
        description: "Scores card transactions for fraud in real time",
        feature_groups: &[1],
        hf_model_id: "",
    },
    UseCase {
        slug: "credit-risk",
        team: "risk",
        description: "Estimates probability of default for credit applications",
        feature_groups: &[0, 1],
        hf_model_id: "",
    },
    UseCase {
        slug: "demand-forecast",
        team: "supply",
        description: "Forecasts weekly SKU demand per warehouse",
        feature_groups: &[],
        hf_model_id: "",
    },
    UseCase {
        slug: "ltv",
        team: "growth",
        description: "Predicts customer lifetime value at signup",
        feature_groups: &[0],
        hf_model_id: "",
    },
    UseCase {
        slug: "price-elasticity",
        team: "pricing",
        description: "Models price elasticity per product category",
        feature_groups: &[],
        hf_model_id: "",
    },
];

const PYTORCH_USE_CASES: &[UseCase] = &[
    UseCase {
        slug: "image-classifier",
        team: "vision",
        description: "ResNet-50 product image classifier",
        feature_groups: &[],
        hf_model_id: "",
    },
    UseCase {
        slug: "defect-detector",
        team: "vision",
        description: "Detects surface defects on assembly-line photos",
        feature_groups: &[],
        hf_model_id: "",
    },
    UseCase {
        slug: "recsys-ranker",
        team: "search",
        description: "Two-tower ranking model for home feed recommendations",
        feature_groups: &[],
        hf_model_id: "",
    },
    UseCase {
        slug: "text-classifier",
        team: "nlp",
        description: "Routes support tickets to queues",
        feature_groups: &[],
        hf_model_id: "",
    },
    UseCase {
        slug: "anomaly-detector",
        team: "risk",
        description: "Autoencoder for payment anomaly detection",
        feature_groups: &[1],
        hf_model_id: "",
    },
];

const LLM_USE_CASES: &[UseCase] = &[
    UseCase {
        slug: "llama2-7b-chat",
        team: "genai",
        description: "Llama 2 7B chat assistant served with TGI",
        feature_groups: &[],
        hf_model_id: "meta-llama/Llama-2-7b-chat-hf",
    },
    UseCase {
        slug: "mistral-7b-instruct",
        team: "genai",
        description: "Mistral 7B Instruct for summarisation",
        feature_groups: &[],
        hf_model_id: "mistralai/Mistral-7B-Instruct-v0.2",
    },
    UseCase {
        slug: "support-assistant",
        team: "support",
        description: "Fine-tuned assistant answering support questions",
        feature_groups: &[],
        hf_model_id: "tiiuae/falcon-7b-instruct",
    },
    UseCase {
        slug: "code-assistant",
        team: "devx",
        description: "Code completion model for internal repositories",
        feature_groups: &[],
        hf_model_id: "bigcode/starcoderbase-7b",
    },
];

const ENVS: &[&str] = &["prod", "staging", "dev"];

/// Indexes 0..4 of every 10 are XGBoost, 4..7 PyTorch, 7..10 LLMs.
fn family_of(index: usize) -> ModelFamily {
    match index % 10 {
        0..=3 => ModelFamily::Xgboost,
        4..=6 => ModelFamily::Pytorch,
        _ => ModelFamily::HuggingfaceLlm,
    }
}

/// Whether `index` is in an even block of ten (blocks alternate some per-model choices).
/// A bit test rather than `is_multiple_of`, which is newer than the workspace's MSRV.
fn even_block(index: usize) -> bool {
    (index / 10) & 1 == 0
}

fn family_slug(family: ModelFamily) -> &'static str {
    match family {
        ModelFamily::Xgboost => "xgb",
        ModelFamily::Pytorch => "pt",
        ModelFamily::HuggingfaceLlm => "llm",
        ModelFamily::MultiContainer => "pipeline",
    }
}

fn ecr(account: &str, region: &str, repo_tag: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com/{repo_tag}")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn feature_group_plan(spec: &SeedSpec) -> Vec<SeededFeatureGroup> {
    if !spec.with_feature_groups {
        return Vec::new();
    }
    let group = |slug: &str, record_identifier: &str, features: &[(&str, &str)]| {
        let name = format!("{}{slug}", spec.name_prefix);
        let s3_uri = format!("s3://sagebridge-demo-feature-store/{name}");
        SeededFeatureGroup {
            resolved_output_s3_uri: s3_uri.clone(),
            name,
            arn: String::new(),
            s3_uri,
            record_identifier: record_identifier.to_owned(),
            event_time: "event_time".to_owned(),
            features: features
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
        }
    };
    vec![
        group(
            "customer-features",
            "customer_id",
            &[
                ("customer_id", "String"),
                ("event_time", "Fractional"),
                ("tenure_months", "Integral"),
                ("monthly_spend", "Fractional"),
                ("plan", "String"),
                ("support_tickets_90d", "Integral"),
            ],
        ),
        group(
            "transaction-features",
            "transaction_id",
            &[
                ("transaction_id", "String"),
                ("event_time", "Fractional"),
                ("amount", "Fractional"),
                ("merchant_category", "String"),
                ("card_present", "Integral"),
                ("hour_of_day", "Integral"),
            ],
        ),
    ]
}

/// What [`seed`] creates for `spec` in `region`.
pub fn plan(spec: &SeedSpec, region: &str) -> Plan {
    let feature_groups = feature_group_plan(spec);
    let mut models = Vec::with_capacity(spec.models);
    let mut training_jobs = Vec::new();
    for index in 0..spec.models {
        let multi = spec.multi_container && spec.models >= 4 && index == spec.models - 1;
        let (model, job) = if multi {
            (multi_container_model(spec, region, index), None)
        } else {
            single_container_model(spec, region, index, &feature_groups)
        };
        models.push(model);
        training_jobs.extend(job);
    }

    let mut endpoints = Vec::new();
    if spec.with_endpoints {
        let wanted = [
            (ModelFamily::Xgboost, "realtime-scoring", "ml.m5.xlarge"),
            (ModelFamily::Pytorch, "vision-inference", "ml.g4dn.xlarge"),
            (ModelFamily::HuggingfaceLlm, "llm-chat", "ml.g4dn.2xlarge"),
        ];
        for (family, slug, instance_type) in wanted {
            let Some(model) = models.iter_mut().find(|m| m.family == family) else {
                continue;
            };
            let name = format!("{}{slug}", spec.name_prefix);
            model.endpoint = Some(name.clone());
            endpoints.push(SeededEndpoint {
                config_name: format!("{name}-config"),
                name,
                arn: String::new(),
                model: model.name.clone(),
                instance_type: instance_type.to_owned(),
            });
        }
    }
    // Tags depend on the endpoint (env=prod), so they are made last.
    for (index, model) in models.iter_mut().enumerate() {
        model.tags = tags_for(spec, index, model);
    }
    Plan {
        models,
        training_jobs,
        feature_groups,
        endpoints,
    }
}

fn use_case(family: ModelFamily, index: usize) -> &'static UseCase {
    // index / 10 moves through the use cases; the offset within the block of 10 spreads
    // neighbours over different use cases too.
    let cases = match family {
        ModelFamily::Pytorch => PYTORCH_USE_CASES,
        ModelFamily::HuggingfaceLlm => LLM_USE_CASES,
        _ => XGB_USE_CASES,
    };
    &cases[(index / 10 + index % 10) % cases.len()]
}

fn single_container_model(
    spec: &SeedSpec,
    region: &str,
    index: usize,
    feature_groups: &[SeededFeatureGroup],
) -> (SeededModel, Option<SeededTrainingJob>) {
    let family = family_of(index);
    let case = use_case(family, index);
    let name = format!(
        "{}{}-{}-{index:04}",
        spec.name_prefix,
        case.slug,
        family_slug(family)
    );
    let (image, training_image, environment, hyperparameters, train_input) = match family {
        ModelFamily::Xgboost => (
            ecr("683313688378", region, "sagemaker-xgboost:1.7-1"),
            ecr("683313688378", region, "sagemaker-xgboost:1.7-1"),
            BTreeMap::new(),
            map(&[
                ("objective", "binary:logistic"),
                ("num_round", "200"),
                ("max_depth", "6"),
                ("eta", "0.2"),
                ("subsample", "0.8"),
                ("eval_metric", "auc"),
            ]),
            format!("s3://sagebridge-demo-datasets/tabular/{}/train/", case.slug),
        ),
        ModelFamily::Pytorch => (
            ecr("763104351884", region, "pytorch-inference:2.1.0-gpu-py310"),
            ecr(
                "763104351884",
                region,
                "pytorch-training:2.1.0-gpu-py310-cu121-ubuntu20.04-sagemaker",
            ),
            map(&[
                ("SAGEMAKER_PROGRAM", "inference.py"),
                ("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code"),
            ]),
            map(&[
                ("epochs", "20"),
                ("batch-size", "64"),
                ("learning-rate", "0.001"),
                ("sagemaker_program", "train.py"),
            ]),
            format!("s3://sagebridge-demo-datasets/images/{}/train/", case.slug),
        ),
        _ => (
            ecr(
                "763104351884",
                region,
                "huggingface-pytorch-tgi-inference:2.1.1-tgi2.0.0-gpu-py310-cu121-ubuntu22.04",
            ),
            ecr(
                "763104351884",
                region,
                "huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04",
            ),
            map(&[
                ("HF_MODEL_ID", case.hf_model_id),
                ("SM_NUM_GPUS", "1"),
                ("MAX_INPUT_LENGTH", "2048"),
                ("MAX_TOTAL_TOKENS", "4096"),
            ]),
            map(&[
                ("model_id", case.hf_model_id),
                ("epochs", "3"),
                ("per_device_train_batch_size", "4"),
                ("learning_rate", "0.0002"),
                ("lora_r", "16"),
            ]),
            format!("s3://sagebridge-demo-datasets/text/{}/train/", case.slug),
        ),
    };
    // LLMs: every other one is fine-tuned (has a job and artifacts); the rest pull weights
    // from the Hugging Face Hub through HF_MODEL_ID and have no ModelDataUrl.
    let has_job =
        spec.with_training_jobs && (family != ModelFamily::HuggingfaceLlm || even_block(index));
    let job_feature_groups: Vec<&SeededFeatureGroup> = if has_job {
        case.feature_groups
            .iter()
            .filter_map(|&i| feature_groups.get(i))
            .collect()
    } else {
        Vec::new()
    };
    let job = has_job.then(|| {
        let job_name = format!("{name}-train");
        let s3_output_path = format!("s3://sagebridge-demo-artifacts/{}", family_slug(family));
        let mut inputs = BTreeMap::new();
        if job_feature_groups.is_empty() {
            inputs.insert("train".to_owned(), train_input.clone());
        }
        for group in &job_feature_groups {
            let channel = group
                .name
                .trim_start_matches(&spec.name_prefix)
                .trim_end_matches("-features");
            inputs.insert(channel.to_owned(), group.resolved_output_s3_uri.clone());
        }
        SeededTrainingJob {
            model_artifacts: format!("{s3_output_path}/{job_name}/output/model.tar.gz"),
            name: job_name,
            arn: String::new(),
            image: training_image,
            s3_output_path,
            inputs,
            hyperparameters: hyperparameters.clone(),
        }
    });
    let model_data_url = match (&job, family) {
        (Some(job), _) => Some(job.model_artifacts.clone()),
        (None, ModelFamily::HuggingfaceLlm) => None,
        (None, _) => Some(format!(
            "s3://sagebridge-demo-artifacts/{}/{name}/model.tar.gz",
            family_slug(family)
        )),
    };
    let model = SeededModel {
        arn: String::new(),
        family,
        image,
        model_data_url,
        environment,
        containers: Vec::new(),
        training_job: job.as_ref().map(|j| j.name.clone()),
        hyperparameters: if job.is_some() {
            hyperparameters
        } else {
            BTreeMap::new()
        },
        feature_groups: job_feature_groups.iter().map(|g| g.name.clone()).collect(),
        endpoint: None,
        tags: Vec::new(),
        name,
    };
    (model, job)
}

fn multi_container_model(spec: &SeedSpec, region: &str, index: usize) -> SeededModel {
    let name = format!("{}fraud-pipeline-{index:04}", spec.name_prefix);
    let containers = vec![
        SeededContainer {
            image: ecr(
                "683313688378",
                region,
                "sagemaker-scikit-learn:1.2-1-cpu-py3",
            ),
            model_data_url: Some(format!(
                "s3://sagebridge-demo-artifacts/pipeline/{name}/preprocess.tar.gz"
            )),
            environment: map(&[("SAGEMAKER_PROGRAM", "preprocess.py")]),
        },
        SeededContainer {
            image: ecr("683313688378", region, "sagemaker-xgboost:1.7-1"),
            model_data_url: Some(format!(
                "s3://sagebridge-demo-artifacts/pipeline/{name}/model.tar.gz"
            )),
            environment: BTreeMap::new(),
        },
    ];
    SeededModel {
        arn: String::new(),
        family: ModelFamily::MultiContainer,
        image: containers[0].image.clone(),
        model_data_url: containers[0].model_data_url.clone(),
        environment: containers[0].environment.clone(),
        containers,
        training_job: None,
        hyperparameters: BTreeMap::new(),
        feature_groups: Vec::new(),
        endpoint: None,
        tags: Vec::new(),
        name,
    }
}

fn tags_for(spec: &SeedSpec, index: usize, model: &SeededModel) -> Vec<(String, String)> {
    let (team, description) = match model.family {
        ModelFamily::MultiContainer => (
            "risk",
            "Serial pipeline: scikit-learn preprocessing then XGBoost fraud scoring",
        ),
        family => {
            let case = use_case(family, index);
            (case.team, case.description)
        }
    };
    let env = if model.endpoint.is_some() {
        "prod"
    } else {
        ENVS[index % ENVS.len()]
    };
    let mut tags = vec![
        ("team".to_owned(), team.to_owned()),
        ("env".to_owned(), env.to_owned()),
        ("description".to_owned(), description.to_owned()),
    ];
    // A few models declare their feature groups by tag as well (every other one that has
    // feature-group lineage), so both lineage paths are exercised.
    if !model.feature_groups.is_empty() && even_block(index) {
        tags.push((
            "ml:feature-groups".to_owned(),
            model.feature_groups.join(","),
        ));
    }
    tags.truncate(spec.tags_per_model);
    let mut extra = 0;
    while tags.len() < spec.tags_per_model {
        tags.push((
            format!("extra-{extra:02}"),
            format!("value-{index}-{extra}"),
        ));
        extra += 1;
    }
    tags
}

/// Counts SDK calls.
#[derive(Default)]
struct Calls(AtomicU64);

impl Calls {
    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn sdk_error<E>(what: &str, error: E) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    anyhow!("{what}: {}", DisplayErrorContext(error))
}

/// Create what [`plan`] says for `spec`, through the SDK `client` (region taken from it).
pub async fn seed(client: &Client, spec: &SeedSpec) -> anyhow::Result<SeedSummary> {
    let started = Instant::now();
    let region = client
        .config()
        .region()
        .map_or_else(|| crate::aws::DEFAULT_REGION.to_owned(), |r| r.to_string());
    let calls = Calls::default();
    let concurrency = spec.concurrency.max(1);

    // Feature groups first: training jobs read their resolved offline-store URIs, which carry
    // a creation timestamp, so the plan is made again with the real ones.
    let mut feature_groups = feature_group_plan(spec);
    for group in &mut feature_groups {
        create_feature_group(client, spec, group, &calls).await?;
    }
    let mut planned = plan(spec, &region);
    let resolved: BTreeMap<&str, &str> = feature_groups
        .iter()
        .map(|g| (g.s3_uri.as_str(), g.resolved_output_s3_uri.as_str()))
        .collect();
    for job in &mut planned.training_jobs {
        for uri in job.inputs.values_mut() {
            if let Some(real) = resolved.get(uri.as_str()) {
                *uri = (*real).to_owned();
            }
        }
    }

    let jobs: BTreeMap<String, SeededTrainingJob> = planned
        .training_jobs
        .into_iter()
        .map(|j| (j.name.clone(), j))
        .collect();
    let results: Vec<(SeededModel, Option<SeededTrainingJob>)> =
        futures::stream::iter(planned.models.into_iter().map(|model| {
            let job = model
                .training_job
                .as_ref()
                .and_then(|name| jobs.get(name))
                .cloned();
            create_model_with_job(client, spec, model, job, &calls)
        }))
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut models = Vec::with_capacity(results.len());
    let mut training_jobs = Vec::new();
    for (model, job) in results {
        models.push(model);
        training_jobs.extend(job);
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));
    training_jobs.sort_by(|a, b| a.name.cmp(&b.name));

    let mut endpoints = planned.endpoints;
    for endpoint in &mut endpoints {
        create_endpoint(client, endpoint, &calls).await?;
    }

    let summary = SeedSummary {
        region,
        models,
        training_jobs,
        feature_groups,
        endpoints,
        calls: calls.0.load(Ordering::Relaxed),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    tracing::info!(summary = %summary.one_line(), "seeded");
    Ok(summary)
}

async fn create_feature_group(
    client: &Client,
    spec: &SeedSpec,
    group: &mut SeededFeatureGroup,
    calls: &Calls,
) -> anyhow::Result<()> {
    let definitions = group
        .features
        .iter()
        .map(|(name, kind)| {
            FeatureDefinition::builder()
                .feature_name(name)
                .feature_type(FeatureType::from(kind.as_str()))
                .build()
        })
        .collect();
    calls.add();
    let created = client
        .create_feature_group()
        .feature_group_name(&group.name)
        .record_identifier_feature_name(&group.record_identifier)
        .event_time_feature_name(&group.event_time)
        .set_feature_definitions(Some(definitions))
        .offline_store_config(
            OfflineStoreConfig::builder()
                .s3_storage_config(S3StorageConfig::builder().s3_uri(&group.s3_uri).build())
                .build(),
        )
        .role_arn(&spec.role_arn)
        .description(format!("Demo feature group {}", group.name))
        .tags(tag("team", "data-platform"))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateFeatureGroup {}", group.name), e))?;
    group.arn = created.feature_group_arn().unwrap_or_default().to_owned();
    calls.add();
    let described = client
        .describe_feature_group()
        .feature_group_name(&group.name)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("DescribeFeatureGroup {}", group.name), e))?;
    if let Some(uri) = described
        .offline_store_config()
        .and_then(|c| c.s3_storage_config())
        .and_then(|s| s.resolved_output_s3_uri())
    {
        group.resolved_output_s3_uri = uri.to_owned();
    }
    Ok(())
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn container(
    image: &str,
    model_data_url: Option<&str>,
    env: &BTreeMap<String, String>,
) -> ContainerDefinition {
    let mut builder = ContainerDefinition::builder()
        .image(image)
        .set_model_data_url(model_data_url.map(str::to_owned));
    for (k, v) in env {
        builder = builder.environment(k, v);
    }
    builder.build()
}

async fn create_model_with_job(
    client: &Client,
    spec: &SeedSpec,
    mut model: SeededModel,
    job: Option<SeededTrainingJob>,
    calls: &Calls,
) -> anyhow::Result<(SeededModel, Option<SeededTrainingJob>)> {
    let job = match job {
        Some(mut job) => {
            create_training_job(client, spec, &mut job, calls).await?;
            Some(job)
        }
        None => None,
    };

    let tags: Vec<Tag> = model.tags.iter().map(|(k, v)| tag(k, v)).collect();
    let mut chunks = tags.chunks(TAGS_PER_CALL);
    let mut request = client
        .create_model()
        .model_name(&model.name)
        .execution_role_arn(&spec.role_arn)
        .set_tags(chunks.next().map(<[Tag]>::to_vec));
    if model.containers.is_empty() {
        request = request.primary_container(container(
            &model.image,
            model.model_data_url.as_deref(),
            &model.environment,
        ));
    } else {
        for c in &model.containers {
            request = request.containers(container(
                &c.image,
                c.model_data_url.as_deref(),
                &c.environment,
            ));
        }
        request = request.inference_execution_config(
            InferenceExecutionConfig::builder()
                .mode(InferenceExecutionMode::Serial)
                .build(),
        );
    }
    calls.add();
    let created = request
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateModel {}", model.name), e))?;
    model.arn = created
        .model_arn()
        .context("CreateModel answer without ModelArn")?
        .to_owned();
    // Tags beyond the first 50 go through AddTags, 50 at a time, as on AWS.
    for chunk in chunks {
        calls.add();
        client
            .add_tags()
            .resource_arn(&model.arn)
            .set_tags(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("AddTags {}", model.name), e))?;
    }
    Ok((model, job))
}

async fn create_training_job(
    client: &Client,
    spec: &SeedSpec,
    job: &mut SeededTrainingJob,
    calls: &Calls,
) -> anyhow::Result<()> {
    let channels = job
        .inputs
        .iter()
        .map(|(name, uri)| {
            Channel::builder()
                .channel_name(name)
                .content_type("application/x-parquet")
                .data_source(
                    DataSource::builder()
                        .s3_data_source(
                            S3DataSource::builder()
                                .s3_data_type(S3DataType::S3Prefix)
                                .s3_uri(uri)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .collect();
    let mut request = client
        .create_training_job()
        .training_job_name(&job.name)
        .role_arn(&spec.role_arn)
        .algorithm_specification(
            AlgorithmSpecification::builder()
                .training_image(&job.image)
                .training_input_mode(TrainingInputMode::File)
                .build(),
        )
        .set_input_data_config(Some(channels))
        .output_data_config(
            OutputDataConfig::builder()
                .s3_output_path(&job.s3_output_path)
                .build(),
        )
        .resource_config(
            ResourceConfig::builder()
                .instance_type(TrainingInstanceType::MlM5Xlarge)
                .instance_count(1)
                .volume_size_in_gb(30)
                .build(),
        )
        .stopping_condition(
            StoppingCondition::builder()
                .max_runtime_in_seconds(86_400)
                .build(),
        );
    for (k, v) in &job.hyperparameters {
        request = request.hyper_parameters(k, v);
    }
    calls.add();
    let created = request
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateTrainingJob {}", job.name), e))?;
    job.arn = created.training_job_arn().unwrap_or_default().to_owned();
    Ok(())
}

async fn create_endpoint(
    client: &Client,
    endpoint: &mut SeededEndpoint,
    calls: &Calls,
) -> anyhow::Result<()> {
    calls.add();
    client
        .create_endpoint_config()
        .endpoint_config_name(&endpoint.config_name)
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name(&endpoint.model)
                .initial_instance_count(1)
                .initial_variant_weight(1.0)
                .instance_type(ProductionVariantInstanceType::from(
                    endpoint.instance_type.as_str(),
                ))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateEndpointConfig {}", endpoint.config_name), e))?;
    calls.add();
    let created = client
        .create_endpoint()
        .endpoint_name(&endpoint.name)
        .endpoint_config_name(&endpoint.config_name)
        .tags(tag("env", "prod"))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateEndpoint {}", endpoint.name), e))?;
    endpoint.arn = created.endpoint_arn().unwrap_or_default().to_owned();
    Ok(())
}

/// Guard against accidental huge seeds in CI: seeding is linear in models, this bounds it.
pub const MAX_MODELS: usize = 100_000;

/// Validate a spec before seeding (names must fit SageMaker's 63-character limit).
pub fn validate(spec: &SeedSpec) -> anyhow::Result<()> {
    if spec.models > MAX_MODELS {
        anyhow::bail!(
            "{} models is more than the {MAX_MODELS} supported",
            spec.models
        );
    }
    // Longest generated name: "<prefix>mistral-7b-instruct-llm-NNNN-train".
    let longest = spec.name_prefix.len() + "mistral-7b-instruct-llm-".len() + 6 + "-train".len();
    if longest > 63 {
        anyhow::bail!(
            "name prefix {:?} is too long: generated names must stay within 63 characters",
            spec.name_prefix
        );
    }
    let valid = spec
        .name_prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        anyhow::bail!(
            "name prefix {:?} may hold only letters, digits and '-'",
            spec.name_prefix
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_plan_has_the_advertised_shape() {
        let plan = plan(&SeedSpec::demo(), "us-east-1");
        assert_eq!(plan.models.len(), 40);
        assert_eq!(plan.feature_groups.len(), 2);
        assert_eq!(plan.endpoints.len(), 3);
        let families = |f| plan.models.iter().filter(|m| m.family == f).count();
        assert_eq!(families(ModelFamily::MultiContainer), 1);
        assert_eq!(families(ModelFamily::Xgboost), 16);
        assert_eq!(families(ModelFamily::Pytorch), 12);
        assert_eq!(families(ModelFamily::HuggingfaceLlm), 11);
        let names: std::collections::BTreeSet<_> = plan.models.iter().map(|m| &m.name).collect();
        assert_eq!(names.len(), 40, "model names are unique");
        for model in &plan.models {
            assert!(model.name.len() <= 63, "{}", model.name);
            assert_eq!(model.tags.len(), 4, "{}", model.name);
            if let Some(job) = &model.training_job {
                let job = plan.training_jobs.iter().find(|j| &j.name == job).unwrap();
                assert_eq!(
                    model.model_data_url.as_deref(),
                    Some(job.model_artifacts.as_str())
                );
                assert_eq!(model.hyperparameters, job.hyperparameters);
            }
        }
        let tagged = plan
            .models
            .iter()
            .filter(|m| m.tag("ml:feature-groups").is_some())
            .count();
        assert!(
            (1..10).contains(&tagged),
            "a few models carry ml:feature-groups, got {tagged}"
        );
        assert!(plan.models.iter().any(|m| !m.feature_groups.is_empty()));
        for endpoint in &plan.endpoints {
            assert!(
                endpoint.instance_type.starts_with("ml.m5.")
                    || endpoint.instance_type.starts_with("ml.g4dn."),
                "{}",
                endpoint.instance_type
            );
            let model = plan
                .models
                .iter()
                .find(|m| m.name == endpoint.model)
                .unwrap();
            assert_eq!(model.endpoint.as_deref(), Some(endpoint.name.as_str()));
            assert_eq!(model.tag("env"), Some("prod"));
        }
        assert_eq!(
            plan.models[0].image,
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
        );
    }

    #[test]
    fn plan_is_deterministic_and_tags_pad() {
        let spec = SeedSpec {
            tags_per_model: 60,
            ..SeedSpec::bulk(25)
        };
        let a = plan(&spec, "eu-west-1");
        assert_eq!(a, plan(&spec, "eu-west-1"));
        assert!(a.models.iter().all(|m| m.tags.len() == 60));
        assert!(a.endpoints.is_empty() && a.feature_groups.is_empty());
        assert!(a.models[0].image.contains(".eu-west-1."));
        let none = plan(
            &SeedSpec {
                tags_per_model: 1,
                ..SeedSpec::bulk(3)
            },
            "us-east-1",
        );
        assert_eq!(
            none.models[0].tags,
            vec![("team".to_owned(), "growth".to_owned())]
        );
    }

    #[test]
    fn validates_prefixes() {
        assert!(validate(&SeedSpec::demo()).is_ok());
        let long = SeedSpec {
            name_prefix: "x".repeat(40),
            ..SeedSpec::demo()
        };
        assert!(validate(&long).is_err());
        let bad = SeedSpec {
            name_prefix: "a_b".to_owned(),
            ..SeedSpec::demo()
        };
        assert!(validate(&bad).is_err());
    }
}
