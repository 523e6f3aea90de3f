//! The gateway over real sockets: the router on 127.0.0.1:0 in front of the fake SageMaker
//! runtime (and moto for InvokeEndpoint), driven with reqwest and with the official `openai`
//! Python client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sagebridge_aws::ClientOptions;
use sagebridge_gateway::adapter::embed::estimate_tokens;
use sagebridge_gateway::{config, router, Gateway, GatewayHandle, GatewayOptions};
use sagebridge_testkit::fake_runtime::{
    fake_embedding, fake_embedding_normalized, fake_score, fake_token_count, fake_transcript,
    wav_duration, wav_tone, Behaviour, EndpointBehaviour, FakeRuntime, Fault, Split, MAX_PAYLOAD,
};
use serde_json::{json, Value};

const KEY: &str = "test-key-123456";

struct Stack {
    fake: FakeRuntime,
    base: String,
    gw: Arc<Gateway>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

/// The fake runtime with one endpoint per behaviour, and the gateway in front of it.
async fn stack_with(server_extra: &str, models_extra: &str) -> Stack {
    let fake = FakeRuntime::start().await.unwrap();
    for (name, b) in [
        ("ep-openai", Behaviour::OpenAiChat),
        ("ep-tgi", Behaviour::TgiChat),
        ("ep-lmi", Behaviour::LmiChat),
        ("ep-tei", Behaviour::TeiEmbed),
        ("ep-js", Behaviour::JumpStartEmbed),
        ("ep-dify-embed", Behaviour::DifyEmbed),
        ("ep-tei-rerank", Behaviour::TeiRerank),
        ("ep-dify-rerank", Behaviour::DifyRerank),
        ("ep-asr", Behaviour::HfTranscribe),
        ("ep-js-asr", Behaviour::JumpStartTranscribe),
        ("ep-tts", Behaviour::OpenAiSpeech),
    ] {
        fake.set(name, EndpointBehaviour::new(b));
    }
    let yaml = format!(
        r#"
server:
  apiKeys: ["{KEY}"]
{server_extra}
awsConfig:
  awsRegion: us-east-1
  awsAccessKeyId: testing
  awsSecretAccessKey: testing-secret-value
  endPointURL: {url}
models:
  - {{name: chat-openai, kind: chat, endpointName: ep-openai, format: openai, inferenceComponent: ic-7, customAttributes: "trace=1"}}
  - {{name: chat-tgi, kind: chat, endpointName: ep-tgi, format: tgi, chatTemplate: llama-3, targetVariant: blue}}
  - {{name: chat-lmi, kind: chat, endpointName: ep-lmi, format: lmi, maxTokens: 3}}
  - {{name: embed-tei, kind: embedding, endpointName: ep-tei, format: tei}}
  - {{name: embed-js, kind: embedding, endpointName: ep-js, format: jumpstart}}
  - {{name: embed-dify, kind: embedding, endpointName: ep-dify-embed, format: dify}}
  - {{name: rerank-tei, kind: rerank, endpointName: ep-tei-rerank, format: tei}}
  - {{name: rerank-dify, kind: rerank, endpointName: ep-dify-rerank, format: dify}}
  - {{name: chat-missing, kind: chat, endpointName: no-such-endpoint, format: tgi}}
  - {{name: embed-missing, kind: embedding, endpointName: no-such-endpoint}}
{models_extra}
"#,
        url = fake.endpoint()
    );
    let env = |_: &str| None;
    let cfg = config::load_str("test.yaml", &yaml, &env).unwrap_or_else(|e| panic!("{e}"));
    let gw = Arc::new(
        Gateway::with_options(
            &cfg,
            GatewayOptions {
                client: ClientOptions::no_retries(),
                cold_start_poll: Duration::from_millis(20),
                ..GatewayOptions::default()
            },
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(GatewayHandle::shared(gw.clone()));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Stack {
        fake,
        base,
        gw,
        http,
        _server: server,
    }
}

async fn stack() -> Stack {
    stack_with("", "").await
}

impl Stack {
    async fn post(&self, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, _, text) = self.post(path, body).await;
        (
            s,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    /// `GET path` with the key: its JSON body.
    async fn get_json(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }
}

/// The `data:` payloads of an SSE body.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn streamed_text(data: &[String]) -> String {
    data.iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]})
}

#[tokio::test]
async fn chat_non_stream_every_format() {
    let s = stack().await;
    for model in ["chat-openai", "chat-tgi", "chat-lmi"] {
        let (status, v) = s
            .post_json("/v1/chat/completions", &chat(model, false))
            .await;
        assert_eq!(status, 200, "{model}: {v}");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], model);
        let want = if model == "chat-lmi" {
            "Hello, world"
        } else {
            "Hello, world!"
        };
        assert_eq!(v["choices"][0]["message"]["content"], want, "{model}");
    }
    let inv = s.fake.invocations();
    let openai = inv.iter().find(|i| i.endpoint == "ep-openai").unwrap();
    assert_eq!(
        openai.header("x-amzn-sagemaker-inference-component"),
        Some("ic-7")
    );
    assert_eq!(
        openai.header("x-amzn-sagemaker-custom-attributes"),
        Some("trace=1")
    );
    assert_eq!(openai.json()["messages"][1]["content"], "Say hello");
    let tgi = inv.iter().find(|i| i.endpoint == "ep-tgi").unwrap();
    assert_eq!(tgi.header("x-amzn-sagemaker-target-variant"), Some("blue"));
    assert!(tgi.json()["inputs"]
        .as_str()
        .unwrap()
        .contains("<|start_header_id|>user<|end_header_id|>\n\nSay hello<|eot_id|>"));
    // The model's maxTokens default reached the container, which stopped early.
    let lmi = inv.iter().find(|i| i.endpoint == "ep-lmi").unwrap();
    assert_eq!(lmi.json()["parameters"]["max_new_tokens"], 3);
}

#[tokio::test]
async fn chat_stream_every_format_under_every_split() {
    let s = stack().await;
    let splits = [
        Split::PerEvent,
        Split::Bytes(1),
        Split::Random { seed: 42, max: 13 },
        Split::Coalesce(3),
    ];
    for (endpoint, behaviour, model) in [
        ("ep-openai", Behaviour::OpenAiChat, "chat-openai"),
        ("ep-tgi", Behaviour::TgiChat, "chat-tgi"),
        ("ep-lmi", Behaviour::LmiChat, "chat-lmi"),
    ] {
        for split in &splits {
            s.fake.set(
                endpoint,
                EndpointBehaviour::new(behaviour)
                    .tokens(&["Grüß", " dich", ", ", "🌍", "\"ok\""])
                    .split(split.clone()),
            );
            let mut body = chat(model, true);
            body["stream_options"] = json!({"include_usage": true});
            body["max_tokens"] = json!(50);
            let (status, headers, text) = s.post("/v1/chat/completions", &body).await;
            assert_eq!(status, 200, "{model} {split:?}: {text}");
            assert_eq!(headers["content-type"], "text/event-stream");
            let data = sse_data(&text);
            assert_eq!(
                streamed_text(&data),
                "Grüß dich, 🌍\"ok\"",
                "{model} {split:?}: {text}"
            );
            assert_eq!(
                data.last().map(String::as_str),
                Some("[DONE]"),
                "{model} {split:?}"
            );
            assert_eq!(data.iter().filter(|d| *d == "[DONE]").count(), 1);
            let usage: Vec<Value> = data
                .iter()
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter(|v| v["usage"].is_object())
                .collect();
            assert_eq!(usage.len(), 1, "{model} {split:?}: {text}");
            let finish: Vec<Value> = data
                .iter()
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|v| v["choices"][0].get("finish_reason").cloned())
                .filter(|f| !f.is_null())
                .collect();
            assert_eq!(finish, vec![json!("stop")], "{model} {split:?}: {text}");
        }
    }
}

