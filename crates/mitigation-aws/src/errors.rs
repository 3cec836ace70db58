//! Error classification: a failed SDK call becomes an [`ActionError`] that says, by the AWS
//! error code, whether a retry can help and what the operator should do.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_iot::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use mitigation::{ActionError, Retry};

/// Codes that a later attempt can get past.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailureException",
    "InternalFailure",
    "InternalException",
    "InternalServerException",
    "RequestTimeout",
    "RequestTimeoutException",
    "VersionConflictException",
    "ConflictException",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Classify a failed SDK call by its AWS error code (IoT throttles with HTTP 400, so the
/// status alone would mislead); the HTTP status only decides for codes not listed.
pub fn classify<E>(
    operation: &'static str,
    thing: &str,
    err: SdkError<E, HttpResponse>,
) -> ActionError
where
    E: ProvideErrorMetadata + StdError + Debug + Send + Sync + 'static,
{
    let (retry, code, message) = match &err {
        SdkError::TimeoutError(_) => (
            Retry::Retryable,
            "Timeout".to_owned(),
            "the call timed out after the SDK's retries".to_owned(),
        ),
        SdkError::DispatchFailure(d) => (
            Retry::Retryable,
            if d.is_timeout() {
                "Timeout"
            } else {
                "DispatchFailure"
            }
            .to_owned(),
            format!("the request could not be sent: {}", source_chain(&err)),
        ),
        SdkError::ResponseError(_) => (
            Retry::Retryable,
            "ResponseError".to_owned(),
            format!("the response could not be read: {}", source_chain(&err)),
        ),
        SdkError::ConstructionFailure(_) => (
            Retry::Permanent,
            "ConstructionFailure".to_owned(),
            format!("the request could not be built: {}", source_chain(&err)),
        ),
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().unwrap_or("Unknown").to_owned();
            let retry = if RETRYABLE_CODES.contains(&code.as_str())
                || (err.code().is_none() && status.is_none_or(|s| s >= 500))
                || (!is_known_permanent(&code) && status.is_some_and(|s| s >= 500 || s == 429))
            {
                Retry::Retryable
            } else {
                Retry::Permanent
            };
            let message = err.message().map(str::to_owned).unwrap_or_else(|| {
                format!(
                    "HTTP status {}",
                    status.map_or("?".into(), |s| s.to_string())
                )
            });
            (retry, code, message)
        }
    };
    let hint = if code == "InvalidRequestException" && is_group_limit(&message) {
        hint_for(operation, "LimitExceededException", thing)
    } else {
        hint_for(operation, &code, thing)
    };
    ActionError {
        hint,
        ..ActionError::new(
            operation,
            thing,
            retry,
            code,
            violation_core::reject::excerpt(&message, 300),
        )
    }
}

/// IoT reports the 10-groups-per-thing limit as an InvalidRequestException.
fn is_group_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("group") && (m.contains("more than 10") || m.contains("limit"))
}

fn is_known_permanent(code: &str) -> bool {
    matches!(
        code,
        "ResourceNotFoundException"
            | "InvalidRequestException"
            | "LimitExceededException"
            | "UnauthorizedException"
            | "AccessDeniedException"
            | "ForbiddenException"
            | "MethodNotAllowedException"
            | "RequestEntityTooLargeException"
            | "UnsupportedDocumentEncodingException"
    )
}

fn hint_for(operation: &str, code: &str, thing: &str) -> Option<String> {
    Some(match code {
        "ThrottlingException" | "TooManyRequestsException" => format!(
            "{operation} is throttled: the record will be retried; if this persists, lower the event source's maximum concurrency or MAX_CONCURRENCY"
        ),
        "LimitExceededException" => format!(
            "thing {thing} is probably already in 10 thing groups: remove it from one, then redrive the record from the dead-letter queue"
        ),
        "UnauthorizedException" | "AccessDeniedException" | "ForbiddenException" => format!(
            "the function's role is not allowed to call {operation} on thing {thing}: fix the IAM policy, then redrive the record"
        ),
        "ResourceNotFoundException" => format!(
            "thing {thing} is not registered: it may be an unregistered client id or was deleted; quarantine its certificate by hand if it is still connecting"
        ),
        "InvalidRequestException" => format!(
            "AWS refused the request for thing {thing}: read the message, fix the cause, then redrive the record"
        ),
        _ => return None,
    })
}

/// The error and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// The error and its sources, `: `-separated: a failed call's whole story in one line.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let parts: Vec<String> = chain(err).map(ToString::to_string).collect();
    parts.join(": ")
}

/// The error's sources, `: `-separated; the error itself when it has none. For an SDK
/// error, whose own text (`dispatch failure`) says less than its causes.
pub fn source_chain(err: &(dyn StdError + 'static)) -> String {
    match err.source() {
        Some(source) => error_chain(source),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let mut error: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            error = Some(Box::new(Layer {
                text,
                source: error,
            }));
        }
        *error.unwrap()
    }

    #[test]
    fn chains_join_the_error_and_its_sources_outermost_first() {
        let three = layers(&["dispatch failure", "io error", "connection refused"]);
        assert_eq!(
            error_chain(&three),
            "dispatch failure: io error: connection refused"
        );
        assert_eq!(source_chain(&three), "io error: connection refused");
        let alone = layers(&["timed out"]);
        assert_eq!(
            (error_chain(&alone), source_chain(&alone)),
            ("timed out".into(), "timed out".into())
        );
    }
}
