//! AWS errors end to end: what `sagebridge test-connection` prints when moto, enforcing IAM,
//! rejects the credentials or the resource lives in another region. The classifier's unit tests
//! (`crates/aws/src/error.rs`) work on recorded answers; these check the same causes come out of
//! the real binary, the real SDK and a real peer.
//!
//! moto never answers `ExpiredToken` (it does not check session expiry): the expired-token case
//! here is the closest moto produces, a session token that is not the one issued with the access
//! key, which it rejects as `InvalidClientTokenId`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use aws_sdk_sagemaker::types::{ContainerDefinition, ProductionVariant};
use sagebridge_testkit::{sagemaker_client, sts_client, AccessKey, MotoIam, MotoServer};
use serde_json::Value;

/// A workflow file whose `awsConfig` is `region`, the given key lines and moto's endpoint.
fn workflow(dir: &Path, endpoint: &str, key_lines: &str) -> PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: sm\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n        awsRegion: us-east-1\n{key_lines}        endPointURL: {endpoint}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\nsink:\n  type: catalog\n  config:\n    path: {}\n",
        dir.join("c.db").display()
    );
    let path = dir.join("workflow.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `awsAccessKeyId` / `awsSecretAccessKey` (and `awsSessionToken`) lines of a workflow.
fn key_lines(id: &str, secret: &str, token: Option<&str>) -> String {
    let mut lines = format!("        awsAccessKeyId: {id}\n        awsSecretAccessKey: {secret}\n");
    if let Some(token) = token {
        lines.push_str(&format!("        awsSessionToken: {token}\n"));
    }
    lines
}

/// Runs the binary without blocking the test's runtime, the machine's AWS settings removed.
async fn sagebridge(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sagebridge"));
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("test-connection finished within 60 s")
        .expect("run sagebridge")
}

/// `test-connection --json` and the human table for `config`; both must exit 1.
async fn test_connection(config: &Path) -> (Value, String) {
    let config = config.to_str().unwrap();
    let out = sagebridge(&["test-connection", "-c", config, "--json"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: stdout:\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(report["passed"], false, "{report}");
    let out = sagebridge(&["test-connection", "-c", config]).await;
    assert_eq!(out.status.code(), Some(1));
    let table =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (report, table)
}

/// The first failed step, which must be mandatory (the rest are skipped or fail the same way).
fn first_failure(report: &Value) -> &Value {
    let step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["passed"] == false)
        .unwrap_or_else(|| panic!("no failed step in {report}"));
    assert_eq!(step["mandatory"], true, "{step}");
    step
}

/// Asserts the first failure is `kind` with an error that starts with `cause` and names `code`,
/// the table prints the same sentence, and `secret` appears nowhere.
fn assert_cause(report: &Value, table: &str, kind: &str, cause: &str, code: &str, secret: &str) {
    let step = first_failure(report);
    assert_eq!(step["errorKind"], kind, "{step}");
    let error = step["error"].as_str().unwrap();
    assert!(error.starts_with(cause), "{error}");
    assert!(error.contains(code), "{error}");
    assert!(table.contains(error), "{table}");
    assert!(!report.to_string().contains(secret), "{report}");
    assert!(!table.contains(secret), "{table}");
}

/// moto with IAM enforced and one user allowed to read SageMaker.
async fn enforcing_moto() -> (MotoServer, AccessKey) {
    let moto = MotoServer::start().await.unwrap();
    let key = MotoIam::new(&moto.endpoint())
        .user_with_actions("reader", &["sts:GetCallerIdentity", "sagemaker:*"])
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();
    (moto, key)
}

const REJECTED: &str = "AWS rejected the credentials: ";

#[tokio::test]
async fn an_unknown_access_key_id_is_invalid_client_token_id() {
    let (moto, _) = enforcing_moto().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "an-unknown-keys-secret-value";
    let wf = workflow(
        dir.path(),
        &moto.endpoint(),
        &key_lines("AKIAUNKNOWNKEY000000", secret, None),
    );
    let (report, table) = test_connection(&wf).await;
    assert_cause(
        &report,
        &table,
        "InvalidCredentials",
        REJECTED,
        "InvalidClientTokenId",
        secret,
    );
}

#[tokio::test]
async fn a_wrong_secret_is_signature_does_not_match() {
    let (moto, key) = enforcing_moto().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "not-the-secret-of-this-key";
    let wf = workflow(
        dir.path(),
        &moto.endpoint(),
        &key_lines(&key.access_key_id, secret, None),
    );
    let (report, table) = test_connection(&wf).await;
    assert_cause(
        &report,
        &table,
        "InvalidCredentials",
        REJECTED,
        "SignatureDoesNotMatch",
        secret,
    );
    assert!(!table.contains(&key.secret_access_key));

    // The same key with its own secret passes: the secret alone made the difference.
    let wf = workflow(
        dir.path(),
        &moto.endpoint(),
        &key_lines(&key.access_key_id, &key.secret_access_key, None),
    );
    let out = sagebridge(&["test-connection", "-c", wf.to_str().unwrap(), "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// moto cannot expire a session token (see the module docs): a temporary key sent with the
/// token of another session is what it rejects, as `InvalidClientTokenId`.
#[tokio::test]
async fn a_session_token_that_is_not_the_keys_is_rejected() {
    let moto = MotoServer::start().await.unwrap();
    let role = MotoIam::new(&moto.endpoint())
        .role_with_actions(
            "reader",
            "arn:aws:iam::123456789012:root",
            None,
            &["sts:GetCallerIdentity", "sagemaker:*"],
        )
        .await
        .unwrap();
    let sts = sts_client(&moto.endpoint(), None);
    let mut sessions = Vec::new();
    for name in ["first", "second"] {
        let out = sts
            .assume_role()
            .role_arn(&role)
            .role_session_name(name)
            .send()
            .await
            .unwrap();
        sessions.push(out.credentials.unwrap());
    }
    moto.reset_auth(0).await.unwrap();
    let (first, second) = (&sessions[0], &sessions[1]);
    let dir = tempfile::tempdir().unwrap();

    // The first session's key and token work...
    let wf = workflow(
        dir.path(),
        &moto.endpoint(),
        &key_lines(
            &first.access_key_id,
            &first.secret_access_key,
            Some(&first.session_token),
        ),
    );
    let out = sagebridge(&["test-connection", "-c", wf.to_str().unwrap(), "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // ...with the second session's token they do not.
    let wf = workflow(
        dir.path(),
        &moto.endpoint(),
        &key_lines(
            &first.access_key_id,
            &first.secret_access_key,
            Some(&second.session_token),
        ),
    );
    let (report, table) = test_connection(&wf).await;
    assert_cause(
        &report,
        &table,
        "InvalidCredentials",
        REJECTED,
        "InvalidClientTokenId",
        &first.secret_access_key,
    );
    assert!(!table.contains(&second.session_token), "{table}");
    assert!(!report.to_string().contains(&second.session_token));
}

/// An endpoint in us-east-1 checked by a gateway configured for eu-west-1: moto has no such
/// endpoint there, and test-connection says to look at the region.
#[tokio::test]
async fn an_endpoint_in_another_region_is_not_found_in_the_configured_one() {
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    client
        .create_model()
        .model_name("chat-model")
        .execution_role_arn("arn:aws:iam::123456789012:role/sagemaker")
        .primary_container(
            ContainerDefinition::builder()
                .image("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.3")
                .build(),
        )
        .send()
        .await
        .unwrap();
    client
        .create_endpoint_config()
        .endpoint_config_name("chat-config")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("chat-model")
                .initial_instance_count(1)
                .instance_type("ml.g4dn.xlarge".into())
                .build(),
        )
        .send()
        .await
        .unwrap();
    client
        .create_endpoint()
        .endpoint_name("chat-endpoint")
        .endpoint_config_name("chat-config")
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let gateway = |region: &str| {
        let path = dir.path().join(format!("gateway-{region}.yaml"));
        std::fs::write(
            &path,
            format!(
                "awsConfig:\n  awsRegion: {region}\n  awsAccessKeyId: testing\n  awsSecretAccessKey: testing-secret-value\n  endPointURL: {}\nmodels:\n  - {{name: chat, kind: chat, endpointName: chat-endpoint, format: tgi}}\n",
                moto.endpoint()
            ),
        )
        .unwrap();
        path
    };

    // In its own region the endpoint is found and in service.
    let out = sagebridge(&[
        "test-connection",
        "-c",
        gateway("us-east-1").to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let (report, table) = test_connection(&gateway("eu-west-1")).await;
    let step = first_failure(&report);
    assert_eq!(step["errorKind"], "NotFound", "{step}");
    let error = step["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "endpoint `chat-endpoint` not found in eu-west-1; is it in another region or account?"
        ),
        "{step}"
    );
    assert!(table.contains(error), "{table}");
    assert!(!table.contains("testing-secret-value"), "{table}");
}
