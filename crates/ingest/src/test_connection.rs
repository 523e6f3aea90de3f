//! `test-connection` for a workflow: the calls a run makes, on real objects, one step each,
//! with the cause of any failure.
//!
//! A check that calls something else than the run (ListTrainingJobs instead of
//! DescribeTrainingJob, an empty listing instead of a described object) passes for identities
//! the run then fails with. So every step is the run's own call, named after the AWS API:
//! GetCallerIdentity (no permission needed; shows the identity in use), then the mandatory
//! ListModels, DescribeModel and ListTags on a listed model (the least-privilege policy), then
//! the optional enrichments: DescribeTrainingJob on the job of a model that has one,
//! ListFeatureGroups (or Search, the run's fallback) and DescribeFeatureGroup on one group,
//! ListEndpoints, DescribeEndpoint and DescribeEndpointConfig on one endpoint, then
//! `Search (bulk reads)`: one Search call per resource a run reads in bulk (`Model`,
//! `TrainingJob`, `Endpoint`), saying which ones the run reads 100 a call and which one by one
//! (a resource the API does not support is not a problem: it passes, and says so), then
//! `GetResources (bulk tags)`, the tagging API's call that reads tags 100 a call where Search
//! cannot read models, then the optional model registry: ListModelPackageGroups, DescribeModelPackageGroup on one group,
//! ListModelPackages and DescribeModelPackage on one of its versions, and `Search (model
//! registry)` (`ModelPackageGroup`, `ModelPackage`). A denied ListModelPackageGroups warns that
//! runs are incomplete (they cannot list the registry, so they mark nothing deleted). A failed
//! optional step is a warning that names the enrichment the run goes without; a step with
//! nothing to run on (no models, no endpoints) is skipped with the reason, never passed.

use std::future::Future;
use std::time::Instant;

use aws_sdk_sagemaker::error::ProvideErrorMetadata as _;
use aws_sdk_sagemaker::operation::describe_model::DescribeModelOutput;
use aws_sdk_sagemaker::types::ResourceType;
use aws_sdk_sagemaker::Client;
use sagebridge_aws::{classify, AwsError, CheckReport, Clients, ErrorKind, Step, StepStatus};

use crate::source::job_name_from_artifact;

/// What each optional step enables: a warning names it.
const TRAINING: &str = "hyperparameters and algorithm from training jobs";
const FEATURES: &str = "ML features from Feature Store";
const ENDPOINTS: &str = "the serving endpoints of models";
const BULK: &str = "bulk reads (models, training jobs and endpoints 100 a call)";
const REGISTRY: &str =
    "the model registry (model package groups), and a run is incomplete: nothing is marked deleted";
const REGISTRY_BULK: &str = "bulk reads of the model registry (groups and versions 100 a call)";

/// The model registry's Search step (`ModelPackageGroup` and `ModelPackage`).
pub const REGISTRY_SEARCH_STEP: &str = "Search (model registry)";

/// The bulk-read step's name: the call is `Search`, but the feature-group listing's fallback
/// step already bears that name.
pub const BULK_STEP: &str = "Search (bulk reads)";

/// The bulk-tags step: the tagging API's GetResources, used when Search cannot read models.
pub const BULK_TAGS_STEP: &str = "GetResources (bulk tags)";
const BULK_TAGS: &str =
    "reading tags 100 a call where Search cannot read models (ListTags per model instead)";

/// The resources a run reads through Search when it can.
const BULK_RESOURCES: [ResourceType; 3] = [
    ResourceType::Model,
    ResourceType::TrainingJob,
    ResourceType::Endpoint,
];

/// At most this many models (the first included) are described to find one with a training
/// job.
const MODELS_SEARCHED_FOR_A_TRAINING_JOB: usize = 10;

