//! AWS access and `sagebridge test-connection` against a real moto server (one per test).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_async::time::{SharedTimeSource, TimeSource};
use sagebridge_aws::{AwsConfig, ClientOptions, Clients, Secret};
use sagebridge_testkit::{count, sagemaker_client, MotoIam, MotoServer};

const ACCOUNT: &str = "123456789012";

fn aws(endpoint: &str) -> AwsConfig {
    AwsConfig {
        aws_access_key_id: Some("testing".into()),
        aws_secret_access_key: Some(Secret::new("testing")),
        aws_region: Some("us-east-1".into()),
        end_point_url: Some(endpoint.into()),
        assume_role_session_name: "OpenMetadataSession".into(),
        ..Default::default()
    }
}

/// A workflow file with the given `awsConfig` body (YAML lines, indented by the caller).
fn workflow(dir: &Path, aws_lines: &str) -> std::path::PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: test_sm\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n{aws_lines}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\nsink:\n  type: catalog\n  config:\n    path: {}\n",
        dir.join("catalog.db").display()
    );
    let path = dir.join("workflow.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sagebridge(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sagebridge"));
    cmd.args(args);
    // The default credential chain must not find anything of the machine's.
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run sagebridge")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn static_keys_with_session_token() {
    let moto = MotoServer::start().await.unwrap();
    moto.start_recording().await.unwrap();
    let mut cfg = aws(&moto.endpoint());
    cfg.aws_session_token = Some(Secret::new("session-token-value"));
    let clients = Clients::new(&cfg, &ClientOptions::no_retries())
        .await
        .unwrap();
    let id = clients.sts.get_caller_identity().send().await.unwrap();
    assert_eq!(id.account(), Some(ACCOUNT));
    let calls = moto.recording().await.unwrap();
    let call = calls
        .iter()
        .find(|c| c.operation() == Some("GetCallerIdentity"))
        .expect("recorded");
    assert_eq!(
        call.header("x-amz-security-token"),
        Some("session-token-value")
    );
    assert!(call
        .header("authorization")
        .unwrap()
        .contains("Credential=testing/"));
}

#[tokio::test]
async fn named_profile_from_config_files() {
    let moto = MotoServer::start().await.unwrap();
    moto.start_recording().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let creds = dir.path().join("credentials");
    std::fs::write(&config, "[profile ml-reader]\nregion = eu-west-1\n").unwrap();
    std::fs::write(&creds, "[ml-reader]\naws_access_key_id = AKIAPROFILEKEY\naws_secret_access_key = profile-secret-value\n").unwrap();
    let wf = workflow(
        dir.path(),
        &format!(
            "        awsRegion: us-east-1\n        profileName: ml-reader\n        endPointURL: {}",
            moto.endpoint()
        ),
    );
    let out = sagebridge(
        &["test-connection", "-c", wf.to_str().unwrap()],
        &[
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("profile `ml-reader`"), "{stdout}");
    assert!(!stdout.contains("profile-secret-value") && !stderr.contains("profile-secret-value"));
    let calls = moto.recording().await.unwrap();
    let sts = calls
        .iter()
        .find(|c| c.operation() == Some("GetCallerIdentity"))
        .expect("recorded");
    assert!(sts
        .header("authorization")
        .unwrap()
        .contains("Credential=AKIAPROFILEKEY/"));
}

#[tokio::test]
async fn assume_role_sends_session_name_source_identity_and_external_id_to_the_override() {
    let moto = MotoServer::start().await.unwrap();
    let iam = MotoIam::new(&moto.endpoint());
    let role = iam
        .role_with_actions(
            "reader",
            &format!("arn:aws:iam::{ACCOUNT}:root"),
            None,
            &["sagemaker:*"],
        )
        .await
        .unwrap();
    moto.start_recording().await.unwrap();
    let mut cfg = aws(&moto.endpoint());
    cfg.assume_role_arn = Some(role.clone());
    cfg.assume_role_session_name = "IngestSession".into();
    cfg.assume_role_source_identity = Some("data-platform".into());
    cfg.assume_role_external_id = Some("ext-1234".into());
    let clients = Clients::new(&cfg, &ClientOptions::no_retries())
        .await
        .unwrap();
    let id = clients.sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        id.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/reader/IngestSession").as_str())
    );
    // STS went to the endpoint override: moto recorded the AssumeRole call.
    let calls = moto.recording().await.unwrap();
    let assume = calls
        .iter()
        .find(|c| c.operation() == Some("AssumeRole"))
        .expect("AssumeRole recorded");
    assert_eq!(assume.form_field("RoleArn").as_deref(), Some(role.as_str()));
    assert_eq!(
        assume.form_field("RoleSessionName").as_deref(),
        Some("IngestSession")
    );
    assert_eq!(
        assume.form_field("SourceIdentity").as_deref(),
        Some("data-platform")
    );
    assert_eq!(assume.form_field("ExternalId").as_deref(), Some("ext-1234"));
}

