//! The fast fake SageMaker through the official SDK: paging, errors, throttling, failures,
//! counters, speed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_sagemaker::error::ProvideErrorMetadata as _;
use aws_sdk_sagemaker::types::ResourceType;
use futures::StreamExt as _;
use sagebridge_testkit::aws::{sagemaker_client_with, TestClientOptions};
use sagebridge_testkit::{Failure, FakeSageMaker, FakeSpec};

fn no_retries(fake: &FakeSageMaker) -> aws_sdk_sagemaker::Client {
    sagemaker_client_with(
        &fake.endpoint(),
        &TestClientOptions::default().without_retries(),
    )
}

#[tokio::test]
async fn the_paginator_sees_every_model_exactly_once_with_max_results_7() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(100))
        .await
        .unwrap();
    let client = fake.client();
    let models: Vec<_> = client
        .list_models()
        .max_results(7)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let names: Vec<String> = models
        .iter()
        .map(|m| m.model_name().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), 100);
    assert_eq!(unique.len(), 100);
    assert_eq!(
        unique.into_iter().cloned().collect::<Vec<_>>(),
        fake.handle().model_names()
    );
    // AWS's default order is newest first.
    assert_eq!(names[0], "model-00099");
    assert_eq!(fake.handle().calls("ListModels"), 15); // ceil(100 / 7)
    assert_eq!(
        models[0].model_arn(),
        Some(fake.handle().model_arn("model-00099").as_str())
    );
}

#[tokio::test]
async fn describe_answers_like_aws_and_unknown_names_are_validation_errors() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let client = no_retries(&fake);
    let model = client
        .describe_model()
        .model_name("model-00002")
        .send()
        .await
        .unwrap();
    let container = model.primary_container().unwrap();
    assert!(container
        .image()
        .unwrap()
        .contains("huggingface-pytorch-tgi-inference"));
    assert_eq!(
        container
            .environment()
            .unwrap()
            .get("HF_MODEL_ID")
            .map(String::as_str),
        Some("meta-llama/Llama-2-7b-chat-hf")
    );
    let job = client
        .describe_training_job()
        .training_job_name("train-00002")
        .send()
        .await
        .unwrap();
    assert_eq!(
        job.model_artifacts().unwrap().s3_model_artifacts(),
        container.model_data_url()
    );
    assert_eq!(
        job.hyper_parameters()
            .unwrap()
            .get("max_depth")
            .map(String::as_str),
        Some("6")
    );

    let error = client
        .describe_model()
        .model_name("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"));
    assert!(
        error.message().unwrap().starts_with("Could not find model"),
        "{error:?}"
    );
    assert_eq!(error.raw_response().unwrap().status().as_u16(), 400);

    let error = client
        .list_models()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"));
}

#[tokio::test]
async fn tags_endpoints_and_feature_groups_page_and_describe() {
    let spec = FakeSpec {
        tags_per_model: 120,
        ..FakeSpec::with_models(3)
    };
    let fake = FakeSageMaker::start(spec).await.unwrap();
    let client = fake.client();
    let tags: Vec<_> = client
        .list_tags()
        .resource_arn(fake.handle().model_arn("model-00001"))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(tags.len(), 120);
    assert_eq!(tags[0].key(), Some("team"));
    assert_eq!(fake.handle().calls("ListTags"), 3); // pages of 50

    let endpoints = client.list_endpoints().send().await.unwrap();
    assert_eq!(endpoints.endpoints().len(), 3);
    let endpoint = client
        .describe_endpoint()
        .endpoint_name("endpoint-00001")
        .send()
        .await
        .unwrap();
    let config = client
        .describe_endpoint_config()
        .endpoint_config_name(endpoint.endpoint_config_name().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        config.production_variants()[0].model_name(),
        Some("model-00001")
    );

    let search = client
        .search()
        .resource(ResourceType::FeatureGroup)
        .send()
        .await
        .unwrap();
    assert_eq!(search.results().len(), 2);
    let group = search.results()[0].feature_group().unwrap();
    let resolved = group
        .offline_store_config()
        .unwrap()
        .s3_storage_config()
        .unwrap()
        .resolved_output_s3_uri()
        .unwrap();
    // Training job 0 reads feature group 0's offline store.
    let job = client
        .describe_training_job()
        .training_job_name("train-00000")
        .send()
        .await
        .unwrap();
    let input = job.input_data_config()[0]
        .data_source()
        .unwrap()
        .s3_data_source()
        .unwrap()
        .s3_uri();
    assert_eq!(input, Some(resolved));
    let listed = client.list_feature_groups().send().await.unwrap();
    assert_eq!(listed.feature_group_summaries().len(), 2);
    let described = client
        .describe_feature_group()
        .feature_group_name("feature-group-1")
        .send()
        .await
        .unwrap();
    assert_eq!(described.feature_definitions().len(), 5);
    let other = client
        .search()
        .resource(ResourceType::ModelPackage)
        .send()
        .await
        .unwrap();
    assert!(other.results().is_empty());
}

