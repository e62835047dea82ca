//! Connection guards: how many connections may be open (in all and per
//! client address), and when one has waited long enough (for its headers,
//! or idle between requests). Timestamps are milliseconds since the edge
//! started, kept in atomics so that reading a socket costs one store.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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

/// Raises the process's soft open-file limit to its hard limit, as the Go
/// runtime does: most services start with a soft limit of 1024 and a far
/// higher hard one, and every connection costs a descriptor. Returns the
/// limit now in force.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let (soft, hard) = (before.current, before.maximum);
    let wanted = match hard {
        Some(hard) => hard,
        None => soft.unwrap_or(65_536).max(1 << 20),
    };
    let raised = soft.is_none_or(|s| s < wanted)
        && setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(wanted),
                maximum: hard,
            },
        )
        .is_ok();
    let now = getrlimit(Resource::Nofile).current.unwrap_or(65_536);
    tracing::info!(
        soft_before = soft.map_or_else(|| "unlimited".into(), |s| s.to_string()),
        hard = hard.map_or_else(|| "unlimited".into(), |h| h.to_string()),
        soft_now = now,
        raised,
        "open-file limit"
    );
    now
}

/// The connection cap when `server.max_connections` is 0: what the
/// open-file limit leaves after `RESERVED_FDS`, halved, because a
/// connection sending a large picture from the uploads folder holds its
/// file open too.
pub fn auto_max_connections(open_files: u64) -> u32 {
    let usable = open_files.saturating_sub(RESERVED_FDS).max(open_files / 4);
    (usable / 2).clamp(16, 1 << 20) as u32
}

/// The per-client cap in force: the one configured, but never more than an
/// eighth of the total, so that a handful of addresses cannot hold every
/// place (0: none beyond the total).
pub fn effective_per_client(configured: u32, total: u32) -> u32 {
    if configured == 0 {
        return 0;
    }
    configured.min((total / 8).max(1))
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
    /// Closed to make room for a newcomer at `server.max_connections`:
    /// idle between requests, the cheapest to lose.
    EvictedIdle,
    /// Closed to make room: a request head that had been arriving longest.
    EvictedSlowHead,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Self::TooManyConnections => "max_connections",
            Self::TooManyFromClient => "max_connections_per_client",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::SlowBody => "body_timeout",
            Self::EvictedIdle => "evicted_idle",
            Self::EvictedSlowHead => "evicted_slow_head",
        }
    }

    const ALL: [Reason; 7] = [
        Self::TooManyConnections,
        Self::TooManyFromClient,
        Self::HeaderTimeout,
        Self::IdleTimeout,
        Self::SlowBody,
        Self::EvictedIdle,
        Self::EvictedSlowHead,
    ];
}

/// One warning per reason at most every ten seconds, with how many
/// happened since the last: an attack must not flood the log.
#[derive(Debug, Default)]
pub struct RateLog {
    last: [AtomicU64; 7],
    count: [AtomicU64; 7],
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

/// Whose connections count together against the per-client cap: an
/// address, IPv6 by its /64 (what one host is given, and can spread over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(bits.into()))
            }
            v4 => Self(v4),
        }
    }
}

/// The caps, and every open connection: when the total is reached, the
/// connection that costs least to lose is closed to make room (an idle
/// keep-alive one first, then the head that has been arriving longest);
/// one being answered, or sending its body, never is.
#[derive(Debug)]
pub struct Gate {
    max_total: usize,
    max_per_client: u32,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    open: usize,
    per_client: HashMap<ClientKey, u32>,
}

#[derive(Debug)]
struct Entry {
    state: Arc<ConnState>,
    client: Option<ClientKey>,
}

/// A place among the open connections, given back on drop.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    slot: usize,
}

/// A connection let in: its place, its state, and the one closed to make
/// room for it, if any.
#[derive(Debug)]
pub struct Admitted {
    pub ticket: Ticket,
    pub state: Arc<ConnState>,
    pub evicted: Option<Reason>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut slots = self
            .gate
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = slots.entries.get_mut(self.slot).and_then(Option::take) else {
            return;
        };
        slots.free.push(self.slot);
        slots.open -= 1;
        if let Some(key) = entry.client
            && let Some(n) = slots.per_client.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                slots.per_client.remove(&key);
            }
        }
    }
}