#[tokio::test]
async fn stream_errors_end_with_an_error_chunk() {
    let s = stack().await;
    for (fault, needle) in [
        (
            Fault::ModelStreamError {
                after: 2,
                code: "ModelInvocationTimeExceeded".into(),
                message: "took too long".into(),
            },
            "ModelInvocationTimeExceeded",
        ),
        (
            Fault::InternalStreamFailure { after: 1 },
            "SageMaker's stream failed",
        ),
    ] {
        s.fake.set(
            "ep-tgi",
            EndpointBehaviour::new(Behaviour::TgiChat).fault(fault.clone()),
        );
        let (status, _, text) = s
            .post("/v1/chat/completions", &chat("chat-tgi", true))
            .await;
        assert_eq!(status, 200);
        let data = sse_data(&text);
        let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
        assert!(
            last["error"]["message"].as_str().unwrap().contains(needle),
            "{fault:?}: {text}"
        );
        assert!(
            !data.iter().any(|d| d == "[DONE]"),
            "a failed stream must not look complete: {text}"
        );
    }
    // An error line written by the container itself.
    s.fake.set(
        "ep-openai",
        EndpointBehaviour::new(Behaviour::OpenAiChat).fault(Fault::ModelStreamError {
            after: 0,
            code: "StreamBroken".into(),
            message: "connection reset".into(),
        }),
    );
    let (_, _, text) = s
        .post("/v1/chat/completions", &chat("chat-openai", true))
        .await;
    assert!(
        text.contains("\"error\"") && text.contains("StreamBroken"),
        "{text}"
    );
    assert!(s.gw.metrics().errors_of("model_error") >= 2);
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let s = stack().await;
    let tokens: Vec<String> = (0..100).map(|i| format!("t{i} ")).collect();
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&tokens)
            .part_delay(Duration::from_millis(100)),
    );
    let mut r = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(KEY)
        .json(&chat("chat-tgi", true))
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    // Chunks are forwarded as they arrive: the first one is here while the container is still
    // streaming (the fake has neither finished nor been abandoned), not buffered to the end.
    assert!(String::from_utf8_lossy(&first).contains("t0"), "{first:?}");
    assert_eq!(
        s.fake.streams_completed(),
        0,
        "the stream was buffered to its end"
    );
    assert_eq!(s.fake.streams_abandoned(), 0);
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.fake.streams_abandoned() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.fake.streams_abandoned(), 1);
    assert_eq!(s.fake.streams_completed(), 0);
}

#[tokio::test]
async fn errors_have_the_openai_shape_and_status() {
    let s = stack_with("  timeoutSeconds: 1\n  maxRequestBytes: 4096", "").await;
    let check = |status: u16, v: &Value, code: &str, needle: &str| {
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{status}: {v}"
        );
        assert!(v["error"]["type"].is_string());
        assert!(!v.to_string().contains("testing-secret-value"));
        // Refusals by AWS and upstream failures carry a request id and no account id.
        if status == 403 || status >= 500 || code == "model_rejected_request" {
            assert!(v["error"]["request_id"].is_string(), "{v}");
            assert!(!v.to_string().contains("123456789012"), "{v}");
        }
    };
    let (st, v) = s
        .post_json("/v1/chat/completions", &chat("nope", false))
        .await;
    assert_eq!(st, 404);
    check(st, &v, "model_not_found", "`nope` does not exist");
    let (st, v) = s
        .post_json("/v1/chat/completions", &json!({"model": "chat-tgi"}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["error"]["param"], "messages");
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "chat-tgi", "input": "x"}),
        )
        .await;
    assert_eq!(st, 400);
    check(st, &v, "wrong_model_kind", "POST /v1/chat/completions");
    let r = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": "x".repeat(5000)}),
        )
        .await;
    assert_eq!(st, 413);
    check(st, &v, "payload_too_large", "4096 bytes");

    let cases: Vec<(Fault, u16, &str, &str)> = vec![
        (
            Fault::AccessDenied {
                principal: "arn:aws:iam::123456789012:user/limited".into(),
            },
            403,
            "access_denied",
            // The principal's ARN (and its account) stays in the log; the client gets the
            // action to add and a request id.
            "<arn> is not allowed to call sagemaker:InvokeEndpoint",
        ),
        (Fault::Throttle, 429, "throttled", "throttled"),
        (Fault::NotReady, 429, "throttled", "not ready yet"),
        (
            Fault::ModelError {
                status: 400,
                message: "Input validation error: inputs too long".into(),
            },
            // The container refused the request: its status, a request error to fix.
            400,
            "model_rejected_request",
            "the model container rejected the request with status 400: Input validation error: inputs too long",
        ),
        (
            Fault::ModelError {
                status: 500,
                message: "CUDA out of memory".into(),
            },
            502,
            "model_error",
            "the model container failed with status 500: CUDA out of memory",
        ),
        (
            Fault::ServiceUnavailable,
            503,
            "service_unavailable",
            "unavailable",
        ),
    ];
    for (fault, status, code, needle) in cases {
        s.fake.set(
            "ep-tgi",
            EndpointBehaviour::new(Behaviour::TgiChat).fault(fault.clone()),
        );
        for stream in [false, true] {
            let (st, headers, text) = s
                .post("/v1/chat/completions", &chat("chat-tgi", stream))
                .await;
            assert_eq!(st, status, "{fault:?} stream={stream}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            check(st, &v, code, needle);
            if status == 429 || status == 503 {
                assert!(headers.contains_key("retry-after"), "{fault:?}");
            }
        }
    }
    // An endpoint that does not exist: 404 with a region hint.
    s.fake
        .set("ep-tgi", EndpointBehaviour::new(Behaviour::TgiChat));
    let (st, v) = s
        .post_json("/v1/chat/completions", &chat("chat-missing", false))
        .await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-missing", "input": "x"}),
        )
        .await;
    assert_eq!(st, 404, "{v}");
    check(
        st,
        &v,
        "endpoint_not_found",
        "endpoint `no-such-endpoint` not found in us-east-1; is it in another region",
    );
    // A slow endpoint: 504.
    s.fake.set(
        "ep-tei",
        EndpointBehaviour::new(Behaviour::TeiEmbed).latency(Duration::from_millis(2500)),
    );
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": "x"}),
        )
        .await;
    assert_eq!(st, 504);
    check(st, &v, "timeout", "did not answer within 1 s");
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "sagebridge_gateway_errors_total{model=\"chat-tgi\",class=\"access_denied\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn api_keys_are_required() {
    let s = stack().await;
    let url = format!("{}/v1/models", s.base);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_api_key"
    );
    let r = s
        .http
        .get(&url)
        .bearer_auth("wrong-key-123456")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(!body.contains("wrong-key") && !body.contains(KEY), "{body}");
    let r = s
        .http
        .get(&url)
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = s.get_json("/v1/models").await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 10);
    assert_eq!(ids[0], "chat-openai");
    assert_eq!(v["data"][3]["kind"], "embedding");
}

#[tokio::test]
async fn embeddings_every_format_batched_and_base64() {
    let s = stack().await;
    let inputs: Vec<String> = (0..70).map(|i| format!("text number {i}")).collect();
    for model in ["embed-tei", "embed-js", "embed-dify"] {
        let (st, v) = s
            .post_json("/v1/embeddings", &json!({"model": model, "input": inputs}))
            .await;
        assert_eq!(st, 200, "{model}: {v}");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 70);
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d["index"], i);
            let got: Vec<f32> = d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(got, fake_embedding(&inputs[i], 8), "{model} #{i}");
        }
    }
    // TEI refuses more than 32 inputs per call: the gateway sent 3 batches to each endpoint.
    let tei_calls = s
        .fake
        .invocations()
        .iter()
        .filter(|i| i.endpoint == "ep-tei")
        .count();
    assert_eq!(tei_calls, 3);
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": "hello", "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(st, 200);
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    let want: Vec<u8> = fake_embedding("hello", 8)
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert_eq!(b64, sagebridge_gateway::adapter::embed::base64(&want));
}