/// Every step after GetCallerIdentity, in order, with whether it is mandatory.
const AWS_STEPS: [(&str, bool); 16] = [
    ("ListModels", true),
    ("DescribeModel", true),
    ("ListTags", true),
    ("DescribeTrainingJob", false),
    ("ListFeatureGroups", false),
    ("DescribeFeatureGroup", false),
    ("ListEndpoints", false),
    ("DescribeEndpoint", false),
    ("DescribeEndpointConfig", false),
    (BULK_STEP, false),
    (BULK_TAGS_STEP, false),
    ("ListModelPackageGroups", false),
    ("DescribeModelPackageGroup", false),
    ("ListModelPackages", false),
    ("DescribeModelPackage", false),
    (REGISTRY_SEARCH_STEP, false),
];

/// The IAM actions ingestion uses (every call the steps check, and `Search`, which reads
/// models, training jobs and endpoints in bulk, and the feature groups when ListFeatureGroups
/// is not allowed, and `tag:GetResources`, which reads tags in bulk where Search cannot), for a
/// policy that makes every step pass. GetCallerIdentity needs no permission.
pub const IAM_ACTIONS: [&str; 15] = [
    "sagemaker:ListModels",
    "sagemaker:DescribeModel",
    "sagemaker:ListTags",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:ListFeatureGroups",
    "sagemaker:Search",
    "sagemaker:DescribeFeatureGroup",
    "sagemaker:ListEndpoints",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:ListModelPackageGroups",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListModelPackages",
    "sagemaker:DescribeModelPackage",
    "tag:GetResources",
];

/// Runs one call as a step. `f` returns what later steps need and the step's detail.
async fn call<T, F>(name: &str, mandatory: bool, f: F) -> (Step, Option<T>)
where
    F: Future<Output = Result<(T, String), AwsError>>,
{
    let started = Instant::now();
    match f.await {
        Ok((v, detail)) => (
            Step::ok(name, mandatory, started).with_detail(detail),
            Some(v),
        ),
        Err(e) => (Step::from_aws(name, mandatory, started, &e), None),
    }
}

/// [`call`] for an optional step: its warning says what the run goes without.
async fn optional<T, F>(name: &str, enables: &str, f: F) -> (Step, Option<T>)
where
    F: Future<Output = Result<(T, String), AwsError>>,
{
    let (step, v) = call(name, false, f).await;
    (warn_about(step, enables), v)
}

fn warn_about(step: Step, enables: &str) -> Step {
    if step.status != StepStatus::Warning {
        return step;
    }
    let detail = match step.error_kind.as_ref().and_then(ErrorKind::iam_action) {
        Some(action) => format!("without {action}, ingestion skips {enables}"),
        None => format!("while this fails, ingestion skips {enables}"),
    };
    step.with_detail(detail)
}

fn skip_all(steps: &mut Steps, names: &[&str], reason: &str) {
    for name in names {
        let mandatory = AWS_STEPS
            .iter()
            .any(|(n, mandatory)| n == name && *mandatory);
        steps.push(Step::skipped(*name, mandatory, reason));
    }
}

/// The steps so far; each is also sent to the listener, if any, as soon as it is known.
struct Steps {
    list: Vec<Step>,
    tx: Option<tokio::sync::mpsc::UnboundedSender<Step>>,
}

impl Steps {
    fn push(&mut self, step: Step) {
        if let Some(tx) = &self.tx {
            // A listener that went away (a closed event stream) does not stop the check.
            let _ = tx.send(step.clone());
        }
        self.list.push(step);
    }

    fn report(self) -> CheckReport {
        CheckReport::from_steps(self.list)
    }
}

/// Runs every step against the clients' account. GetCallerIdentity failing (wrong
/// credentials, a role that cannot be assumed) skips the rest: they would fail the same way.
pub async fn test_connection(clients: &Clients) -> CheckReport {
    run_steps(clients, None).await
}

/// [`test_connection`], sending each step to `tx` as soon as it is done (for a UI that shows
/// the steps as they complete).
pub async fn test_connection_streaming(
    clients: &Clients,
    tx: tokio::sync::mpsc::UnboundedSender<Step>,
) -> CheckReport {
    run_steps(clients, Some(tx)).await
}

