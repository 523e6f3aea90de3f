//! `serve`'s connection limits over real sockets on 127.0.0.1: slow heads and bodies, idle
//! connections, the connection cap, a client that stops reading, graceful shutdown.

use std::time::Duration;

use sagebridge_gateway::config;
use sagebridge_ingest::shutdown::{self, ShutdownTrigger};
use sagebridge_server::ServeOptions;
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime, Split};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "limits-test-key-0123";

struct Served {
    fake: FakeRuntime,
    addr: std::net::SocketAddr,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn serve(server_extra: &str) -> Served {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-tgi", EndpointBehaviour::new(Behaviour::TgiChat));
    let yaml = format!(
        "server:\n  apiKeys: [\"{KEY}\"]\n{server_extra}\nawsConfig:\n  awsRegion: us-east-1\n  \
         awsAccessKeyId: testing\n  awsSecretAccessKey: testing-secret\n  endPointURL: {}\n\
         models:\n  - {{name: chat, kind: chat, endpointName: ep-tgi, format: tgi}}\n",
        fake.endpoint()
    );
    let cfg =
        config::load_str("limits.yaml", &yaml, &|_: &str| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let opts = ServeOptions {
        listen: None,
        catalog_path: Some(dir.path().join("catalog.db")),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, signal) = shutdown::channel();
    let task =
        tokio::spawn(
            async move { sagebridge_server::serve_on(listener, &cfg, &opts, signal).await },
        );
    Served {
        fake,
        addr,
        trigger,
        task,
        _dir: dir,
    }
}

fn chat_body(stream: bool) -> String {
    format!(r#"{{"model":"chat","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#)
}

fn request(body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads until the peer closes (or 64 KiB), for at most 10 s; `None` if it stayed open.
async fn read_until_closed(c: &mut TcpStream) -> Option<String> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    // Bounded by the deadline and the size.
    while all.len() < 65536 {
        match tokio::time::timeout_at(end, c.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&all).into_owned()),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&all).into_owned())
}

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
async fn slow_heads_slow_bodies_and_idle_connections_are_cut_off() {
    let s = serve(
        "  headerReadTimeoutSeconds: 0.2\n  bodyReadTimeoutSeconds: 0.3\n  idleTimeoutSeconds: 0.5",
    )
    .await;
    // Slow loris: a head trickled a byte at a time never completes.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut cut = false;
    for _ in 0..200 {
        if c.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        let mut b = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(25), c.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            _ => {}
        }
    }
    assert!(cut, "a trickled head was not cut off");

    // A body that stops half-way is answered 408.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let body = chat_body(false);
    let head = request(&body);
    let partial = &head[..head.len() - body.len() / 2];
    c.write_all(partial.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut c)
        .await
        .expect("the connection stayed open");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");

    // A connection that never sends anything is closed.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert!(
        read_until_closed(&mut c).await.is_some(),
        "an idle connection stayed open"
    );

    // A complete request is still served on a fresh connection.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(
        request(&chat_body(false))
            .replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let text = read_until_closed(&mut c).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn open_connections_are_capped() {
    let s = serve("  maxConnections: 2\n  idleTimeoutSeconds: 30").await;
    let a = TcpStream::connect(s.addr).await.unwrap();
    let _b = TcpStream::connect(s.addr).await.unwrap();
    // Give the server a moment to take both (it accepts them in order).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open"
    );
    drop(a);
    let text = read_until_closed(&mut c)
        .await
        .expect("no answer once a slot freed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let s = serve("  writeIdleTimeoutSeconds: 0.3").await;
    // About 48 MB of answer, paced at 2 ms a part so it takes at least 3 s to send: the
    // fake cannot finish however large the kernel lets loopback socket buffers grow
    // (tcp_rmem's maximum is 32 MiB on some machines), while the 4 MiB the server may
    // buffer towards the client fill in a fraction of that.
    let tokens: Vec<String> = (0..12_000)
        .map(|i| format!("{i:05}{}", "w".repeat(4000)))
        .collect();
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat)
            .tokens(&tokens)
            .split(Split::Coalesce(8))
            .part_delay(Duration::from_millis(2)),
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut c = socket.connect(s.addr).await.unwrap();
    c.write_all(request(&chat_body(true)).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The client reads no more: the gateway gives up and drops the upstream stream.
    let fake = &s.fake;
    eventually("the stalled stream is dropped", || {
        assert_eq!(
            fake.streams_completed(),
            0,
            "the whole answer fit in the socket buffers"
        );
        fake.streams_abandoned() == 1
    })
    .await;
    assert_eq!(s.fake.streams_completed(), 0);
    drop(c);
}

#[tokio::test]
async fn shutdown_drains_requests_then_closes_within_the_grace_period() {
    let s = serve("  shutdownGraceSeconds: 0.5").await;
    // A short stream in flight when the signal comes is finished.
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat).part_delay(Duration::from_millis(50)),
    );
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(request(&chat_body(true)).as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 16];
    c.read_exact(&mut first).await.unwrap();
    // And a stream that would never end.
    s.fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat).first_part_delay(Duration::from_secs(60)),
    );
    let mut stuck = TcpStream::connect(s.addr).await.unwrap();
    stuck
        .write_all(request(&chat_body(true)).as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 16];
    stuck.read_exact(&mut head).await.unwrap();
    s.trigger.trigger();
    let text = read_until_closed(&mut c)
        .await
        .expect("the drained stream never ended");
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(
        read_until_closed(&mut stuck).await.is_some(),
        "the stuck stream was not closed at the deadline"
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), s.task).await;
    ended.expect("serve did not return").unwrap().unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(s.addr).await.is_err());
}
