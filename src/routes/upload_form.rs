//! The multipart upload body, read as a stream with the size limit enforced
//! as bytes arrive: a 2 GB body is refused after `uploads.max_bytes`, not
//! buffered first.

use rocket::State;
use rocket::data::{ByteUnit, Data, FromData, Outcome};
use rocket::request::Request;

use crate::config::Config;
use crate::routes::error::Problem;
use crate::service::Error;
use crate::service::images::NewUpload;

/// Multipart overhead allowed on top of the file itself (boundaries, headers).
const FORM_SLACK: u64 = 64 * 1024;

/// The field names read, in order of preference: the form field of the
/// Phoenix app Kitteh replaces (kept so old scripts work), then the API's.
const FILE_FIELDS: &[&str] = &["image[file]", "file"];

/// An uploaded file's bytes and the name the client gave it.
pub struct UploadBody(pub NewUpload);

#[rocket::async_trait]
impl<'r> FromData<'r> for UploadBody {
    type Error = Error;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let limit = match req.guard::<&State<Config>>().await {
            rocket::request::Outcome::Success(config) => config.uploads.max_bytes,
            _ => ByteUnit::Mebibyte(25),
        };
        match read(req, data, limit).await {
            Ok(body) => Outcome::Success(body),
            Err(e) => Outcome::Error((Problem::from(&e).status, e)),
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

async fn read(req: &Request<'_>, data: Data<'_>, limit: ByteUnit) -> Result<UploadBody, Error> {
    let whole = limit.as_u64() + FORM_SLACK;
    let mut stream = data.open(ByteUnit::Byte(whole + DRAIN_LIMIT));
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
    let result = read_form(req, &mut stream, limit).await;
    if let Err(Error::TooLarge { .. }) = &result {
        drain(&mut stream).await;
    }
    result
}

async fn read_form(
    req: &Request<'_>,
    stream: &mut rocket::data::DataStream<'_>,
    limit: ByteUnit,
) -> Result<UploadBody, Error> {
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

    let mut found: Option<(usize, UploadBody)> = None;
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
            found = Some((
                rank,
                UploadBody(NewUpload {
                    bytes: bytes.to_vec(),
                    file_name,
                }),
            ));
        }
    }
    found.map(|(_, body)| body).ok_or(Error::MissingFile)
}

fn map_multer(e: multer::Error, limit: ByteUnit) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            Error::TooLarge { limit }
        }
        // The stream stops at our limit; multer then sees a cut-off body.
        multer::Error::StreamReadFailed(inner) if inner.to_string().contains("limit") => {
            Error::TooLarge { limit }
        }
        other => Error::BadForm(other.to_string()),
    }
}
