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
use crate::service::uploads::{Admission, FORM_SLACK, File, Stored, Uploads};

/// The form field that asks for an expiry (`1h`, `7d`, `never`).
const EXPIRES_IN: &str = "expires_in";

/// The field names read, in order of preference: the form field of the
/// Phoenix app Kitteh replaces (kept so old scripts work), then the API's.
const FILE_FIELDS: &[&str] = &["image[file]", "file"];

/// An admitted upload request with its files read: the service stores it
/// in one call.
pub struct UploadBody {
    admission: Admission,
    files: Vec<File>,
    expires_in: Option<String>,
}

impl UploadBody {
    /// Whether the request sent more than one file.
    pub fn several(&self) -> bool {
        self.files.len() > 1
    }

    pub async fn store(self, uploads: &Uploads) -> Result<Stored, Error> {
        uploads
            .store(self.admission, self.files, self.expires_in.as_deref())
            .await
    }
}

#[rocket::async_trait]
impl<'r> FromData<'r> for UploadBody {
    type Error = Error;

    async fn from_data(req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r, Self> {
        let Some(uploads) = req.rocket().state::<Arc<Uploads>>() else {
            return Outcome::Forward((_data, rocket::http::Status::InternalServerError));
        };
        let (limit, max_files) = match req.guard::<&State<Config>>().await {
            rocket::request::Outcome::Success(config) => (
                config.uploads.max_bytes,
                config.uploads.max_files_per_request,
            ),
            _ => (ByteUnit::Mebibyte(25), 1),
        };
        let caller = Caller::of(req);
        let declared = req
            .headers()
            .get_one("Content-Length")
            .and_then(|l| l.parse::<u64>().ok());
        // Who may upload is decided before a byte of the body is read. What
        // the client still sends after a refusal is read and dropped by the
        // edge once the answer is out, so that it reads the answer.
        let admission = match uploads
            .admit(caller.addr, caller.key.as_deref(), declared)
            .await
        {
            Ok(admission) => admission,
            Err(e) => return Outcome::Error((status_of(&e), e)),
        };
        // The edge holds the body to `limits.body_*` as it is read.
        let read = match UploadStream::take(req) {
            Some(mut stream) => read_form(req, &mut stream, limit, max_files).await,
            None => Err(Error::BadForm(
                "expected Content-Type multipart/form-data with a boundary".into(),
            )),
        };
        match read {
            Ok((files, expires_in)) => Outcome::Success(UploadBody {
                admission,
                files,
                expires_in,
            }),
            Err(e) => {
                let e = uploads.refused(e);
                Outcome::Error((status_of(&e), e))
            }
        }
    }
}

fn status_of(e: &Error) -> rocket::http::Status {
    rocket::http::Status::new(Problem::from(e).status.as_u16())
}

async fn read_form(
    req: &Request<'_>,
    stream: &mut RequestStream,
    limit: ByteUnit,
    max_files: u32,
) -> Result<(Vec<File>, Option<String>), Error> {
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
    let mut found: Vec<(usize, File)> = Vec::new();
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
                File {
                    name: file_name,
                    bytes,
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
    let files = found
        .into_iter()
        .filter(|(rank, _)| *rank == best)
        .map(|(_, file)| file)
        .collect();
    Ok((files, expires_in))
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
