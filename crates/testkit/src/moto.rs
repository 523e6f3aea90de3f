//! A `moto_server` child process per test, and typed wrappers for moto's admin API.
//!
//! moto is our real AWS peer (see "Testing against real peers" in `ARCHITECTURE.md`). Each [`MotoServer`] is its own
//! process on its own port, so tests never share state; IAM enforcement in particular is global
//! to one server. The child is killed by its own PID when the value is dropped.
//!
//! `moto_server` cannot take a socket bound for it: the launcher picks a free port, releases
//! it and lets moto bind it, and in between another test's moto may take the port. A server
//! answering on the port therefore proves nothing; [`MotoServer::start`] accepts it only once
//! the listening socket is provably the child's (on Linux: the socket's inode in
//! `/proc/net/tcp` is among the child's open files), and otherwise starts again on another port.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;

/// How long [`MotoServer::start`] waits for the server to answer before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`MotoServer::start`] polls the server while it starts.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// A port picked by binding `127.0.0.1:0` can be taken by someone else before moto binds it,
/// so a start that dies early is retried on a fresh port this many times.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server` on `127.0.0.1`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    http: reqwest::Client,
    /// A private directory (deleted on drop) for moto's working directory, its log (one line
    /// per request, for failing tests to point at) and its request recording. moto writes the
    /// recording to `./moto_recording` unless told otherwise, which parallel servers would share.
    dir: tempfile::TempDir,
    startup: Duration,
}

/// One request captured by moto's request recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Full request URL as moto saw it.
    pub url: String,
    /// The operation: the `X-Amz-Target` header (`SageMaker.DescribeModel`) for JSON protocols,
    /// or the `Action` form field (`AssumeRole`) for Query protocols (STS, IAM).
    pub target: Option<String>,
    /// Request headers as sent (names as moto recorded them).
    pub headers: BTreeMap<String, String>,
    /// Request body, decoded from moto's base64 form (lossy UTF-8).
    pub body: String,
}

impl RecordedCall {
    /// The header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The operation name without the service prefix: `DescribeModel`, `AssumeRole`.
    pub fn operation(&self) -> Option<&str> {
        let target = self.target.as_deref()?;
        Some(target.rsplit_once('.').map_or(target, |(_, op)| op))
    }

    /// A field of an `application/x-www-form-urlencoded` body (Query protocols), decoded.
    pub fn form_field(&self, name: &str) -> Option<String> {
        form_field(&self.body, name)
    }

    /// The account the call was made in, from the `x-moto-account-id` header, if any.
    pub fn moto_account(&self) -> Option<&str> {
        self.header("x-moto-account-id")
    }
}

/// How many recorded calls are of operation `op` (`DescribeModel` matches the target
/// `SageMaker.DescribeModel`; `AssumeRole` matches the STS form field `Action=AssumeRole`).
pub fn count(calls: &[RecordedCall], op: &str) -> usize {
    calls.iter().filter(|c| c.operation() == Some(op)).count()
}

/// Calls per operation, for readable assertion failures and reports.
pub fn count_by_operation(calls: &[RecordedCall]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for call in calls {
        let op = call.operation().unwrap_or("<unknown>").to_owned();
        *out.entry(op).or_insert(0) += 1;
    }
    out
}

/// One canned `InvokeEndpoint` answer for [`MotoServer::set_endpoint_results`].
///
/// moto queues these: each *distinct* (endpoint, request body) pair takes the next result from
/// the queue and keeps it; repeating the same request returns the same result; an empty queue
/// yields moto's static `"body"` answer.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CannedInvokeResult {
    /// Response body returned by InvokeEndpoint.
    pub body: String,
    /// `Content-Type` of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `x-Amzn-Invoked-Production-Variant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_production_variant: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_attributes: Option<String>,
}

