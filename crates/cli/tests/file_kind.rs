//! `test-connection` tells a workflow from a gateway file by its top-level keys (`source:` ->
//! workflow, `models:`/`server:` -> gateway) and says so, with exit 2, when a file is neither.
//! Each case is routed to a loader that reports a config problem, so no AWS is needed: the
//! error's key path shows which loader read the file.

use std::path::Path;
use std::process::{Command, Output};

fn test_connection(path: &Path) -> (i32, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_sagebridge"))
        .args(["test-connection", "-c"])
        .arg(path)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run sagebridge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_file_that_is_neither_kind_is_a_usage_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "sink.yaml", "sink:\n  type: catalog\n");
    let (code, stderr) = test_connection(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {} is neither an ingestion workflow (top-level `source:`) nor a gateway file (top-level `models:` or `server:`): its top-level keys are sink",
            p.display()
        )),
        "{stderr}"
    );

    let p = file(dir.path(), "empty.yaml", "# nothing here\n");
    let (code, stderr) = test_connection(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("it has no top-level keys"), "{stderr}");

    let p = file(
        dir.path(),
        "both.yaml",
        "source:\n  type: sagemaker\nmodels: []\n",
    );
    let (code, stderr) = test_connection(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("has both `source:` (an ingestion workflow) and `models:`/`server:`"),
        "{stderr}"
    );
}

/// A workflow written in flow style with a quoted key (no line starts with `source:`) is still
/// a workflow: the workflow loader reports its unknown key.
#[test]
fn a_workflow_is_known_by_its_parsed_keys_not_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        dir.path(),
        "wf.yaml",
        "# ingestion\n{\"source\": {type: sagemaker, serviceName: sm, serviceConnection: {config: {type: SageMaker, awsConfig: {awsRegion: us-east-1, bogusKey: 1}}}, sourceConfig: {config: {type: MlModelMetadata}}}, sink: {type: catalog}}\n",
    );
    let (code, stderr) = test_connection(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("source.serviceConnection.config.awsConfig.bogusKey"),
        "{stderr}"
    );
}

/// `server:` (or `models:`) alone makes a gateway file: the gateway loader reports its problem.
#[test]
fn a_gateway_file_is_known_by_server_or_models() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        dir.path(),
        "gw.yaml",
        "server:\n  listen: nowhere\nmodels: []\n",
    );
    let (code, stderr) = test_connection(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("server.listen: `nowhere` is not an address with a port"),
        "{stderr}"
    );
}

/// A file that cannot be read or parsed is reported by the loader, with its location.
#[test]
fn unreadable_or_invalid_files_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let (code, stderr) = test_connection(&missing);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read the file"), "{stderr}");

    let p = file(dir.path(), "broken.yaml", "source: [\n");
    let (code, stderr) = test_connection(&p);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid YAML"), "{stderr}");
}
