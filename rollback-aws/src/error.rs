//! AWS SDK errors as [`rollback_core::Error`]s, by what went wrong.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::redact::{excerpt, EXCERPT_CHARS};
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
    // CloudFront: more invalidations in progress than it takes; they finish by themselves.
    "TooManyInvalidationsInProgress",
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
    "PipelineExecutionNotFoundException",
];

const INVALID: &[&str] = &[
    "InvalidParameterException",
    "InvalidParameterValueException",
    // RDS (query protocol) says it without `Exception`.
    "InvalidParameterValue",
    "InvalidParameter",
    "InvalidRequestException",
    "ValidationException",
    "ClientException",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSnapshotState",
    "InvalidRestoreFault",
    "DBInstanceAlreadyExists",
    "InvalidParameterCombination",
    // CloudFront (REST-XML) names its errors without `Exception`.
    "InvalidArgument",
    "InvalidationBatchAlreadyExists",
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
///
/// The message is one or two sentences a person can act on: the operation, the HTTP
/// status, AWS's error code and message, an excerpt of the body when there is no AWS error
/// (an HTML page from a proxy, say), all cut short and checked for secrets
/// ([`rollback_core::redact::excerpt`]), and what to do. The SDK error itself (headers,
/// raw body, internal types) is the `source()` of every kind (not found, conflict,
/// throttled, invalid input, backend), never part of the message.
pub(crate) fn sdk_error<E>(target: &TargetId, op: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().filter(|c| !c.is_empty()).map(str::to_string);
    let aws_message = err
        .message()
        .map(|m| excerpt(m, EXCERPT_CHARS).trim_end_matches('.').to_string())
        .filter(|m| !m.is_empty());
    let body = err
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(|b| excerpt(&String::from_utf8_lossy(b), EXCERPT_CHARS))
        .filter(|b| !b.is_empty());
    let http = status.map(|s| format!("HTTP {s}"));
    let target = target.to_string();
    let backend =
        |retryable: bool, message: String| Error::backend(target.clone(), message, retryable);
    let error = match &err {
        SdkError::TimeoutError(_) => Some(backend(
            true,
            format!(
                "{op}: no answer from AWS in time; check the network and the endpoint (the call is retried)"
            ),
        )),
        SdkError::DispatchFailure(_) => Some(backend(
            true,
            format!(
                "{op}: could not reach AWS ({}); check the network, the region and the endpoint (the call is retried)",
                root_cause(&err)
            ),
        )),
        SdkError::ResponseError(_) => {
            // An answer the SDK cannot read: a cut connection (no status), or a page from
            // something that is not AWS. A 5xx or a cut may pass; a 2xx will not.
            let retryable = status.is_none_or(|s| s >= 500);
            Some(backend(
                retryable,
                format!(
                    "{op}: AWS answered {} with a body the SDK cannot read{}; check that the endpoint is AWS (AWS_ENDPOINT_URL, proxies){}",
                    http.as_deref().unwrap_or("without a status"),
                    body.as_deref()
                        .map(|b| format!(": \"{b}\""))
                        .unwrap_or_default(),
                    if retryable { " (the call is retried)" } else { "" }
                ),
            ))
        }
        SdkError::ConstructionFailure(_) => Some(Error::invalid(
            target.clone(),
            format!(
                "{op}: the request could not be built ({}); check the names and values given",
                root_cause(&err)
            ),
        )),
        _ => None,
    };
    let error = error.unwrap_or_else(|| {
        service_error(
            &target,
            op,
            status,
            http,
            code.as_deref(),
            aws_message,
            body,
        )
    });
    // Whatever the kind, the SDK's error (headers, raw body, internal types) is the source.
    error.with_source(err)
}

/// The error for an answer AWS gave (a service error): by its code and HTTP status.
/// "UpdateAlias: HTTP 400, ValidationException: 1 validation error ..."; without an AWS
/// error (no code, no message) the body is quoted instead.
fn service_error(
    target: &str,
    op: &str,
    status: Option<u16>,
    http: Option<String>,
    code: Option<&str>,
    aws_message: Option<String>,
    body: Option<String>,
) -> Error {
    let mut facts: Vec<String> = Vec::new();
    facts.extend(http);
    match (code, &aws_message) {
        (Some(c), Some(m)) => facts.push(format!("{c}: {m}")),
        (Some(c), None) => facts.push(c.to_string()),
        (None, Some(m)) => facts.push(m.clone()),
        (None, None) => {
            if let Some(b) = &body {
                facts.push(format!("answered \"{b}\""));
            }
        }
    }
    let message = if facts.is_empty() {
        op.to_string()
    } else {
        format!("{op}: {}", facts.join(", "))
    };
    let detail = aws_message.or(body).unwrap_or_else(|| "no details".into());
    let code = code.unwrap_or("");
    if THROTTLING.contains(&code) || status == Some(429) {
        return Error::throttled(
            target,
            format!("{message}; the call is retried with backoff"),
            None,
        );
    }
    if NOT_FOUND.contains(&code) || status == Some(404) {
        return Error::not_found(
            target,
            format!("{op} target"),
            format!("AWS says: {detail}; check the name, region and account"),
        );
    }
    if code == "PreconditionFailedException" || status == Some(412) {
        return Error::conflict(
            target,
            "the state read in preflight",
            format!("a newer change ({detail})"),
        );
    }
    if INVALID.contains(&code) {
        return Error::invalid(
            target,
            format!("{message}; correct the input and plan again"),
        );
    }
    if TRANSIENT.contains(&code) || status.is_some_and(|s| s >= 500) {
        return Error::backend(
            target,
            format!("{message}; AWS failed on its side (the call is retried)"),
            true,
        );
    }
    if matches!(
        code,
        "AccessDeniedException" | "UnrecognizedClientException" | "AccessDenied"
    ) || status == Some(403)
    {
        let said = detail.as_str();
        if code == "UnrecognizedClientException" {
            return Error::backend(
                target,
                format!("{message}; check the credentials (AWS does not know their key)"),
                false,
            );
        }
        let action = after(said, "perform: ")
            .or_else(|| iam_action(op).map(str::to_string))
            .unwrap_or_else(|| op.to_string());
        let resource = after(said, "on resource: ").unwrap_or_else(|| target.to_string());
        let hint = format!(
            "grant {action} to the credentials in use (`rollback policy` prints every permission a runbook needs); AWS says: {}",
            excerpt(said, 300)
        );
        return Error::permission_denied(target, action, resource, hint);
    }
    let todo = if status.is_some_and(|s| (200..300).contains(&s)) {
        "a success the SDK cannot read: check that the endpoint is AWS (AWS_ENDPOINT_URL, proxies)"
    } else {
        "the error's source has AWS's full answer"
    };
    Error::backend(target, format!("{message}; {todo}"), false)
}

/// The word after `marker` in an AWS message (`... perform: lambda:UpdateAlias on ...`).
fn after(said: &str, marker: &str) -> Option<String> {
    let rest = &said[said.find(marker)? + marker.len()..];
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',')
        .collect();
    let word = word.trim_end_matches(['.', ';']);
    (!word.is_empty()).then(|| word.to_string())
}

