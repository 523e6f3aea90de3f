//! The testkit against a real `moto_server`: start, reset, recorder, seeding, accounts, IAM.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aws_sdk_sagemaker::types::{ContainerDefinition, ResourceType};
use sagebridge_testkit::aws::{sagemaker_client_with, TestClientOptions};
use sagebridge_testkit::moto::count_by_operation;
use sagebridge_testkit::seed::{ModelFamily, SeedSpec};
use sagebridge_testkit::{count, sagemaker_client, seed, CannedInvokeResult, MotoIam, MotoServer};

async fn list_model_names(client: &aws_sdk_sagemaker::Client) -> BTreeSet<String> {
    let models: Vec<_> = client
        .list_models()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListModels");
    models
        .iter()
        .map(|m| m.model_name().unwrap_or_default().to_owned())
        .collect()
}

async fn create_model(client: &aws_sdk_sagemaker::Client, name: &str) {
    client
        .create_model()
        .model_name(name)
        .execution_role_arn("arn:aws:iam::123456789012:role/r")
        .primary_container(
            ContainerDefinition::builder()
                .image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
                .build(),
        )
        .send()
        .await
        .expect("CreateModel");
}

#[tokio::test]
async fn moto_starts_records_sdk_calls_and_resets() {
    let started = Instant::now();
    let moto = MotoServer::start().await.expect("start moto");
    eprintln!(
        "moto started in {:?} (answering after {:?}), pid {}",
        started.elapsed(),
        moto.startup_time(),
        moto.pid()
    );
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let client = sagemaker_client(&moto.endpoint(), None);
    create_model(&client, "recorded-model").await;

    moto.start_recording().await.unwrap();
    let described = client
        .describe_model()
        .model_name("recorded-model")
        .send()
        .await
        .expect("DescribeModel");
    assert_eq!(described.model_name(), Some("recorded-model"));
    let calls = moto.recording().await.unwrap();
    assert_eq!(
        count(&calls, "DescribeModel"),
        1,
        "{:?}",
        count_by_operation(&calls)
    );
    assert_eq!(count(&calls, "ListModels"), 0);
    assert_eq!(calls[0].target.as_deref(), Some("SageMaker.DescribeModel"));
    assert!(
        calls[0].body.contains("recorded-model"),
        "{}",
        calls[0].body
    );

    // STS is a Query protocol: the operation comes from the form body.
    let sts = sagebridge_testkit::sts_client(&moto.endpoint(), None);
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(identity.account(), Some("123456789012"));
    let calls = moto.recording().await.unwrap();
    assert_eq!(
        count(&calls, "GetCallerIdentity"),
        1,
        "{:?}",
        count_by_operation(&calls)
    );

    moto.clear_recording().await.unwrap();
    assert!(moto.recording().await.unwrap().is_empty());

    moto.reset().await.unwrap();
    assert!(list_model_names(&client).await.is_empty());
}

#[tokio::test]
async fn seeding_the_demo_preset_creates_what_the_summary_says() {
    let moto = MotoServer::start().await.expect("start moto");
    let client = sagemaker_client(&moto.endpoint(), None);
    moto.start_recording().await.unwrap();
    let summary = seed(&client, &SeedSpec::demo()).await.expect("seed");
    eprintln!("{}", summary.one_line());
    let calls = moto.recording().await.unwrap();
    assert_eq!(
        calls.len() as u64,
        summary.calls,
        "{:?}",
        count_by_operation(&calls)
    );
    assert_eq!(count(&calls, "CreateModel"), 40);

    assert_eq!(summary.models.len(), 40);
    assert_eq!(summary.feature_groups.len(), 2);
    assert_eq!(summary.endpoints.len(), 3);
    let listed = list_model_names(&client).await;
    let seeded: BTreeSet<String> = summary.models.iter().map(|m| m.name.clone()).collect();
    assert_eq!(listed, seeded);

    // A model trained by a job: artifacts, hyperparameters and feature-group input line up.
    let model = summary
        .models
        .iter()
        .find(|m| m.family == ModelFamily::Xgboost && !m.feature_groups.is_empty())
        .expect("an XGBoost model reading a feature group");
    let described = client
        .describe_model()
        .model_name(&model.name)
        .send()
        .await
        .unwrap();
    assert_eq!(described.model_arn(), Some(model.arn.as_str()));
    let container = described.primary_container().unwrap();
    assert_eq!(container.image(), Some(model.image.as_str()));
    assert_eq!(container.model_data_url(), model.model_data_url.as_deref());
    let job = client
        .describe_training_job()
        .training_job_name(model.training_job.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        job.model_artifacts().and_then(|a| a.s3_model_artifacts()),
        model.model_data_url.as_deref()
    );
    let hyperparameters: BTreeMap<String, String> = job
        .hyper_parameters()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(hyperparameters, model.hyperparameters);
    let inputs: BTreeSet<&str> = job
        .input_data_config()
        .iter()
        .filter_map(|c| c.data_source()?.s3_data_source()?.s3_uri())
        .collect();
    for group_name in &model.feature_groups {
        let group = summary
            .feature_groups
            .iter()
            .find(|g| &g.name == group_name)
            .unwrap();
        assert!(
            inputs.contains(group.resolved_output_s3_uri.as_str()),
            "{inputs:?}"
        );
    }

    // Tags round-trip.
    let tags = client
        .list_tags()
        .resource_arn(&model.arn)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(tags, model.tags);

    // The multi-container model.
    let pipeline = summary
        .models_of(ModelFamily::MultiContainer)
        .next()
        .unwrap();
    let described = client
        .describe_model()
        .model_name(&pipeline.name)
        .send()
        .await
        .unwrap();
    assert_eq!(described.containers().len(), 2);
    assert_eq!(
        described.containers()[1].image(),
        Some(pipeline.containers[1].image.as_str())
    );

    // Endpoints and feature groups.
    for endpoint in &summary.endpoints {
        let described = client
            .describe_endpoint()
            .endpoint_name(&endpoint.name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.endpoint_config_name(),
            Some(endpoint.config_name.as_str())
        );
        let config = client
            .describe_endpoint_config()
            .endpoint_config_name(&endpoint.config_name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            config.production_variants()[0].model_name(),
            Some(endpoint.model.as_str())
        );
    }
    let search = client
        .search()
        .resource(ResourceType::FeatureGroup)
        .send()
        .await
        .unwrap();
    assert_eq!(search.results().len(), 2);
}

