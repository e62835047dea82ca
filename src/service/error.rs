//! What can go wrong in a service, in the user's terms, with its cause kept.
//! The HTTP side turns each variant into a status and a message in one
//! place (`routes::error`); commands print it; the resize worker records
//! the whole chain of causes as the job's error.

use std::io;

use sea_orm::DbErr;
use ubyte::ByteUnit;

use crate::imaging::ImagingError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The upload request carried no file in a field we read.
    #[error(
        "no file in the upload: send the image in the multipart field `file` (or `image[file]`)"
    )]
    MissingFile,
    /// The upload request is not the multipart form we expect.
    #[error("the upload is not a valid multipart form: {0}")]
    BadForm(String),
    /// The request body's framing is broken (a bad chunk size, more bytes
    /// than declared): the client's mistake.
    #[error("{0}")]
    MalformedBody(String),
    /// The upload went past `uploads.max_bytes` while streaming in.
    #[error("the upload is larger than the limit of {limit}")]
    TooLarge { limit: ByteUnit },
    /// The upload body stalled, or came slower than `limits.body_min_rate`.
    #[error("{0}")]
    SlowBody(String),
    /// Decoding this image needs more memory than the whole decode budget.
    #[error(
        "decoding this image needs {needed} bytes of memory; the limit (limits.decode_memory) is {limit} bytes"
    )]
    DecodeTooBig { needed: u64, limit: u64 },
    /// Every byte of decode or upload memory is in use by other requests.
    #[error("the server is busy with other uploads; try again in a few seconds")]
    Busy,
    /// The bytes are not an image we accept, or not a sound one.
    #[error(transparent)]
    Image(#[from] ImagingError),
    /// No image by that name or token (or no such size of it).
    #[error("no image is called {0}")]
    NotFound(String),
    /// The delete token is missing or wrong.
    #[error("the delete token is missing or wrong; nothing was deleted")]
    WrongDeleteToken,
    /// The storage backend (a bucket, a disk) did not answer or refused a
    /// write; the client may retry.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(#[source] io::Error),
    /// A row points at an object that is not there: our fault, not the
    /// client's.
    #[error("the stored object {name} cannot be read")]
    ObjectMissing {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("database error")]
    Database(#[from] DbErr),
    /// The SQLite file the server opened is no longer at its path: writes
    /// would be lost at the next restart.
    #[error("{0}")]
    DatabaseGone(String),
    /// Every name drawn was taken: with 4.6 × 10^10 names, a sign that
    /// something else is wrong.
    #[error("no free name after {0} attempts")]
    NoFreeName(usize),
    /// An upload on a keys instance came without a key we know.
    #[error(
        "this server takes uploads with an upload key only: send `Authorization: Bearer KEY` (or sign in on the upload page); {0}"
    )]
    KeyRequired(&'static str),
    /// The key was revoked by the operator.
    #[error("this upload key was revoked; ask the operator for a new one")]
    KeyRevoked,
    /// The key has stored as much as its quota allows.
    #[error(
        "this upload key has used {used} of its quota of {quota} bytes; this upload needs {needed} more"
    )]
    QuotaExceeded { used: u64, quota: u64, needed: u64 },
    /// Too many requests of one kind from one address (or key).
    #[error("too many {} from your address: at most {} at once, refilled at {} a minute; try again in {} s", what(.0.name), .0.limit.burst, .0.limit.per_minute, .0.retry_after)]
    RateLimited(crate::service::rate::Verdict),
    /// `expires_in` cannot be read.
    #[error("expires_in: {0}")]
    BadExpiry(String),
    /// `expires_in` is longer than `uploads.max_expiry`.
    #[error(
        "expires_in `{asked}` is longer than this server keeps pictures (uploads.max_expiry = {max})"
    )]
    ExpiryTooLong { asked: String, max: String },
    /// The image expired (and is, or is about to be, deleted).
    #[error("{0} has expired and is gone")]
    Expired(String),
    /// The picture is on the operator's blocklist.
    #[error("this picture cannot be shared here: the operator has blocked it")]
    Blocked,
    /// The client's address is banned.
    #[error("uploads, reports and deletes from your address are not accepted here")]
    Banned,
    /// A page or action for admin keys only.
    #[error("this needs an admin key: {0}")]
    AdminOnly(&'static str),
    /// A report form that cannot be taken as it is.
    #[error("{0}")]
    BadReport(String),
    /// A moderation form without its anti-forgery token.
    #[error(
        "this form was not sent from the moderation page (its check token is missing or wrong); reload the page and try again"
    )]
    Forged,
    /// A blocking task (decoding, resizing) could not be run or was lost.
    #[error("a background task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl From<crate::service::budget::BudgetError> for Error {
    fn from(e: crate::service::budget::BudgetError) -> Self {
        match e {
            crate::service::budget::BudgetError::TooBig { needed, limit } => {
                Self::DecodeTooBig { needed, limit }
            }
            crate::service::budget::BudgetError::Busy { .. } => Self::Busy,
        }
    }
}

impl Error {
    /// A stable machine-readable name for the error: the API's error code
    /// and the label of rejected uploads in the metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingFile => "missing_file",
            Self::BadForm(_) => "bad_form",
            Self::MalformedBody(_) => "malformed_body",
            Self::TooLarge { .. } => "too_large",
            Self::SlowBody(_) => "body_timeout",
            Self::DecodeTooBig { .. } => "too_much_memory",
            Self::Busy => "busy",
            Self::Image(e) => e.code(),
            Self::NotFound(_) => "not_found",
            Self::WrongDeleteToken => "forbidden",
            Self::StorageUnavailable(_) => "storage_unavailable",
            Self::KeyRequired(_) => "key_required",
            Self::KeyRevoked => "key_revoked",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::RateLimited(_) => "rate_limited",
            Self::BadExpiry(_) => "bad_expiry",
            Self::ExpiryTooLong { .. } => "expiry_too_long",
            Self::Expired(_) => "expired",
            Self::Blocked => "blocked",
            Self::Banned => "banned",
            Self::AdminOnly(_) => "admin_required",
            Self::BadReport(_) => "bad_report",
            Self::Forged => "forged_form",
            Self::Database(e) if crate::db::is_unavailable(e) => "database_unavailable",
            Self::DatabaseGone(_) => "database_unavailable",
            Self::ObjectMissing { .. }
            | Self::Database(_)
            | Self::NoFreeName(_)
            | Self::Task(_) => "internal",
        }
    }

    /// The message with every cause appended, for logs and job errors.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// What a rate limit counts, in words.
fn what(name: &str) -> &str {
    match name {
        "wrong_delete_tokens" => "delete attempts with a wrong token",
        "wrong_keys" => "upload keys that are not keys of this server",
        other => other,
    }
}

/// `outer: inner: innermost`, from an error and its sources.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        // `#[error(transparent)]` and `{0}` messages repeat their cause.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = Error::ObjectMissing {
            name: "a.png".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(
            e.chain(),
            "the stored object a.png cannot be read: no such file"
        );
        let e = Error::StorageUnavailable(io::Error::other("bucket says no"));
        assert_eq!(e.chain(), "storage unavailable: bucket says no");
    }
}
