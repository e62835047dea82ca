//! Connection guards: how many connections may be open (in all and per
//! client address), and when one has waited long enough (for its headers,
//! or idle between requests). Timestamps are milliseconds since the edge
//! started, kept in atomics so that reading a socket costs one store.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Milliseconds since the first call, never 0 (0 means "not set").
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// File descriptors kept for everything but client connections: the
/// database pool, storage, the listener, logs.
const RESERVED_FDS: u64 = 256;

/// The connection cap when `server.max_connections` is 0: what the
/// open-file limit leaves after `RESERVED_FDS`, divided by three, because a
/// connection whose request is passed to the app holds two more (the edge's
/// end and the app's end of the loopback connection).
pub fn auto_max_connections() -> u32 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(65_536);
    let usable = limit.saturating_sub(RESERVED_FDS).max(limit / 4);
    (usable / 3).clamp(16, 1 << 20) as u32
}

/// Why a connection was refused or closed, as counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `server.max_connections` reached.
    TooManyConnections,
    /// `server.max_connections_per_client` reached for this address.
    TooManyFromClient,
    /// The headers did not arrive within `server.header_timeout_seconds`.
    HeaderTimeout,
    /// No request for `server.idle_timeout_seconds`.
    IdleTimeout,
    /// A request body stalled or trickled (`limits.body_*`).
    SlowBody,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Self::TooManyConnections => "max_connections",
            Self::TooManyFromClient => "max_connections_per_client",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::SlowBody => "body_timeout",
        }
    }

    const ALL: [Reason; 5] = [
        Self::TooManyConnections,
        Self::TooManyFromClient,
        Self::HeaderTimeout,
        Self::IdleTimeout,
        Self::SlowBody,
    ];
}

/// One warning per reason at most every ten seconds, with how many
/// happened since the last: an attack must not flood the log.
#[derive(Debug, Default)]
pub struct RateLog {
    last: [AtomicU64; 5],
    count: [AtomicU64; 5],
}

const LOG_EVERY_MS: u64 = 10_000;

impl RateLog {
    pub fn note(&self, reason: Reason, client: IpAddr) {
        let i = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        let count = self.count[i].fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let last = self.last[i].load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= LOG_EVERY_MS)
            && self.last[i]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count[i].store(0, Ordering::Relaxed);
            tracing::warn!(
                reason = reason.label(),
                %client,
                count,
                "connections refused or closed by the edge (at most one line per reason every 10 s)"
            );
        }
    }
}

/// The caps, and how many connections are open.
#[derive(Debug)]
pub struct Gate {
    open: AtomicUsize,
    max_total: usize,
    max_per_client: u32,
    per_client: Mutex<HashMap<IpAddr, u32>>,
}

/// A place among the open connections, given back on drop.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    client: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.client {
            let mut map = self
                .gate
                .per_client
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl Gate {
    pub fn new(max_total: u32, max_per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max_total: max_total as usize,
            max_per_client,
            per_client: Mutex::new(HashMap::new()),
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A place for a connection from `client`; `counted` is false for a
    /// trusted proxy, which carries many clients and is held only to the
    /// total.
    pub fn admit(self: &Arc<Self>, client: IpAddr, counted: bool) -> Result<Ticket, Reason> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_total {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Reason::TooManyConnections);
        }
        let mut ticket = Ticket {
            gate: Arc::clone(self),
            client: None,
        };
        if counted && self.max_per_client > 0 {
            let mut map = self
                .per_client
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let n = map.entry(client).or_insert(0);
            if *n >= self.max_per_client {
                return Err(Reason::TooManyFromClient);
            }
            *n += 1;
            ticket.client = Some(client);
        }
        Ok(ticket)
    }
}

/// What the watchdog of one connection knows about it.
#[derive(Debug)]
pub struct ConnState {
    /// When the first byte of a request head arrived (the connection's
    /// start for the first request); 0 while idle or answering.
    head_since: AtomicU64,
    /// The last byte read or written.
    last_active: AtomicU64,
    /// Requests being answered (at most one with HTTP/1).
    in_flight: AtomicU32,
    /// Answers whose bodies are still being written.
    writing: AtomicU32,
}

/// What the watchdog decides.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Look again at this time (milliseconds, as `now_ms`).
    Keep(u64),
    Close(Reason),
}

impl ConnState {
    pub fn new() -> Arc<Self> {
        let now = now_ms();
        Arc::new(Self {
            head_since: AtomicU64::new(now),
            last_active: AtomicU64::new(now),
            in_flight: AtomicU32::new(0),
            writing: AtomicU32::new(0),
        })
    }