async fn run_steps(
    clients: &Clients,
    tx: Option<tokio::sync::mpsc::UnboundedSender<Step>>,
) -> CheckReport {
    let mut steps = Steps {
        list: Vec::new(),
        tx,
    };
    let (identity, known) = call("GetCallerIdentity", true, async {
        let out = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("sts:GetCallerIdentity", &e))?;
        let detail = format!(
            "account {}, identity {}",
            out.account().unwrap_or("?"),
            out.arn().unwrap_or("?")
        );
        Ok(((), detail))
    })
    .await;
    steps.push(identity);
    if known.is_none() {
        let names: Vec<&str> = AWS_STEPS.iter().map(|(n, _)| *n).collect();
        skip_all(&mut steps, &names, "GetCallerIdentity failed");
        return steps.report();
    }
    let sm = &clients.sagemaker;
    let has_models = model_steps(sm, &mut steps).await;
    feature_group_steps(sm, &mut steps).await;
    endpoint_steps(sm, &mut steps).await;
    steps.push(match has_models {
        true => bulk_step(sm).await,
        false => Step::skipped(BULK_STEP, false, "no model to read in bulk"),
    });
    steps.push(match has_models {
        true => bulk_tags_step(&clients.sdk_config).await,
        false => Step::skipped(BULK_TAGS_STEP, false, "no model to read tags of"),
    });
    registry_steps(sm, &mut steps).await;
    steps.report()
}

/// ListModels, DescribeModel and ListTags on the first model, then DescribeTrainingJob.
/// Whether the account has a model.
async fn model_steps(sm: &Client, steps: &mut Steps) -> bool {
    let (list, first) = call("ListModels", true, async {
        let out = sm
            .list_models()
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListModels", &e))?;
        let first = out
            .models()
            .first()
            .and_then(|m| m.model_name().map(str::to_owned));
        let detail = match &first {
            Some(n) => format!("can list models (first: {n})"),
            None => "can list models (the account has none in this region)".into(),
        };
        Ok((first, detail))
    })
    .await;
    steps.push(list);
    let rest = ["DescribeModel", "ListTags", "DescribeTrainingJob"];
    let name = match first {
        None => {
            skip_all(steps, &rest, "ListModels failed");
            return false;
        }
        Some(None) => {
            skip_all(steps, &rest, "the account has no models in this region");
            return false;
        }
        Some(Some(name)) => name,
    };

    let (describe, model) = call("DescribeModel", true, async {
        let out = describe_model(sm, &name).await?;
        Ok((out, format!("described {name}")))
    })
    .await;
    steps.push(describe);
    let Some(model) = model else {
        skip_all(steps, &rest[1..], "DescribeModel failed");
        return true;
    };

    let arn = model.model_arn().unwrap_or_default();
    let (tags, _) = call("ListTags", true, async {
        let out = sm
            .list_tags()
            .resource_arn(arn)
            .max_results(50)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListTags", &e))?;
        Ok(((), format!("{} tag(s) on {name}", out.tags().len())))
    })
    .await;
    steps.push(tags);

    steps.push(training_job_step(sm, &name, &model).await);
    true
}

