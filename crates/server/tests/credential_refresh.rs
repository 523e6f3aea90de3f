//! `serve`'s gateway keeps answering while the assumed-role credentials of a model expire and
//! are renewed (issue: hardening §9): moto is STS (it honours a short `DurationSeconds`), the
//! fake SageMaker runtime records the access key each invocation was signed with.
//!
//! The SDK's identity cache renews credentials 5 to 10 s before they expire (a 10 s buffer
//! less up to 5 s of jitter); with a 15 s lifetime each set is used for 5 to 10 s, so
//! requests spread over 13 s are signed with at least two sets.

use std::collections::BTreeSet;
use std::time::Duration;

use sagebridge_gateway::config;
use sagebridge_ingest::shutdown;
use sagebridge_server::ServeOptions;
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};
use sagebridge_testkit::{count, MotoServer};

const KEY: &str = "refresh-test-api-key";

/// The access key id of a SigV4 `Authorization` header.
fn access_key(authorization: &str) -> Option<String> {
    let credential = authorization.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_succeeding_while_assumed_credentials_expire_and_renew() {
    let moto = MotoServer::start().await.unwrap();
    moto.start_recording().await.unwrap();
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-tgi", EndpointBehaviour::new(Behaviour::TgiChat));
    let yaml = format!(
        "server:\n  apiKeys: [\"{KEY}\"]\n\
         awsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: testing\n  \
         awsSecretAccessKey: testing-secret\n  runtimeEndPointURL: {runtime}\n  \
         stsEndPointURL: {sts}\n\
         models:\n  - name: chat\n    kind: chat\n    endpointName: ep-tgi\n    format: tgi\n    \
         awsConfig:\n      assumeRoleArn: arn:aws:iam::123456789012:role/gateway\n      \
         assumeRoleDurationSeconds: 15\n",
        runtime = fake.endpoint(),
        sts = moto.endpoint()
    );
    let cfg =
        config::load_str("serve.yaml", &yaml, &|_: &str| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        listen: None,
        catalog_path: Some(dir.path().join("catalog.db")),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (trigger, signal) = shutdown::channel();
    let task =
        tokio::spawn(
            async move { sagebridge_server::serve_on(listener, &cfg, &opts, signal).await },
        );
    let http = reqwest::Client::new();

    // 27 requests, one every 500 ms: about 13 s.
    let mut statuses = Vec::new();
    for _ in 0..27 {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let assumed = count(&moto.recording().await.unwrap(), "AssumeRole");
    let keys: BTreeSet<String> = fake
        .invocations()
        .iter()
        .filter_map(|i| i.header("authorization").and_then(access_key))
        .collect();
    assert!(
        !keys.contains("testing"),
        "invocations are signed with the role's credentials"
    );
    assert!(
        keys.len() >= 2,
        "renewed credentials signed later requests: {keys:?} (AssumeRole called {assumed} times)"
    );
    assert!(count(&moto.recording().await.unwrap(), "AssumeRole") >= 2);
    trigger.trigger();
    task.await.unwrap().unwrap();
}
