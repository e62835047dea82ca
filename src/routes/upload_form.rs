//! The multipart upload body, read as a stream with the size limit enforced
//! as bytes arrive: a 2 GB body is refused after `uploads.max_bytes`, not
//! buffered first, and one that declares more is refused before a byte is
//! read. The edge leaves the body as a stream (`exchange::UploadStream`)
//! and holds it to its pace; a client that leaves drops the handler, and
//! with it the upload and its decode.

use rocket::State;
use rocket::data::{ByteUnit, Data, FromData, Outcome};
use rocket::request::Request;

use std::sync::Arc;

use futures_util::StreamExt as _;

use crate::config::Config;
use crate::http::Problem;
use crate::http::body::{BodyError, RequestStream};
use crate::routes::access::Caller;
use crate::routes::exchange::UploadStream;
use crate::service::Error;
use crate::service::budget::Reservation;
use crate::service::images::{Images, NewUpload, Uploaded, clean_original_name};
use crate::service::moderation::{Moderation, Uploader};

/// The form field that asks for an expiry (`1h`, `7d`, `never`).
const EXPIRES_IN: &str = "expires_in";

/// Multipart overhead allowed on top of the file itself (boundaries, headers).
const FORM_SLACK: u64 = 64 * 1024;

/// The field names read, in order of preference: the form field of the
/// Phoenix app Kitteh replaces (kept so old scripts work), then the API's.
const FILE_FIELDS: &[&str] = &["image[file]", "file"];

/// An uploaded file's bytes and the name the client gave it, with the
/// share of `limits.upload_memory` they hold until the request ends.
pub struct UploadBody {
    /// Every file sent, in order (one for most clients).
    pub uploads: Vec<NewUpload>,
    _memory: Option<Reservation>,
}

/// One file's outcome in a request that sent several.
pub struct FileOutcome {
    /// The client's file name as display text only (cleaned as the stored
    /// `original_name` is): it is echoed in answers.
    pub file_name: Option<String>,
    pub result: Result<Uploaded, Error>,
}

impl UploadBody {
    /// Whether the request sent more than one file.
    pub fn several(&self) -> bool {
        self.uploads.len() > 1
    }

    /// Stores the (first) upload.
    pub async fn store(self, images: &Images) -> Result<Uploaded, Error> {
        let Self { uploads, _memory } = self;
        let upload = uploads.into_iter().next().ok_or(Error::MissingFile)?;
        images.upload(upload).await
    }

    /// Stores every file, one after the other, each on its own: one that
    /// is refused does not stop the others. Files past the first each take
    /// their own place in the uploader's rate limit.
    pub async fn store_all(
        self,
        images: &Images,
        moderation: Option<&Moderation>,
    ) -> Vec<FileOutcome> {
        let Self { uploads, _memory } = self;
        let mut outcomes = Vec::with_capacity(uploads.len());
        for (i, upload) in uploads.into_iter().enumerate() {
            let file_name = upload
                .file_name
                .as_deref()
                .map(|name| clean_original_name(Some(name)));
            let admitted = match moderation {
                Some(m) if i > 0 => m.admit_another(&upload.uploader),
                _ => Ok(()),
            };
            let result = match admitted {
                Ok(()) => images.upload(upload).await,
                Err(e) => Err(images.rejected(e)),
            };
            outcomes.push(FileOutcome { file_name, result });
        }
        outcomes
    }
}

#[rocket::async_trait]
impl<'r> FromData<'r> for UploadBody {
    type Error = Error;