/// Two extra embedding models: one whose container normalises its vectors, one OpenAI-format
/// container that counts tokens.
async fn embedding_stack() -> Stack {
    let s = stack_with(
        "",
        "  - {name: embed-unit, kind: embedding, endpointName: ep-unit, format: tei}\n  - {name: embed-openai, kind: embedding, endpointName: ep-openai-embed, format: openai}",
    )
    .await;
    s.fake.set(
        "ep-unit",
        EndpointBehaviour::new(Behaviour::TeiEmbed)
            .dimensions(16)
            .normalized(),
    );
    s.fake.set(
        "ep-openai-embed",
        EndpointBehaviour::new(Behaviour::OpenAiEmbed),
    );
    s
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn l2(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

#[tokio::test]
async fn embeddings_dimensions_cut_and_renormalise() {
    let s = embedding_stack().await;
    let inputs = ["first text", "second text"];
    // Vectors that were not normalised are only cut.
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": inputs, "dimensions": 3}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    for (i, text) in inputs.iter().enumerate() {
        assert_eq!(
            floats(&v["data"][i]["embedding"]),
            fake_embedding(text, 8)[..3].to_vec(),
            "#{i}"
        );
    }
    // Normalised vectors are cut and scaled back to unit length: same direction, norm 1.
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-unit", "input": inputs, "dimensions": 5}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    for (i, text) in inputs.iter().enumerate() {
        let got = floats(&v["data"][i]["embedding"]);
        assert_eq!(got.len(), 5);
        assert!((l2(&got) - 1.0).abs() < 1e-5, "#{i}: {got:?}");
        let prefix = &fake_embedding_normalized(text, 16)[..5];
        let scale = l2(prefix);
        for (g, p) in got.iter().zip(prefix) {
            assert!(
                (f64::from(*g) - f64::from(*p) / scale).abs() < 1e-5,
                "#{i}: {got:?}"
            );
        }
    }
    // Without `dimensions`, or with all of them, the vector is the container's.
    for body in [
        json!({"model": "embed-unit", "input": "first text"}),
        json!({"model": "embed-unit", "input": "first text", "dimensions": 16}),
    ] {
        let (st, v) = s.post_json("/v1/embeddings", &body).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            floats(&v["data"][0]["embedding"]),
            fake_embedding_normalized("first text", 16),
            "{body}"
        );
    }
    // base64 carries the shortened vector.
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": "hello", "dimensions": 2, "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let want: Vec<u8> = fake_embedding("hello", 8)[..2]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert_eq!(
        v["data"][0]["embedding"],
        sagebridge_gateway::adapter::embed::base64(&want)
    );
    // More dimensions than the model has, or none at all: 400 naming `dimensions`.
    for (dims, needle) in [
        (
            json!(9),
            "returns vectors of 8 dimensions; ask for 8 or fewer",
        ),
        (json!(0), "at least 1"),
        (json!(-2), "at least 1"),
        (json!("3"), "must be an integer"),
    ] {
        let (st, v) = s
            .post_json(
                "/v1/embeddings",
                &json!({"model": "embed-tei", "input": "x", "dimensions": dims}),
            )
            .await;
        assert_eq!(st, 400, "{dims}: {v}");
        assert_eq!(v["error"]["param"], "dimensions", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{dims}: {v}"
        );
    }
}

#[tokio::test]
async fn embeddings_usage_counted_or_estimated() {
    let s = embedding_stack().await;
    let inputs: Vec<String> = vec![
        "The quick brown fox jumps over the lazy dog".into(),
        "Grüß dich".into(),
        "你好世界".into(),
        "x".into(),
    ];
    let usage = |v: &Value| {
        (
            v["usage"]["prompt_tokens"].as_u64().unwrap(),
            v["usage"]["total_tokens"].as_u64().unwrap(),
        )
    };
    // Containers that do not count tokens: the documented estimate, never 0.
    let estimate: u64 = inputs.iter().map(|t| estimate_tokens(t)).sum();
    assert_eq!(estimate, 11 + 4 + 4 + 1);
    for model in ["embed-tei", "embed-js", "embed-dify"] {
        let (st, v) = s
            .post_json("/v1/embeddings", &json!({"model": model, "input": inputs}))
            .await;
        assert_eq!(st, 200, "{model}: {v}");
        assert_eq!(usage(&v), (estimate, estimate), "{model}: {v}");
    }
    // Batched requests add the estimates of every batch.
    let many: Vec<String> = (0..70).map(|i| format!("text number {i}")).collect();
    let (_, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": many}),
        )
        .await;
    let want: u64 = many.iter().map(|t| estimate_tokens(t)).sum();
    assert_eq!(usage(&v), (want, want));
    // An OpenAI-format container counts itself: its numbers are passed on.
    let (st, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-openai", "input": inputs}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let counted: u64 = inputs.iter().map(|t| fake_token_count(t) as u64).sum();
    assert_eq!(counted, 9 + 2 + 1 + 1);
    assert_ne!(counted, estimate);
    assert_eq!(usage(&v), (counted, counted), "{v}");
    let metrics = s.gw.metrics_text();
    assert!(
        metrics.lines().any(|l| l
            == format!(
            "sagebridge_gateway_tokens_total{{model=\"embed-openai\",type=\"prompt\"}} {counted}"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn rerank_sorted_with_top_n_and_documents() {
    let s = stack().await;
    let docs = [
        "a green pear",
        "the red apple is red",
        "red apple",
        "nothing here at all",
    ];
    let query = "red apple";
    let mut want: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (i, fake_score(query, d)))
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for model in ["rerank-tei", "rerank-dify"] {
        let (st, v) = s
            .post_json("/v1/rerank", &json!({"model": model, "query": query, "documents": docs, "top_n": 2, "return_documents": true}))
            .await;
        assert_eq!(st, 200, "{model}: {v}");
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for (r, (i, score)) in results.iter().zip(&want) {
            assert_eq!(r["index"], *i, "{model}: {v}");
            assert!((r["relevance_score"].as_f64().unwrap() - score).abs() < 1e-9);
            assert_eq!(r["document"]["text"], docs[*i]);
        }
        let (_, v) = s
            .post_json(
                "/v1/rerank",
                &json!({"model": model, "query": query, "documents": docs}),
            )
            .await;
        assert_eq!(v["results"].as_array().unwrap().len(), 4);
        assert!(v["results"][0].get("document").is_none());
    }
    let dify = s
        .fake
        .invocations()
        .into_iter()
        .find(|i| i.endpoint == "ep-dify-rerank")
        .unwrap();
    assert_eq!(dify.json()["inputs"], json!([query, query, query, query]));
}

#[tokio::test]
async fn metrics_count_requests_latency_and_ttft() {
    let s = stack().await;
    s.post_json("/v1/chat/completions", &chat("chat-openai", false))
        .await;
    s.post("/v1/chat/completions", &chat("chat-tgi", true))
        .await;
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "sagebridge_gateway_requests_total{model=\"chat-openai\",route=\"chat\"} 1",
        "sagebridge_gateway_requests_total{model=\"chat-tgi\",route=\"chat_stream\"} 1",
        "sagebridge_gateway_upstream_latency_seconds_count{model=\"chat-openai\"} 1",
        "sagebridge_gateway_time_to_first_token_seconds_count{model=\"chat-tgi\"} 1",
        "sagebridge_gateway_tokens_total{model=\"chat-openai\",type=\"completion\"} 4",
        "sagebridge_gateway_open_streams{model=\"chat-tgi\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

#[tokio::test]
async fn official_openai_python_client() {
    let venv = std::env::var("SAGEBRIDGE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sagebridge/venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    assert!(std::path::Path::new(&python).exists(), "no Python venv at {venv}: create it with `python3 -m venv {venv} && {venv}/bin/pip install openai 'moto[server]'`");
    let s = stack().await;
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat).split(Split::Bytes(3)),
    );
    s.fake.set(
        "ep-openai",
        EndpointBehaviour::new(Behaviour::OpenAiChat).fault(Fault::ModelStreamError {
            after: 2,
            code: "StreamBroken".into(),
            message: "connection reset".into(),
        }),
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&python)
            .arg(script)
            .env("OPENAI_BASE_URL", format!("{}/v1", s.base))
            .env("OPENAI_API_KEY", KEY)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["chat"], "Hello, world!");
    assert_eq!(v["chat_finish"], "stop");
    assert_eq!(v["stream"], "Hello, world!");
    assert_eq!(v["stream_chunks"], 4);
    assert_eq!(v["stream_usage_completion_tokens"], 5);
    assert_eq!(v["embedding_dims"], json!([8, 8]));
    let first: Vec<f64> = fake_embedding("first", 8)
        .iter()
        .map(|f| f64::from(*f))
        .collect();
    let got: Vec<f64> = v["embedding0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(got, first);
    assert_eq!(v["stream_error_status"], "APIError");
    assert_eq!(v["unknown_model_status"], 404);
    assert_eq!(v["auth_status"], 401);
}

#[tokio::test]
async fn moto_invoke_endpoint_canned_results() {
    let moto = sagebridge_testkit::MotoServer::start().await.unwrap();
    let canned = sagebridge_testkit::CannedInvokeResult::json(
        &json!([{"generated_text": "from moto", "details": {"finish_reason": "length", "generated_tokens": 2}}]),
    );
    moto.set_endpoint_results(None, "us-east-1", &[canned])
        .await
        .unwrap();
    let yaml = format!(
        "awsConfig: {{awsRegion: us-east-1, awsAccessKeyId: testing, awsSecretAccessKey: testing, endPointURL: '{}'}}\nmodels:\n  - {{name: m, kind: chat, endpointName: moto-ep, format: tgi}}\n",
        moto.endpoint()
    );
    let env = |_: &str| None;
    let cfg = config::load_str("moto.yaml", &yaml, &env).unwrap();
    let gw = Arc::new(
        Gateway::with_options(
            &cfg,
            GatewayOptions {
                client: ClientOptions::no_retries(),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(GatewayHandle::shared(gw));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat("m", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from moto", "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    server.abort();

    // test-connection: an endpoint that is not there is reported as NotFound with the region.
    let results = sagebridge_gateway::check_models(&cfg, None, false).await;
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed());
    assert_eq!(
        results[0].error_kind,
        Some(sagebridge_aws::ErrorKind::NotFound),
        "{results:?}"
    );
    assert!(results[0]
        .error
        .as_deref()
        .unwrap()
        .contains("not found in us-east-1"));
    let json = serde_json::to_value(&results[0]).unwrap();
    assert!(
        json.get("durationMs").is_some() && json.get("errorKind").is_some(),
        "{json}"
    );
    let none = sagebridge_gateway::check_models(&cfg, Some("other"), false).await;
    assert!(none[0]
        .error
        .as_deref()
        .unwrap()
        .contains("no model named `other`"));
}

/// Polls `cond` every 20 ms for at most 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test]
async fn heartbeat_comments_while_the_container_is_silent() {
    let s = stack_with("  heartbeatSeconds: 0.05", "").await;
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat).first_part_delay(Duration::from_millis(400)),
    );
    let (status, headers, text) = s
        .post("/v1/chat/completions", &chat("chat-tgi", true))
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let first_data = text.find("data: ").unwrap();
    assert!(
        text[..first_data].contains(": keep-alive\n\n"),
        "no heartbeat before the first token: {text}"
    );
    let data = sse_data(&text);
    assert_eq!(streamed_text(&data), "Hello, world!");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn a_stream_longer_than_max_stream_seconds_is_cut_with_an_error() {
    let s = stack_with("  maxStreamSeconds: 0.3", "").await;
    let tokens: Vec<String> = (0..100).map(|i| format!("t{i} ")).collect();
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&tokens)
            .part_delay(Duration::from_millis(30)),
    );
    let (status, _, text) = s
        .post("/v1/chat/completions", &chat("chat-tgi", true))
        .await;
    assert_eq!(status, 200);
    let data = sse_data(&text);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_too_long", "{text}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.maxStreamSeconds"),
        "{last}"
    );
    assert!(!data.iter().any(|d| d == "[DONE]"), "{text}");
    assert!(
        !streamed_text(&data).is_empty(),
        "tokens came before the cut"
    );
    eventually("the upstream stream is dropped", || {
        s.fake.streams_abandoned() == 1
    })
    .await;
}

#[tokio::test]
async fn a_partial_line_past_the_cap_ends_the_stream_with_an_error() {
    let s = stack_with("  maxStreamLineBytes: 1024", "").await;
    let long = "x".repeat(5000);
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&["ok", long.as_str()])
            .split(Split::Bytes(300)),
    );
    let (status, _, text) = s
        .post("/v1/chat/completions", &chat("chat-tgi", true))
        .await;
    assert_eq!(status, 200);
    let data = sse_data(&text);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_line_too_long", "{text}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 1024 bytes"),
        "{last}"
    );
    assert!(!data.iter().any(|d| d == "[DONE]"), "{text}");
    assert_eq!(streamed_text(&data), "ok");
}

