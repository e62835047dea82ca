//! The multipart upload body, read as a stream with the size limit enforced
//! as bytes arrive: a 2 GB body is refused after `uploads.max_bytes`, not
//! buffered first.

use rocket::State;
use rocket::data::{ByteUnit, Data, FromData, Outcome};
use rocket::request::Request;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;

use crate::config::Config;
use crate::routes::error::Problem;
use crate::service::Error;
use crate::service::budget::Reservation;
use crate::service::images::{Images, NewUpload};

/// Multipart overhead allowed on top of the file itself (boundaries, headers).
const FORM_SLACK: u64 = 64 * 1024;

/// The field names read, in order of preference: the form field of the
/// Phoenix app Kitteh replaces (kept so old scripts work), then the API's.
const FILE_FIELDS: &[&str] = &["image[file]", "file"];

/// An uploaded file's bytes and the name the client gave it, with the
/// share of `limits.upload_memory` they hold until the request ends.
pub struct UploadBody(pub NewUpload, #[allow(dead_code)] Option<Reservation>);

/// How a body must arrive: no longer than this without a byte, and no
/// slower than this on average once that long has passed.
#[derive(Debug, Clone, Copy)]
struct Pace {
    idle: Duration,
    min_rate: u64,
}

#[rocket::async_trait]
impl<'r> FromData<'r> for UploadBody {
    type Error = Error;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let (limit, pace) = match req.guard::<&State<Config>>().await {
            rocket::request::Outcome::Success(config) => (
                config.uploads.max_bytes,
                Pace {
                    idle: Duration::from_secs(config.limits.body_idle_seconds),
                    min_rate: config.limits.body_min_rate.as_u64(),
                },
            ),
            _ => (
                ByteUnit::Mebibyte(25),
                Pace {
                    idle: Duration::from_secs(15),
                    min_rate: 8 << 10,
                },
            ),
        };
        let images = match req.guard::<&State<std::sync::Arc<Images>>>().await {
            rocket::request::Outcome::Success(images) => Some(std::sync::Arc::clone(images)),
            _ => None,
        };
        match read(req, data, limit, pace, images.as_deref()).await {
            Ok(body) => Outcome::Success(body),
            Err(e) => Outcome::Error((Problem::from(&e).status, e)),
        }
    }
}

/// Reads a body under a `Pace`: a client that stops sending, or trickles
/// bytes to hold the connection, gets an error instead of the server's
/// patience.
struct Paced<R> {
    inner: R,
    pace: Pace,
    started: Instant,
    received: u64,
    idle: Pin<Box<Sleep>>,
}

impl<R> Paced<R> {
    fn new(inner: R, pace: Pace) -> Self {
        Self {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            idle: Box::pin(tokio::time::sleep(pace.idle)),
        }
    }
}

fn too_slow(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, message)
}

impl<R: AsyncRead + Unpin> AsyncRead for Paced<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if n > 0 {
                    self.received += n;
                    let next = tokio::time::Instant::now() + self.pace.idle;
                    self.idle.as_mut().reset(next);
                    let elapsed = self.started.elapsed();
                    if elapsed > self.pace.idle
                        && self.received < self.pace.min_rate.saturating_mul(elapsed.as_secs())
                    {
                        return Poll::Ready(Err(too_slow(format!(
                            "the upload arrived at {} bytes a second, slower than the limit of {} (limits.body_min_rate); nothing was stored",
                            self.received / elapsed.as_secs().max(1),
                            self.pace.min_rate
                        ))));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(too_slow(format!(
                    "the upload stalled: no byte for {} s (limits.body_idle_seconds); nothing was stored",
                    self.pace.idle.as_secs()
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// How much of an oversized body is read and thrown away so that a client
/// still sending gets to read the 413 rather than a reset connection (what
/// nginx calls lingering close). Beyond this the connection is cut.
const DRAIN_LIMIT: u64 = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

async fn drain<R: tokio::io::AsyncRead + Unpin>(stream: &mut R) {
    let _ = tokio::time::timeout(DRAIN_TIME, tokio::io::copy(stream, &mut tokio::io::sink())).await;
}

async fn read(
    req: &Request<'_>,
    data: Data<'_>,
    limit: ByteUnit,
    pace: Pace,
    images: Option<&Images>,
) -> Result<UploadBody, Error> {
    let whole = limit.as_u64() + FORM_SLACK;
    let mut stream = Paced::new(data.open(ByteUnit::Byte(whole + DRAIN_LIMIT)), pace);
    let declared = req
        .headers()
        .get_one("Content-Length")
        .and_then(|l| l.parse::<u64>().ok());
    // A declared length over the limit is refused before reading anything.
    if let Some(len) = declared
        && len > whole
    {
        if len <= whole + DRAIN_LIMIT {
            drain(&mut stream).await;
        }
        return Err(Error::TooLarge { limit });
    }
    // The body will be held whole: its share of the upload memory first
    // (all of the limit when no length is declared).
    let memory = match images {
        Some(images) => Some(
            images
                .reserve_upload_memory(declared.unwrap_or(whole).min(whole))
                .await?,
        ),
        None => None,
    };
    let result = read_form(req, &mut stream, limit).await;
    if let Err(Error::TooLarge { .. }) = &result {
        drain(&mut stream).await;
    }
    result.map(|upload| UploadBody(upload, memory))
}

async fn read_form<R: AsyncRead + Unpin + Send>(
    req: &Request<'_>,
    stream: &mut R,
    limit: ByteUnit,
) -> Result<NewUpload, Error> {
    let boundary = req
        .content_type()
        .filter(|ct| ct.is_form_data())
        .and_then(|ct| ct.param("boundary"))
        .ok_or_else(|| {
            Error::BadForm("expected Content-Type multipart/form-data with a boundary".into())
        })?;

    let whole = limit.as_u64() + FORM_SLACK;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(whole)
            .per_field(limit.as_u64()),
    );
    // One byte past the limit lets multer see that the limit was crossed.
    let capped = tokio::io::AsyncReadExt::take(stream, whole + 1);
    let mut multipart =
        multer::Multipart::with_reader_with_constraints(capped, boundary, constraints);

    let mut found: Option<(usize, NewUpload)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(map_multer(e, limit)),
        };
        let rank = field
            .name()
            .and_then(|n| FILE_FIELDS.iter().position(|f| *f == n));
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| map_multer(e, limit))?;
        if let Some(rank) = rank
            && found.as_ref().is_none_or(|(best, _)| rank < *best)
        {
            found = Some((rank, NewUpload { bytes, file_name }));
        }
    }
    found.map(|(_, body)| body).ok_or(Error::MissingFile)
}

fn map_multer(e: multer::Error, limit: ByteUnit) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            Error::TooLarge { limit }
        }
        // A body that stalled or trickled: `Paced` said why.
        multer::Error::StreamReadFailed(inner)
            if inner
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut) =>
        {
            Error::SlowBody(inner.to_string())
        }
        // The stream stops at our limit; multer then sees a cut-off body.
        multer::Error::StreamReadFailed(inner) if inner.to_string().contains("limit") => {
            Error::TooLarge { limit }
        }
        other => Error::BadForm(other.to_string()),
    }
}
