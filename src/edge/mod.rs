//! The edge: a small hyper 1 server that owns the public socket. Rocket 0.5
//! can be given no header timeout, no idle timeout and no connection caps,
//! and exposes neither its listener nor its connection builder, so the
//! edge sits in front of it inside the same process:
//!
//! - it admits connections under `server.max_connections` and
//!   `server.max_connections_per_client` ([`conn::Gate`]), and closes those
//!   that take longer than `server.header_timeout_seconds` to send a
//!   request's headers or sit idle past `server.idle_timeout_seconds`
//!   ([`conn::ConnState`]); refusals and closures are counted and logged at
//!   a bounded rate;
//! - it applies the rules every request is held to and answers images and
//!   assets itself ([`answer`], [`fast`]);
//! - it hands everything else to the app in-process (`http::App`), holding
//!   request bodies to `limits.body_*` ([`pace`]).

pub mod answer;
pub mod conn;
pub mod fast;
pub mod metrics;
pub mod pace;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::edge::answer::Answering;
use crate::edge::conn::{Admitted, ConnState, Deadline, Gate, Metered, RateLog, Reason, now_ms};
use crate::http::{Body, BoxError};
use crate::metrics::Metrics;

/// An answer's body, which tells the connection's watchdog when it has
/// been written.
pub struct AnswerBody {
    body: Body,
    state: Arc<ConnState>,
}

impl AnswerBody {
    fn new(body: Body, state: Arc<ConnState>) -> Self {
        state.writing_started();
        Self { body, state }
    }
}

impl Drop for AnswerBody {
    fn drop(&mut self) {
        self.state.writing_ended();
    }
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The guards' settings, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Guards {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub max_connections_per_client: u32,
}

/// The answers a refused connection gets, written once.
struct Refusals {
    too_many: Bytes,
    too_many_from_client: Bytes,
}

impl Refusals {
    fn new(guards: &Guards) -> Self {
        let refusal = |status: &str, code: &str, message: String| {
            let body =
                serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
            Bytes::from(format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ))
        };
        Self {
            too_many: refusal(
                "503 Service Unavailable",
                "too_many_connections",
                format!(
                    "the server has {} connections open, its limit (server.max_connections); try again shortly",
                    guards.max_connections
                ),
            ),
            too_many_from_client: refusal(
                "429 Too Many Requests",
                "too_many_connections_from_client",
                format!(
                    "your address has {} connections open, the limit (server.max_connections_per_client); close some and try again",
                    guards.max_connections_per_client
                ),
            ),
        }
    }

    fn for_reason(&self, reason: Reason) -> &Bytes {
        match reason {
            Reason::TooManyFromClient => &self.too_many_from_client,
            _ => &self.too_many,
        }
    }
}

pub struct Edge {
    answering: Answering,
    guards: Guards,
    gate: Arc<Gate>,
    log: RateLog,
    metrics: Arc<Metrics>,
    refusals: Refusals,
}

/// Stops the edge: first `drain` (no new connections, requests in flight
/// finish), then `force` (whatever is left is closed).
pub struct Stopping {
    pub drain: watch::Receiver<bool>,
    pub grace: Duration,
}

impl Edge {
    pub fn new(answering: Answering, guards: Guards, metrics: Arc<Metrics>) -> Self {
        Self {
            gate: Gate::new(guards.max_connections, guards.max_connections_per_client),
            refusals: Refusals::new(&guards),
            answering,
            guards,
            log: RateLog::default(),
            metrics,
        }
    }

