//! Bodies as the edge and the app hand them on: an answer whole (a page,
//! cached bytes) or as a stream of chunks (a large picture read from
//! storage, a zip), and a request's body whole (a form) or streamed (an
//! upload), with what went wrong with it in words the app can answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Frame, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An answer's chunks, pulled as the client reads: a client that stops
/// reading holds one chunk, not the whole answer.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// An answer's body.
pub enum Body {
    Full(Bytes),
    Stream {
        chunks: ChunkStream,
        /// The length when known up front (then sent as Content-Length).
        len: Option<u64>,
    },
}

impl Body {
    pub fn empty() -> Self {
        Self::Full(Bytes::new())
    }

    pub fn stream(chunks: ChunkStream, len: Option<u64>) -> Self {
        Self::Stream { chunks, len }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::Full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::Full(Bytes::from(text))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Full(bytes) => {
                if bytes.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes)))))
                }
            }
            Self::Stream { chunks, .. } => chunks
                .as_mut()
                .poll_next(cx)
                .map(|next| next.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(bytes) if bytes.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Self::Stream { len: Some(len), .. } => SizeHint::with_exact(*len),
            Self::Stream { len: None, .. } => SizeHint::default(),
        }
    }
}

/// Why a request body could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// It stalled, or came slower than `limits.body_min_rate` (a 408).
    #[error("{0}")]
    Slow(String),
    /// Its framing is broken: a bad chunk size, more bytes than declared
    /// (a 400: the client's mistake).
    #[error("{0}")]
    Malformed(String),
    /// The client went away before sending all of it.
    #[error("the client closed the connection before the body was complete")]
    Gone,
}

/// A request body the app reads as it arrives.
pub type RequestStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// A request's body as the edge hands it to the app.
pub enum RequestBody {
    Empty,
    /// Read whole by the edge, within `server.body_limit`.
    Whole(Bytes),
    /// An upload, left for its route to read (within its own limit) so
    /// that who may upload is decided before a byte is read.
    Stream(RequestStream),
}

/// A body the app could not read is the client's problem, in service terms.
impl From<BodyError> for crate::service::Error {
    fn from(e: BodyError) -> Self {
        use crate::service::Error;
        match e {
            BodyError::Slow(why) => Error::SlowBody(why),
            BodyError::Malformed(why) => Error::MalformedBody(why),
            // Nobody reads the answer: the client has gone.
            BodyError::Gone => Error::Image(crate::imaging::ImagingError::Cancelled),
        }
    }
}