/// How many open connections a full gate looks at to choose one to close:
/// enough to find an idle or slow one among a flood of them at once, few
/// enough that a flood of newcomers costs no more than a full scan would
/// for a few.
const SAMPLE: usize = 64;

impl Gate {
    pub fn new(max_total: u32, max_per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total as usize,
            max_per_client,
            slots: Mutex::new(Slots::default()),
        })
    }

    pub fn open(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open
    }

    /// A place for a connection from `client`; `counted` is false for a
    /// trusted proxy, which carries many clients and is held only to the
    /// total.
    pub fn admit(self: &Arc<Self>, client: IpAddr, counted: bool) -> Result<Admitted, Reason> {
        let key = (counted && self.max_per_client > 0).then(|| ClientKey::of(client));
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = key
            && slots.per_client.get(&key).copied().unwrap_or(0) >= self.max_per_client
        {
            return Err(Reason::TooManyFromClient);
        }
        let mut evicted = None;
        if slots.open >= self.max_total {
            let (victim, reason) = slots.cheapest().ok_or(Reason::TooManyConnections)?;
            victim.evict();
            evicted = Some(reason);
        }
        let state = ConnState::new();
        let entry = Entry {
            state: Arc::clone(&state),
            client: key,
        };
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.entries[slot] = Some(entry);
                slot
            }
            None => {
                slots.entries.push(Some(entry));
                slots.entries.len() - 1
            }
        };
        slots.open += 1;
        if let Some(key) = key {
            *slots.per_client.entry(key).or_insert(0) += 1;
        }
        Ok(Admitted {
            ticket: Ticket {
                gate: Arc::clone(self),
                slot,
            },
            state,
            evicted,
        })
    }
}

impl Slots {
    /// The open connection that costs least to close, by a sample of them
    /// (all of them when the sample finds none): idle ones before heads,
    /// and among each the one waiting longest.
    fn cheapest(&self) -> Option<(Arc<ConnState>, Reason)> {
        let len = self.entries.len();
        if len == 0 {
            return None;
        }
        let mut best: Option<(Cost, usize)> = None;
        let consider = |best: &mut Option<(Cost, usize)>, i: usize| {
            if let Some(Some(entry)) = self.entries.get(i)
                && let Some(cost) = entry.state.cost()
                && best.is_none_or(|(b, _)| cost < b)
            {
                *best = Some((cost, i));
            }
        };
        if len <= SAMPLE {
            (0..len).for_each(|i| consider(&mut best, i));
        } else {
            let mut rng = rand::rng();
            for _ in 0..SAMPLE {
                consider(&mut best, rand::Rng::random_range(&mut rng, 0..len));
            }
            if best.is_none() {
                (0..len).for_each(|i| consider(&mut best, i));
            }
        }
        let (cost, i) = best?;
        let entry = self.entries.get(i)?.as_ref()?;
        Some((Arc::clone(&entry.state), cost.reason()))
    }
}

/// What closing a connection would cost: lower is cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cost {
    /// Idle since this moment: nothing is lost but a handshake.
    Idle(u64),
    /// Its head has been arriving since this moment.
    Head(u64),
}

impl Cost {
    fn reason(self) -> Reason {
        match self {
            Self::Idle(_) => Reason::EvictedIdle,
            Self::Head(_) => Reason::EvictedSlowHead,
        }
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
    /// Chosen to be closed to make room for a newcomer.
    evicted: AtomicBool,
    evict: tokio::sync::Notify,
}

/// What the watchdog decides about a connection: look again at a time, or close it.
#[derive(Debug, PartialEq, Eq)]
pub enum Deadline {
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
            evicted: AtomicBool::new(false),
            evict: tokio::sync::Notify::new(),
        })
    }

    /// What closing this connection would cost; None when it must not be
    /// closed (a request is being answered, an answer written) or is
    /// already on its way out.
    fn cost(&self) -> Option<Cost> {
        if self.evicted.load(Ordering::Relaxed)
            || self.in_flight.load(Ordering::Relaxed) > 0
            || self.writing.load(Ordering::Relaxed) > 0
        {
            return None;
        }
        Some(match self.head_since.load(Ordering::Relaxed) {
            0 => Cost::Idle(self.last_active.load(Ordering::Relaxed)),
            since => Cost::Head(since),
        })
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.evict.notify_one();
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Resolves when the gate has chosen this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
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
    pub fn deadline(&self, now: u64, header_timeout: Duration, idle_timeout: Duration) -> Deadline {
        let header = header_timeout.as_millis() as u64;
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Deadline::Keep(now + header);
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
            Deadline::Close(reason)
        } else {
            Deadline::Keep(deadline)
        }
    }
}