    /// Accepts connections on `listener` until `stopping.drain` turns true,
    /// then waits up to `stopping.grace` for the open ones to finish and
    /// closes the rest.
    pub async fn run(self: Arc<Self>, listener: TcpListener, mut stopping: Stopping) {
        let (drain_tx, drain_rx) = watch::channel(false);
        let (force_tx, force_rx) = watch::channel(false);
        // Every connection task holds a sender; when all are gone, so are
        // the connections.
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(stream, peer, &drain_rx, &force_rx, &alive_tx),
                    Err(e) => {
                        // Out of file descriptors, most likely: wait a
                        // little rather than spin.
                        tracing::warn!("the edge could not accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stopping.drain.changed() => break,
            }
        }
        drop(listener);
        drop(alive_tx);
        let _ = drain_tx.send(true);
        let open = self.gate.open();
        if open > 0 {
            tracing::info!(connections = open, "waiting for open connections to finish");
        }
        if tokio::time::timeout(stopping.grace, alive_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = self.gate.open(),
                "closing connections still open after the grace period"
            );
            let _ = force_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(2), alive_rx.recv()).await;
        }
    }

    fn admit(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        drain: &watch::Receiver<bool>,
        force: &watch::Receiver<bool>,
        alive: &mpsc::Sender<()>,
    ) {
        let ip = peer.ip().to_canonical();
        let counted = !self.answering.policy.is_trusted_proxy(ip);
        let admitted = match self.gate.admit(ip, counted) {
            Ok(admitted) => admitted,
            Err(reason) => {
                let answer = self.refusals.for_reason(reason);
                // Best effort and never waiting: the socket is new, so its
                // send buffer has room for these few bytes.
                let _ = stream.try_write(answer);
                self.dropped(reason, ip);
                return;
            }
        };
        if let Some(reason) = admitted.evicted {
            self.dropped(reason, ip);
        }
        let _ = stream.set_nodelay(true);
        let edge = Arc::clone(self);
        let (drain, force, alive) = (drain.clone(), force.clone(), alive.clone());
        tokio::spawn(async move {
            edge.serve(stream, ip, admitted, drain, force).await;
            drop(alive);
        });
    }

    fn dropped(&self, reason: Reason, ip: IpAddr) {
        self.metrics.record_edge_drop(reason.label());
        self.log.note(reason, ip);
    }

    /// One request on a connection, with the connection's state told when
    /// it starts, is answered and is written.
    async fn request(
        self: Arc<Self>,
        req: Request<Incoming>,
        ip: IpAddr,
        state: Arc<ConnState>,
    ) -> Result<hyper::Response<AnswerBody>, Infallible> {
        state.request_started();
        let in_flight = InFlight(Arc::clone(&state));
        // Writing counts before answering stops counting, so that no byte
        // read in between starts the next head's timer.
        let res = self
            .answering
            .answer(req, ip)
            .await
            .map(|body| AnswerBody::new(body, Arc::clone(&state)));
        drop(in_flight);
        Ok(res)
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        ip: IpAddr,
        admitted: Admitted,
        mut drain: watch::Receiver<bool>,
        mut force: watch::Receiver<bool>,
    ) {
        self.metrics.edge_connections.inc();
        let Admitted {
            ticket: _ticket,
            state,
            ..
        } = admitted;
        let io = TokioIo::new(Metered::new(stream, Arc::clone(&state)));
        let edge = Arc::clone(&self);
        let requests = Arc::clone(&state);
        let service = service_fn(move |req: Request<Incoming>| {
            // Boxed: hyper hands the connection back (for lingering) only
            // when its futures can move.
            Box::pin(Arc::clone(&edge).request(req, ip, Arc::clone(&requests)))
        });
        let mut conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            // The watchdog below times headers and idleness (hyper's own
            // header timer also runs while a connection is idle).
            .header_read_timeout(None)
            .serve_connection(io, service);
        let mut draining = *drain.borrow();
        if draining {
            Pin::new(&mut conn).graceful_shutdown();
        }
        let mut next = now_ms();
        let mut ended = false;
        loop {
            let wait = Duration::from_millis(next.saturating_sub(now_ms()));
            tokio::select! {
                result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                    match result {
                        Ok(()) => ended = true,
                        Err(e) => tracing::debug!(client = %ip, "connection ended: {e}"),
                    }
                    break;
                }
                _ = tokio::time::sleep(wait) => {
                    match state.deadline(now_ms(), self.guards.header_timeout, self.guards.idle_timeout) {
                        Deadline::Keep(at) => next = at,
                        Deadline::Close(reason) => {
                            // An idle connection closing is ordinary; only
                            // a head that never came is worth counting as
                            // a guard at work.
                            if reason == Reason::HeaderTimeout {
                                self.dropped(reason, ip);
                            } else {
                                self.metrics.record_edge_drop(reason.label());
                            }
                            break;
                        }
                    }
                }
                _ = drain.changed(), if !draining => {
                    draining = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
                _ = force.changed() => break,
                // Closed to make room for a newcomer (counted when chosen).
                _ = state.evicted() => break,
            }
        }
        if ended {
            linger(conn.into_parts().io.into_inner(), &state, &mut force).await;
        }
        self.metrics.edge_connections.dec();
    }
}

/// The longest a closing connection is read from, in all and without a
/// byte, and the most read: a client that sends far more was not going to
/// read its answer anyway.
const LINGER_FOR: Duration = Duration::from_secs(30);
const LINGER_IDLE: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 64 << 20;

/// Closes a connection hyper is done with. A request refused before its
/// body was read (a 401, a 413 from its length) may still be sending that
/// body: closing at once would reset the connection and the client would
/// never read the refusal. So the sending half is shut, and what still
/// arrives is read and thrown away until the client closes, goes quiet, or
/// sends too much (what nginx calls lingering close). A connection whose
/// client has already closed is done at the first read.
async fn linger(
    mut stream: Metered<TcpStream>,
    state: &ConnState,
    force: &mut watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let until = tokio::time::Instant::now() + LINGER_FOR;
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0;
    while read < LINGER_BYTES && !state.is_evicted() {
        tokio::select! {
            got = tokio::time::timeout(LINGER_IDLE, stream.read(&mut buf)) => match got {
                Ok(Ok(n)) if n > 0 => read += n,
                _ => return,
            },
            _ = tokio::time::sleep_until(until) => return,
            _ = force.changed() => return,
            _ = state.evicted() => return,
        }
    }
}

/// Marks a request answered, however its future ends.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}