    /// An answer's body starts being written.
    pub fn writing_started(&self) {
        self.writing.fetch_add(1, Ordering::Relaxed);
    }

    /// An answer's body has been written (or dropped).
    pub fn writing_ended(&self) {
        self.last_active.store(now_ms(), Ordering::Relaxed);
        self.writing.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request's head has been read: the app (or the fast path) has it.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
    }

    pub fn request_ended(&self) {
        self.last_active.store(now_ms(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn read(&self) {
        let now = now_ms();
        self.last_active.store(now, Ordering::Relaxed);
        // Bytes that come while an answer is written are the next
        // request's, early: its head is timed once the answer is out.
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.writing.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            self.head_since.store(now, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_active.store(now_ms(), Ordering::Relaxed);
    }

    /// Whether the connection has waited too long, at `now`. While a
    /// request is answered only the body's own pace applies; the watchdog
    /// looks again a header timeout later. While an answer is written, a
    /// client that stops reading it for the idle timeout is let go.
    pub fn verdict(&self, now: u64, header_timeout: Duration, idle_timeout: Duration) -> Verdict {
        let header = header_timeout.as_millis() as u64;
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Verdict::Keep(now + header);
        }
        let head = if self.writing.load(Ordering::Relaxed) > 0 {
            0
        } else {
            self.head_since.load(Ordering::Relaxed)
        };
        let (deadline, reason) = if head != 0 {
            (head + header, Reason::HeaderTimeout)
        } else {
            (
                self.last_active.load(Ordering::Relaxed) + idle_timeout.as_millis() as u64,
                Reason::IdleTimeout,
            )
        };
        if now >= deadline {
            Verdict::Close(reason)
        } else {
            Verdict::Keep(deadline)
        }
    }
}

/// A socket that tells its `ConnState` when bytes move.
pub struct Watched<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.state.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.state.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_client_and_in_all_and_tickets_give_places_back() {
        let gate = Gate::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t1 = gate.admit(a, true).unwrap();
        let _t2 = gate.admit(a, true).unwrap();
        assert_eq!(gate.admit(a, true).unwrap_err(), Reason::TooManyFromClient);
        let _t3 = gate.admit(b, true).unwrap();
        assert_eq!(gate.admit(b, true).unwrap_err(), Reason::TooManyConnections);
        assert_eq!(gate.open(), 3);
        drop(t1);
        let _t4 = gate.admit(a, true).unwrap();
        assert_eq!(gate.open(), 3);
    }

    #[test]
    fn a_trusted_proxy_is_held_only_to_the_total() {
        let gate = Gate::new(10, 1);
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let tickets: Vec<_> = (0..5).map(|_| gate.admit(proxy, false).unwrap()).collect();
        assert_eq!(gate.open(), 5);
        drop(tickets);
        assert_eq!(gate.open(), 0);
    }

    #[test]
    fn the_watchdog_times_heads_and_idleness_but_not_answers() {
        let header = Duration::from_secs(10);
        let idle = Duration::from_secs(60);
        let state = ConnState::new();
        let start = state.head_since.load(Ordering::Relaxed);
        assert_eq!(
            state.verdict(start, header, idle),
            Verdict::Keep(start + 10_000)
        );
        assert_eq!(
            state.verdict(start + 10_000, header, idle),
            Verdict::Close(Reason::HeaderTimeout)
        );
        state.request_started();
        assert!(matches!(
            state.verdict(start + 500_000, header, idle),
            Verdict::Keep(_)
        ));
        state.request_ended();
        let ended = state.last_active.load(Ordering::Relaxed);
        assert_eq!(
            state.verdict(ended, header, idle),
            Verdict::Keep(ended + 60_000)
        );
        assert_eq!(
            state.verdict(ended + 60_000, header, idle),
            Verdict::Close(Reason::IdleTimeout)
        );
        state.writing_started();
        state.read();
        assert_eq!(
            state.head_since.load(Ordering::Relaxed),
            0,
            "bytes while an answer is written start no head"
        );
        let active = state.last_active.load(Ordering::Relaxed);
        assert_eq!(
            state.verdict(active + 30_000, header, idle),
            Verdict::Keep(active + 60_000),
            "a long answer is not cut at the header timeout"
        );
        state.writing_ended();
        state.read();
        let head = state.head_since.load(Ordering::Relaxed);
        assert_ne!(head, 0, "a byte after idleness starts a head");
        assert_eq!(
            state.verdict(head + 10_000, header, idle),
            Verdict::Close(Reason::HeaderTimeout)
        );
    }
}