impl CannedInvokeResult {
    /// A JSON body with `Content-Type: application/json`.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            body: body.to_string(),
            content_type: Some("application/json".to_owned()),
            invoked_production_variant: Some("AllTraffic".to_owned()),
            custom_attributes: None,
        }
    }
}

#[derive(Serialize)]
struct EndpointResults<'a> {
    account_id: &'a str,
    region: &'a str,
    results: &'a [CannedInvokeResult],
}

impl MotoServer {
    /// Start `moto_server -H 127.0.0.1 -p <free port>` and wait (at most 30 s) until it answers
    /// from a socket the child owns (see the module docs).
    ///
    /// The binary is the first of: `$SAGEBRIDGE_MOTO_SERVER`, `$SAGEBRIDGE_VENV/bin/moto_server`,
    /// `$HOME/.cache/sagebridge/venv/bin/moto_server`, `<workspace>/.venv-test/bin/moto_server`,
    /// `moto_server` on `PATH`.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = find_moto_server();
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            match Self::start_once(&binary, port).await {
                Ok(server) => return Ok(server),
                Err(error) => {
                    tracing::warn!(attempt, %error, "moto_server did not start");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto_server did not start")))
    }

    /// Start `moto_server` on `port`, which must be free: fails (and kills the child) when
    /// the port is answered by any other process, another moto included.
    pub async fn start_on_port(port: u16) -> anyhow::Result<Self> {
        Self::start_once(&find_moto_server(), port).await
    }

    async fn start_once(binary: &Path, port: u16) -> anyhow::Result<Self> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("sagebridge-moto-")
            .tempdir()
            .context("create moto temp dir")?;
        let log = std::fs::File::create(dir.path().join("moto.log")).context("create moto log")?;
        let stderr = log.try_clone().context("open moto log")?;
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // MOTO_ACCOUNT_ID would force every request into one account and break the
            // `x-moto-account-id` header that tests use for multi-account setups.
            .env_remove("MOTO_ACCOUNT_ID")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("moto_recording"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .with_context(|| {
                format!(
                    "spawn {} (install moto: python3 -m venv ~/.cache/sagebridge/venv && \
                     ~/.cache/sagebridge/venv/bin/pip install 'moto[server]', or set \
                     SAGEBRIDGE_MOTO_SERVER)",
                    binary.display()
                )
            })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("build http client")?;
        // From here on, dropping `server` kills the child, on every error path too.
        let mut server = Self {
            child,
            port,
            http,
            dir,
            startup: Duration::ZERO,
        };
        let url = format!("{}/moto-api/data.json", server.endpoint());
        let deadline = started + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait().context("poll moto_server")? {
                bail!(
                    "moto_server exited with {status} while starting on port {port}; log:\n{}",
                    server.log_tail()
                );
            }
            let probe = server
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if matches!(probe, Ok(ref r) if r.status().is_success()) {
                match listens_on(server.child.id(), port) {
                    Some(true) => break,
                    // Someone answers, but from a socket that is not our child's: another
                    // server took the port first, and our child cannot bind it.
                    Some(false) if server.child.try_wait()?.is_some() => bail!(
                        "port {port} is answered by another process, not by our moto_server (pid {}); log:\n{}",
                        server.child.id(),
                        server.log_tail()
                    ),
                    // The child is alive and the port answers, but the socket is not (yet)
                    // among its files: either it is still binding, or another process holds
                    // the port; the first case passes on the next poll, the second ends in
                    // the child exiting (above) or the deadline.
                    Some(false) => {}
                    None => break,
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "moto_server did not answer on port {port} within {START_TIMEOUT:?}; log:\n{}",
                    server.log_tail()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        server.startup = started.elapsed();
        tracing::debug!(
            port,
            pid = server.child.id(),
            startup_ms = server.startup.as_millis() as u64,
            "moto_server started"
        );
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`, to use as the SDK's `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long [`MotoServer::start`] took until the server answered.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Path of the temp file holding moto's stdout and stderr (deleted on drop).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    /// The last lines of moto's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Forget every resource in every account (`POST /moto-api/reset`).
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.admin_post("/moto-api/reset", None).await
    }

    /// Turn IAM enforcement on: after `unauthenticated_calls` more calls, every request must be
    /// signed by an IAM user's access key and allowed by its policies. Create users, policies
    /// and access keys first (see [`crate::iam::MotoIam`]): the dummy keys stop working.
    pub async fn reset_auth(&self, unauthenticated_calls: u32) -> anyhow::Result<()> {
        self.admin_post(
            "/moto-api/reset-auth",
            Some(("text/plain", unauthenticated_calls.to_string())),
        )
        .await
    }

    /// Start recording every AWS request.
    pub async fn start_recording(&self) -> anyhow::Result<()> {
        self.admin_post("/moto-api/recorder/start-recording", None)
            .await
    }

    /// Stop recording (the recording is kept).
    pub async fn stop_recording(&self) -> anyhow::Result<()> {
        self.admin_post("/moto-api/recorder/stop-recording", None)
            .await
    }

    /// Drop everything recorded so far (recording stays on if it was on).
    pub async fn clear_recording(&self) -> anyhow::Result<()> {
        self.admin_post("/moto-api/recorder/reset-recording", None)
            .await
    }

    /// Every request recorded since recording started or was cleared, oldest first.
    pub async fn recording(&self) -> anyhow::Result<Vec<RecordedCall>> {
        let url = format!("{}/moto-api/recorder/download-recording", self.endpoint());
        let response = self
            .http
            .get(url)
            .send()
            .await
            .context("download recording")?;
        let status = response.status();
        let text = response.text().await.context("read recording")?;
        if !status.is_success() {
            bail!("download recording answered {status}: {text}");
        }
        parse_recording(&text)
    }

    /// Queue canned `InvokeEndpoint` results for `account_id` (default `123456789012`) and
    /// `region` (see [`CannedInvokeResult`] for how moto hands them out).
    pub async fn set_endpoint_results(
        &self,
        account_id: Option<&str>,
        region: &str,
        results: &[CannedInvokeResult],
    ) -> anyhow::Result<()> {
        let body = serde_json::to_string(&EndpointResults {
            account_id: account_id.unwrap_or(crate::aws::DEFAULT_ACCOUNT_ID),
            region,
            results,
        })?;
        self.admin_post(
            "/moto-api/static/sagemaker/endpoint-results",
            Some(("application/json", body)),
        )
        .await
    }

    async fn admin_post(&self, path: &str, body: Option<(&str, String)>) -> anyhow::Result<()> {
        let mut request = self.http.post(format!("{}{path}", self.endpoint()));
        if let Some((content_type, body)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Our own child, by its handle (SIGKILL to its PID), then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `moto_server` is, by the precedence documented on [`MotoServer::start`].
pub fn find_moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("SAGEBRIDGE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("SAGEBRIDGE_VENV") {
        candidates.push(PathBuf::from(venv).join("bin/moto_server"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/sagebridge/venv/bin/moto_server"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/moto_server"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("moto_server"))
}

/// Whether the process `pid` holds the socket listening on `127.0.0.1:port` (or on all
/// addresses): `Some(answer)` on Linux (`/proc/net/tcp` and `/proc/<pid>/fd`), `None` where
/// there is no `/proc` to ask.
pub fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inodes = listening_inodes(&table, port);
    if inodes.is_empty() {
        return Some(false);
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == format!("socket:[{inode}]").as_str())
        })
    }))
}

/// Inodes of the sockets in `/proc/net/tcp` format listening on `port` on 127.0.0.1 or 0.0.0.0.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    let wanted = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            (*state == "0A" && wanted.iter().any(|w| w == local)).then(|| (*inode).to_owned())
        })
        .collect()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// One line of moto's recording, as written by `moto/moto_api/_internal/recorder`.
