//! AWS SDK errors as [`rollback_core::Error`]s, by what went wrong.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::{Error, Result, TargetId};

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "NotFoundException",
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBSnapshotNotFound",
    "DBSnapshotNotFoundFault",
    "PipelineNotFoundException",
    "StageNotFoundException",
];

const INVALID: &[&str] = &[
    "InvalidParameterException",
    "InvalidParameterValueException",
    "InvalidRequestException",
    "ValidationException",
    "ClientException",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSnapshotState",
    "InvalidRestoreFault",
    "DBInstanceAlreadyExists",
    "InvalidParameterCombination",
];

const TRANSIENT: &[&str] = &[
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
    "InternalServiceErrorException",
    "ServiceException",
    "ServerException",
    "RequestTimeout",
    "RequestTimeoutException",
    // Lambda: "an update is in progress for the function"; it clears by itself.
    "ResourceConflictException",
];

/// Converts an SDK error of operation `op` on `target` into the core error.
pub(crate) fn sdk_error<E>(target: &TargetId, op: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target_s = target.to_string();
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let detail = err
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
    let message = match &code {
        Some(c) => format!("{op}: {c}: {detail}"),
        None => format!("{op}: {detail}"),
    };
    let backend =
        |retryable: bool, message: String, err: SdkError<E, HttpResponse>| Error::Backend {
            target: target_s.clone(),
            message,
            retryable,
            source: Some(Box::new(err)),
        };
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            let message = format!("{op}: could not reach AWS: {}", DisplayErrorContext(&err));
            return backend(true, message, err);
        }
        SdkError::ConstructionFailure(_) => {
            return Error::invalid(
                target_s,
                format!(
                    "{op}: the request could not be built: {}",
                    DisplayErrorContext(&err)
                ),
            );
        }
        _ => {}
    }
    let code_s = code.as_deref().unwrap_or("");
    if THROTTLING.contains(&code_s) || status == Some(429) {
        return Error::Throttled {
            target: target_s,
            message,
            retry_after: None,
        };
    }
    if NOT_FOUND.contains(&code_s) || status == Some(404) {
        return Error::not_found(
            target_s,
            format!("{op} target"),
            format!("AWS says: {detail}; check the name, region and account"),
        );
    }
    if code_s == "PreconditionFailedException" || status == Some(412) {
        return Error::Conflict {
            target: target_s,
            expected: "the state read in preflight".into(),
            found: format!("a newer change ({detail})"),
        };
    }
    if INVALID.contains(&code_s) {
        return Error::invalid(target_s, message);
    }
    if TRANSIENT.contains(&code_s) || status.is_some_and(|s| s >= 500) {
        return backend(true, message, err);
    }
    if matches!(
        code_s,
        "AccessDeniedException" | "UnrecognizedClientException" | "AccessDenied"
    ) || status == Some(403)
    {
        let message = format!("{message}; check the credentials and the IAM permissions for {op}");
        return backend(false, message, err);
    }
    backend(false, message, err)
}

/// Refuses empty names and names with whitespace, saying what to pass instead.
pub(crate) fn check_name(id: &TargetId, what: &str, value: &str, expected: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(
            id.to_string(),
            format!("the {what} name is empty; pass {expected}"),
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            id.to_string(),
            format!("the {what} name {value:?} contains whitespace; pass {expected}"),
        ));
    }
    Ok(())
}
