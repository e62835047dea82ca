//! The pace every request body must keep (`limits.body_idle_seconds`,
//! `limits.body_min_rate`): a client that stops sending, or trickles bytes
//! to hold a connection and the memory behind it, gets a 408 instead of
//! the server's patience. Applied by the edge to every body it passes on.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// How a body must arrive: no longer than `idle` without a byte, and no
/// slower than `min_rate` bytes a second on average once `idle` has passed.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub idle: Duration,
    pub min_rate: u64,
}

/// Where a paced body says why it gave up, for the answer the edge writes.
pub type Verdict = Arc<Mutex<Option<String>>>;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body held to a `Pace`.
pub struct Paced<B> {
    inner: B,
    pace: Pace,
    started: Instant,
    received: u64,
    idle: Pin<Box<Sleep>>,
    verdict: Verdict,
}

impl<B> Paced<B> {
    pub fn new(inner: B, pace: Pace, verdict: Verdict) -> Self {
        Self {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            idle: Box::pin(tokio::time::sleep(pace.idle)),
            verdict,
        }
    }

    fn give_up(&self, why: String) -> BoxError {
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
        why.into()
    }
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > 0 {
                    self.received += n;
                    let next = tokio::time::Instant::now() + self.pace.idle;
                    self.idle.as_mut().reset(next);
                    let elapsed = self.started.elapsed();
                    if elapsed > self.pace.idle
                        && self.received < self.pace.min_rate.saturating_mul(elapsed.as_secs())
                    {
                        let why = format!(
                            "the request body arrived at {} bytes a second, slower than the limit of {} (limits.body_min_rate); nothing was stored",
                            self.received / elapsed.as_secs().max(1),
                            self.pace.min_rate
                        );
                        return Poll::Ready(Some(Err(self.give_up(why))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let why = format!(
                        "the request body stalled: no byte for {} s (limits.body_idle_seconds); nothing was stored",
                        self.pace.idle.as_secs()
                    );
                    Poll::Ready(Some(Err(self.give_up(why))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