/// A socket that tells its `ConnState` when bytes move.
pub struct Metered<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
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
        let busy = |admitted: Admitted| {
            admitted.state.request_started();
            admitted
        };
        let t1 = busy(gate.admit(a, true).unwrap());
        let _t2 = busy(gate.admit(a, true).unwrap());
        assert_eq!(gate.admit(a, true).unwrap_err(), Reason::TooManyFromClient);
        let _t3 = busy(gate.admit(b, true).unwrap());
        // Every place is being answered: nothing may be closed for b.
        assert_eq!(gate.admit(b, true).unwrap_err(), Reason::TooManyConnections);
        assert_eq!(gate.open(), 3);
        drop(t1);
        let _t4 = gate.admit(a, true).unwrap();
        assert_eq!(gate.open(), 3);
    }

    #[test]
    fn a_full_gate_closes_the_idle_first_then_the_oldest_head_never_an_answer() {
        let gate = Gate::new(3, 0);
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let answering = gate.admit(ip(1), true).unwrap();
        answering.state.request_started();
        let head = gate.admit(ip(2), true).unwrap();
        let idle = gate.admit(ip(3), true).unwrap();
        idle.state.request_started();
        idle.state.request_ended();
        let first = gate.admit(ip(4), true).unwrap();
        assert_eq!(first.evicted, Some(Reason::EvictedIdle));
        assert!(idle.state.evicted.load(Ordering::Relaxed));
        drop(idle);
        // The newcomer's head is younger than the one still arriving.
        let second = gate.admit(ip(5), true).unwrap();
        assert_eq!(second.evicted, Some(Reason::EvictedSlowHead));
        assert!(head.state.evicted.load(Ordering::Relaxed));
        assert!(!answering.state.evicted.load(Ordering::Relaxed));
        assert!(!first.state.evicted.load(Ordering::Relaxed));
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let gate = Gate::new(100, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _t1 = gate.admit(a, true).unwrap();
        let _t2 = gate.admit(b, true).unwrap();
        assert_eq!(gate.admit(a, true).unwrap_err(), Reason::TooManyFromClient);
        assert!(gate.admit(other, true).is_ok());
        assert_eq!(
            ClientKey::of("::ffff:10.0.0.1".parse().unwrap()),
            ClientKey::of("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn caps_come_from_the_open_file_limit_and_per_client_stays_below_the_total() {
        assert_eq!(auto_max_connections(1024), 384);
        assert_eq!(auto_max_connections(65_536), 32_640);
        assert_eq!(effective_per_client(128, 384), 48);
        assert_eq!(effective_per_client(128, 32_640), 128);
        assert_eq!(effective_per_client(0, 384), 0);
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
            state.deadline(start, header, idle),
            Deadline::Keep(start + 10_000)
        );
        assert_eq!(
            state.deadline(start + 10_000, header, idle),
            Deadline::Close(Reason::HeaderTimeout)
        );
        state.request_started();
        assert!(matches!(
            state.deadline(start + 500_000, header, idle),
            Deadline::Keep(_)
        ));
        state.request_ended();
        let ended = state.last_active.load(Ordering::Relaxed);
        assert_eq!(
            state.deadline(ended, header, idle),
            Deadline::Keep(ended + 60_000)
        );
        assert_eq!(
            state.deadline(ended + 60_000, header, idle),
            Deadline::Close(Reason::IdleTimeout)
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
            state.deadline(active + 30_000, header, idle),
            Deadline::Keep(active + 60_000),
            "a long answer is not cut at the header timeout"
        );
        state.writing_ended();
        state.read();
        let head = state.head_since.load(Ordering::Relaxed);
        assert_ne!(head, 0, "a byte after idleness starts a head");
        assert_eq!(
            state.deadline(head + 10_000, header, idle),
            Deadline::Close(Reason::HeaderTimeout)
        );
    }
}