/// The IAM action of an operation this crate calls, for a denial whose message does not
/// name it.
pub(crate) fn iam_action(op: &str) -> Option<&'static str> {
    Some(match op {
        "GetAlias" => "lambda:GetAlias",
        "UpdateAlias" => "lambda:UpdateAlias",
        "GetFunctionConfiguration" => "lambda:GetFunctionConfiguration",
        "ListVersionsByFunction" => "lambda:ListVersionsByFunction",
        "DescribeServices" => "ecs:DescribeServices",
        "UpdateService" => "ecs:UpdateService",
        "DescribeTaskDefinition" => "ecs:DescribeTaskDefinition",
        "ListTaskDefinitions" => "ecs:ListTaskDefinitions",
        "DescribeImages" => "ecr:DescribeImages",
        "ListSecretVersionIds" => "secretsmanager:ListSecretVersionIds",
        "UpdateSecretVersionStage" => "secretsmanager:UpdateSecretVersionStage",
        "GetSecretValue" => "secretsmanager:GetSecretValue",
        "PutSecretValue" => "secretsmanager:PutSecretValue",
        "DescribeDBInstances" => "rds:DescribeDBInstances",
        "DescribeDBSnapshots" => "rds:DescribeDBSnapshots",
        "CreateDBSnapshot" => "rds:CreateDBSnapshot",
        "RestoreDBInstanceFromDBSnapshot" => "rds:RestoreDBInstanceFromDBSnapshot",
        "RestoreDBInstanceToPointInTime" => "rds:RestoreDBInstanceToPointInTime",
        "GetPipelineState" => "codepipeline:GetPipelineState",
        "DisableStageTransition" => "codepipeline:DisableStageTransition",
        "EnableStageTransition" => "codepipeline:EnableStageTransition",
        "ListPipelineExecutions" => "codepipeline:ListPipelineExecutions",
        "StopPipelineExecution" => "codepipeline:StopPipelineExecution",
        "GetPipeline" => "codepipeline:GetPipeline",
        "GetPipelineExecution" => "codepipeline:GetPipelineExecution",
        "StartPipelineExecution" => "codepipeline:StartPipelineExecution",
        "DescribeAlarms" => "cloudwatch:DescribeAlarms",
        "GetMetricData" => "cloudwatch:GetMetricData",
        "DescribeStacks" => "cloudformation:DescribeStacks",
        "DescribeStackEvents" => "cloudformation:DescribeStackEvents",
        "GetTemplate" => "cloudformation:GetTemplate",
        "UpdateStack" => "cloudformation:UpdateStack",
        "GetDistribution" => "cloudfront:GetDistribution",
        "CreateInvalidation" => "cloudfront:CreateInvalidation",
        "GetInvalidation" => "cloudfront:GetInvalidation",
        "GetItem" => "dynamodb:GetItem",
        "PutItem" => "dynamodb:PutItem",
        "UpdateItem" => "dynamodb:UpdateItem",
        "DescribeTable" => "dynamodb:DescribeTable",
        "CreateTable" => "dynamodb:CreateTable",
        "GetObject" => "s3:GetObject",
        "PutObject" => "s3:PutObject",
        "ListObjectsV2" => "s3:ListBucket",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "CreateBucket" => "s3:CreateBucket",
        _ => return None,
    })
}

