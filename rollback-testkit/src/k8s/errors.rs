//! API errors as the real API server reports them: `Status` objects.

use serde_json::{json, Map, Value};

use super::resources::Kind;

/// An error answer: HTTP code plus the `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub(crate) retry_after: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> ApiError {
        ApiError {
            code,
            reason,
            message,
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    fn resource_details(kind: Kind, name: &str) -> Value {
        let mut d = Map::new();
        d.insert("name".into(), json!(name));
        if !kind.group().is_empty() {
            d.insert("group".into(), json!(kind.group()));
        }
        d.insert("kind".into(), json!(kind.plural()));
        Value::Object(d)
    }

    /// 404 for a named object.
    pub(crate) fn not_found(kind: Kind, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", kind.qualified()),
        )
        .with_details(Self::resource_details(kind, name))
    }

    /// 403 for a call RBAC does not allow.
    pub(crate) fn forbidden(message: String, details: Value) -> ApiError {
        ApiError::new(403, "Forbidden", message).with_details(details)
    }

    /// 404 for a path the server does not serve.
    pub(crate) fn no_route() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        )
        .with_details(json!({}))
    }

    /// 409 on create of an existing name.
    pub(crate) fn already_exists(kind: Kind, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.qualified()),
        )
        .with_details(Self::resource_details(kind, name))
    }

    /// 409 when a resourceVersion precondition fails.
    pub(crate) fn conflict(kind: Kind, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.qualified()
            ),
        )
        .with_details(Self::resource_details(kind, name))
    }

    /// 409 with a free message (uid preconditions).
    pub(crate) fn conflict_message(kind: Kind, name: &str, message: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {message}",
                kind.qualified()
            ),
        )
        .with_details(Self::resource_details(kind, name))
    }

    /// 422 for an object that fails validation.
    pub(crate) fn invalid(kind: Kind, name: &str, detail: &str, field: &str) -> ApiError {
        let mut details = Self::resource_details(kind, name);
        details["kind"] = json!(kind.kind());
        details["causes"] =
            json!([{"reason": "FieldValueInvalid", "message": detail, "field": field}]);
        ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {detail}", kind.qualified_kind()),
        )
        .with_details(details)
    }

    /// 422 for an update without a resourceVersion of a resource whose updates need one
    /// (Leases). The real server names the resource, not the kind, in this message.
    pub(crate) fn resource_version_required(kind: Kind, name: &str) -> ApiError {
        let detail = "Invalid value: 0x0: must be specified for an update";
        let mut details = Self::resource_details(kind, name);
        details["causes"] = json!([{"reason": "FieldValueInvalid", "message": detail, "field": "metadata.resourceVersion"}]);
        ApiError::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: metadata.resourceVersion: {detail}",
                kind.qualified()
            ),
        )
        .with_details(details)
    }

    /// 422 for a patch that cannot be applied (a failed JSON patch `test`, a bad path).
    pub(crate) fn patch_failed(detail: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {detail}"),
        )
        .with_details(json!({"causes": [{"reason": "FieldValueInvalid", "message": detail}]}))
    }

    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message.into())
    }

    /// 405.
    pub(crate) fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
        .with_details(json!({}))
    }

    /// 415 for a patch type the server does not take.
    pub(crate) fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
            ),
        )
    }

    /// 410 for a watch from a resourceVersion older than the event log keeps.
    pub(crate) fn gone(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// An injected fault with `code`.
    pub(crate) fn injected(code: u16, kind: Option<(Kind, &str)>, retry_after: u32) -> ApiError {
        let mut e = match code {
            409 => match kind {
                Some((k, name)) => ApiError::conflict(k, name),
                None => ApiError::new(409, "Conflict", "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again".into()),
            },
            429 => ApiError::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.".into(),
            )
            .with_details(json!({"retryAfterSeconds": retry_after})),
            500 => ApiError::new(
                500,
                "InternalError",
                "Internal error occurred: injected fault".into(),
            )
            .with_details(json!({"causes": [{"message": "injected fault"}]})),
            503 => ApiError::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request".into(),
            )
            .with_details(json!({"retryAfterSeconds": retry_after})),
            504 => ApiError::new(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
            ),
            404 => match kind {
                Some((k, name)) => ApiError::not_found(k, name),
                None => ApiError::no_route(),
            },
            403 => ApiError::new(403, "Forbidden", "forbidden: injected fault".into()),
            401 => ApiError::new(401, "Unauthorized", "Unauthorized".into()),
            400 => ApiError::bad_request("injected fault"),
            422 => ApiError::new(422, "Invalid", "injected fault".into()),
            c => ApiError::new(c, "", format!("injected fault ({c})")),
        };
        if matches!(code, 429 | 503) {
            e.retry_after = Some(retry_after);
        }
        e
    }

    /// The `Status` body.
    pub(crate) fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            if let Some(m) = s.as_object_mut() {
                m.remove("reason");
            }
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_the_real_status() {
        assert_eq!(
            ApiError::not_found(Kind::Deployment, "frontend").status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"frontend\" not found","reason":"NotFound","details":{"name":"frontend","group":"apps","kind":"deployments"},"code":404})
        );
        assert_eq!(
            ApiError::not_found(Kind::Pod, "p").status()["details"],
            json!({"name": "p", "kind": "pods"})
        );
    }
}