/// The model registry, optional: ListModelPackageGroups, DescribeModelPackageGroup on the
/// first group, ListModelPackages of it and DescribeModelPackage on its first version, then
/// one Search per registry resource.
async fn registry_steps(sm: &Client, steps: &mut Steps) {
    let (list, first) = optional("ListModelPackageGroups", REGISTRY, async {
        let out = sm
            .list_model_package_groups()
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListModelPackageGroups", &e))?;
        let first = out
            .model_package_group_summary_list()
            .first()
            .and_then(|g| g.model_package_group_name().map(str::to_owned));
        let detail = match &first {
            Some(n) => format!("can list model package groups (first: {n})"),
            None => "can list model package groups (the account has none in this region)".into(),
        };
        Ok((first, detail))
    })
    .await;
    steps.push(list);
    let rest = [
        "DescribeModelPackageGroup",
        "ListModelPackages",
        "DescribeModelPackage",
    ];
    let group = match first {
        None => return skip_registry(steps, &rest, "ListModelPackageGroups failed"),
        Some(None) => {
            skip_all(steps, &rest, "the account has no model package groups");
            return steps.push(Step::skipped(
                REGISTRY_SEARCH_STEP,
                false,
                "no model package group to read in bulk",
            ));
        }
        Some(Some(group)) => group,
    };
    let (describe, _) = optional("DescribeModelPackageGroup", REGISTRY, async {
        sm.describe_model_package_group()
            .model_package_group_name(&group)
            .send()
            .await
            .map_err(|e| classify("sagemaker:DescribeModelPackageGroup", &e))?;
        Ok(((), format!("described model package group {group}")))
    })
    .await;
    steps.push(describe);
    let (list, version) = optional("ListModelPackages", REGISTRY, async {
        let out = sm
            .list_model_packages()
            .model_package_group_name(&group)
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListModelPackages", &e))?;
        let first = out
            .model_package_summary_list()
            .first()
            .and_then(|p| p.model_package_arn().map(str::to_owned));
        Ok((first, format!("can list the versions of {group}")))
    })
    .await;
    steps.push(list);
    match version {
        None => steps.push(Step::skipped(
            "DescribeModelPackage",
            false,
            "ListModelPackages failed",
        )),
        Some(None) => steps.push(Step::skipped(
            "DescribeModelPackage",
            false,
            format!("model package group {group} has no versions"),
        )),
        Some(Some(arn)) => {
            let (describe, _) = optional("DescribeModelPackage", REGISTRY, async {
                sm.describe_model_package()
                    .model_package_name(&arn)
                    .send()
                    .await
                    .map_err(|e| classify("sagemaker:DescribeModelPackage", &e))?;
                Ok(((), format!("described a version of {group}")))
            })
            .await;
            steps.push(describe);
        }
    }
    steps.push(registry_search_step(sm).await);
}

fn skip_registry(steps: &mut Steps, rest: &[&str], reason: &str) {
    skip_all(steps, rest, reason);
    steps.push(Step::skipped(REGISTRY_SEARCH_STEP, false, reason));
}

/// One Search call each for `ModelPackageGroup` and `ModelPackage`.
async fn registry_search_step(sm: &Client) -> Step {
    let started = Instant::now();
    for resource in [ResourceType::ModelPackageGroup, ResourceType::ModelPackage] {
        if let Err(e) = sm.search().resource(resource).max_results(1).send().await {
            let e = classify("sagemaker:Search", &e);
            return warn_about(
                Step::from_aws(REGISTRY_SEARCH_STEP, false, started, &e),
                REGISTRY_BULK,
            );
        }
    }
    Step::ok(REGISTRY_SEARCH_STEP, false, started)
        .with_detail("read 100 a call through Search: ModelPackageGroup, ModelPackage")
}

