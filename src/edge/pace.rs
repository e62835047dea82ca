//! The pace every request body must keep (`limits.body_idle_seconds`,
//! `limits.body_min_rate`): a client that stops sending, or trickles bytes
//! to hold a connection and the memory behind it, gets a 408 instead of
//! the server's patience. Applied by the edge to every body, whoever reads
//! it (the edge for a form, the upload route for an upload); a body whose
//! framing is broken is told apart from one that is slow or cut off.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http_body::Body as _;
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::http::body::BodyError;

/// How a body must arrive: no longer than `idle` without a byte, and no
/// slower than `min_rate` bytes a second on average once `idle` has passed.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub idle: Duration,
    pub min_rate: u64,
}

/// A request body held to a `Pace`, as a stream of its data.
pub struct Paced {
    inner: Incoming,
    pace: Pace,
    started: Instant,
    received: u64,
    idle: Pin<Box<Sleep>>,
    /// Set when the body was given up as too slow: the edge counts it and
    /// closes the connection after the answer.
    slow: Arc<AtomicBool>,
    done: bool,
}

impl Paced {
    pub fn new(inner: Incoming, pace: Pace, slow: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            idle: Box::pin(tokio::time::sleep(pace.idle)),
            slow,
            done: false,
        }
    }

    fn give_up(&mut self, why: String) -> BodyError {
        self.done = true;
        self.slow.store(true, Ordering::Relaxed);
        BodyError::Slow(why)
    }

    /// Counts `n` more bytes; an error when the average has fallen below
    /// the minimum rate.
    fn arrived(&mut self, n: u64) -> Result<(), BodyError> {
        self.received += n;
        let next = tokio::time::Instant::now() + self.pace.idle;
        self.idle.as_mut().reset(next);
        let elapsed = self.started.elapsed();
        if elapsed > self.pace.idle
            && self.received < self.pace.min_rate.saturating_mul(elapsed.as_secs())
        {
            return Err(self.give_up(format!(
                "the request body arrived at {} bytes a second, slower than the limit of {} \
                 (limits.body_min_rate); nothing was stored",
                self.received / elapsed.as_secs().max(1),
                self.pace.min_rate
            )));
        }
        Ok(())
    }
}

/// What a broken body is, in the client's terms.
fn classify(e: &hyper::Error) -> BodyError {
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        return BodyError::Gone;
    }
    let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string);
    BodyError::Malformed(format!(
        "the request body is not framed as HTTP/1.1 requires ({cause}); nothing was stored"
    ))
}

impl Stream for Paced {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers carry nothing we read.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if let Err(e) = this.arrived(data.len() as u64) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(classify(&e))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    return match this.idle.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            let why = format!(
                                "the request body stalled: no byte for {} s \
                                 (limits.body_idle_seconds); nothing was stored",
                                this.pace.idle.as_secs()
                            );
                            Poll::Ready(Some(Err(this.give_up(why))))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

/// Why a body the edge reads whole could not be had.
#[derive(Debug)]
pub enum WholeError {
    Body(BodyError),
    /// Past `limit` bytes.
    TooLarge,
}

/// Reads a paced body whole, refusing it past `limit` bytes.
pub async fn read_whole(mut body: Paced, limit: u64) -> Result<Bytes, WholeError> {
    use futures_util::StreamExt as _;
    let mut whole = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(WholeError::Body)?;
        if whole.len() as u64 + chunk.len() as u64 > limit {
            return Err(WholeError::TooLarge);
        }
        whole.extend_from_slice(&chunk);
    }
    Ok(whole.freeze())
}