#[tokio::test]
async fn assume_role_default_session_name() {
    let moto = MotoServer::start().await.unwrap();
    let iam = MotoIam::new(&moto.endpoint());
    let role = iam
        .create_role(
            "r2",
            &sagebridge_testkit::iam::trust_policy(&format!("arn:aws:iam::{ACCOUNT}:root"), None),
        )
        .await
        .unwrap();
    let env = |_: &str| None;
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: s\n  serviceConnection:\n    config:\n      awsConfig:\n        awsRegion: us-east-1\n        awsAccessKeyId: testing\n        awsSecretAccessKey: testing\n        endPointURL: {}\n        assumeRoleArn: {role}\n",
        moto.endpoint()
    );
    let cfg = sagebridge_ingest::config::WorkflowConfig::parse("w.yaml", &text, &env).unwrap();
    assert_eq!(cfg.aws().assume_role_session_name, "OpenMetadataSession");
    let clients = Clients::new(cfg.aws(), &ClientOptions::no_retries())
        .await
        .unwrap();
    let id = clients.sts.get_caller_identity().send().await.unwrap();
    assert!(
        id.arn()
            .unwrap()
            .ends_with("assumed-role/r2/OpenMetadataSession"),
        "{:?}",
        id.arn()
    );
}

#[tokio::test]
async fn cross_account_role_sees_the_other_accounts_models() {
    let moto = MotoServer::start().await.unwrap();
    let other = "222222222222";
    let theirs = sagemaker_client(&moto.endpoint(), Some(other));
    let ours = sagemaker_client(&moto.endpoint(), None);
    for (client, name) in [(&theirs, "their-model"), (&ours, "our-model")] {
        client
            .create_model()
            .model_name(name)
            .execution_role_arn("arn:aws:iam::123456789012:role/x")
            .primary_container(
                aws_sdk_sagemaker::types::ContainerDefinition::builder()
                    .image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
                    .model_data_url("s3://b/m.tar.gz")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let role = MotoIam::in_account(&moto.endpoint(), other)
        .role_with_actions(
            "cross",
            &format!("arn:aws:iam::{ACCOUNT}:root"),
            None,
            &["sagemaker:*"],
        )
        .await
        .unwrap();
    let mut cfg = aws(&moto.endpoint());
    cfg.assume_role_arn = Some(role);
    let clients = Clients::new(&cfg, &ClientOptions::no_retries())
        .await
        .unwrap();
    let id = clients.sts.get_caller_identity().send().await.unwrap();
    assert_eq!(id.account(), Some(other));
    let models = clients.sagemaker.list_models().send().await.unwrap();
    let names: Vec<_> = models
        .models()
        .iter()
        .filter_map(|m| m.model_name())
        .collect();
    assert_eq!(names, vec!["their-model"]);
}

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TimeSource for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn assumed_credentials_are_refreshed_before_they_expire() {
    let moto = MotoServer::start().await.unwrap();
    let role = MotoIam::new(&moto.endpoint())
        .role_with_actions(
            "refresh",
            &format!("arn:aws:iam::{ACCOUNT}:root"),
            None,
            &["sagemaker:*"],
        )
        .await
        .unwrap();
    let clock = TestClock(Arc::new(Mutex::new(SystemTime::now())));
    let mut cfg = aws(&moto.endpoint());
    cfg.assume_role_arn = Some(role);
    let options = ClientOptions {
        time_source: Some(SharedTimeSource::new(clock.clone())),
        ..ClientOptions::no_retries()
    };
    let clients = Clients::new(&cfg, &options).await.unwrap();
    moto.start_recording().await.unwrap();
    let assumes = || async { count(&moto.recording().await.unwrap(), "AssumeRole") };

    clients.sagemaker.list_models().send().await.unwrap();
    // moto issued the one-hour credentials between `start` and `issued` (its clock is this
    // machine's): they expire in [start + 1 h, issued + 1 h]. The SDK refreshes them between
    // 10 s and 5 s before expiry (random jitter), so every check below keeps clear of that
    // window whatever the setup took.
    let start = *clock.0.lock().unwrap();
    let issued = SystemTime::now();
    assert_eq!(assumes().await, 1);
    // Half an hour later the one-hour credentials are still good: no new AssumeRole.
    *clock.0.lock().unwrap() = start + Duration::from_secs(30 * 60);
    clients.sagemaker.list_models().send().await.unwrap();
    assert_eq!(assumes().await, 1);
    // A minute before the earliest expiry, still no refresh.
    *clock.0.lock().unwrap() = start + Duration::from_secs(59 * 60);
    clients.sagemaker.list_models().send().await.unwrap();
    assert_eq!(assumes().await, 1);
    // At most 2 s before the latest expiry (less than the 5 s the SDK keeps at least): refreshed.
    *clock.0.lock().unwrap() = issued + Duration::from_secs(60 * 60 - 2);
    clients.sagemaker.list_models().send().await.unwrap();
    assert_eq!(assumes().await, 2);
}

async fn seed_one_model(moto: &MotoServer) {
    sagemaker_client(&moto.endpoint(), None)
        .create_model()
        .model_name("churn-xgb")
        .execution_role_arn("arn:aws:iam::123456789012:role/x")
        .primary_container(
            aws_sdk_sagemaker::types::ContainerDefinition::builder()
                .image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
                .model_data_url("s3://b/churn/output/model.tar.gz")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn json_steps(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(out)))
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn missing_list_tags_permission_fails_exactly_at_list_tags() {
    let moto = MotoServer::start().await.unwrap();
    seed_one_model(&moto).await;
    let iam = MotoIam::new(&moto.endpoint());
    let key = iam
        .user_with_actions(
            "limited",
            &[
                "sts:GetCallerIdentity",
                "sagemaker:ListModels",
                "sagemaker:DescribeModel",
            ],
        )
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(
        dir.path(),
        &format!(
            "        awsRegion: us-east-1\n        awsAccessKeyId: {}\n        awsSecretAccessKey: ${{TEST_SECRET}}\n        endPointURL: {}",
            key.access_key_id,
            moto.endpoint()
        ),
    );
    let out = sagebridge(
        &["test-connection", "-c", wf.to_str().unwrap(), "--json"],
        &[("TEST_SECRET", &key.secret_access_key)],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report = json_steps(&out);
    assert_eq!(report["passed"], false);
    for ok in ["GetCallerIdentity", "ListModels", "DescribeModel"] {
        assert_eq!(step(&report, ok)["passed"], true, "{ok}: {report}");
    }
    let tags = step(&report, "ListTags");
    assert_eq!(tags["passed"], false);
    assert_eq!(tags["mandatory"], true);
    assert_eq!(tags["errorKind"], "AccessDenied");
    let msg = tags["error"].as_str().unwrap();
    assert!(
        msg.contains("sagemaker:ListTags") && msg.contains("user/limited"),
        "{msg}"
    );
    // Optional steps fail as warnings that say what the permission would add.
    let training = step(&report, "DescribeTrainingJob");
    assert_eq!(
        (
            training["passed"].as_bool(),
            training["mandatory"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert!(training["detail"]
        .as_str()
        .unwrap()
        .contains("hyperparameters"));
    assert!(!stdout.contains(&key.secret_access_key) && !stderr.contains(&key.secret_access_key));

    // The same run for people: a table.
    let out = sagebridge(
        &["test-connection", "-c", wf.to_str().unwrap()],
        &[("TEST_SECRET", &key.secret_access_key)],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ListTags") && l.contains("FAILED")),
        "{stdout}"
    );
    assert!(!stdout.contains(&key.secret_access_key));
}

#[tokio::test]
async fn wrong_external_id_fails_at_get_caller_identity() {
    let moto = MotoServer::start().await.unwrap();
    let iam = MotoIam::new(&moto.endpoint());
    let key = iam
        .user_with_actions("ingest", &["sts:AssumeRole", "sts:GetCallerIdentity"])
        .await
        .unwrap();
    let role = iam
        .role_with_actions(
            "guarded",
            &format!("arn:aws:iam::{ACCOUNT}:user/ingest"),
            Some("the-right-id"),
            &["sagemaker:*", "sts:GetCallerIdentity"],
        )
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(
        dir.path(),
        &format!(
            "        awsRegion: us-east-1\n        awsAccessKeyId: {}\n        awsSecretAccessKey: {}\n        endPointURL: {}\n        assumeRoleArn: {role}\n        assumeRoleExternalId: a-wrong-id",
            key.access_key_id,
            key.secret_access_key,
            moto.endpoint()
        ),
    );
    let out = sagebridge(
        &["test-connection", "-c", wf.to_str().unwrap(), "--json"],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report = json_steps(&out);
    let check = step(&report, "GetCallerIdentity");
    assert_eq!(check["passed"], false);
    assert_eq!(check["errorKind"], "AccessDenied");
    assert!(
        check["error"].as_str().unwrap().contains("sts:AssumeRole"),
        "{check}"
    );
    assert!(step(&report, "ListModels")["error"]
        .as_str()
        .unwrap()
        .starts_with("skipped"));
    assert!(!stdout.contains(&key.secret_access_key) && !stderr.contains(&key.secret_access_key));
}

/// Bad configurations: exit 2 and an error that names file, line and the problem.
#[test]
fn bad_configs_are_rejected_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        ("missing region", "        awsAccessKeyId: k\n        awsSecretAccessKey: supersecretvalue", &[":8:9:", "awsConfig.awsRegion: awsRegion is required"]),
        ("misspelt key", "        awsRegion: us-east-1\n        awsRegoin: us-east-1", &[":9:9:", "unknown key `awsRegoin`", "did you mean `awsRegion`"]),
        ("invalid ARN", "        awsRegion: us-east-1\n        assumeRoleArn: arn:aws:iam::1234:role/x", &[":9:", "invalid ARN `arn:aws:iam::1234:role/x`", "not 12 digits"]),
        ("bad region", "        awsRegion: Virginia", &[":8:", "`Virginia` is not an AWS region name"]),
        ("wrong type", "        awsRegion: us-east-1\n        enabled: [1]", &[":9:", "awsConfig.enabled", "invalid type"]),
        ("bad session name", "        awsRegion: us-east-1\n        assumeRoleArn: arn:aws:iam::123456789012:role/x\n        assumeRoleSessionName: 'a b'", &["assumeRoleSessionName", "2 to 64"]),
    ];
    for (name, aws_lines, expected) in cases {
        let wf = workflow(dir.path(), aws_lines);
        let out = sagebridge(&["test-connection", "-c", wf.to_str().unwrap()], &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {stdout}\n{stderr}");
        for e in *expected {
            assert!(stderr.contains(e), "{name}: expected `{e}` in:\n{stderr}");
        }
        assert!(stderr.contains("workflow.yaml:"), "{name}: {stderr}");
        assert!(
            !stderr.contains("supersecretvalue") && !stdout.contains("supersecretvalue"),
            "{name}"
        );
    }
}

#[test]
fn bad_filter_patterns() {
    let env = |_: &str| None;
    let base = "source:\n  type: sagemaker\n  serviceName: s\n  serviceConnection:\n    config:\n      awsConfig:\n        awsRegion: us-east-1\n  sourceConfig:\n    config:\n";
    let parse = |extra: &str| {
        sagebridge_ingest::config::WorkflowConfig::parse("w.yaml", &format!("{base}{extra}"), &env)
            .unwrap_err()
            .to_string()
    };
    let e = parse("      mlModelFilterPattern: []\n");
    assert!(e.contains("w.yaml:10:29: source.sourceConfig.config.mlModelFilterPattern: expected a mapping with the keys excludes, includes, found a list"), "{e}");
    let e = parse(
        "      mlModelFilterPattern:\n        includes: ['prod-(']\n        excludes: ['[z-a]']\n",
    );
    assert!(e.contains("w.yaml:11:20: source.sourceConfig.config.mlModelFilterPattern.includes[0]: invalid regular expression `prod-(`"), "{e}");
    assert!(e.contains("w.yaml:12:20: source.sourceConfig.config.mlModelFilterPattern.excludes[0]: invalid regular expression `[z-a]`"), "{e}");
    // Every problem at once: two unknown keys and a wrong type in one file.
    let e = parse("      includez: [a]\n      mlModelFilterPattern: {excludes: [a], include: [b]}\n      markDeletedMlModels: maybe\n");
    assert!(
        e.contains("w.yaml:10:7: source.sourceConfig.config.includez: unknown key `includez`"),
        "{e}"
    );
    assert!(e.contains("w.yaml:11:45: source.sourceConfig.config.mlModelFilterPattern.include: unknown key `include` (did you mean `includes`?)"), "{e}");
    assert!(e.contains("w.yaml:12:28: source.sourceConfig.config.markDeletedMlModels: invalid type: string \"maybe\", expected a boolean"), "{e}");
    assert!(e.starts_with("3 problems"), "{e}");
    // A wrong type first does not hide what comes after it: the misspelt key below it, the
    // bad regex, and the validation of the AWS config (an invalid region) are all reported.
    let e = sagebridge_ingest::config::WorkflowConfig::parse(
        "w.yaml",
        "source:\n  type: sagemaker\n  serviceName: [not, a, name]\n  serviceConnection:\n    config:\n      awsConfig:\n        awsRegion: Virginia\n  sourceConfig:\n    config:\n      markDeletedMlModels: maybe\n      mlModelFilterPattern: {includes: ['(']}\n      concurency: 4\n",
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("5 problems"), "{e}");
    assert!(
        e.contains("w.yaml:3:16: source.serviceName: expected a string, found a list"),
        "{e}"
    );
    assert!(e.contains("w.yaml:7:20: source.serviceConnection.config.awsConfig.awsRegion: `Virginia` is not an AWS region name"), "{e}");
    assert!(
        e.contains("w.yaml:10:28: source.sourceConfig.config.markDeletedMlModels: invalid type"),
        "{e}"
    );
    assert!(e.contains("w.yaml:11:41: source.sourceConfig.config.mlModelFilterPattern.includes[0]: invalid regular expression `(`"), "{e}");
    assert!(e.contains("w.yaml:12:7: source.sourceConfig.config.concurency: unknown key `concurency` (did you mean `concurrency`?)"), "{e}");
}

#[test]
fn examples_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for f in [
        "examples/local.yaml",
        "examples/sagemaker.yaml",
        "examples/openmetadata.yaml",
    ] {
        let cfg = sagebridge_ingest::config::WorkflowConfig::load(&root.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(cfg.aws().region(), "us-east-1");
        assert!(cfg.filter().is_ok());
    }
}

/// `stsEndPointURL` and `runtimeEndPointURL` send each service to its own endpoint (a SageMaker
/// API VPC endpoint with regional STS): here STS and SageMaker on two moto servers, the shared
/// `endPointURL` on neither; each server sees only its own calls.
#[tokio::test]
async fn each_service_goes_to_its_own_endpoint() {
    let api = MotoServer::start().await.unwrap();
    let sts = MotoServer::start().await.unwrap();
    api.start_recording().await.unwrap();
    sts.start_recording().await.unwrap();
    let cfg = AwsConfig {
        end_point_url: Some(api.endpoint()),
        sts_end_point_url: Some(sts.endpoint()),
        runtime_end_point_url: Some(format!("{}/runtime-not-used", sts.endpoint())),
        ..aws("http://127.0.0.1:9")
    };
    let clients = Clients::new(&cfg, &ClientOptions::no_retries())
        .await
        .unwrap();
    clients.sts.get_caller_identity().send().await.unwrap();
    clients.sagemaker.list_models().send().await.unwrap();
    let api_calls = api.recording().await.unwrap();
    let sts_calls = sts.recording().await.unwrap();
    assert_eq!(count(&sts_calls, "GetCallerIdentity"), 1, "{sts_calls:?}");
    assert_eq!(count(&api_calls, "GetCallerIdentity"), 0);
    assert_eq!(count(&api_calls, "ListModels"), 1, "{api_calls:?}");
    assert_eq!(count(&sts_calls, "ListModels"), 0);

    // AssumeRole goes to the STS endpoint too.
    let role = AwsConfig {
        assume_role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/reader")),
        ..cfg.clone()
    };
    let clients = Clients::new(&role, &ClientOptions::no_retries())
        .await
        .unwrap();
    clients.sagemaker.list_models().send().await.unwrap();
    let sts_calls = sts.recording().await.unwrap();
    assert_eq!(count(&sts_calls, "AssumeRole"), 1, "{sts_calls:?}");
    assert_eq!(count(&api.recording().await.unwrap(), "AssumeRole"), 0);
    // The runtime client was built at its own endpoint (not called here: moto has no runtime
    // for these models; the gateway tests invoke through it).
    assert_eq!(
        sagebridge_aws::clients::runtime_endpoint(&cfg).as_deref(),
        Some(format!("{}/runtime-not-used", sts.endpoint()).as_str())
    );
}
