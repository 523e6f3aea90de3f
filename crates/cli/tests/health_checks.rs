//! `sagebridge test-connection` for a workflow does what the run does: against moto with IAM
//! enforcement, an account holding a model with a training job, feature groups and an
//! endpoint, and one IAM user per case, each denied one API. A denied optional API is a
//! warning that names the IAM action and the enrichment the run goes without (exit 0); a
//! denied mandatory one fails the check (exit 1). With nothing to check on, steps are skipped,
//! and moto's recording shows they were not called.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sagebridge_testkit::{count, sagemaker_client, seed, MotoIam, MotoServer, SeedSpec};
use serde_json::Value;

/// Every call `test-connection` makes, allowed unless a case denies it.
const ALL_ACTIONS: [&str; 16] = [
    "sts:GetCallerIdentity",
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
    // AWS calls this action `tag:GetResources`; moto names actions after the SigV4 signing
    // name of the service, `tagging`.
    "tagging:GetResources",
];

/// moto answers ListFeatureGroups with a 500, so the run (and the check) list feature groups
/// through Search: the listing step is named `Search`.
const FEATURE_LISTING: &str = "Search";

/// The bulk-read step (one Search call per resource a run reads 100 a call).
const BULK: &str = "Search (bulk reads)";

/// The bulk-tags step (the tagging API's GetResources).
const BULK_TAGS: &str = "GetResources (bulk tags)";

/// The model registry's Search step.
const REGISTRY_BULK: &str = "Search (model registry)";

const STEPS: [&str; 17] = [
    "GetCallerIdentity",
    "ListModels",
    "DescribeModel",
    "ListTags",
    "DescribeTrainingJob",
    FEATURE_LISTING,
    "DescribeFeatureGroup",
    "ListEndpoints",
    "DescribeEndpoint",
    "DescribeEndpointConfig",
    BULK,
    BULK_TAGS,
    "ListModelPackageGroups",
    "DescribeModelPackageGroup",
    "ListModelPackages",
    "DescribeModelPackage",
    REGISTRY_BULK,
];

const TRAINING: &str = "hyperparameters and algorithm from training jobs";
const FEATURES: &str = "ML features from Feature Store";
const ENDPOINTS: &str = "the serving endpoints of models";

/// One case: the denied actions, the step that warns (with the IAM action its warning names
/// and the enrichment), and the steps skipped because of it.
struct Denial {
    denied: &'static [&'static str],
    step: &'static str,
    action: &'static str,
    enrichment: &'static str,
    skipped: &'static [&'static str],
}

const DENIALS: &[Denial] = &[
    Denial {
        denied: &["sagemaker:DescribeTrainingJob"],
        step: "DescribeTrainingJob",
        action: "sagemaker:DescribeTrainingJob",
        enrichment: TRAINING,
        skipped: &[],
    },
    Denial {
        denied: &["sagemaker:ListFeatureGroups", "sagemaker:Search"],
        step: FEATURE_LISTING,
        action: "sagemaker:Search",
        enrichment: FEATURES,
        skipped: &["DescribeFeatureGroup"],
    },
    Denial {
        denied: &["sagemaker:Search"],
        step: FEATURE_LISTING,
        action: "sagemaker:Search",
        enrichment: FEATURES,
        skipped: &["DescribeFeatureGroup"],
    },
    Denial {
        denied: &["sagemaker:DescribeFeatureGroup"],
        step: "DescribeFeatureGroup",
        action: "sagemaker:DescribeFeatureGroup",
        enrichment: FEATURES,
        skipped: &[],
    },
    Denial {
        denied: &["sagemaker:ListEndpoints"],
        step: "ListEndpoints",
        action: "sagemaker:ListEndpoints",
        enrichment: ENDPOINTS,
        skipped: &["DescribeEndpoint", "DescribeEndpointConfig"],
    },
    Denial {
        denied: &["sagemaker:DescribeEndpoint"],
        step: "DescribeEndpoint",
        action: "sagemaker:DescribeEndpoint",
        enrichment: ENDPOINTS,
        skipped: &["DescribeEndpointConfig"],
    },
    Denial {
        denied: &["sagemaker:DescribeEndpointConfig"],
        step: "DescribeEndpointConfig",
        action: "sagemaker:DescribeEndpointConfig",
        enrichment: ENDPOINTS,
        skipped: &[],
    },
    Denial {
        denied: &["tagging:GetResources"],
        step: BULK_TAGS,
        action: "tagging:GetResources",
        enrichment: "reading tags 100 a call where Search cannot read models",
        skipped: &[],
    },
];

/// A workflow reading `endpoint` with the given key; the secret comes from `$HC_SECRET`.
fn workflow(dir: &Path, file: &str, endpoint: &str, access_key_id: &str) -> PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: health\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n        awsRegion: us-east-1\n        awsAccessKeyId: {access_key_id}\n        awsSecretAccessKey: ${{HC_SECRET}}\n        endPointURL: {endpoint}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\nsink:\n  type: catalog\n  config:\n    path: {}\n",
        dir.join("catalog.db").display()
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn test_connection(workflow: &Path, secret: &str, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sagebridge"));
    cmd.args(["test-connection", "-c", workflow.to_str().unwrap()]);
    if json {
        cmd.arg("--json");
    }
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("HC_SECRET", secret);
    let out = cmd.output().expect("run sagebridge");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(secret), "the secret leaked:\n{all}");
    out
}

