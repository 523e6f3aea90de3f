//! A fault-injecting HTTP proxy between sagebridge and its AWS peers (moto, the fakes), for the
//! reliability report (`scripts/reliability/report.sh`) and fault tests.
//!
//! sagebridge points its `endPointURL` (or `runtimeEndPointURL`) at the proxy; the proxy
//! forwards every request to one upstream and, per AWS API, injects a [`Fault`]:
//! added latency, throttling, 500/503 answers, connection resets, truncated bodies, stalled
//! responses, slow event streams and a stream cut in the middle of an event.
//!
//! The API of a request is read the way AWS routes it: the `X-Amz-Target` header of the
//! awsJson protocol (`SageMaker.ListModels` -> `ListModels`), the runtime's REST paths
//! (`/endpoints/{name}/invocations` -> `InvokeEndpoint`, `.../invocations-response-stream` ->
//! `InvokeEndpointWithResponseStream`) and the `Action` of a Query body (STS).
//!
//! Faults are drawn from a seeded generator, so a trial is repeatable. `GET
//! /__fault-proxy/stats` answers the counts and the longest forwarded call; `POST
//! /__fault-proxy/rules` with one rule per line replaces the rules and clears the counts.
//!
//! Rules are written `API=FAULT[,FAULT...]` where `API` is an operation name or `*`:
//! `latency:30ms`, `throttle:25%`, `status:500:50%`, `status:503:100%`, `reset:20%`,
//! `truncate:20%`, `stall:10s:5%`, `slow:200ms` (delay between chunks), `cut:300` (end the
//! response body with a broken connection after 300 bytes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One way of misbehaving.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Wait this long before forwarding.
    Latency(Duration),
    /// Answer 400 `ThrottlingException` (percent of requests).
    Throttle(u8),
    /// Answer this status with an AWS error body (code, percent).
    Status(u16, u8),
    /// Close the connection without an answer (percent).
    Reset(u8),
    /// Forward, but send half of the body under the full `Content-Length`, then close.
    Truncate(u8),
    /// Hold the request this long before forwarding (percent).
    Stall(Duration, u8),
    /// Forward the response body chunk by chunk with this delay between chunks.
    Slow(Duration),
    /// Forward this many bytes of the response body, then break the connection.
    Cut(usize),
}

/// The faults of one API (`None`: every API).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub api: Option<String>,
    pub faults: Vec<Fault>,
}

impl Rule {
    /// Parses `API=FAULT[,FAULT...]` (see the module docs).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (api, faults) = text
            .split_once('=')
            .with_context(|| format!("fault rule {text:?}: expected API=FAULT[,FAULT...]"))?;
        let api = match api.trim() {
            "*" => None,
            "" => bail!("fault rule {text:?}: empty API name (use * for every API)"),
            name => Some(name.to_owned()),
        };
        let faults = faults
            .split(',')
            .map(|f| parse_fault(f.trim()).with_context(|| format!("fault rule {text:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { api, faults })
    }
}

fn parse_percent(s: &str) -> anyhow::Result<u8> {
    let n: u8 = s
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("{s:?} is not a percentage"))?;
    if n > 100 {
        bail!("{s:?} is more than 100%");
    }
    Ok(n)
}

fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .with_context(|| format!("{s:?} needs a unit (ms or s)"))?;
    let n: f64 = number
        .parse()
        .with_context(|| format!("{s:?} is not a duration"))?;
    match unit {
        "ms" => Ok(Duration::from_secs_f64(n / 1000.0)),
        "s" => Ok(Duration::from_secs_f64(n)),
        _ => bail!("{s:?}: the unit must be ms or s"),
    }
}

fn parse_fault(text: &str) -> anyhow::Result<Fault> {
    let parts: Vec<&str> = text.split(':').collect();
    Ok(match parts.as_slice() {
        ["latency", d] => Fault::Latency(parse_duration(d)?),
        ["throttle", p] => Fault::Throttle(parse_percent(p)?),
        ["status", code, p] => Fault::Status(
            code.parse()
                .with_context(|| format!("{code:?} is not a status"))?,
            parse_percent(p)?,
        ),
        ["reset", p] => Fault::Reset(parse_percent(p)?),
        ["truncate", p] => Fault::Truncate(parse_percent(p)?),
        ["stall", d, p] => Fault::Stall(parse_duration(d)?, parse_percent(p)?),
        ["slow", d] => Fault::Slow(parse_duration(d)?),
        ["cut", n] => Fault::Cut(
            n.parse()
                .with_context(|| format!("{n:?} is not a byte count"))?,
        ),
        _ => bail!(
            "unknown fault {text:?}; expected latency:D, throttle:P%, status:CODE:P%, reset:P%, \
             truncate:P%, stall:D:P%, slow:D or cut:BYTES"
        ),
    })
}

/// What the proxy saw.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ProxyStats {
    pub requests: u64,
    /// Injected faults by kind.
    pub faults: BTreeMap<String, u64>,
    /// Requests by API.
    pub apis: BTreeMap<String, u64>,
    /// The longest time from a request's arrival to the head of its answer (injected delays
    /// included), in milliseconds. A stall the client gave up on first is not counted.
    pub longest_ms: u64,
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    stats: Mutex<ProxyStats>,
    /// State of the seeded generator (splitmix64).
    rng: AtomicU64,
    client: reqwest::Client,
}