#[tokio::test]
async fn the_account_header_isolates_accounts() {
    let moto = MotoServer::start().await.expect("start moto");
    let other = sagemaker_client(&moto.endpoint(), Some("222222222222"));
    let default = sagemaker_client(&moto.endpoint(), None);
    let spec = SeedSpec {
        with_training_jobs: false,
        ..SeedSpec::bulk(3)
    };
    let summary = seed(&other, &spec).await.expect("seed");
    assert!(
        summary.models[0].arn.contains(":222222222222:"),
        "{}",
        summary.models[0].arn
    );
    assert_eq!(list_model_names(&other).await.len(), 3);
    assert!(list_model_names(&default).await.is_empty());
}

#[tokio::test]
async fn iam_setup_then_enforcement_denies_what_the_policy_does_not_allow() {
    let moto = MotoServer::start().await.expect("start moto");
    let iam = MotoIam::new(&moto.endpoint());
    let key = iam
        .user_with_actions("ingest", &["sagemaker:ListModels"])
        .await
        .expect("IAM setup over unsigned form posts");
    assert!(key.access_key_id.starts_with("AKIA"), "{key:?}");
    let role = iam
        .role_with_actions(
            "reader",
            "arn:aws:iam::123456789012:user/ingest",
            Some("ext-42"),
            &["sagemaker:*"],
        )
        .await
        .unwrap();
    assert_eq!(role, "arn:aws:iam::123456789012:role/reader");

    moto.reset_auth(0).await.unwrap();
    let client = sagemaker_client_with(
        &moto.endpoint(),
        &TestClientOptions {
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret_access_key.clone(),
            ..TestClientOptions::default()
        }
        .without_retries(),
    );
    assert!(list_model_names(&client).await.is_empty());
    let denied = client
        .describe_model()
        .model_name("anything")
        .send()
        .await
        .expect_err("DescribeModel is not in the policy");
    let raw = denied.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 403);

    // The dummy keys stop working once enforcement is on.
    let dummy = sagemaker_client_with(
        &moto.endpoint(),
        &TestClientOptions::default().without_retries(),
    );
    let error = dummy
        .list_models()
        .send()
        .await
        .expect_err("dummy keys rejected");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(403));
}

#[tokio::test]
async fn canned_invoke_endpoint_results_are_served() {
    let moto = MotoServer::start().await.expect("start moto");
    let answer = serde_json::json!([{ "generated_text": "hello from moto" }]);
    moto.set_endpoint_results(None, "us-east-1", &[CannedInvokeResult::json(&answer)])
        .await
        .unwrap();
    // InvokeEndpoint is REST-JSON; moto routes it by path and the credential scope.
    let response = reqwest::Client::new()
        .post(format!("{}/endpoints/llm/invocations", moto.endpoint()))
        .header("content-type", "application/json")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sagemaker/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(r#"{"inputs":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-amzn-invoked-production-variant")
            .and_then(|v| v.to_str().ok()),
        Some("AllTraffic")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, answer);
}

/// Each server provably owns its port: the listening socket is its child's, not the other's,
/// and a start on a port another moto holds fails instead of attaching to that moto.
#[tokio::test]
async fn a_server_never_attaches_to_another_servers_port() {
    let (a, b) = tokio::join!(MotoServer::start(), MotoServer::start());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.port(), b.port());
    if cfg!(target_os = "linux") {
        use sagebridge_testkit::moto::listens_on;
        assert_eq!(listens_on(a.pid(), a.port()), Some(true));
        assert_eq!(listens_on(b.pid(), b.port()), Some(true));
        assert_eq!(listens_on(a.pid(), b.port()), Some(false));
        assert_eq!(listens_on(b.pid(), a.port()), Some(false));

        let error = MotoServer::start_on_port(a.port())
            .await
            .expect_err("a second moto on a taken port must not start");
        let error = format!("{error:#}");
        // Either it saw the port answered from a socket that is not its child's, or its child
        // exited first (it could not bind): both name the port.
        assert!(error.contains(&format!("port {}", a.port())), "{error}");
    }
    // `a` was left alone: its state is its own.
    let client = sagemaker_client(&a.endpoint(), None);
    create_model(&client, "only-in-a").await;
    assert_eq!(
        list_model_names(&client).await,
        BTreeSet::from(["only-in-a".to_owned()])
    );
    assert!(list_model_names(&sagemaker_client(&b.endpoint(), None))
        .await
        .is_empty());
}