#[tokio::test]
async fn concurrency_limits_answer_503_with_retry_after() {
    let s = stack_with(
        "  maxConcurrentRequests: 2\n  maxConcurrentRequestsPerModel: 1",
        "",
    )
    .await;
    let slow = |b| EndpointBehaviour::new(b).first_part_delay(Duration::from_secs(20));
    s.fake.set("ep-tgi", slow(Behaviour::TgiChat));
    s.fake.set("ep-lmi", slow(Behaviour::LmiChat));
    let open = |model: &str| {
        s.http
            .post(format!("{}/v1/chat/completions", s.base))
            .bearer_auth(KEY)
            .json(&chat(model, true))
            .send()
    };
    // One stream of chat-tgi holds the model's only place.
    let held = open("chat-tgi").await.unwrap();
    assert_eq!(held.status(), 200);
    let (status, headers, text) = s
        .post("/v1/chat/completions", &chat("chat-tgi", false))
        .await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(headers["retry-after"], "1");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "overloaded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maxConcurrentRequestsPerModel"),
        "{v}"
    );
    // Another model still has room, until the gateway as a whole is full.
    let (status, _) = s
        .post_json("/v1/chat/completions", &chat("chat-openai", false))
        .await;
    assert_eq!(status, 200);
    let second = open("chat-lmi").await.unwrap();
    assert_eq!(second.status(), 200);
    let (status, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": "x"}),
        )
        .await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.maxConcurrentRequests)"),
        "{v}"
    );
    // The places come back when the streams end.
    drop(held);
    drop(second);
    let mut last = 0;
    for _ in 0..200 {
        let (status, _) = s
            .post_json(
                "/v1/embeddings",
                &json!({"model": "embed-tei", "input": "x"}),
            )
            .await;
        last = status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(last, 200);
    assert!(s.gw.metrics().errors_of("overloaded") >= 2);
}

#[tokio::test]
async fn embeddings_inputs_are_capped_in_number_and_size() {
    let s = stack_with("  maxEmbeddingInputs: 3\n  maxEmbeddingInputBytes: 100", "").await;
    let (status, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": ["a", "b", "c", "d"]}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`input` has 4 items; at most 3"),
        "{v}"
    );
    let big = "y".repeat(60);
    let (status, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": [big, big]}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.maxEmbeddingInputBytes"),
        "{v}"
    );
    let (status, v) = s
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": ["a", "b", "c"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert_eq!(v["data"][2]["index"], 2);
    assert_eq!(v["data"][2]["object"], "embedding");

    // The defaults: OpenAI's 2,048 inputs, and a 4 MiB body.
    let d = stack().await;
    let many: Vec<String> = (0..2049).map(|i| i.to_string()).collect();
    let (status, v) = d
        .post_json(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": many}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2048"),
        "{v}"
    );
    let huge = "z".repeat(5 * 1024 * 1024);
    let (status, _, text) = d
        .post(
            "/v1/embeddings",
            &json!({"model": "embed-tei", "input": huge}),
        )
        .await;
    assert_eq!(status, 413, "{}", &text[..text.len().min(300)]);
}

#[tokio::test]
async fn not_found_is_told_apart_by_the_control_plane_not_by_words() {
    let s = stack_with(
        "",
        "  - {name: chat-ic, kind: chat, endpointName: ep-ic, format: tgi, inferenceComponent: ic-missing}\n  \
         - {name: chat-ic-ok, kind: chat, endpointName: ep-ic, format: tgi, inferenceComponent: ic-1}\n  \
         - {name: chat-refused, kind: chat, endpointName: ep-refused, format: tgi}",
    )
    .await;
    s.fake.set(
        "ep-ic",
        EndpointBehaviour::new(Behaviour::TgiChat).components(&["ic-1"]),
    );
    s.fake.set(
        "ep-refused",
        EndpointBehaviour::new(Behaviour::TgiChat).fault(Fault::Validation {
            message: "Endpoint ep-refused of account 123456789012 not found. Could not find it; it does not exist".into(),
        }),
    );
    // A missing inference component on an existing endpoint is its own error.
    for stream in [false, true] {
        let (status, v) = s
            .post_json("/v1/chat/completions", &chat("chat-ic", stream))
            .await;
        assert_eq!(status, 404, "{v}");
        assert_eq!(v["error"]["code"], "inference_component_not_found", "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("`ic-missing`") && m.contains("`ep-ic`"), "{m}");
        assert!(!m.contains("not found in us-east-1"), "{m}");
    }
    let (status, v) = s
        .post_json("/v1/chat/completions", &chat("chat-ic-ok", false))
        .await;
    assert_eq!(status, 200, "{v}");
    // A missing endpoint is still that.
    let (status, v) = s
        .post_json("/v1/chat/completions", &chat("chat-missing", false))
        .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "endpoint_not_found");
    // A refusal whose message reads like "not found" for an endpoint that exists is not one.
    let (status, v) = s
        .post_json("/v1/chat/completions", &chat("chat-refused", false))
        .await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"]["code"], "sagemaker_validation_error", "{v}");
}

