//! A quick throughput check: 10,000 models written in batches of 500, then written again
//! unchanged. The time is printed (run with `--nocapture`), not asserted: machines differ.

use std::time::Instant;

use sagebridge_catalog::{
    Catalog, EntityReference, ListQuery, MlHyperParameter, MlModel, MlStore, ModelWrite,
    SqliteCatalog, WriteOutcome,
};

const MODELS: usize = 10_000;
const BATCH: usize = 500;

fn writes(hash: &str) -> Vec<ModelWrite> {
    (0..MODELS)
        .map(|i| {
            let name = format!("model-{i:05}");
            ModelWrite {
                model: MlModel {
                    fully_qualified_name: format!("bulk.{name}"),
                    display_name: Some(name.clone()),
                    algorithm: "xgboost".into(),
                    ml_hyper_parameters: (0..8)
                        .map(|p| MlHyperParameter {
                            name: format!("param_{p}"),
                            value: p.to_string(),
                            description: None,
                        })
                        .collect(),
                    ml_store: Some(MlStore {
                        storage: Some(format!("s3://bucket/models/{name}/model.tar.gz")),
                        image_repository: Some(
                            "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1".into(),
                        ),
                    }),
                    service: EntityReference::ml_model_service(
                        "0b8a1e2f-2f4b-4c47-9d3e-5f0c7a8e3c4d",
                        "bulk",
                    ),
                    source_hash: Some(format!("{hash}{i}")),
                    name,
                    ..MlModel::default()
                },
                arn: Some(format!(
                    "arn:aws:sagemaker:us-east-1:123456789012:model/model-{i:05}"
                )),
                creation_time: Some(1_700_000_000_000),
                facts: None,
            }
        })
        .collect()
}

fn write_all(catalog: &SqliteCatalog, writes: &[ModelWrite]) -> WriteOutcome {
    let mut total = WriteOutcome::default();
    for batch in writes.chunks(BATCH) {
        total.add(catalog.write_models(batch).expect("batch"));
    }
    total
}

#[test]
fn ten_thousand_models_in_batches_of_five_hundred() {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = SqliteCatalog::open(dir.path().join("bulk.db")).expect("open");

    let first = writes("a");
    let started = Instant::now();
    let created = write_all(&catalog, &first);
    let create_time = started.elapsed();
    assert_eq!(created.created, MODELS);

    let started = Instant::now();
    let unchanged = write_all(&catalog, &first);
    let unchanged_time = started.elapsed();
    assert_eq!(unchanged.unchanged, MODELS);

    let started = Instant::now();
    let updated = write_all(&catalog, &writes("b"));
    let update_time = started.elapsed();
    assert_eq!(updated.updated, MODELS);

    assert_eq!(
        catalog.count_models(&ListQuery::default()).expect("count"),
        MODELS as u64
    );
    eprintln!(
        "{MODELS} models in batches of {BATCH}: create {create_time:?}, \
         unchanged {unchanged_time:?}, update {update_time:?}"
    );
}