/// The innermost cause of an error (`Connection refused (os error 111)`), cut short: what a
/// person needs from a chain whose outer layers name SDK internals.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    excerpt(&cause.to_string(), 120)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rollback_core::ErrorKind;

    #[test]
    fn a_denial_names_the_action_and_resource_and_points_at_rollback_policy() {
        let said = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: lambda:UpdateAlias on resource: arn:aws:lambda:us-east-1:123456789012:function:f:live because no identity-based policy allows the lambda:UpdateAlias action";
        let e = service_error(
            "lambda-alias/f:live",
            "UpdateAlias",
            Some(403),
            Some("HTTP 403".into()),
            Some("AccessDeniedException"),
            Some(said.into()),
            None,
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(
                "lambda:UpdateAlias on arn:aws:lambda:us-east-1:123456789012:function:f:live"
            ),
            "{text}"
        );
        assert!(text.contains("rollback policy"), "{text}");
        assert_eq!(e.record().fields["action"], "lambda:UpdateAlias");
        // Without the words, the action comes from the operation and the resource is the target.
        let e = service_error(
            "ecs-service/c/s",
            "UpdateService",
            Some(403),
            None,
            Some("AccessDenied"),
            None,
            None,
        );
        assert!(
            e.to_string()
                .contains("ecs:UpdateService on ecs-service/c/s"),
            "{e}"
        );
    }
}