    async fn from_data(req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r, Self> {
        // The edge holds every body to `limits.body_*` before it gets here.
        let (limit, max_files) = match req.guard::<&State<Config>>().await {
            rocket::request::Outcome::Success(config) => (
                config.uploads.max_bytes,
                config.uploads.max_files_per_request,
            ),
            _ => (ByteUnit::Mebibyte(25), 1),
        };
        let images = match req.guard::<&State<Arc<Images>>>().await {
            rocket::request::Outcome::Success(images) => Some(Arc::clone(images)),
            _ => None,
        };
        let moderation = match req.guard::<&State<Arc<Moderation>>>().await {
            rocket::request::Outcome::Success(m) => Some(Arc::clone(m)),
            _ => None,
        };
        let stream = UploadStream::take(req);
        // Who may upload is decided before a byte of the body is read.
        let caller = Caller::of(req);
        let admitted = match &moderation {
            Some(m) => m.admit_upload(caller.addr, caller.key.as_deref()).await,
            None => Ok(Uploader::default()),
        };
        let mut uploader = match admitted {
            Ok(uploader) => uploader,
            // What the client still sends is read and dropped by the edge
            // once this answer is out, so that it reads the answer.
            Err(e) => return Outcome::Error((status_of(&e), e)),
        };
        let Some(stream) = stream else {
            return Outcome::Error((
                rocket::http::Status::BadRequest,
                Error::BadForm("expected Content-Type multipart/form-data with a boundary".into()),
            ));
        };
        let read = read(req, stream, limit, max_files, images.as_deref()).await;
        let read = read.and_then(|(uploads, expires_in, memory)| {
            if let Some(m) = &moderation {
                uploader.expires_at = m.expiry(expires_in.as_deref())?;
            }
            Ok((uploads, memory))
        });
        match read {
            Ok((uploads, memory)) => Outcome::Success(UploadBody {
                uploads: uploads
                    .into_iter()
                    .map(|upload| NewUpload {
                        uploader: uploader.clone(),
                        ..upload
                    })
                    .collect(),
                _memory: memory,
            }),
            Err(e) => Outcome::Error((status_of(&e), e)),
        }
    }
}

fn status_of(e: &Error) -> rocket::http::Status {
    rocket::http::Status::new(Problem::from(e).status.as_u16())
}

async fn read(
    req: &Request<'_>,
    mut stream: RequestStream,
    limit: ByteUnit,
    max_files: u32,
    images: Option<&Images>,
) -> Result<(Vec<NewUpload>, Option<String>, Option<Reservation>), Error> {
    let whole = limit.as_u64() + FORM_SLACK;
    let declared = req
        .headers()
        .get_one("Content-Length")
        .and_then(|l| l.parse::<u64>().ok());
    // A declared length over the limit is refused at once, before a byte
    // of the body is read.
    if let Some(len) = declared
        && len > whole
    {
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
    let result = read_form(req, &mut stream, limit, max_files).await;
    result.map(|(upload, expires_in)| (upload, expires_in, memory))
}

async fn read_form(
    req: &Request<'_>,
    stream: &mut RequestStream,
    limit: ByteUnit,
    max_files: u32,
) -> Result<(Vec<NewUpload>, Option<String>), Error> {
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
    let mut multipart = multer::Multipart::with_constraints(stream.by_ref(), boundary, constraints);
    let mut found: Vec<(usize, NewUpload)> = Vec::new();
    let mut expires_in: Option<String> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(map_multer(e, limit)),
        };
        if field.name() == Some(EXPIRES_IN) {
            let text = field.text().await.map_err(|e| map_multer(e, limit))?;
            if text.len() > 64 {
                return Err(Error::BadExpiry(
                    "longer than any duration (write 1h, 7d or never)".into(),
                ));
            }
            expires_in = Some(text);
            continue;
        }
        let rank = field
            .name()
            .and_then(|n| FILE_FIELDS.iter().position(|f| *f == n));
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| map_multer(e, limit))?;
        if let Some(rank) = rank {
            // Counted per field name: an old script that sends both names
            // means one file.
            if found.iter().filter(|(r, _)| *r == rank).count() >= max_files as usize {
                return Err(Error::BadForm(format!(
                    "more than {max_files} files in one request (uploads.max_files_per_request)"
                )));
            }
            found.push((
                rank,
                NewUpload {
                    bytes,
                    file_name,
                    ..NewUpload::default()
                },
            ));
        }
    }
    // A form that sends both field names (an old script) means one file:
    // the better-ranked name wins, as it always has.
    let best = found
        .iter()
        .map(|(rank, _)| *rank)
        .min()
        .ok_or(Error::MissingFile)?;
    let uploads = found
        .into_iter()
        .filter(|(rank, _)| *rank == best)
        .map(|(_, upload)| upload)
        .collect();
    Ok((uploads, expires_in))
}

fn map_multer(e: multer::Error, limit: ByteUnit) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            Error::TooLarge { limit }
        }
        // The body itself failed: slow, badly framed, or its client gone.
        multer::Error::StreamReadFailed(inner) => match inner.downcast_ref::<BodyError>() {
            Some(body) => Error::from(body.clone()),
            None => Error::BadForm(inner.to_string()),
        },
        other => Error::BadForm(other.to_string()),
    }
}