#[derive(serde::Deserialize)]
struct RawRecord {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_encoded: bool,
}

/// Parse moto's recording: one JSON object per line, bodies base64-encoded when
/// `body_encoded` is true.
pub fn parse_recording(text: &str) -> anyhow::Result<Vec<RecordedCall>> {
    let mut calls = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let raw: RawRecord = serde_json::from_str(line)
            .with_context(|| format!("recording line {}: {line}", index + 1))?;
        let body = match raw.body {
            Some(body) if raw.body_encoded => {
                let bytes = aws_smithy_types::base64::decode(&body)
                    .with_context(|| format!("recording line {}: bad base64 body", index + 1))?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Some(body) => body,
            None => String::new(),
        };
        let target = raw
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| v.clone())
            .or_else(|| form_field(&body, "Action"))
            .or_else(|| url_query_field(&raw.url, "Action"));
        calls.push(RecordedCall {
            method: raw.method,
            url: raw.url,
            target,
            headers: raw.headers,
            body,
        });
    }
    Ok(calls)
}

fn url_query_field(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    form_field(query, name)
}

/// A field of a `application/x-www-form-urlencoded` string, percent- and plus-decoded.
pub(crate) fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(key) == name).then(|| form_decode(value))
    })
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_recording_of_json_and_query_calls() {
        // Two lines as moto 5.2.5 writes them (captured with curl).
        let text = concat!(
            r#"{"headers": {"Host": "127.0.0.1:5123", "X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"}, "method": "POST", "url": "http://127.0.0.1:5123/", "body": "e30=", "body_encoded": true}"#,
            "\n",
            r#"{"headers": {"Host": "127.0.0.1:5123", "Content-Type": "application/x-www-form-urlencoded"}, "method": "POST", "url": "http://127.0.0.1:5123/", "body": "QWN0aW9uPUdldENhbGxlcklkZW50aXR5JlZlcnNpb249MjAxMS0wNi0xNQ==", "body_encoded": true}"#,
            "\n"
        );
        let calls = parse_recording(text).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].target.as_deref(), Some("SageMaker.ListModels"));
        assert_eq!(calls[0].body, "{}");
        assert_eq!(calls[1].operation(), Some("GetCallerIdentity"));
        assert_eq!(
            calls[1].form_field("Version").as_deref(),
            Some("2011-06-15")
        );
        assert_eq!(count(&calls, "ListModels"), 1);
        assert_eq!(count(&calls, "GetCallerIdentity"), 1);
        assert_eq!(count(&calls, "DescribeModel"), 0);
    }

    #[test]
    fn finds_the_listening_socket_of_a_port() {
        // Lines as Linux prints them: 127.0.0.1:8080 listening, a connection from it, and
        // 0.0.0.0:5000 listening.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n   \
            1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1\n   \
            2: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), vec!["4242"]);
        assert_eq!(listening_inodes(table, 5000), vec!["4444"]);
        assert!(listening_inodes(table, 8081).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_owns_the_port_it_listens_on() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listens_on(std::process::id(), port), Some(true));
        drop(listener);
        assert_eq!(listens_on(std::process::id(), port), Some(false));
    }

    #[test]
    fn decodes_form_fields() {
        let check = |body: &str, name: &str, expected: Option<&str>| {
            assert_eq!(form_field(body, name).as_deref(), expected, "{body} {name}");
        };
        check(
            "Action=AssumeRole&RoleSessionName=a%2Bb",
            "RoleSessionName",
            Some("a+b"),
        );
        check("Action=AssumeRole&X=a+b", "X", Some("a b"));
        check("Action=AssumeRole", "ExternalId", None);
        check("Flag&Action=X", "Flag", Some(""));
        check("A=%", "A", Some("%"));
        check("A=%4", "A", Some("%4"));
        check("A=%zz", "A", Some("%zz"));
    }
}