/// A model in another account assumes a role there (with an external ID) and reaches that
/// account's endpoint through `/v1`, while a model without its own credentials uses the
/// top-level ones in the default account: moto answers each account with its own canned text.
#[tokio::test]
async fn a_model_in_another_account_assumes_its_role_and_reaches_that_account() {
    let moto = sagebridge_testkit::MotoServer::start().await.unwrap();
    for (account, text) in [
        (None, "from account A"),
        (Some("222222222222"), "from account B"),
    ] {
        let canned = sagebridge_testkit::CannedInvokeResult::json(
            &json!([{"generated_text": text, "details": {"finish_reason": "stop", "generated_tokens": 3}}]),
        );
        moto.set_endpoint_results(account, "us-east-1", &[canned])
            .await
            .unwrap();
    }
    moto.start_recording().await.unwrap();
    let yaml = format!(
        "awsConfig: {{awsRegion: us-east-1, awsAccessKeyId: testing, awsSecretAccessKey: testing, endPointURL: '{}'}}
models:
  - {{name: a-chat, kind: chat, endpointName: shared-ep, format: tgi}}
  - name: b-chat
    kind: chat
    endpointName: shared-ep
    format: tgi
    awsConfig: {{assumeRoleArn: 'arn:aws:iam::222222222222:role/partner-reader', assumeRoleExternalId: partner-ext-42}}
",
        moto.endpoint()
    );
    let cfg = config::load_str("accounts.yaml", &yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let gw = Arc::new(
        Gateway::with_options(
            &cfg,
            GatewayOptions {
                client: ClientOptions::no_retries(),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(GatewayHandle::shared(gw));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    for (model, expected) in [("a-chat", "from account A"), ("b-chat", "from account B")] {
        let v: Value = http
            .post(format!("{base}/v1/chat/completions"))
            .json(&chat(model, false))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"], expected,
            "{model}: {v}"
        );
    }
    let calls = moto.recording().await.unwrap();
    let assumed: Vec<_> = calls
        .iter()
        .filter(|c| c.operation() == Some("AssumeRole"))
        .collect();
    assert_eq!(assumed.len(), 1, "one AssumeRole, for b-chat only");
    assert_eq!(
        assumed[0].form_field("ExternalId").as_deref(),
        Some("partner-ext-42")
    );
    assert_eq!(
        assumed[0].form_field("RoleArn").as_deref(),
        Some("arn:aws:iam::222222222222:role/partner-reader")
    );
    server.abort();
}

/// The audio models, for `stack_with`.
const AUDIO_MODELS: &str = "  - {name: whisper, kind: transcription, endpointName: ep-asr}\n  \
     - {name: whisper-js, kind: transcription, endpointName: ep-js-asr, format: jumpstart}\n  \
     - {name: tts, kind: speech, endpointName: ep-tts}\n  \
     - {name: tts-mp3, kind: speech, endpointName: ep-tts, responseFormats: [mp3, wav]}\n";

/// One part of a form: `(name, filename, content type, bytes)`.
type FormPart<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A multipart form as clients send it.
fn form(parts: &[FormPart<'_>]) -> (String, Vec<u8>) {
    let boundary = "----sagebridge-test-7f3a";
    let mut body = Vec::new();
    for (name, filename, content_type, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut d = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(f) = filename {
            d.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend_from_slice(format!("{d}\r\n").as_bytes());
        if let Some(t) = content_type {
            body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Stack {
    /// Posts an audio file to `path` with the given extra fields; status, content type, body.
    async fn post_audio(
        &self,
        path: &str,
        model: &str,
        file: (&str, &str, &[u8]),
        fields: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut parts = vec![
            ("model", None, None, model.as_bytes()),
            ("file", Some(file.0), Some(file.1), file.2),
        ];
        for (k, v) in fields {
            parts.push((k, None, None, v.as_bytes()));
        }
        let (ct, body) = form(&parts);
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, ct, r.text().await.unwrap())
    }

    fn invocations_of(
        &self,
        endpoint: &str,
    ) -> Vec<sagebridge_testkit::fake_runtime::RecordedInvocation> {
        self.fake
            .invocations()
            .into_iter()
            .filter(|i| i.endpoint == endpoint)
            .collect()
    }
}

/// A JumpStart Whisper endpoint: the WAV as `audio/wav` (the container refuses other names),
/// `{"text": [..]}` back; translations go to the same contract.
#[tokio::test]
async fn jumpstart_whisper_transcribes_and_translates() {
    let s = stack_with("", AUDIO_MODELS).await;
    let wav = wav_tone(2.0, 16_000);
    let file = ("speech.wav", "audio/x-wav", wav.as_slice());
    for path in ["/v1/audio/transcriptions", "/v1/audio/translations"] {
        let (status, _, body) = s.post_audio(path, "whisper-js", file, &[]).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"text": fake_transcript(2.0)})
        );
    }
    let calls = s.invocations_of("ep-js-asr");
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.header("content-type"), Some("audio/wav"));
        assert_eq!(call.body, wav);
    }
    let (status, _, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper-js",
            file,
            &[("response_format", "text")],
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, fake_transcript(2.0).as_str())
    );
}

#[tokio::test]
async fn transcription_in_every_response_format() {
    let s = stack_with("", AUDIO_MODELS).await;
    let wav = wav_tone(1.5, 16_000);
    let file = ("tone.wav", "audio/x-wav", wav.as_slice());
    let expected = fake_transcript(1.5);

    let (status, ct, body) = s
        .post_audio("/v1/audio/transcriptions", "whisper", file, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"text": expected})
    );
    let calls = s.invocations_of("ep-asr");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, wav, "the audio is the body, untouched");
    assert_eq!(calls[0].header("content-type"), Some("audio/wav"));

    let (status, ct, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper",
            file,
            &[
                ("response_format", "text"),
                ("language", "en"),
                ("temperature", "0"),
            ],
        )
        .await;
    assert_eq!((status, body.as_str()), (200, expected.as_str()));
    assert!(ct.starts_with("text/plain"), "{ct}");

    let (status, _, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper",
            file,
            &[("response_format", "srt")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!("1\n00:00:00,000 --> 00:00:01,500\n{expected}\n\n")
    );

    let (status, ct, body) = s
        .post_audio(
            "/v1/audio/translations",
            "whisper",
            file,
            &[("response_format", "vtt")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/vtt"), "{ct}");
    assert_eq!(
        body,
        format!("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n{expected}\n\n")
    );

    let (status, _, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper",
            file,
            &[("response_format", "verbose_json"), ("language", "en")],
        )
        .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["task"], "transcribe");
    assert_eq!(v["language"], "en");
    assert_eq!(v["duration"], 1.5);
    assert_eq!(v["text"], expected.as_str());
    assert_eq!(v["segments"][0]["end"], 1.5);

    let text = s.gw.metrics_text();
    for line in [
        "sagebridge_gateway_requests_total{model=\"whisper\",route=\"transcription\"} 4",
        "sagebridge_gateway_requests_total{model=\"whisper\",route=\"translation\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

#[tokio::test]
async fn a_long_wav_is_split_under_the_payload_limit_and_the_texts_joined() {
    let s = stack_with("  maxRequestBytes: 16777216", AUDIO_MODELS).await;
    // 400 s of 16 kHz 16-bit mono: 12.8 MB, more than twice SageMaker's 6 MB.
    let wav = wav_tone(400.0, 16_000);
    assert!(wav.len() > 2 * MAX_PAYLOAD);
    let (status, _, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper",
            ("long.wav", "audio/wav", &wav),
            &[("response_format", "verbose_json")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let calls = s.invocations_of("ep-asr");
    assert_eq!(calls.len(), 3, "three windows of whole seconds");
    // The windows may arrive in any order (they are sent concurrently); in time order every
    // window but the last is full.
    let mut durations: Vec<f64> = calls
        .iter()
        .map(|c| {
            assert!(c.body.len() <= MAX_PAYLOAD, "{} bytes", c.body.len());
            assert_eq!(c.header("content-type"), Some("audio/wav"));
            wav_duration(&c.body).expect("each piece is a WAV file")
        })
        .collect();
    durations.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(durations.iter().sum::<f64>(), 400.0);
    assert_eq!(durations[0], durations[1]);
    assert_eq!(
        durations[0].fract(),
        0.0,
        "windows are whole seconds: {durations:?}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    let joined: Vec<String> = durations.iter().map(|d| fake_transcript(*d)).collect();
    assert_eq!(v["text"], joined.join(" "));
    assert_eq!(v["duration"], 400.0);
    let segments = v["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[1]["start"], durations[0]);
    assert_eq!(segments[2]["end"], 400.0);

    // The same size in a format the gateway cannot cut: 413 naming the limit.
    let mp3 = vec![0xFFu8; MAX_PAYLOAD + 1];
    let (status, _, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper",
            ("long.mp3", "audio/mpeg", &mp3),
            &[],
        )
        .await;
    assert_eq!(status, 413, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "audio_too_large");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_PAYLOAD.to_string()),
        "{v}"
    );
    assert_eq!(s.invocations_of("ep-asr").len(), 3, "nothing was sent");
}

#[tokio::test]
async fn speech_answers_the_containers_audio() {
    let s = stack_with("", AUDIO_MODELS).await;
    let (status, headers, body) = s
        .post(
            "/v1/audio/speech",
            &json!({"model": "tts", "input": "hello there", "voice": "alloy"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "audio/wav");
    let r = s
        .http
        .post(format!("{}/v1/audio/speech", s.base))
        .bearer_auth(KEY)
        .json(&json!({"model": "tts", "input": "hello there", "voice": "alloy", "response_format": "wav", "speed": 1.25}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let audio = r.bytes().await.unwrap();
    assert_eq!(wav_duration(&audio), Some(0.2), "0.1 s per word");
    let calls = s.invocations_of("ep-tts");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1].json(),
        json!({"model": "tts", "input": "hello there", "voice": "alloy", "response_format": "wav", "speed": 1.25})
    );
    assert_eq!(calls[1].header("accept"), Some("audio/wav"));
    // The models list says what each speech model produces (the playground offers those).
    let v = s.get_json("/v1/models").await;
    let formats = |id: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .map(|m| m["response_formats"].clone())
    };
    assert_eq!(formats("tts"), Some(json!(["wav"])), "{v}");
    assert_eq!(formats("tts-mp3"), Some(json!(["mp3", "wav"])), "{v}");
    assert_eq!(
        formats("whisper"),
        Some(Value::Null),
        "not a speech model: {v}"
    );
}

#[tokio::test]
async fn audio_errors_wrong_kind_and_unsupported_formats() {
    let s = stack_with("", AUDIO_MODELS).await;
    let wav = wav_tone(0.5, 8_000);
    let file = ("a.wav", "audio/wav", wav.as_slice());

    // A chat model on the audio route, an audio model on the chat and speech routes.
    let (status, _, body) = s
        .post_audio("/v1/audio/transcriptions", "chat-tgi", file, &[])
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("wrong_model_kind")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/chat/completions"),
        "{v}"
    );
    let (status, v) = s
        .post_json(
            "/v1/audio/speech",
            &json!({"model": "whisper", "input": "hi"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("wrong_model_kind")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/audio/transcriptions"),
        "{v}"
    );
    let (status, v) = s
        .post_json("/v1/chat/completions", &chat("tts", false))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("wrong_model_kind")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/audio/speech"),
        "{v}"
    );

    // A format the model's container does not produce: 400 naming the ones it does.
    let (status, v) = s
        .post_json(
            "/v1/audio/speech",
            &json!({"model": "tts", "input": "hi", "response_format": "mp3"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "response_format");
    assert_eq!(
        v["error"]["message"],
        "model `tts` cannot produce `mp3` audio; it produces: wav (the gateway does not transcode)"
    );
    // Listed in the config: asked of the container as is (which refuses it here).
    let (status, v) = s
        .post_json(
            "/v1/audio/speech",
            &json!({"model": "tts-mp3", "input": "hi"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("model_rejected_request")),
        "{v}"
    );
    assert_eq!(
        s.invocations_of("ep-tts")[0].json()["response_format"],
        "mp3"
    );

    let (status, _, body) = s
        .post_audio(
            "/v1/audio/transcriptions",
            "whisper",
            file,
            &[("response_format", "xml")],
        )
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, v["error"]["param"].as_str()),
        (400, Some("response_format")),
        "{v}"
    );
    // JSON instead of a form.
    let (status, v) = s
        .post_json("/v1/audio/transcriptions", &json!({"model": "whisper"}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multipart/form-data"),
        "{v}"
    );
    assert!(s.invocations_of("ep-asr").is_empty());
}

#[tokio::test]
async fn official_openai_python_client_audio() {
    let venv = std::env::var("SAGEBRIDGE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sagebridge/venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    assert!(std::path::Path::new(&python).exists(), "no Python venv at {venv}: create it with `python3 -m venv {venv} && {venv}/bin/pip install openai 'moto[server]'`");
    let s = stack_with("", AUDIO_MODELS).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_audio.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&python)
            .arg(script)
            .env("OPENAI_BASE_URL", format!("{}/v1", s.base))
            .env("OPENAI_API_KEY", KEY)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["transcription"], fake_transcript(2.0));
    assert_eq!(v["transcription_text"], fake_transcript(2.0));
    assert_eq!(v["translation"], fake_transcript(2.0));
    assert_eq!(v["verbose_duration"], 2.0);
    assert_eq!(v["speech_seconds"], 0.3);
    assert_eq!(v["speech_channels"], 1);
    assert_eq!(v["bad_format_status"], 400);
    assert!(
        v["bad_format_message"]
            .as_str()
            .unwrap()
            .contains("it produces: wav"),
        "{v}"
    );
    assert_eq!(v["wrong_kind_status"], 400);
    let calls = s.invocations_of("ep-asr");
    assert_eq!(calls.len(), 4);
    assert!(calls
        .iter()
        .all(|c| c.header("content-type") == Some("audio/wav")));
}

/// A 1×1 PNG as a data URL.
const PNG_URL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn image_chat(model: &str, url: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}]})
}

const VISION_MODELS: &str = "  - {name: chat-vision, kind: chat, endpointName: ep-vision, format: openai, vision: true}\n  - {name: tgi-vision, kind: chat, endpointName: ep-tgi-vision, format: tgi, vision: true}\n";

#[tokio::test]
async fn images_reach_vision_models_as_their_containers_read_them() {
    let s = stack_with("", VISION_MODELS).await;
    s.fake.set(
        "ep-vision",
        EndpointBehaviour::new(Behaviour::OpenAiChat).vision(),
    );
    s.fake.set(
        "ep-tgi-vision",
        EndpointBehaviour::new(Behaviour::TgiChat).vision(),
    );
    // openai: the parts as sent, buffered and streamed.
    for stream in [false, true] {
        let (status, _, text) = s
            .post(
                "/v1/chat/completions",
                &image_chat("chat-vision", PNG_URL, stream),
            )
            .await;
        assert_eq!(status, 200, "{text}");
        let got = if stream {
            streamed_text(&sse_data(&text))
        } else {
            serde_json::from_str::<Value>(&text).unwrap()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(got, "Hello, world!");
        let sent = s.fake.invocations().last().unwrap().json();
        assert_eq!(
            sent["messages"][0]["content"][1]["image_url"]["url"],
            PNG_URL
        );
        assert_eq!(
            sent["messages"][0]["content"][1]["image_url"]["detail"],
            "low"
        );
    }
    // tgi: the image inline in the prompt, as a Markdown image.
    let (status, v) = s
        .post_json(
            "/v1/chat/completions",
            &image_chat("tgi-vision", PNG_URL, false),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let inputs = s.fake.invocations().last().unwrap().json()["inputs"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        inputs.contains(&format!("What is in this picture?![]({PNG_URL})")),
        "{inputs}"
    );
    // A data URL that is not base64 is refused by the gateway, before SageMaker.
    let calls = s.fake.invocations().len();
    let (status, v) = s
        .post_json(
            "/v1/chat/completions",
            &image_chat("chat-vision", "data:image/png;base64,AAA", false),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        s.fake.invocations().len(),
        calls,
        "refused before SageMaker"
    );

    // A model without `vision: true` gets a 400 naming it, and SageMaker is not called.
    for model in ["chat-openai", "chat-tgi"] {
        let (status, v) = s
            .post_json("/v1/chat/completions", &image_chat(model, PNG_URL, false))
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["param"], "messages");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("does not take images") && m.contains("vision: true"),
            "{m}"
        );
    }
    // Remote URLs are never fetched.
    let (status, v) = s
        .post_json(
            "/v1/chat/completions",
            &image_chat("chat-vision", "http://127.0.0.1:1/cat.png", false),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "messages[0].content[1].image_url.url");
    assert_eq!(s.fake.invocations().len(), calls);
}

#[tokio::test]
async fn reasoning_is_surfaced_as_reasoning_content_streamed_and_buffered() {
    let s = stack().await;
    let think = [
        "<think>",
        "The user",
        " greets.</th",
        "ink>\n",
        "Hello",
        "!",
    ];
    for split in [Split::PerEvent, Split::Bytes(1)] {
        s.fake.set(
            "ep-tgi",
            EndpointBehaviour::new(Behaviour::TgiChat)
                .tokens(&think)
                .split(split.clone()),
        );
        s.fake.set(
            "ep-openai",
            EndpointBehaviour::new(Behaviour::OpenAiChat)
                .tokens(&think)
                .split(split.clone()),
        );
        s.fake.set(
            "ep-lmi",
            EndpointBehaviour::new(Behaviour::OpenAiChat)
                .reasoning(&["The user", " greets."])
                .tokens(&["\n", "Hello", "!"])
                .split(split.clone()),
        );
        let models_extra = ["chat-tgi", "chat-openai"];
        for model in models_extra {
            let (status, v) = s
                .post_json("/v1/chat/completions", &chat(model, false))
                .await;
            assert_eq!(status, 200, "{v}");
            let msg = &v["choices"][0]["message"];
            assert_eq!(msg["reasoning_content"], "The user greets.", "{model}: {v}");
            assert_eq!(msg["content"], "\nHello!", "{model}");
            let (status, _, text) = s.post("/v1/chat/completions", &chat(model, true)).await;
            assert_eq!(status, 200);
            let data = sse_data(&text);
            let field = |name: &str| -> String {
                data.iter()
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .filter_map(|v| v["choices"][0]["delta"][name].as_str().map(str::to_owned))
                    .collect()
            };
            assert_eq!(
                field("reasoning_content"),
                "The user greets.",
                "{model} {split:?}"
            );
            assert_eq!(field("content"), "\nHello!", "{model} {split:?}");
            assert!(!text.contains("think>"), "{model}: {text}");
        }
    }
    // A container that sends `reasoning_content` itself (vLLM with a reasoning parser) is
    // passed through as it is.
    let s = stack_with(
        "",
        "  - {name: chat-reasoner, kind: chat, endpointName: ep-reasoner}\n",
    )
    .await;
    s.fake.set(
        "ep-reasoner",
        EndpointBehaviour::new(Behaviour::OpenAiChat)
            .reasoning(&["The user", " greets."])
            .tokens(&["Hello", "!"]),
    );
    let (_, v) = s
        .post_json("/v1/chat/completions", &chat("chat-reasoner", false))
        .await;
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "The user greets."
    );
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
    let (_, _, text) = s
        .post("/v1/chat/completions", &chat("chat-reasoner", true))
        .await;
    assert!(text.contains(r#""reasoning_content":"The user""#), "{text}");
}

/// Runs one of the Python client scripts against the gateway; its last stdout line as JSON.
async fn run_python(script: &str, base: &str) -> Value {
    let venv = std::env::var("SAGEBRIDGE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sagebridge/venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "no Python venv at {venv}: run `. scripts/env.sh && ensure_venv`"
    );
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(&script)
            .env("OPENAI_BASE_URL", format!("{base}/v1"))
            .env("OPENAI_API_KEY", KEY)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished within 120 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap()
}

#[tokio::test]
async fn official_openai_python_client_tools_images_and_reasoning() {
    let s = stack_with("", VISION_MODELS).await;
    s.fake.set(
        "ep-vision",
        EndpointBehaviour::new(Behaviour::OpenAiChat).vision(),
    );
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&["<think>", "Greeting", ".</thi", "nk>", "Hi", "!"])
            .split(Split::Bytes(2)),
    );
    let v = run_python("openai_chat_extras.py", &s.base).await;
    let args: Value =
        serde_json::from_str(sagebridge_testkit::fake_runtime::FAKE_TOOL_ARGUMENTS).unwrap();
    for key in ["tool_call", "stream_tool_call", "named_tool_call"] {
        assert_eq!(v[key]["id"], "call_fake_0", "{key}: {v}");
        assert_eq!(v[key]["arguments"], args, "{key}: {v}");
    }
    assert_eq!(v["tool_call"]["name"], "get_weather");
    assert_eq!(v["stream_tool_call"]["name"], "get_weather");
    assert_eq!(v["named_tool_call"]["name"], "get_time");
    assert_eq!(v["tool_finish"], "tool_calls");
    assert_eq!(v["stream_tool_finish"], "tool_calls");
    assert_eq!(v["after_tool"], "Hello, world!");
    // The container refused the unknown function: its 400, a request error the client's
    // `BadRequestError` carries (and does not retry).
    assert_eq!(v["bad_tool_choice_status"], 400, "{v}");
    assert_eq!(v["bad_tool_choice_code"], "model_rejected_request", "{v}");
    assert_eq!(v["image"], "Hello, world!");
    assert_eq!(v["image_refused_status"], 400);
    assert_eq!(v["reasoning"], "Greeting.");
    assert_eq!(v["reasoning_content"], "Hi!");
    assert_eq!(v["stream_reasoning"], "Greeting.");
    assert_eq!(v["stream_content"], "Hi!");
    // The tools and tool_choice reached the container as the client sent them.
    let named = s
        .fake
        .invocations()
        .into_iter()
        .find(|i| i.json()["tool_choice"]["function"]["name"] == "get_time")
        .unwrap();
    assert_eq!(named.json()["tools"][1]["function"]["name"], "get_time");
}

#[tokio::test]
async fn official_openai_npm_package() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/openai")
            .exists(),
        "the npm package is not installed: run `npm ci` in {dir} (scripts/test.sh does)"
    );
    let s = stack().await;
    s.fake.set(
        "ep-openai",
        EndpointBehaviour::new(Behaviour::OpenAiChat).split(Split::Random { seed: 9, max: 7 }),
    );
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg("openai_client.mjs")
            .current_dir(dir)
            .env("OPENAI_BASE_URL", format!("{}/v1", s.base))
            .env("OPENAI_API_KEY", KEY)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the node client finished within 120 s")
    .expect("node (20 or later) is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["chat"], "Hello, world!");
    assert_eq!(v["chat_finish"], "stop");
    assert_eq!(v["stream"], "Hello, world!");
    assert_eq!(v["stream_chunks"], 4);
    assert_eq!(v["stream_usage_completion_tokens"], 4);
    assert_eq!(v["embedding_dims"], json!([8, 8]));
    // Both encodings give the container's f32 values back exactly.
    for key in ["embedding0", "embedding_float0"] {
        let got: Vec<f32> = v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, fake_embedding("first", 8), "{key}");
    }
    assert_eq!(v["unknown_model_status"], 404);
    let streamed = s.fake.invocations().into_iter().find(|i| i.stream).unwrap();
    assert_eq!(streamed.json()["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn langchain_openai_chat_tools_and_embeddings() {
    let s = stack().await;
    s.fake.set(
        "ep-openai",
        EndpointBehaviour::new(Behaviour::OpenAiChat).split(Split::Bytes(5)),
    );
    let v = run_python("langchain_client.py", &s.base).await;
    assert_eq!(v["stream"], "Hello, world!");
    assert_eq!(v["stream_chunks"], 4);
    let args: Value =
        serde_json::from_str(sagebridge_testkit::fake_runtime::FAKE_TOOL_ARGUMENTS).unwrap();
    let call = json!([{"name": "get_weather", "args": args, "id": "call_fake_0"}]);
    assert_eq!(v["tool_calls"], call);
    assert_eq!(v["stream_tool_calls"], call);
    assert_eq!(v["after_tool"], "Hello, world!");
    assert_eq!(v["embedding_dims"], json!([8, 8]));
    assert_eq!(v["query_dims"], 8);
    let got: Vec<f32> = v["embedding0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(got, fake_embedding("first", 8));
    // The tools LangChain made from the Python function reached the container.
    let sent = s
        .fake
        .invocations()
        .into_iter()
        .find(|i| i.json()["tools"].is_array())
        .unwrap();
    assert_eq!(sent.json()["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn token_array_embedding_inputs_get_a_400_that_says_how_to_send_text() {
    let s = stack().await;
    // What LangChain's OpenAIEmbeddings sends by default: tiktoken ids, base64 answers.
    for input in [json!([[9906, 1917]]), json!([9906, 1917])] {
        let (status, v) = s
            .post_json(
                "/v1/embeddings",
                &json!({"model": "embed-tei", "input": input, "encoding_format": "base64"}),
            )
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["param"], "input");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("token arrays are not supported")
                && m.contains("check_embedding_ctx_length=False"),
            "{m}"
        );
    }
    assert!(s.fake.invocations().is_empty());
}

const COLD_MODELS: &str = "  - {name: cold-now, kind: chat, endpointName: ep-cold, inferenceComponent: ic-cold}\n  - {name: cold-wait, kind: chat, endpointName: ep-cold, inferenceComponent: ic-cold, coldStartWaitSeconds: 60}\n  - {name: cold-short, kind: chat, endpointName: ep-cold, inferenceComponent: ic-cold, coldStartWaitSeconds: 0.2}\n  - {name: cold-embed, kind: embedding, endpointName: ep-cold-embed, inferenceComponent: ic-embed, coldStartWaitSeconds: 60}\n";

fn cold_endpoint(copies: u32) -> EndpointBehaviour {
    EndpointBehaviour::new(Behaviour::OpenAiChat)
        .components(&["ic-cold"])
        .copies(copies)
}

fn invocations_of(s: &Stack, endpoint: &str) -> usize {
    s.fake
        .invocations()
        .iter()
        .filter(|i| i.endpoint == endpoint)
        .count()
}

#[tokio::test]
async fn a_model_scaled_to_zero_answers_503_with_retry_after() {
    let s = stack_with("", COLD_MODELS).await;
    s.fake.set("ep-cold", cold_endpoint(0));
    // No wait configured: 503 at once, for a buffered and a streamed request alike.
    for stream in [false, true] {
        let (status, headers, text) = s
            .post("/v1/chat/completions", &chat("cold-now", stream))
            .await;
        assert_eq!(status, 503, "{text}");
        assert_eq!(headers["retry-after"], "60");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "scaled_to_zero");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("scaled to zero") && m.contains("coldStartWaitSeconds"),
            "{m}"
        );
    }
    assert_eq!(invocations_of(&s, "ep-cold"), 2);
    assert_eq!(s.gw.cold_start_probes(), 0, "no wait, no probe");
    // A wait that ends before a copy runs: the same 503, after one probe gave up.
    let (status, headers, text) = s
        .post("/v1/chat/completions", &chat("cold-short", false))
        .await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(headers["retry-after"], "60");
    assert!(text.contains("after waiting for one"), "{text}");
    eventually("the probe stopped", || s.gw.cold_start_probes() == 0).await;
    // The copy count came from the control plane, not from the error's words.
    assert!(s.fake.describe_component_calls() >= 3);
}

#[tokio::test]
async fn held_requests_share_one_probe_and_all_go_when_a_copy_runs() {
    let s = Arc::new(stack_with("", COLD_MODELS).await);
    s.fake.set("ep-cold", cold_endpoint(0));
    s.fake.set(
        "ep-cold-embed",
        EndpointBehaviour::new(Behaviour::TeiEmbed)
            .components(&["ic-embed"])
            .copies(0),
    );
    let first = {
        let s = s.clone();
        tokio::spawn(async move {
            s.post("/v1/chat/completions", &chat("cold-wait", false))
                .await
        })
    };
    eventually("the first request waits on a probe", || {
        s.gw.cold_start_waiting("cold-wait") == 1
    })
    .await;
    let mut held = vec![first];
    for i in 0..7 {
        let s = s.clone();
        held.push(tokio::spawn(async move {
            s.post("/v1/chat/completions", &chat("cold-wait", i % 2 == 0))
                .await
        }));
    }
    eventually("eight requests wait on the one probe", || {
        s.gw.cold_start_waiting("cold-wait") == 8
    })
    .await;
    assert_eq!(s.gw.cold_start_probes(), 1);
    // Only the first request invoked: the others joined the probe without calling SageMaker.
    assert_eq!(invocations_of(&s, "ep-cold"), 1);
    // The probe polls on its own schedule, whatever the number of requests waiting.
    let before = s.fake.describe_component_calls();
    eventually("the probe polled twice more", || {
        s.fake.describe_component_calls() >= before + 2
    })
    .await;
    assert_eq!(invocations_of(&s, "ep-cold"), 1);

    // An embedding model on another component waits on a probe of its own.
    let embed = {
        let s = s.clone();
        tokio::spawn(async move {
            s.post_json(
                "/v1/embeddings",
                &json!({"model": "cold-embed", "input": ["a", "b"]}),
            )
            .await
        })
    };
    eventually("the embedding request waits", || {
        s.gw.cold_start_waiting("cold-embed") == 1
    })
    .await;
    assert_eq!(s.gw.cold_start_probes(), 2);

    // A copy runs: every held request goes, once.
    s.fake.set("ep-cold", cold_endpoint(1));
    for (i, h) in held.into_iter().enumerate() {
        let (status, _, text) = h.await.unwrap();
        assert_eq!(status, 200, "{i}: {text}");
        let got = if i > 0 && (i - 1) % 2 == 0 {
            streamed_text(&sse_data(&text))
        } else {
            serde_json::from_str::<Value>(&text).unwrap()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(got, "Hello, world!", "{i}");
    }
    assert_eq!(invocations_of(&s, "ep-cold"), 1 + 8);
    assert_eq!(s.gw.cold_start_waiting("cold-embed"), 1, "still cold");
    s.fake.set(
        "ep-cold-embed",
        EndpointBehaviour::new(Behaviour::TeiEmbed)
            .components(&["ic-embed"])
            .copies(1),
    );
    let (status, v) = embed.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    eventually("the probes ended", || s.gw.cold_start_probes() == 0).await;
}

/// Buffered invocations are signed by the gateway itself (`gateway::direct`, aws-sigv4): with
/// IAM enforcement on, moto checks each request's SigV4 signature and the caller's policy, as
/// SageMaker does. A key allowed to invoke gets the answer; a wrong secret (a signature that
/// does not match) and a user without `sagemaker:InvokeEndpoint` are refused with errors that
/// say so, and the secret appears in neither.
#[tokio::test]
async fn moto_checks_the_signature_and_policy_of_each_invocation() {
    let moto = sagebridge_testkit::MotoServer::start().await.unwrap();
    let canned = sagebridge_testkit::CannedInvokeResult::json(
        &json!([{"generated_text": "signed", "details": {"finish_reason": "stop", "generated_tokens": 1}}]),
    );
    moto.set_endpoint_results(None, "us-east-1", &[canned.clone(), canned])
        .await
        .unwrap();
    let iam = sagebridge_testkit::iam::MotoIam::new(&moto.endpoint());
    let allowed = iam
        .user_with_actions("invoker", &["sagemaker:InvokeEndpoint"])
        .await
        .unwrap();
    let other = iam
        .user_with_actions("reader", &["sagemaker:ListModels"])
        .await
        .unwrap();
    moto.reset_auth(0).await.unwrap();

    let call = |key: String, secret: String| {
        let endpoint = moto.endpoint();
        async move {
            let yaml = format!(
                "awsConfig: {{awsRegion: us-east-1, awsAccessKeyId: '{key}', awsSecretAccessKey: '{secret}', endPointURL: '{endpoint}'}}\nmodels:\n  - {{name: m, kind: chat, endpointName: moto-ep, format: tgi}}\n"
            );
            let env = |_: &str| None;
            let cfg = config::load_str("moto.yaml", &yaml, &env).unwrap();
            let gw = Arc::new(
                Gateway::with_options(
                    &cfg,
                    GatewayOptions {
                        client: ClientOptions::no_retries(),
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let app = router(GatewayHandle::shared(gw));
            let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let r = reqwest::Client::new()
                .post(format!("{base}/v1/chat/completions"))
                .json(&chat("m", false))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            server.abort();
            (status, body)
        }
    };

    let (status, body) = call(
        allowed.access_key_id.clone(),
        allowed.secret_access_key.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "signed", "{v}");

    let wrong_secret = format!("{}x", allowed.secret_access_key);
    let (status, body) = call(allowed.access_key_id.clone(), wrong_secret.clone()).await;
    assert_ne!(status, 200, "a bad signature must be refused: {body}");
    assert!(
        body.contains("signature") || body.contains("Signature") || body.contains("credentials"),
        "{body}"
    );
    assert!(!body.contains(&wrong_secret), "{body}");

    let (status, body) = call(other.access_key_id.clone(), other.secret_access_key.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("sagemaker:InvokeEndpoint"), "{body}");
    assert!(!body.contains(&other.secret_access_key), "{body}");
}
