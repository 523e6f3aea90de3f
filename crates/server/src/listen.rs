//! The HTTP server under `serve`: hyper's HTTP/1 connection driver with the limits of
//! `server:` (axum's own `serve` has no header timeout and no connection cap).
//!
//! - **Connections**: at most `maxConnections` open; the next one is accepted when one closes
//!   (the others wait in the kernel's accept queue).
//! - **Request head**: once its first byte arrived, a request head must be complete within
//!   `headerReadTimeoutSeconds` (enforced by [`LimitedIo`]); a connection waiting for its
//!   next request is closed after `idleTimeoutSeconds` (hyper's header timer, which runs from
//!   the moment hyper waits for a head).
//! - **Request body**: complete within `bodyReadTimeoutSeconds` of the head ([`DeadlineBody`]);
//!   a late body ends with an `io::ErrorKind::TimedOut` error, which `/v1` answers with 408.
//! - **Writes**: a write that stays blocked for `writeIdleTimeoutSeconds` (a client that
//!   stopped reading) closes the connection, which drops the response and, for a stream, the
//!   upstream SageMaker stream with it.
//! - **Shutdown**: on the signal, the listener closes, every connection finishes its request in
//!   flight and closes; after `shutdownGraceSeconds` the rest are closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use sagebridge_gateway::config::{seconds, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

/// The connection limits of `server:`.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
    pub write_idle: Duration,
    pub shutdown_grace: Duration,
}

impl ServerLimits {
    pub fn from_config(s: &ServerConfig) -> Self {
        Self {
            header_read: seconds(s.header_read_timeout_seconds),
            body_read: seconds(s.body_read_timeout_seconds),
            idle: seconds(s.idle_timeout_seconds),
            max_connections: s.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            write_idle: seconds(s.write_idle_timeout_seconds),
            shutdown_grace: seconds(s.shutdown_grace_seconds),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the connections within
/// the grace period. Returns once every connection is closed.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut full_logged = false;
    tokio::pin!(shutdown);
    // Runs until the shutdown signal; each turn accepts one connection or waits for a slot.
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !full_logged {
                    tracing::warn!(
                        max = limits.max_connections,
                        "server.maxConnections reached: new connections wait until one closes"
                    );
                    full_logged = true;
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    p = Arc::clone(&slots).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, _peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if slots.available_permits() > 0 {
            full_logged = false;
        }
        while conns.try_join_next().is_some() {}
        let app = app.clone();
        let limits = limits.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            serve_connection(stream, app, &limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    stop_tx.send_replace(true);
    let open = conns.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            grace_s = limits.shutdown_grace.as_secs_f64(),
            "draining connections"
        );
    }
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "server.shutdownGraceSeconds passed: closing the connections still open"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: &ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState::default());
    let io = TokioIo::new(LimitedIo::new(
        stream,
        Arc::clone(&state),
        limits.header_read,
        limits.write_idle,
    ));
    let inner = TowerToHyperService::new(app);
    let body_read = limits.body_read;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        state.head_received();
        let req = req.map(|b| Body::new(DeadlineBody::new(b, body_read)));
        let call = inner.call(req);
        let state = Arc::clone(&state);
        async move {
            let response = call.await;
            state.response_ready();
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { drop(stop.wait_for(|s| *s).await) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}

/// What a connection's I/O needs to know about its requests.
#[derive(Debug)]
struct ConnState {
    /// Whether the next bytes read start a request head.
    awaiting_head: AtomicBool,
    /// Counts request heads, so a header timer armed for one head is not used for the next.
    heads: AtomicU64,
}

impl Default for ConnState {
    fn default() -> Self {
        Self {
            awaiting_head: AtomicBool::new(true),
            heads: AtomicU64::new(0),
        }
    }
}

impl ConnState {
    fn head_received(&self) {
        self.awaiting_head.store(false, Ordering::Relaxed);
        self.heads.fetch_add(1, Ordering::Relaxed);
    }

    fn response_ready(&self) {
        self.awaiting_head.store(true, Ordering::Relaxed);
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

/// A TCP stream with the header-read deadline and the write-idle timeout.
struct LimitedIo {
    inner: TcpStream,
    state: Arc<ConnState>,
    header_read: Duration,
    write_idle: Duration,
    /// When the first byte of a head arrived, with the head count it belongs to: the header
    /// deadline counts from it.
    head_started: Option<(tokio::time::Instant, u64)>,
    /// The header deadline's timer, made only when a read waits in the middle of a head (a
    /// head that arrives whole, the usual case, needs none).
    head_timer: Option<Pin<Box<Sleep>>>,
    /// Armed while a write is blocked.
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl LimitedIo {
    fn new(
        inner: TcpStream,
        state: Arc<ConnState>,
        header_read: Duration,
        write_idle: Duration,
    ) -> Self {
        Self {
            inner,
            state,
            header_read,
            write_idle,
            head_started: None,
            head_timer: None,
            write_timer: None,
        }
    }

    /// Maps a blocked write to an error once it has been blocked for `write_idle`.
    fn write_outcome<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let idle = self.write_idle;
                let timer = self
                    .write_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.write_timer = None;
                    tracing::debug!("the client stopped reading: closing the connection");
                    return Poll::Ready(Err(timed_out(
                        "the client did not read for server.writeIdleTimeoutSeconds",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.write_timer = None;
                ready
            }
        }
    }
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let heads = this.state.heads.load(Ordering::Relaxed);
        if this.head_started.is_some_and(|(_, h)| h != heads)
            || !this.state.awaiting_head.load(Ordering::Relaxed)
        {
            this.head_started = None;
            this.head_timer = None;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before
                    && this.head_started.is_none()
                    && this.state.awaiting_head.load(Ordering::Relaxed)
                {
                    this.head_started = Some((tokio::time::Instant::now(), heads));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some((started, _)) = this.head_started {
                    let deadline = started + this.header_read;
                    let timer = this
                        .head_timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.as_mut().poll(cx).is_ready() {
                        this.head_started = None;
                        this.head_timer = None;
                        tracing::debug!(
                            "request head not complete in time: closing the connection"
                        );
                        return Poll::Ready(Err(timed_out(
                            "the request head was not complete within server.headerReadTimeoutSeconds",
                        )));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_outcome(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_outcome(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_outcome(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_outcome(cx, r)
    }
}

/// A request body that must be complete by a deadline.
struct DeadlineBody {
    inner: Incoming,
    /// `None` for a body that is already complete (no timer needed).
    deadline: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, within: Duration) -> Self {
        use hyper::body::Body as _;
        let deadline = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(within)));
        Self { inner, deadline }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(d) = self.deadline.as_mut() {
            ready!(d.as_mut().poll(cx));
            self.deadline = None;
            tracing::debug!("request body not received in time");
            return Poll::Ready(Some(Err(Box::new(timed_out(
                "the request body was not received within server.bodyReadTimeoutSeconds",
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
