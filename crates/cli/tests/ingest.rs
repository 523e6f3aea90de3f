//! `sagebridge ingest` end to end: moto seeded with a realistic account, and the fast fake
//! for paging failures, into a real SQLite catalog.

use std::path::Path;
use std::process::{Command, Output};

use sagebridge_ingest::mapping::build_fqn;

use sagebridge_testkit::{
    count, sagemaker_client, seed, FakeSageMaker, FakeSpec, MotoIam, MotoServer, SeedSpec,
};

fn workflow(dir: &Path, endpoint: &str, extra: &str) -> std::path::PathBuf {
    workflow_as(dir, endpoint, ("testing", "testing"), extra)
}

/// A workflow file signing with the access key `key` = (id, secret).
fn workflow_as(dir: &Path, endpoint: &str, key: (&str, &str), extra: &str) -> std::path::PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: sm\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n        awsAccessKeyId: {}\n        awsSecretAccessKey: {}\n        awsRegion: us-east-1\n        endPointURL: {endpoint}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\n{extra}sink:\n  type: catalog\n  config:\n    path: {}\n",
        key.0,
        key.1,
        dir.join("c.db").display()
    );
    let p = dir.join("wf.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    run_logged(args, None)
}

/// Runs the binary with `SAGEBRIDGE_LOG` set to `log` (the AWS SDK's own debug and trace
/// events included), or to nothing.
fn run_logged(args: &[&str], log: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sagebridge"));
    cmd.args(args).env_remove("SAGEBRIDGE_LOG");
    if let Some(log) = log {
        cmd.env("SAGEBRIDGE_LOG", log);
    }
    cmd.output().unwrap()
}

/// `models show tagged --json` of the catalog in `dir`.
fn all_tags(dir: &Path) -> serde_json::Value {
    let db = dir.join("c.db");
    let out = run(&[
        "models",
        "show",
        "tagged",
        "--json",
        "--catalog",
        db.to_str().unwrap(),
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The log levels every secret scan runs at: the default, then everything.
const LOG_LEVELS: [Option<&str>; 3] = [None, Some("debug"), Some("trace")];

/// Asserts `needle` appears in neither stdout nor stderr of `out`.
fn assert_not_printed(out: &Output, needle: &str, log: Option<&str>) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(needle),
        "stdout at SAGEBRIDGE_LOG={log:?} holds a secret"
    );
    if let Some(at) = stderr.find(needle) {
        let from = stderr[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = stderr[from..].lines().next().unwrap_or_default();
        panic!(
            "the log at SAGEBRIDGE_LOG={log:?} holds a secret: {}",
            line.replace(needle, "<THE SECRET>")
        );
    }
}

/// The catalog's tag label for the tag `key` = `value`, or `None`.
fn tag_label<'a>(
    model: &'a serde_json::Value,
    key: &str,
    value: &str,
) -> Option<&'a serde_json::Value> {
    let fqn = build_fqn(&[key, value]);
    model["tags"]
        .as_array()?
        .iter()
        .find(|t| t["tagFQN"] == fqn.as_str())
}

/// Asserts the model carries the tag `key` = `value`, key and value.
fn assert_tag(model: &serde_json::Value, key: &str, value: &str) {
    let label = tag_label(model, key, value).unwrap_or_else(|| {
        panic!(
            "{} has no tag {key}={value}: {}",
            model["name"], model["tags"]
        )
    });
    assert_eq!(label["name"], value, "{label}");
}