/// One Search call per resource a run reads in bulk. Passes when Search answers for any of
/// them (the detail names the resources read one by one, and why); a warning, from the first
/// error, when it answers for none (denied, or an API without Search).
async fn bulk_step(sm: &Client) -> Step {
    let started = Instant::now();
    let mut bulk = Vec::new();
    let mut one_by_one = Vec::new();
    let mut first_error = None;
    for resource in BULK_RESOURCES {
        match sm
            .search()
            .resource(resource.clone())
            .max_results(1)
            .send()
            .await
        {
            Ok(_) => bulk.push(resource.as_str().to_owned()),
            Err(e) => {
                let code = e.code().map(str::to_owned);
                let e = classify("sagemaker:Search", &e);
                let why = code.unwrap_or_else(|| e.kind().to_string());
                one_by_one.push(format!("{} ({why})", resource.as_str()));
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if bulk.is_empty() => {
            warn_about(Step::from_aws(BULK_STEP, false, started, &e), BULK)
        }
        _ => {
            let mut detail = format!("read 100 a call through Search: {}", bulk.join(", "));
            if !one_by_one.is_empty() {
                detail.push_str(&format!("; read one by one: {}", one_by_one.join(", ")));
            }
            Step::ok(BULK_STEP, false, started).with_detail(detail)
        }
    }
}

/// One GetResources call for tagged SageMaker models (the tagging API's own endpoint, which
/// `endPointURL` also sets).
async fn bulk_tags_step(sdk: &aws_config::SdkConfig) -> Step {
    let started = Instant::now();
    let tagging = aws_sdk_resourcegroupstagging::Client::new(sdk);
    match tagging
        .get_resources()
        .resource_type_filters("sagemaker:model")
        .resources_per_page(1)
        .send()
        .await
    {
        Ok(_) => Step::ok(BULK_TAGS_STEP, false, started).with_detail(
            "tags read 100 a call through the tagging API where Search cannot read models",
        ),
        Err(e) => {
            let e = classify("tag:GetResources", &e);
            warn_about(
                Step::from_aws(BULK_TAGS_STEP, false, started, &e),
                BULK_TAGS,
            )
        }
    }
}

async fn describe_model(sm: &Client, name: &str) -> Result<DescribeModelOutput, AwsError> {
    sm.describe_model()
        .model_name(name)
        .send()
        .await
        .map_err(|e| classify("sagemaker:DescribeModel", &e))
}

/// The training job a run reads for this model, found as the source finds it: named in the
/// artifact path of the primary container (else the first container).
fn training_job_of(model: &DescribeModelOutput) -> Option<String> {
    model
        .primary_container()
        .or(model.containers().first())
        .and_then(|c| c.model_data_url())
        .and_then(job_name_from_artifact)
}

/// The first model with a training job: `first` (already described), else one of the next
/// few listed models.
async fn find_training_job(
    sm: &Client,
    first_name: &str,
    first: &DescribeModelOutput,
) -> Result<Option<(String, String)>, AwsError> {
    if let Some(job) = training_job_of(first) {
        return Ok(Some((first_name.to_owned(), job)));
    }
    let listed = sm
        .list_models()
        .max_results(MODELS_SEARCHED_FOR_A_TRAINING_JOB as i32)
        .send()
        .await
        .map_err(|e| classify("sagemaker:ListModels", &e))?;
    let others = listed
        .models()
        .iter()
        .filter_map(|m| m.model_name())
        .filter(|n| *n != first_name)
        .take(MODELS_SEARCHED_FOR_A_TRAINING_JOB - 1);
    for name in others {
        if let Some(job) = training_job_of(&describe_model(sm, name).await?) {
            return Ok(Some((name.to_owned(), job)));
        }
    }
    Ok(None)
}

async fn training_job_step(sm: &Client, first_name: &str, first: &DescribeModelOutput) -> Step {
    const NAME: &str = "DescribeTrainingJob";
    let (model, job) = match find_training_job(sm, first_name, first).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Step::skipped(
                NAME,
                false,
                format!(
                    "none of the first {MODELS_SEARCHED_FOR_A_TRAINING_JOB} models listed names a training job in its artifact path (s3://.../<job>/output/model.tar.gz)"
                ),
            )
        }
        Err(e) => {
            return Step::skipped(NAME, false, format!("no model with a training job: {e}"))
        }
    };
    let (step, _) = optional(NAME, TRAINING, async {
        match sm
            .describe_training_job()
            .training_job_name(&job)
            .send()
            .await
        {
            Ok(t) => {
                let n = t.hyper_parameters().map_or(0, |h| h.len());
                Ok((
                    (),
                    format!("training job {job} of {model}: {n} hyperparameter(s)"),
                ))
            }
            // The call was allowed; the job is gone (the run then skips it too).
            Err(e) => match classify("sagemaker:DescribeTrainingJob", &e) {
                AwsError::NotFound { .. } => Ok((
                    (),
                    format!("training job {job} of {model} no longer exists; the call is allowed"),
                )),
                e => Err(e),
            },
        }
    })
    .await;
    step
}