impl Shared {
    /// A number in 0..100 from the seeded generator.
    fn roll(&self) -> u8 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % 100) as u8
    }

    fn hit(&self, percent: u8) -> bool {
        self.roll() < percent
    }

    fn count(&self, fault: &str) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        *stats.faults.entry(fault.to_owned()).or_default() += 1;
    }

    fn faults_for(&self, api: &str) -> Vec<Fault> {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.api.as_deref().is_none_or(|a| a == api))
            .flat_map(|r| r.faults.clone())
            .collect()
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on `listen` (use port 0) in front of `upstream` (`http://host:port`).
    pub async fn start(
        listen: SocketAddr,
        upstream: &str,
        rules: Vec<Rule>,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rules: Mutex::new(rules),
            stats: Mutex::new(ProxyStats::default()),
            rng: AtomicU64::new(seed),
            client: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(64)
                .build()?,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// `http://ADDR` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rules (for the next requests).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.shared.rules.lock().unwrap_or_else(|e| e.into_inner()) = rules;
    }

    /// What the proxy saw so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req));
            // An error here is a fault we injected or a client that went away.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The AWS API a request calls.
fn api_of(req: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let path = req.uri.path();
    if path.ends_with("/invocations-response-stream") {
        return "InvokeEndpointWithResponseStream".to_owned();
    }
    if path.ends_with("/invocations") {
        return "InvokeEndpoint".to_owned();
    }
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(action) = text
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
        {
            return action.to_owned();
        }
    }
    format!("{} {}", req.method, path)
}

/// The injected error of "the connection broke" (hyper closes the connection on it).
#[derive(Debug)]
struct Injected(&'static str);

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fault proxy: injected {}", self.0)
    }
}
impl std::error::Error for Injected {}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"__type": kind, "message": message}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", kind)
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Injected> {
    let started = Instant::now();
    if req.uri().path() == "/__fault-proxy/stats" {
        let stats = shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let body = serde_json::to_string(&stats).unwrap_or_default();
        return Ok(Response::new(Body::from(body)));
    }
    let (parts, incoming) = req.into_parts();
    let body = match http_body_util_collect(incoming).await {
        Ok(b) => b,
        Err(_) => return Err(Injected("nothing: the client went away")),
    };
    if parts.uri.path() == "/__fault-proxy/rules" && parts.method == hyper::Method::POST {
        let text = String::from_utf8_lossy(&body);
        let parsed: anyhow::Result<Vec<Rule>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(Rule::parse)
            .collect();
        return Ok(match parsed {
            Ok(rules) => {
                *shared.rules.lock().unwrap_or_else(|e| e.into_inner()) = rules;
                *shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = ProxyStats::default();
                Response::new(Body::from("ok"))
            }
            Err(e) => Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .body(Body::from(format!("{e:#}")))
                .unwrap_or_default(),
        });
    }
    let api = api_of(&parts, &body);
    {
        let mut stats = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.requests += 1;
        *stats.apis.entry(api.clone()).or_default() += 1;
    }
    let faults = shared.faults_for(&api);
    let mut slow = None;
    let mut cut = None;
    let mut truncate = false;
    for fault in &faults {
        match *fault {
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::Throttle(p) if shared.hit(p) => {
                shared.count("throttle");
                return Ok(aws_error(
                    StatusCode::BAD_REQUEST,
                    "ThrottlingException",
                    "Rate exceeded",
                ));
            }
            Fault::Status(code, p) if shared.hit(p) => {
                shared.count(&format!("status {code}"));
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let kind = if code == 503 {
                    "ServiceUnavailable"
                } else {
                    "InternalFailure"
                };
                return Ok(aws_error(status, kind, "injected by the fault proxy"));
            }
            Fault::Reset(p) if shared.hit(p) => {
                shared.count("reset");
                return Err(Injected("reset"));
            }
            Fault::Truncate(p) if shared.hit(p) => {
                shared.count("truncate");
                truncate = true;
            }
            Fault::Stall(d, p) if shared.hit(p) => {
                shared.count("stall");
                tokio::time::sleep(d).await;
            }
            Fault::Slow(d) => slow = Some(d),
            Fault::Cut(n) => cut = Some(n),
            _ => {}
        }
    }
    let url = format!(
        "{}{}",
        shared.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut upstream = shared.client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let response = match upstream.send().await {
        Ok(r) => r,
        Err(_) => return Err(Injected("nothing: the upstream is unreachable")),
    };
    let mut builder = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        // A cut response drops its Content-Length (the client learns of the cut by the broken
        // connection, as with a chunked event stream).
        if cut.is_some() && name == hyper::header::CONTENT_LENGTH {
            continue;
        }
        builder = builder.header(name, value);
    }
    {
        let ms = started.elapsed().as_millis() as u64;
        let mut stats = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.longest_ms = stats.longest_ms.max(ms);
    }
    if truncate {
        let full = response
            .bytes()
            .await
            .map_err(|_| Injected("nothing: upstream failed"))?;
        let half = full.slice(..full.len() / 2);
        let chunks =
            futures::stream::iter([Ok::<Bytes, Injected>(half), Err(Injected("truncated body"))]);
        return Ok(builder
            .header(hyper::header::CONTENT_LENGTH, full.len())
            .body(Body::from_stream(chunks))
            .unwrap_or_default());
    }
    if cut.is_some() {
        shared.count("cut");
    }
    let chunks = futures::stream::unfold(
        (response, 0usize, false),
        move |(mut response, sent, ended)| async move {
            if ended {
                return None;
            }
            if let Some(d) = slow {
                tokio::time::sleep(d).await;
            }
            match response.chunk().await {
                Ok(Some(chunk)) => match cut {
                    Some(limit) if sent + chunk.len() >= limit => {
                        let keep = chunk.slice(..limit.saturating_sub(sent));
                        Some((Ok(keep), (response, limit, true)))
                    }
                    _ => {
                        let sent = sent + chunk.len();
                        Some((Ok(chunk), (response, sent, false)))
                    }
                },
                Ok(None) => None,
                Err(_) => Some((
                    Err(Injected("nothing: upstream body failed")),
                    (response, sent, true),
                )),
            }
        },
    );
    // After a cut, the body ends with an error: hyper breaks the connection.
    let chunks = chunks.chain(futures::stream::iter(
        cut.map(|_| Err(Injected("cut stream"))),
    ));
    Ok(builder.body(Body::from_stream(chunks)).unwrap_or_default())
}