/// The JSON report and the exit code.
fn report(workflow: &Path, secret: &str) -> (i32, Value) {
    let out = test_connection(workflow, secret, true);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report}"))
}

fn names(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

fn assert_passed(report: &Value, name: &str) {
    let s = step(report, name);
    assert_eq!(
        (&s["status"], &s["passed"], &s["error"], &s["errorKind"]),
        (
            &Value::from("passed"),
            &Value::Bool(true),
            &Value::Null,
            &Value::Null
        ),
        "{name}: {s}"
    );
}

fn assert_skipped(report: &Value, name: &str, reason: &str) {
    let s = step(report, name);
    assert_eq!(s["status"], "skipped", "{name}: {s}");
    assert_eq!(s["passed"], false, "{name}: {s}");
    assert_eq!(s["errorKind"], "Skipped", "{name}: {s}");
    assert_eq!(s["skippedReason"], reason, "{name}: {s}");
    assert_eq!(s["error"], format!("skipped: {reason}"), "{name}: {s}");
}

#[tokio::test]
async fn each_denied_optional_api_is_a_warning_naming_the_action_and_the_enrichment() {
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let spec = SeedSpec {
        models: 1,
        multi_container: false,
        name_prefix: "hc-".to_owned(),
        ..SeedSpec::demo()
    };
    let seeded = seed(&client, &spec).await.unwrap();
    let model = &seeded.models[0];
    let job = model.training_job.as_deref().expect("a training job");
    let endpoint = &seeded.endpoints[0];
    assert!(!seeded.feature_groups.is_empty());
    // A model package group with one version, for the registry steps.
    client
        .create_model_package_group()
        .model_package_group_name("hc-group")
        .send()
        .await
        .unwrap();
    client
        .create_model_package()
        .model_package_group_name("hc-group")
        .inference_specification(
            aws_sdk_sagemaker::types::InferenceSpecification::builder()
                .containers(
                    aws_sdk_sagemaker::types::ModelPackageContainerDefinition::builder()
                        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1")
                        .build(),
                )
                .supported_content_types("text/csv")
                .supported_response_mime_types("text/csv")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Every user exists before IAM enforcement starts.
    let iam = MotoIam::new(&moto.endpoint());
    let allowed = |denied: &[&str]| -> Vec<&'static str> {
        ALL_ACTIONS
            .iter()
            .copied()
            .filter(|a| !denied.contains(a))
            .collect()
    };
    let full = iam.user_with_actions("full", &ALL_ACTIONS).await.unwrap();
    let mut users = Vec::new();
    for (i, d) in DENIALS.iter().enumerate() {
        let key = iam
            .user_with_actions(&format!("deny-{i}"), &allowed(d.denied))
            .await
            .unwrap();
        users.push(key);
    }
    let no_describe = iam
        .user_with_actions("no-describe", &allowed(&["sagemaker:DescribeModel"]))
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Everything allowed: every step passes, on the seeded objects.
    let wf = workflow(
        dir.path(),
        "full.yaml",
        &moto.endpoint(),
        &full.access_key_id,
    );
    let (code, all) = report(&wf, &full.secret_access_key);
    assert_eq!(code, 0, "{all}");
    assert_eq!(all["passed"], true);
    assert_eq!(names(&all), STEPS);
    for name in STEPS {
        assert_passed(&all, name);
    }
    let detail = |name: &str| step(&all, name)["detail"].as_str().unwrap().to_owned();
    assert!(detail("DescribeModel").contains(&model.name), "{all}");
    assert!(
        detail("DescribeTrainingJob").contains(&format!("training job {job} of {}", model.name)),
        "{all}"
    );
    assert!(
        detail(FEATURE_LISTING).contains("ListFeatureGroups failed first"),
        "{all}"
    );
    // moto's Search does not support models: they are read one by one, which is no problem.
    assert_eq!(
        detail(BULK),
        "read 100 a call through Search: TrainingJob, Endpoint; read one by one: Model (ValidationException)",
        "{all}"
    );
    assert!(
        detail("DescribeEndpoint").contains(&format!("endpoint {} is InService", endpoint.name)),
        "{all}"
    );
    assert!(
        detail("DescribeEndpointConfig").contains(&format!(
            "endpoint config {} serves {}",
            endpoint.config_name, endpoint.model
        )),
        "{all}"
    );

    for (d, key) in DENIALS.iter().zip(&users) {
        let wf = workflow(
            dir.path(),
            &format!("{}.yaml", d.step),
            &moto.endpoint(),
            &key.access_key_id,
        );
        let (code, r) = report(&wf, &key.secret_access_key);
        let case = format!("denied {:?}", d.denied);
        assert_eq!(code, 0, "{case}: {r}");
        assert_eq!(r["passed"], true, "{case}: {r}");
        assert_eq!(names(&r), STEPS, "{case}");
        let s = step(&r, d.step);
        assert_eq!(
            (&s["status"], &s["passed"], &s["mandatory"]),
            (
                &Value::from("warning"),
                &Value::Bool(false),
                &Value::Bool(false)
            ),
            "{case}: {s}"
        );
        assert_eq!(s["errorKind"], "AccessDenied", "{case}: {s}");
        assert_eq!(s["iamAction"], d.action, "{case}: {s}");
        let error = s["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("add {} to its IAM policy", d.action))
                && error.contains("user/deny-"),
            "{case}: {error}"
        );
        assert_eq!(
            s["detail"].as_str().unwrap().split(" (").next().unwrap(),
            format!("without {}, ingestion skips {}", d.action, d.enrichment),
            "{case}: {s}"
        );
        for skipped in d.skipped {
            assert_skipped(&r, skipped, &format!("{} failed", d.step));
        }
        // Without Search, the bulk reads warn too (and the run reads one by one).
        let search_denied = d.denied.contains(&"sagemaker:Search");
        if search_denied {
            for name in [BULK, REGISTRY_BULK] {
                let bulk = step(&r, name);
                assert_eq!(bulk["status"], "warning", "{case}: {bulk}");
                assert_eq!(bulk["iamAction"], "sagemaker:Search", "{case}: {bulk}");
            }
        }
        for name in STEPS
            .iter()
            .filter(|n| **n != d.step && !d.skipped.contains(n))
            .filter(|n| !(search_denied && (**n == BULK || **n == REGISTRY_BULK)))
        {
            assert_passed(&r, name);
        }
    }

    // A denied mandatory API fails the check: exit 1, and what needs the model is skipped.
    let wf = workflow(
        dir.path(),
        "no-describe.yaml",
        &moto.endpoint(),
        &no_describe.access_key_id,
    );
    let (code, r) = report(&wf, &no_describe.secret_access_key);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["passed"], false);
    let s = step(&r, "DescribeModel");
    assert_eq!(
        (
            &s["status"],
            &s["mandatory"],
            &s["errorKind"],
            &s["iamAction"]
        ),
        (
            &Value::from("failed"),
            &Value::Bool(true),
            &Value::from("AccessDenied"),
            &Value::from("sagemaker:DescribeModel")
        ),
        "{s}"
    );
    for name in ["ListTags", "DescribeTrainingJob"] {
        assert_skipped(&r, name, "DescribeModel failed");
    }
    for name in [
        "GetCallerIdentity",
        "ListModels",
        FEATURE_LISTING,
        "DescribeFeatureGroup",
        "ListEndpoints",
        "DescribeEndpoint",
        "DescribeEndpointConfig",
    ] {
        assert_passed(&r, name);
    }

    // The same two outcomes for people: a warning still says OK, a failure does not.
    let key = &users[0];
    let wf = workflow(
        dir.path(),
        "table.yaml",
        &moto.endpoint(),
        &key.access_key_id,
    );
    let out = test_connection(&wf, &key.secret_access_key, false);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("DescribeTrainingJob")
            && l.contains("optional")
            && l.contains("warn")
            && l.contains(TRAINING)),
        "{table}"
    );
    assert!(table.contains("connection OK"), "{table}");
    let wf = workflow(
        dir.path(),
        "no-describe.yaml",
        &moto.endpoint(),
        &no_describe.access_key_id,
    );
    let out = test_connection(&wf, &no_describe.secret_access_key, false);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("DescribeModel") && l.contains("FAILED")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ListTags") && l.contains("skipped")),
        "{table}"
    );
}