/// ListFeatureGroups (Search when it fails, as the run does) and DescribeFeatureGroup.
async fn feature_group_steps(sm: &Client, steps: &mut Steps) {
    let (list, first) = match list_feature_groups(sm).await {
        Ok((step, first)) => (step, Some(first)),
        Err(step) => (step, None),
    };
    let listing_failed = format!("{} failed", list.name);
    steps.push(list);
    let name = match first {
        None => return steps.push(Step::skipped("DescribeFeatureGroup", false, listing_failed)),
        Some(None) => {
            return steps.push(Step::skipped(
                "DescribeFeatureGroup",
                false,
                "the account has no feature groups in this region",
            ))
        }
        Some(Some(name)) => name,
    };
    let (step, _) = optional("DescribeFeatureGroup", FEATURES, async {
        let g = sm
            .describe_feature_group()
            .feature_group_name(&name)
            .send()
            .await
            .map_err(|e| classify("sagemaker:DescribeFeatureGroup", &e))?;
        Ok((
            (),
            format!(
                "feature group {name}: {} feature(s)",
                g.feature_definitions().len()
            ),
        ))
    })
    .await;
    steps.push(step);
}

/// The listing step, named after the call whose answer counts: `ListFeatureGroups`, or
/// `Search` when ListFeatureGroups failed and the run would fall back to it.
async fn list_feature_groups(sm: &Client) -> Result<(Step, Option<String>), Step> {
    let started = Instant::now();
    let list_error = match sm.list_feature_groups().max_results(1).send().await {
        Ok(out) => {
            let first = out
                .feature_group_summaries()
                .first()
                .and_then(|g| g.feature_group_name())
                .map(str::to_owned);
            let step = Step::ok("ListFeatureGroups", false, started)
                .with_detail(feature_groups_seen(first.as_deref()));
            return Ok((step, first));
        }
        Err(e) => classify("sagemaker:ListFeatureGroups", &e),
    };
    let (step, first) = optional("Search", FEATURES, async {
        let out = sm
            .search()
            .resource(ResourceType::FeatureGroup)
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:Search", &e))?;
        let first = out
            .results()
            .first()
            .and_then(|r| r.feature_group())
            .and_then(|g| g.feature_group_name())
            .map(str::to_owned);
        let detail = feature_groups_seen(first.as_deref());
        Ok((first, detail))
    })
    .await;
    let fell_back = format!("ListFeatureGroups failed first: {list_error}");
    let detail = match &step.detail {
        Some(d) => format!("{d} ({fell_back})"),
        None => fell_back,
    };
    let step = step.with_detail(detail);
    match first {
        Some(first) => Ok((step, first)),
        None => Err(step),
    }
}

fn feature_groups_seen(first: Option<&str>) -> String {
    match first {
        Some(n) => format!("can list feature groups (first: {n})"),
        None => "can list feature groups (the account has none in this region)".into(),
    }
}