/// `models list --json` on the test's catalog (`<dir>/c.db`).
fn listed_models(dir: &Path) -> Vec<serde_json::Value> {
    let db = dir.join("c.db");
    let out = run(&[
        "models",
        "list",
        "--json",
        "--catalog",
        db.to_str().unwrap(),
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[tokio::test]
async fn seeded_account_is_ingested_with_every_enrichment() {
    let moto = MotoServer::start().await.unwrap();
    let summary = seed(&sagemaker_client(&moto.endpoint(), None), &SeedSpec::demo())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), &moto.endpoint(), "");
    let wf = wf.to_str().unwrap();
    let db = dir.path().join("c.db");
    let db = db.to_str().unwrap();

    let out = run(&["ingest", "-c", wf, "--json"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let n = summary.models.len() as u64;
    assert_eq!(r["counts"]["listed"], n);
    assert_eq!(r["counts"]["created"], n);
    assert_eq!(r["counts"]["failed"], 0);
    assert_eq!(r["awsCalls"]["DescribeModel"], n);

    // Field by field, for every seeded model.
    let out = run(&["models", "list", "--json", "--catalog", db]);
    let models: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(models.len() as u64, n);
    for seeded in &summary.models {
        let m = models
            .iter()
            .find(|m| m["name"] == seeded.name.as_str())
            .expect(&seeded.name);
        assert_eq!(m["fullyQualifiedName"], format!("sm.{}", seeded.name));
        assert_eq!(m["extension"]["modelArn"], seeded.arn.as_str());
        if !seeded.image.is_empty() {
            assert_eq!(
                m["mlStore"]["imageRepository"],
                seeded.image.as_str(),
                "{}",
                seeded.name
            );
        }
        let mut labels = 0;
        for (k, v) in &seeded.tags {
            if k == "description" {
                assert_eq!(m["description"], v.as_str());
            } else if !v.is_empty() {
                assert_tag(m, k, v);
                labels += 1;
            }
        }
        assert_eq!(
            m["tags"].as_array().map(Vec::len).unwrap_or(0),
            labels,
            "{} tags: {}",
            seeded.name,
            m["tags"]
        );
        let hp = m["mlHyperParameters"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(
            hp,
            seeded.hyperparameters.len(),
            "{} hyperparameters",
            seeded.name
        );
        match &seeded.endpoint {
            Some(ep) => assert_eq!(
                m["server"],
                format!(
                    "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/{ep}/invocations"
                )
            ),
            None => assert!(
                m.get("server").is_none() || m["server"].is_null(),
                "{}",
                seeded.name
            ),
        }
        let features = m["mlFeatures"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(
            features > 0,
            !seeded.feature_groups.is_empty(),
            "{} features",
            seeded.name
        );
    }

    // A second run rewrites nothing, and describes nothing again: every model has the same
    // ARN and creation time, so only its tags are read (counted by moto's recorder).
    moto.start_recording().await.unwrap();
    let r = report(&run(&["ingest", "-c", wf, "--json"]));
    assert_eq!(r["counts"]["unchanged"], n, "{r}");
    assert_eq!(r["counts"]["created"], 0);
    assert_eq!(r["incremental"], n, "{r}");
    let calls = moto.recording().await.unwrap();
    assert_eq!(count(&calls, "DescribeModel"), 0);
    assert_eq!(count(&calls, "DescribeTrainingJob"), 0);
    // The tags come from the tagging API, a page per 100 tagged models (moto's pages also
    // stop at 100 tags, so at most 49 models of two tags each).
    assert_eq!(count(&calls, "ListTags"), 0);
    assert_eq!(r["tagsFromIndex"], n, "{r}");
    assert!(r["awsCalls"]["GetResources"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["awsCalls"].get("DescribeModel").is_none(), "{r}");

    // A tag changed in SageMaker reaches the catalog on the next incremental run.
    let tagged = &summary.models[1];
    sagemaker_client(&moto.endpoint(), None)
        .add_tags()
        .resource_arn(&tagged.arn)
        .tags(
            aws_sdk_sagemaker::types::Tag::builder()
                .key("owner")
                .value("ml-platform")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = report(&run(&["ingest", "-c", wf, "--json"]));
    assert_eq!(r["counts"]["updated"], 1, "{r}");
    assert_eq!(r["counts"]["unchanged"], n - 1, "{r}");
    let out = run(&["models", "show", &tagged.name, "--json", "--catalog", db]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_tag(&m, "owner", "ml-platform");
    for (k, v) in tagged
        .tags
        .iter()
        .filter(|(k, v)| k != "description" && !v.is_empty())
    {
        assert_tag(&m, k, v);
    }
    // Hyperparameters survive an incremental rebuild.
    let hp = m["mlHyperParameters"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(hp, tagged.hyperparameters.len());

    // `--full` describes everything again.
    moto.clear_recording().await.unwrap();
    let r = report(&run(&["ingest", "-c", wf, "--json", "--full"]));
    assert_eq!(r["incremental"], 0, "{r}");
    assert_eq!(r["counts"]["unchanged"], n, "{r}");
    assert_eq!(
        count(&moto.recording().await.unwrap(), "DescribeModel") as u64,
        n
    );
    moto.stop_recording().await.unwrap();

    // A model deleted in SageMaker is soft-deleted, and still shown with `deleted: true`.
    let gone = &summary.models[0].name;
    sagemaker_client(&moto.endpoint(), None)
        .delete_model()
        .model_name(gone)
        .send()
        .await
        .unwrap();
    let r = report(&run(&["ingest", "-c", wf, "--json"]));
    assert_eq!(r["counts"]["deleted"], 1, "{r}");
    let out = run(&["models", "show", gone, "--json", "--catalog", db]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["deleted"], true);
    let out = run(&["models", "list", "--json", "--catalog", db]);
    let live: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(live.len() as u64, n - 1);
}

#[tokio::test]
async fn filters_include_and_exclude() {
    let moto = MotoServer::start().await.unwrap();
    let summary = seed(&sagemaker_client(&moto.endpoint(), None), &SeedSpec::demo())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(
        dir.path(),
        &moto.endpoint(),
        "      mlModelFilterPattern:\n        includes: ['demo-.*-xgb']\n        excludes: ['.*fraud']\n",
    );
    moto.start_recording().await.unwrap();
    let r = report(&run(&["ingest", "-c", wf.to_str().unwrap(), "--json"]));
    let kept = summary
        .models
        .iter()
        .filter(|m| m.name.contains("-xgb") && !m.name.contains("fraud"))
        .count() as u64;
    assert!(kept > 0);
    assert_eq!(r["counts"]["created"], kept, "{r}");
    assert_eq!(r["counts"]["filtered"], summary.models.len() as u64 - kept);
    assert_eq!(
        count(&moto.recording().await.unwrap(), "DescribeModel") as u64,
        kept
    );
}

#[tokio::test]
async fn denied_training_jobs_still_ingest_every_model_with_a_warning() {
    let moto = MotoServer::start().await.unwrap();
    let summary = seed(&sagemaker_client(&moto.endpoint(), None), &SeedSpec::demo())
        .await
        .unwrap();
    // Everything the run uses except the training-job APIs (Search included: it would read the
    // training jobs in bulk). ListModelPackageGroups lists the model registry (empty here).
    let key = MotoIam::new(&moto.endpoint())
        .user_with_actions(
            "no-training",
            &[
                "sts:GetCallerIdentity",
                "sagemaker:ListModels",
                "sagemaker:ListModelPackageGroups",
                "sagemaker:DescribeModel",
                "sagemaker:ListTags",
                "sagemaker:ListEndpoints",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:ListFeatureGroups",
                "sagemaker:DescribeFeatureGroup",
            ],
        )
        .await
        .unwrap();
    let full = MotoIam::new(&moto.endpoint())
        .user_with_actions("everything", &["sts:GetCallerIdentity", "sagemaker:*"])
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow_as(
        dir.path(),
        &moto.endpoint(),
        (&key.access_key_id, &key.secret_access_key),
        "",
    );
    let n = summary.models.len() as u64;
    // The same first run at every log level, from a fresh catalog each time: nothing secret in
    // what it printed, the AWS SDK's debug and trace events included.
    for log in LOG_LEVELS {
        let _ = std::fs::remove_file(dir.path().join("c.db"));
        let out = run_logged(&["ingest", "-c", wf.to_str().unwrap(), "--json"], log);
        let r = report(&out);
        assert_eq!(out.status.code(), Some(0), "{r}");
        assert_eq!(r["counts"]["created"], n, "{r}");
        assert_eq!(r["counts"]["failed"], 0, "{r}");
        let warnings = r["warnings"].to_string();
        assert!(warnings.contains("sagemaker:DescribeTrainingJob"), "{r}");
        assert!(warnings.contains("hyperparameters"), "{r}");
        assert_not_printed(&out, &key.secret_access_key, log);
    }

    let models = listed_models(dir.path());
    assert_eq!(models.len() as u64, n);
    assert!(models
        .iter()
        .all(|m| m["mlHyperParameters"].as_array().is_none_or(Vec::is_empty)));

    // Once the permission is there (another key here), the next run describes again the
    // models whose training job it could not read, without --full, and fills them in.
    let wf = workflow_as(
        dir.path(),
        &moto.endpoint(),
        (&full.access_key_id, &full.secret_access_key),
        "",
    );
    let r = report(&run(&["ingest", "-c", wf.to_str().unwrap(), "--json"]));
    assert_eq!(r["counts"]["failed"], 0, "{r}");
    let with_jobs = summary
        .models
        .iter()
        .filter(|m| !m.hyperparameters.is_empty())
        .count() as u64;
    assert!(with_jobs > 0);
    // moto answers Search for training jobs: they come 100 a call, none described alone.
    assert!(r["awsCalls"]["Search"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["awsCalls"].get("DescribeTrainingJob").is_none(), "{r}");
    // Every model without a training job is unchanged and read incrementally; every model
    // with one is described again.
    assert_eq!(r["incremental"], n - with_jobs, "{r}");
    assert_eq!(r["counts"]["unchanged"], n - with_jobs, "{r}");
    assert_eq!(r["counts"]["updated"], with_jobs, "{r}");
    for seeded in &summary.models {
        let m = listed_models(dir.path())
            .into_iter()
            .find(|m| m["name"] == seeded.name.as_str())
            .unwrap();
        let hp = m["mlHyperParameters"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(hp, seeded.hyperparameters.len(), "{}", seeded.name);
    }
}

/// 240 tags: ListTags answers 100 a page (moto honours MaxResults), so three pages, and every
/// tag arrives with its value; the container's token is in no log at any level.
#[tokio::test]
async fn a_model_with_three_pages_of_tags_keeps_them_all() {
    const TAGS: usize = 240;
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let tag = |i: usize| {
        aws_sdk_sagemaker::types::Tag::builder()
            .key(format!("key-{i:03}"))
            .value(format!("value-{i:03}"))
            .build()
    };
    client
        .create_model()
        .model_name("tagged")
        .execution_role_arn("arn:aws:iam::123456789012:role/sagemaker")
        .primary_container(
            aws_sdk_sagemaker::types::ContainerDefinition::builder()
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1")
                .model_data_url("s3://bucket/tagged/model.tar.gz")
                .environment("HF_TOKEN", "hf_supersecretvalue")
                .build(),
        )
        .set_tags(Some((0..40).map(tag).collect()))
        .send()
        .await
        .unwrap();
    let arn = client
        .describe_model()
        .model_name("tagged")
        .send()
        .await
        .unwrap()
        .model_arn()
        .unwrap()
        .to_owned();
    for start in (40..TAGS).step_by(40) {
        client
            .add_tags()
            .resource_arn(&arn)
            .set_tags(Some((start..start + 40).map(tag).collect()))
            .send()
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    // The tagging API's GetResources brings all the tags at once.
    let wf = workflow(dir.path(), &moto.endpoint(), "");
    let r = report(&run(&["ingest", "-c", wf.to_str().unwrap(), "--json"]));
    assert_eq!(
        (r["counts"]["created"].as_u64(), r["tagsFromIndex"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert!(r["awsCalls"].get("ListTags").is_none(), "{r}");
    assert_eq!(all_tags(dir.path())["tags"].as_array().unwrap().len(), TAGS);
    // Without tag:GetResources, ListTags pages through them.
    let iam = MotoIam::new(&moto.endpoint());
    let user = iam
        .user_with_actions("no-tagging", &["sagemaker:*"])
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let wf = workflow_as(
        dir.path(),
        &moto.endpoint(),
        (&user.access_key_id, &user.secret_access_key),
        "",
    );
    moto.start_recording().await.unwrap();
    for log in LOG_LEVELS {
        let _ = std::fs::remove_file(dir.path().join("c.db"));
        moto.clear_recording().await.unwrap();
        let out = run_logged(&["ingest", "-c", wf.to_str().unwrap(), "--json"], log);
        let r = report(&out);
        assert_eq!(r["counts"]["created"], 1, "{r}");
        assert_eq!(r["awsCalls"]["ListTags"], 3, "{r}");
        assert_not_printed(&out, "hf_supersecretvalue", log);
    }
    let calls = moto.recording().await.unwrap();
    let pages: Vec<_> = calls
        .iter()
        .filter(|c| c.operation() == Some("ListTags"))
        .collect();
    assert_eq!(pages.len(), 3, "{calls:?}");
    // The second and third pages ask for the token the page before handed out.
    assert!(!pages[0].body.contains("NextToken"), "{}", pages[0].body);
    assert!(pages[1].body.contains("NextToken"), "{}", pages[1].body);
    assert!(pages[2].body.contains("NextToken"), "{}", pages[2].body);
    let m = all_tags(dir.path());
    assert_eq!(m["tags"].as_array().unwrap().len(), TAGS, "{m}");
    for i in 0..TAGS {
        assert_tag(&m, &format!("key-{i:03}"), &format!("value-{i:03}"));
    }
    // The container's token reaches neither the model nor the stored facts: no byte of the
    // catalog files holds it.
    assert!(!m.to_string().contains("hf_supersecretvalue"));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(19).any(|w| w == b"hf_supersecretvalue"),
            "{} holds the secret",
            path.display()
        );
    }
}

/// The fake honours MaxResults/NextToken (moto answers ListModels in one page), so paging is
/// tested here: 250 models take three ListModels pages of 100.
// The fake runs in this test's runtime while `run` blocks a thread on the child process:
// it needs a worker thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_one_page_of_models_against_the_fake() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(250))
        .await
        .unwrap();
    // Models read one by one (bulk reads through Search are tested in ingest's `search`).
    fake.handle().disable_bulk_search();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), &fake.endpoint(), "");
    let out = run(&["ingest", "-c", wf.to_str().unwrap(), "--json"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(r["counts"]["listed"], 250, "{r}");
    assert_eq!(r["counts"]["created"], 250, "{r}");
    assert_eq!(r["awsCalls"]["ListModels"], 3, "{r}");
    assert_eq!(fake.handle().calls("ListModels"), 3);
    assert_eq!(r["awsCalls"]["DescribeModel"], 250, "{r}");
    // Tags come from the tagging API's pages of 100, not one ListTags per model.
    assert_eq!(r["awsCalls"]["GetResources"], 3, "{r}");
    assert!(r["awsCalls"].get("ListTags").is_none(), "{r}");
    assert_eq!(r["tagsFromIndex"], 250, "{r}");
    // Not a terminal: progress goes to the log as plain lines, not a bar.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listed: 250 models to read"), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");
}

/// A listing that fails on page 3 (after the SDK's retries) ingests what it listed, marks
/// nothing deleted, and exits 3.
// The fake runs in this test's runtime while `run` blocks a thread on the child process:
// it needs a worker thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_failing_on_page_3_marks_nothing_deleted() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(250))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), &fake.endpoint(), "");
    let wf = wf.to_str().unwrap();
    let r = report(&run(&["ingest", "-c", wf, "--json"]));
    assert_eq!(r["counts"]["created"], 250, "{r}");

    fake.handle().fail_list_models_page(3, u64::MAX);
    let out = run(&["ingest", "-c", wf, "--json"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r}");
    assert_eq!(r["listingComplete"], false, "{r}");
    assert_eq!(r["counts"]["listed"], 200, "{r}");
    assert_eq!(r["counts"]["deleted"], 0, "{r}");
    assert!(
        r["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("ListModels"),
        "{r}"
    );
    let live = listed_models(dir.path());
    assert_eq!(live.len(), 250);
}

/// The per-model APIs limited to 40 calls/s with 16 workers: the run is throttled again and again,
/// learns each API's limit (see `pacing`), retries what was throttled and loses no model.
// The fake runs in this test's runtime while `run` blocks a thread on the child process:
// it needs a worker thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_storm_loses_no_model() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(120))
        .await
        .unwrap();
    let handle = fake.handle();
    // The storm is on the one-by-one reads: no bulk Search.
    handle.disable_bulk_search();
    for op in ["DescribeModel", "ListTags", "DescribeTrainingJob"] {
        handle.set_rate_limit(op, Some(40.0));
    }
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), &fake.endpoint(), "");
    let out = run(&["ingest", "-c", wf.to_str().unwrap(), "--json"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(r["counts"]["created"], 120, "{r}");
    assert_eq!(r["counts"]["failed"], 0, "{r}");
    assert!(handle.throttled() > 0, "the storm never happened");
    assert!(r["retries"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn schedule_mode_needs_a_valid_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), "http://127.0.0.1:9", "");
    let out = run(&["ingest", "-c", wf.to_str().unwrap(), "--schedule"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--schedule needs sourceConfig.config.schedule"),
        "{stderr}"
    );

    let wf = workflow(
        dir.path(),
        "http://127.0.0.1:9",
        "      schedule: '61 * * * *'\n",
    );
    let out = run(&["ingest", "-c", wf.to_str().unwrap(), "--schedule"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "source.sourceConfig.config.schedule: minute `61` is not valid (0-59): number out of bounds"
        ),
        "{stderr}"
    );
}