#[tokio::test]
async fn rate_limits_answer_throttling_exception() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let handle = fake.handle();
    handle.set_rate_limit("DescribeModel", Some(5.0));
    let client = no_retries(&fake);
    let mut ok = 0;
    let mut throttled = 0;
    for _ in 0..20 {
        match client
            .describe_model()
            .model_name("model-00000")
            .send()
            .await
        {
            Ok(_) => ok += 1,
            Err(error) => {
                assert_eq!(error.code(), Some("ThrottlingException"), "{error:?}");
                assert_eq!(error.message(), Some("Rate exceeded"));
                assert_eq!(error.raw_response().unwrap().status().as_u16(), 400);
                throttled += 1;
            }
        }
    }
    assert!((5..=8).contains(&ok), "burst of 5 plus refill, got {ok}");
    assert_eq!(handle.throttled(), throttled);
    assert_eq!(handle.throttled_calls("DescribeModel"), throttled);
    assert_eq!(handle.calls("DescribeModel"), 20);
    // Other operations are not limited, and removing the limit lifts it.
    client.list_models().send().await.unwrap();
    handle.set_rate_limit("DescribeModel", None);
    client
        .describe_model()
        .model_name("model-00000")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_sdk_retries_throttling_but_not_validation_errors() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let handle = fake.handle();
    let throttling = Failure {
        status: 400,
        error_type: "ThrottlingException".to_owned(),
        message: "Rate exceeded".to_owned(),
        times: Some(2),
    };
    handle.set_failure("DescribeModel", Some(throttling));
    // Standard retries, 3 attempts: the SDK classifies the 400 as throttling and retries.
    let client = fake.client();
    client
        .describe_model()
        .model_name("model-00000")
        .send()
        .await
        .expect("recovers after two throttled attempts");
    assert_eq!(handle.calls("DescribeModel"), 3);
    assert_eq!(handle.failed(), 2);

    handle.reset_counters();
    let denied = Failure {
        status: 400,
        error_type: "ValidationException".to_owned(),
        message: "nope".to_owned(),
        times: Some(1),
    };
    handle.set_failure("DescribeModel", Some(denied));
    let error = client
        .describe_model()
        .model_name("model-00000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"));
    assert_eq!(handle.calls("DescribeModel"), 1, "not retried");

    handle.set_failure(
        "ListModels",
        Some(Failure::access_denied("sagemaker:ListModels")),
    );
    let error = no_retries(&fake).list_models().send().await.unwrap_err();
    assert_eq!(error.code(), Some("AccessDeniedException"));
    handle.set_failure("ListModels", None);
    no_retries(&fake).list_models().send().await.unwrap();
}

#[tokio::test]
async fn a_failing_third_page_fails_the_listing_on_the_third_page() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(100))
        .await
        .unwrap();
    let handle = fake.handle();
    handle.fail_list_models_page(3, u64::MAX);
    let client = no_retries(&fake);
    let mut pages = client.list_models().max_results(10).into_paginator().send();
    let mut seen = 0;
    let mut failed_on = None;
    for page_number in 1..=20 {
        match pages.next().await {
            Some(Ok(page)) => seen += page.models().len(),
            Some(Err(error)) => {
                assert_eq!(error.code(), Some("InternalFailure"));
                assert_eq!(error.raw_response().unwrap().status().as_u16(), 500);
                failed_on = Some(page_number);
                break;
            }
            None => break,
        }
    }
    assert_eq!(failed_on, Some(3));
    assert_eq!(seen, 20);

    // Failing once, with retries: the SDK retries the 500 and the listing completes.
    handle.reset_counters();
    handle.fail_list_models_page(3, 1);
    let models: Vec<_> = fake
        .client()
        .list_models()
        .max_results(10)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(models.len(), 100);
    assert_eq!(handle.failed(), 1);
    assert_eq!(handle.calls("ListModels"), 11);
}

#[tokio::test]
async fn latency_is_injected_and_counters_count() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(3))
        .await
        .unwrap();
    let handle = fake.handle();
    let client = fake.client();
    handle.set_latency(Duration::from_millis(60));
    let started = Instant::now();
    client.list_models().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(60));
    handle.set_latency(Duration::ZERO);
    handle.set_op_latency("DescribeModel", Some(Duration::from_millis(40)));
    let started = Instant::now();
    client
        .describe_model()
        .model_name("model-00000")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40));
    handle.set_op_latency("DescribeModel", None);

    let calls = handle.all_calls();
    assert_eq!(calls.get("ListModels"), Some(&1));
    assert_eq!(calls.get("DescribeModel"), Some(&1));
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(handle.total_calls(), 2);
    handle.reset_counters();
    assert!(handle.all_calls().is_empty());
}

/// The ingest pattern at full speed: ListModels pages of 100, then DescribeModel + ListTags
/// per model, 32 in flight. The target is 10,000 models in under 5 s on a release build; the
/// bound here is loose so a loaded debug build does not flake, and the figure is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_models_are_served_quickly() {
    const MODELS: usize = 10_000;
    let fake = FakeSageMaker::start(FakeSpec {
        training_jobs: false,
        ..FakeSpec::with_models(MODELS)
    })
    .await
    .unwrap();
    let client = fake.client();
    let started = Instant::now();
    let names: Vec<String> = client
        .list_models()
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.model_name().unwrap().to_owned())
        .collect();
    let arns: Vec<String> = names.iter().map(|n| fake.handle().model_arn(n)).collect();
    let described = futures::stream::iter(names.iter().zip(&arns).map(|(name, arn)| {
        let client = client.clone();
        async move {
            let model = client.describe_model().model_name(name).send().await?;
            let tags = client.list_tags().resource_arn(arn).send().await?;
            anyhow::Ok((model.model_name().is_some(), tags.tags().len()))
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
    let elapsed = started.elapsed();
    let ok = described
        .iter()
        .filter(|r| matches!(r, Ok((true, 3))))
        .count();
    let handle = fake.handle();
    eprintln!(
        "fake: {MODELS} models ({} calls) in {elapsed:?} = {:.0} calls/s",
        handle.total_calls(),
        handle.total_calls() as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(ok, MODELS);
    assert_eq!(handle.calls("ListModels"), 100);
    assert_eq!(handle.calls("DescribeModel"), MODELS as u64);
    assert_eq!(handle.calls("ListTags"), MODELS as u64);
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}
