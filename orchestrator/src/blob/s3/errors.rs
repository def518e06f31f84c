//! The SDK's errors sorted into [`BlobError`]s: missing, worth retrying, or refused.
//!
//! A 404 (`NoSuchKey`, `NotFound`) is [`BlobError::NotFound`]; a timeout, a connection
//! failure, a 5xx, a 429 or S3's `SlowDown` / `RequestTimeout` are transient; everything
//! else (403, a bad request, a bucket that does not exist) is refused for good. The
//! SDK's error is kept as the source; its message (code and text from the store, never a
//! credential or a signed URL) goes into the context.

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::blob::BlobError;

/// Error codes S3-compatible stores answer with when a retry may help.
const TRANSIENT_CODES: [&str; 5] = [
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeTooSkewed",
];

/// `doing` is what was attempted, with the key: `get tasks/1/input.zip`.
pub(super) fn classify<E>(
    doing: &str,
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    read_timeout: Duration,
) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    let context = match (&code, &message, status) {
        (Some(code), Some(message), _) => format!("{doing}: {code}: {message}"),
        (Some(code), None, _) => format!("{doing}: {code}"),
        (None, _, Some(status)) => format!("{doing}: HTTP {status}"),
        (None, _, None) => doing.to_string(),
    };
    let not_found =
        status == Some(404) || matches!(code.as_deref(), Some("NoSuchKey" | "NotFound"));
    match err {
        _ if not_found && code.as_deref() != Some("NoSuchBucket") => {
            BlobError::NotFound(key.to_string())
        }
        SdkError::TimeoutError(_) => BlobError::Timeout {
            context,
            after: read_timeout,
        },
        SdkError::DispatchFailure(ref failure) if failure.is_timeout() => BlobError::Timeout {
            context,
            after: read_timeout,
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => BlobError::Unavailable {
            context,
            source: Box::new(err),
        },
        SdkError::ServiceError(_)
            if status.is_some_and(|s| s >= 500 || s == 429 || s == 408)
                || code
                    .as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c)) =>
        {
            BlobError::Unavailable {
                context,
                source: Box::new(err),
            }
        }
        _ => BlobError::Rejected {
            context,
            source: Box::new(err),
        },
    }
}