/// Reads a whole request body.
async fn http_body_util_collect(mut body: Incoming) -> Result<Bytes, hyper::Error> {
    use hyper::body::Body as _;
    let mut out = bytes::BytesMut::new();
    // Bounded by the client's body; requests to AWS are small.
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};

    #[test]
    fn rules_parse_and_bad_ones_say_why() {
        let rule = Rule::parse("ListTags=throttle:30%,latency:30ms").unwrap();
        assert_eq!(rule.api.as_deref(), Some("ListTags"));
        assert_eq!(
            rule.faults,
            vec![
                Fault::Throttle(30),
                Fault::Latency(Duration::from_millis(30))
            ]
        );
        let all = Rule::parse("*=status:503:100%,stall:2s:5%,cut:300,slow:0.5s").unwrap();
        assert_eq!(all.api, None);
        assert_eq!(all.faults.len(), 4);
        for bad in [
            "ListTags",
            "=reset:5%",
            "x=reset:500%",
            "x=latency:3",
            "x=explode:1",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    async fn proxy_in_front_of_a_fake(rules: &str) -> (FakeRuntime, FaultProxy) {
        let fake = FakeRuntime::start().await.unwrap();
        fake.set(
            "ep",
            EndpointBehaviour::new(Behaviour::TeiEmbed).dimensions(64),
        );
        let proxy = FaultProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            &fake.endpoint(),
            vec![Rule::parse(rules).unwrap()],
            7,
        )
        .await
        .unwrap();
        (fake, proxy)
    }

    async fn invoke(proxy: &FaultProxy) -> reqwest::Result<(u16, Bytes)> {
        let r = reqwest::Client::new()
            .post(format!("{}/endpoints/ep/invocations", proxy.endpoint()))
            .header("content-type", "application/json")
            .body(r#"{"inputs":["a","b"]}"#)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.bytes().await?))
    }

    #[tokio::test]
    async fn forwards_and_injects_each_fault() {
        let (_fake, proxy) = proxy_in_front_of_a_fake("Other=throttle:100%").await;
        let (status, body) = invoke(&proxy).await.unwrap();
        assert_eq!(status, 200);
        let vectors: Vec<Vec<f32>> = serde_json::from_slice(&body).unwrap();
        assert_eq!(vectors.len(), 2);

        proxy.set_rules(vec![Rule::parse("InvokeEndpoint=throttle:100%").unwrap()]);
        let (status, body) = invoke(&proxy).await.unwrap();
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("ThrottlingException"));

        proxy.set_rules(vec![Rule::parse("*=status:503:100%").unwrap()]);
        assert_eq!(invoke(&proxy).await.unwrap().0, 503);

        proxy.set_rules(vec![Rule::parse("*=reset:100%").unwrap()]);
        assert!(invoke(&proxy).await.is_err(), "a reset is no answer at all");

        proxy.set_rules(vec![Rule::parse("*=truncate:100%").unwrap()]);
        assert!(
            invoke(&proxy).await.is_err(),
            "a short body under its length is an error"
        );

        proxy.set_rules(vec![Rule::parse("*=cut:10").unwrap()]);
        assert!(invoke(&proxy).await.is_err(), "a cut body is an error");

        let stats = proxy.stats();
        assert_eq!(stats.requests, 6);
        assert_eq!(stats.apis["InvokeEndpoint"], 6);
        for kind in ["throttle", "status 503", "reset", "truncate", "cut"] {
            assert_eq!(stats.faults[kind], 1, "{kind}: {stats:?}");
        }
    }
}