#[tokio::test]
async fn an_empty_account_skips_what_has_nothing_to_run_on_without_calling_it() {
    let moto = MotoServer::start().await.unwrap();
    moto.start_recording().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(
        dir.path(),
        "empty.yaml",
        &moto.endpoint(),
        "AKIAEMPTYACCOUNT",
    );
    let (code, r) = report(&wf, "empty-account-secret");
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["passed"], true, "{r}");
    for name in [
        "GetCallerIdentity",
        "ListModels",
        FEATURE_LISTING,
        "ListEndpoints",
    ] {
        assert_passed(&r, name);
    }
    for name in ["DescribeModel", "ListTags", "DescribeTrainingJob"] {
        assert_skipped(&r, name, "the account has no models in this region");
    }
    assert_skipped(
        &r,
        "DescribeFeatureGroup",
        "the account has no feature groups in this region",
    );
    for name in ["DescribeEndpoint", "DescribeEndpointConfig"] {
        assert_skipped(&r, name, "the account has no endpoints in this region");
    }
    let calls = moto.recording().await.unwrap();
    for op in [
        "DescribeModel",
        "ListTags",
        "DescribeTrainingJob",
        "DescribeFeatureGroup",
        "DescribeEndpoint",
        "DescribeEndpointConfig",
    ] {
        assert_eq!(count(&calls, op), 0, "{op} was called");
    }
    for op in ["ListModels", "Search", "ListEndpoints"] {
        assert_eq!(count(&calls, op), 1, "{op}");
    }
}