/// ListEndpoints, then DescribeEndpoint and DescribeEndpointConfig on the first endpoint.
async fn endpoint_steps(sm: &Client, steps: &mut Steps) {
    let rest = ["DescribeEndpoint", "DescribeEndpointConfig"];
    let (list, first) = optional("ListEndpoints", ENDPOINTS, async {
        let out = sm
            .list_endpoints()
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListEndpoints", &e))?;
        let first = out
            .endpoints()
            .first()
            .and_then(|e| e.endpoint_name())
            .map(str::to_owned);
        let detail = match &first {
            Some(n) => format!("can list endpoints (first: {n})"),
            None => "can list endpoints (the account has none in this region)".into(),
        };
        Ok((first, detail))
    })
    .await;
    steps.push(list);
    let endpoint = match first {
        None => return skip_all(steps, &rest, "ListEndpoints failed"),
        Some(None) => return skip_all(steps, &rest, "the account has no endpoints in this region"),
        Some(Some(name)) => name,
    };

    let (describe, config) = optional("DescribeEndpoint", ENDPOINTS, async {
        let ep = sm
            .describe_endpoint()
            .endpoint_name(&endpoint)
            .send()
            .await
            .map_err(|e| classify("sagemaker:DescribeEndpoint", &e))?;
        let status = ep.endpoint_status().map(|s| s.as_str()).unwrap_or("?");
        let config = ep.endpoint_config_name().map(str::to_owned);
        Ok((config, format!("endpoint {endpoint} is {status}")))
    })
    .await;
    steps.push(describe);
    let config = match config {
        None => return skip_all(steps, &rest[1..], "DescribeEndpoint failed"),
        Some(None) => {
            let reason = format!("endpoint {endpoint} names no endpoint config");
            return skip_all(steps, &rest[1..], &reason);
        }
        Some(Some(config)) => config,
    };

    let (step, _) = optional("DescribeEndpointConfig", ENDPOINTS, async {
        let c = sm
            .describe_endpoint_config()
            .endpoint_config_name(&config)
            .send()
            .await
            .map_err(|e| classify("sagemaker:DescribeEndpointConfig", &e))?;
        let models: Vec<&str> = c
            .production_variants()
            .iter()
            .filter_map(|v| v.model_name())
            .collect();
        Ok((
            (),
            format!(
                "endpoint config {config} serves {}",
                if models.is_empty() {
                    "no model".to_owned()
                } else {
                    models.join(", ")
                }
            ),
        ))
    })
    .await;
    steps.push(step);
}

/// The sink's own step, when it is a server: `OpenMetadata` (mandatory) for `metadata-rest`,
/// the sink's health check.
pub async fn check_sink(cfg: &crate::config::WorkflowConfig) -> Option<Step> {
    let name = cfg.sink.server_name()?;
    let started = Instant::now();
    let ctx = crate::sink::SinkContext::new(cfg);
    let r = match cfg.sink.build(&ctx).await {
        Ok(sink) => sink.healthcheck().await,
        Err(e) => Err(e),
    };
    Some(match r {
        Ok(detail) => Step::ok(name, true, started).with_detail(detail),
        Err(e) => Step::failed(name, true, started, ErrorKind::OpenMetadata, e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_optional_step_names_the_action_and_what_the_run_skips() {
        let denied = Step::failed(
            "DescribeEndpoint",
            false,
            Instant::now(),
            ErrorKind::AccessDenied {
                action: "sagemaker:DescribeEndpoint".into(),
            },
            "access denied",
        );
        let step = warn_about(denied, ENDPOINTS);
        assert_eq!(
            step.detail.as_deref(),
            Some("without sagemaker:DescribeEndpoint, ingestion skips the serving endpoints of models")
        );
        let throttled = Step::failed(
            "ListEndpoints",
            false,
            Instant::now(),
            ErrorKind::Throttled,
            "throttled",
        );
        assert_eq!(
            warn_about(throttled, ENDPOINTS).detail.as_deref(),
            Some("while this fails, ingestion skips the serving endpoints of models")
        );
        let passed = Step::ok("ListEndpoints", false, Instant::now()).with_detail("seen");
        assert_eq!(
            warn_about(passed, ENDPOINTS).detail.as_deref(),
            Some("seen")
        );
    }

    #[test]
    fn skipped_steps_keep_whether_they_are_mandatory() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut steps = Steps {
            list: Vec::new(),
            tx: Some(tx),
        };
        skip_all(&mut steps, &["ListTags", "DescribeEndpoint"], "no model");
        // The listener got each step too, in order.
        assert_eq!(rx.try_recv().unwrap().name, "ListTags");
        assert_eq!(rx.try_recv().unwrap().name, "DescribeEndpoint");
        assert_eq!(
            steps
                .list
                .iter()
                .map(|s| (s.name.as_str(), s.mandatory, s.status))
                .collect::<Vec<_>>(),
            vec![
                ("ListTags", true, StepStatus::Skipped),
                ("DescribeEndpoint", false, StepStatus::Skipped)
            ]
        );
    }
}
