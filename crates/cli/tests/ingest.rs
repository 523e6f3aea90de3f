//! `sagebridge ingest` end to end: moto seeded with a realistic account, and the fast fake
//! for paging failures, into a real SQLite catalog.

use std::path::Path;
use std::process::{Command, Output};

use sagebridge_testkit::{count, sagemaker_client, seed, MotoServer, SeedSpec};

fn workflow(dir: &Path, endpoint: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: sm\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n        awsAccessKeyId: testing\n        awsSecretAccessKey: testing\n        awsRegion: us-east-1\n        endPointURL: {endpoint}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\n{extra}sink:\n  type: catalog\n  config:\n    path: {}\n",
        dir.join("c.db").display()
    );
    let p = dir.join("wf.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagebridge"))
        .args(args)
        .output()
        .unwrap()
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
        for (k, v) in &seeded.tags {
            if k == "description" {
                assert_eq!(m["description"], v.as_str());
            } else if !v.is_empty() {
                let labels = m["tags"].as_array().unwrap();
                assert!(
                    labels
                        .iter()
                        .any(|t| t["tagFQN"].as_str().unwrap().contains(k.as_str())),
                    "{} tag {k}",
                    seeded.name
                );
            }
        }
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

    // A second run rewrites nothing.
    let r = report(&run(&["ingest", "-c", wf, "--json"]));
    assert_eq!(r["counts"]["unchanged"], n, "{r}");
    assert_eq!(r["counts"]["created"], 0);

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
async fn filters_and_denied_training_jobs() {
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
