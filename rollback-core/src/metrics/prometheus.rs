//! Prometheus: [`parse_response`] reads the HTTP API's JSON answers (always compiled);
//! `PrometheusSource` queries a server (with the `http` feature).

use std::collections::BTreeMap;

use chrono::DateTime;
use serde::Deserialize;

use super::{float, Sample, Series};
use crate::error::{Error, Result};
use crate::redact;

/// The API's envelope: `{"status":"success","data":{...}}` or
/// `{"status":"error","errorType":"bad_data","error":"..."}`.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

/// `[<unix seconds>, "<value>"]`.
type Point = (f64, String);

/// One element of a vector or matrix result. Native histogram samples (`histogram`,
/// `histograms`) are not floats and are left out.
#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<Point>,
    #[serde(default)]
    values: Vec<Point>,
}

/// Reads an answer of the Prometheus HTTP API (`/api/v1/query` or `/api/v1/query_range`)
/// into series: a `vector` gives one sample per series, a `matrix` all of them, a
/// `scalar` one series with no name or labels. Values `"NaN"`, `"+Inf"` and `"-Inf"` are
/// kept as such. The metric's `__name__` becomes [`Series::name`].
///
/// `source` and `query` name the server and the query in errors. A
/// `{"status":"error","errorType":"bad_data"}` (or `execution`) answer is an
/// [`Error::InvalidInput`] about the query; `timeout`, `canceled`, `unavailable` and
/// `internal` are retryable [`Error::Backend`]s; anything that is not the API's JSON is a
/// non-retryable [`Error::Backend`].
///
/// Use it to replay answers recorded with `curl` (runbook 004's
/// `curl -s http://prometheus:9090/api/v1/query?query=...`) through a
/// [`StaticSource`](super::StaticSource).
pub fn parse_response(source: &str, query: &str, body: &[u8]) -> Result<Vec<Series>> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        Error::backend(
            source,
            format!(
                "the answer to query {query:?} is not Prometheus API JSON ({e}): {}",
                excerpt(body)
            ),
            false,
        )
    })?;
    if envelope.status != "success" {
        return Err(api_error(source, query, None, &envelope));
    }
    if !envelope.warnings.is_empty() {
        tracing::warn!(source, query, warnings = ?envelope.warnings, "Prometheus answered with warnings");
    }
    let Some(data) = envelope.data else {
        return Err(unexpected(source, query, "a success without \"data\""));
    };
    let entries = |what: &str| -> Result<Vec<Entry>> {
        serde_json::from_value(data.result.clone()).map_err(|e| {
            unexpected(
                source,
                query,
                &format!("a {what} result that is malformed ({e})"),
            )
        })
    };
    match data.result_type.as_str() {
        "vector" | "matrix" => entries(&data.result_type)?
            .into_iter()
            .map(|e| {
                let mut labels = e.metric;
                let name = labels.remove("__name__").unwrap_or_default();
                let samples = e
                    .value
                    .iter()
                    .chain(e.values.iter())
                    .map(|p| sample(source, query, p))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Series {
                    name,
                    labels,
                    samples,
                })
            })
            .collect(),
        "scalar" => {
            let p: Point = serde_json::from_value(data.result.clone()).map_err(|e| {
                unexpected(
                    source,
                    query,
                    &format!("a scalar result that is malformed ({e})"),
                )
            })?;
            Ok(vec![Series {
                samples: vec![sample(source, query, &p)?],
                ..Series::default()
            }])
        }
        "string" => Err(Error::invalid(
            source,
            format!("query {query:?} returns a string, not numbers; give a numeric expression"),
        )),
        other => Err(unexpected(source, query, &format!("result type {other:?}"))),
    }
}

fn sample(source: &str, query: &str, (t, v): &Point) -> Result<Sample> {
    let at = DateTime::from_timestamp_millis((t * 1000.0).round() as i64)
        .ok_or_else(|| unexpected(source, query, &format!("timestamp {t} out of range")))?;
    let value = float::parse(v)
        .ok_or_else(|| unexpected(source, query, &format!("value {v:?}, not a number")))?;
    Ok(Sample::new(at, value))
}

fn unexpected(source: &str, query: &str, what: &str) -> Error {
    Error::backend(
        source,
        format!("unexpected answer to query {query:?}: {what}"),
        false,
    )
}

/// The error of a `"status":"error"` answer, by its `errorType`; an HTTP status of 5xx
/// is always retryable.
fn api_error(source: &str, query: &str, http: Option<u16>, e: &Envelope) -> Error {
    let kind = e.error_type.as_deref().unwrap_or("unknown");
    let text = e.error.as_deref().unwrap_or("(no message)");
    let status = http.map(|s| format!("HTTP {s}, ")).unwrap_or_default();
    let what = format!("query {query:?} failed ({status}{kind}): {text}");
    let server_side = http.is_some_and(|s| s >= 500);
    match kind {
        "bad_data" | "execution" if !server_side => {
            Error::invalid(source, format!("{what}; fix the query"))
        }
        "timeout" | "canceled" | "unavailable" | "internal" => Error::backend(source, what, true),
        _ => Error::backend(source, what, server_side),
    }
}

/// At most [`EXCERPT_CHARS`] characters of `body` on one line, secret-free.
fn excerpt(body: &[u8]) -> String {
    redact::body_excerpt(&String::from_utf8_lossy(body))
}

#[cfg(feature = "http")]
pub use source::PrometheusSource;

#[cfg(feature = "http")]
mod source {
    use std::fmt;
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, SecondsFormat, Utc};
    use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
    use serde::{Deserialize, Serialize, Serializer};

    use super::{api_error, excerpt, parse_response, Envelope};
    use crate::error::{Error, Result};
    use crate::metrics::{check_range, fmt_duration, MetricSource, MetricSourceSpec, Series};
    use crate::revision::REDACTED;

    /// At most this many bytes of an answer are read.
    const MAX_BODY: usize = 64 * 1024 * 1024;

    fn default_timeout() -> Duration {
        Duration::from_secs(30)
    }

    /// A Prometheus server (or anything with its HTTP API: Thanos, Mimir, VictoriaMetrics),
    /// queried with `GET <base_url>/api/v1/query` and `GET <base_url>/api/v1/query_range`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rollback_core::metrics::PrometheusSource;
    ///
    /// let prom = PrometheusSource::new("http://prometheus:9090")
    ///     .bearer_token_env("PROMETHEUS_TOKEN")
    ///     .timeout(Duration::from_secs(10));
    /// ```
    ///
    /// Errors name the source as `prometheus/<base_url>`:
    /// - the server refuses the query (`bad_data`, `execution`): [`Error::InvalidInput`]
    ///   with the query and the server's message;
    /// - HTTP 429: [`Error::Throttled`] with `Retry-After`;
    /// - HTTP 5xx, no answer, no answer within the timeout (30 s by default): a retryable
    ///   [`Error::Backend`];
    /// - HTTP 401/403 and answers that are not the API's JSON: a non-retryable
    ///   [`Error::Backend`]; HTTP 404: [`Error::InvalidInput`] about the base URL.
    ///
    /// Times are sent as RFC 3339 with milliseconds, the step as seconds.
    ///
    /// # Secrets
    ///
    /// The bearer token is sent as `Authorization: Bearer <token>` and never appears in
    /// `Debug`, errors or evidence. When the source is serialized (into a journal, inside
    /// a [`ThresholdSpec`](crate::metrics::ThresholdSpec)) the token is written as
    /// [`REDACTED`], and a source rebuilt from that refuses to run
    /// ([`Error::InvalidInput`]) until the token is set again. Prefer
    /// [`PrometheusSource::bearer_token_env`]: the name of the variable is journaled and a
    /// rebuilt source reads it again. A password in the base URL is treated the same way.
    #[derive(Clone, PartialEq, Serialize, Deserialize)]
    pub struct PrometheusSource {
        /// The server's URL; the API is under `<base_url>/api/v1/`.
        #[serde(serialize_with = "serialize_url")]
        pub base_url: String,
        /// How long to wait for an answer (30 s by default).
        #[serde(default = "default_timeout", with = "crate::serde_duration")]
        pub timeout: Duration,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            serialize_with = "serialize_token"
        )]
        bearer_token: Option<String>,
        /// The environment variable the bearer token is read from at each query, when no
        /// token is set directly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bearer_token_env: Option<String>,
    }

    impl PrometheusSource {
        /// The server at `base_url` (`http://prometheus:9090`), no token, 30 s timeout.
        pub fn new(base_url: impl Into<String>) -> Self {
            PrometheusSource {
                base_url: base_url.into(),
                timeout: default_timeout(),
                bearer_token: None,
                bearer_token_env: None,
            }
        }

        /// Sends `Authorization: Bearer <token>`.
        pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
            self.bearer_token = Some(token.into());
            self
        }

        /// Reads the bearer token from the environment variable `var` at each query.
        pub fn bearer_token_env(mut self, var: impl Into<String>) -> Self {
            self.bearer_token_env = Some(var.into());
            self
        }

        /// Sets how long to wait for an answer.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.timeout = timeout;
            self
        }

        /// Whether a bearer token is set directly.
        pub fn has_bearer_token(&self) -> bool {
            self.bearer_token.is_some()
        }

        /// `prometheus/<base_url>`, with a password in the URL redacted.
        fn target(&self) -> String {
            format!("prometheus/{}", redact_url(&self.base_url))
        }

        /// `<base_url>/api/v1/<api>`.
        fn endpoint(&self, target: &str, api: &str) -> Result<reqwest::Url> {
            let bad = |why: String| {
                Error::invalid(
                    target,
                    format!(
                        "base URL {:?} is not usable ({why}); give an absolute http:// or \
                         https:// URL such as http://prometheus:9090",
                        redact_url(&self.base_url)
                    ),
                )
            };
            let mut url = reqwest::Url::parse(&self.base_url).map_err(|e| bad(e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad(format!("scheme {:?} is not supported", url.scheme())));
            }
            if url.password().is_some_and(is_redacted) {
                return Err(Error::invalid(
                    target,
                    "the password in the base URL was not journaled; set the source again, \
                     or use bearer_token_env",
                ));
            }
            url.set_query(None);
            url.set_fragment(None);
            url.path_segments_mut()
                .map_err(|()| bad("it cannot have a path".into()))?
                .pop_if_empty()
                .extend(["api", "v1", api]);
            Ok(url)
        }

        /// The `Authorization` header, if a token is set.
        fn authorization(&self, target: &str) -> Result<Option<HeaderValue>> {
            let token = match (&self.bearer_token, &self.bearer_token_env) {
                (Some(t), _) if t == REDACTED => {
                    return Err(Error::invalid(
                        target,
                        format!(
                            "the bearer token holds {REDACTED:?} because secrets are not \
                             journaled; set it again with .bearer_token(...), or use \
                             .bearer_token_env(\"VAR\")"
                        ),
                    ))
                }
                (Some(t), _) => t.clone(),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    Error::invalid(
                        target,
                        format!(
                            "environment variable {var} (the bearer token) is not set or \
                             not UTF-8"
                        ),
                    )
                })?,
                (None, None) => return Ok(None),
            };
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
                    Error::invalid(
                        target,
                        "the bearer token has characters a header cannot hold (newlines, \
                         control characters)",
                    )
                })?;
            value.set_sensitive(true);
            Ok(Some(value))
        }

        /// `GET <base_url>/api/v1/<api>?query=<query>&<params>`, read as series.
        async fn get(
            &self,
            api: &str,
            query: &str,
            params: &[(&str, String)],
        ) -> Result<Vec<Series>> {
            let target = self.target();
            let mut url = self.endpoint(&target, api)?;
            url.query_pairs_mut()
                .append_pair("query", query)
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            let mut request = crate::net::client(&target)?
                .get(url)
                .timeout(self.timeout)
                .header(ACCEPT, "application/json");
            if let Some(auth) = self.authorization(&target)? {
                request = request.header(AUTHORIZATION, auth);
            }
            let mut response = request
                .send()
                .await
                .map_err(|e| self.transport_error(&target, query, e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.transport_error(&target, query, e))?
            {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Error::backend(
                        &target,
                        format!(
                            "the answer to query {query:?} is larger than {} MiB; narrow the \
                             query or raise the step",
                            MAX_BODY / (1024 * 1024)
                        ),
                        false,
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            if (200..300).contains(&status) {
                return parse_response(&target, query, &body);
            }
            let answer = serde_json::from_slice::<Envelope>(&body)
                .ok()
                .filter(|e| e.status == "error");
            let detail = match &answer {
                Some(e) => format!(
                    "{}: {}",
                    e.error_type.as_deref().unwrap_or("unknown"),
                    e.error.as_deref().unwrap_or("(no message)")
                ),
                None => excerpt(&body),
            };
            Err(match status {
                429 => Error::throttled(
                    target,
                    format!("HTTP 429 for query {query:?}: {detail}"),
                    retry_after,
                ),
                500..=599 => Error::backend(
                    target,
                    format!("HTTP {status} for query {query:?}: {detail}"),
                    true,
                ),
                401 | 403 => Error::backend(
                    target,
                    format!(
                        "HTTP {status} for query {query:?}: not allowed; check the bearer \
                         token ({detail})"
                    ),
                    false,
                ),
                404 => Error::invalid(
                    target,
                    format!(
                        "HTTP 404 for /api/v1/{api}: is {} a Prometheus server? The API is \
                         expected under <base_url>/api/v1/",
                        redact_url(&self.base_url)
                    ),
                ),
                _ => match &answer {
                    Some(e) => api_error(&target, query, Some(status), e),
                    None => Error::backend(
                        target,
                        format!("HTTP {status} for query {query:?}: {detail}"),
                        false,
                    ),
                },
            })
        }

        /// No (complete) answer: retryable.
        fn transport_error(&self, target: &str, query: &str, e: reqwest::Error) -> Error {
            // The URL may hold a password; the target and the query say enough.
            let e = e.without_url();
            let message = if e.is_timeout() {
                format!(
                    "no answer to query {query:?} within {}",
                    fmt_duration(self.timeout)
                )
            } else {
                format!(
                    "no answer to query {query:?}: {}",
                    crate::net::error_chain(&e)
                )
            };
            Error::Backend {
                target: target.to_string(),
                message,
                retryable: true,
                source: Some(Box::new(e.without_url())),
            }
        }
    }

    impl fmt::Debug for PrometheusSource {
        /// Shows the token (and a password in the URL) as [`REDACTED`].
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PrometheusSource")
                .field("base_url", &redact_url(&self.base_url))
                .field("timeout", &self.timeout)
                .field(
                    "bearer_token",
                    &self.bearer_token.as_ref().map(|_| REDACTED),
                )
                .field("bearer_token_env", &self.bearer_token_env)
                .finish()
        }
    }

    #[async_trait]
    impl MetricSource for PrometheusSource {
        /// Plain HTTP: no cloud permission.
        fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
            Some(Vec::new())
        }
        /// `prometheus/<base_url>`.
        fn name(&self) -> String {
            self.target()
        }

        async fn range(
            &self,
            query: &str,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            step: std::time::Duration,
        ) -> Result<Vec<Series>> {
            check_range(&self.target(), start, end, step)?;
            self.get(
                "query_range",
                query,
                &[
                    ("start", time_param(start)),
                    ("end", time_param(end)),
                    ("step", step.as_secs_f64().to_string()),
                ],
            )
            .await
        }

        async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Vec<Series>> {
            let params: Vec<(&str, String)> =
                at.map(|t| ("time", time_param(t))).into_iter().collect();
            self.get("query", query, &params).await
        }

        fn spec(&self) -> MetricSourceSpec {
            MetricSourceSpec::Prometheus(self.clone())
        }

        /// What a query would be refused for before it is sent: the base URL, a zero
        /// timeout, the bearer token (lost to the journal, its variable unset, characters
        /// a header cannot hold). PromQL itself is left to the server.
        fn validate_query(&self, query: &str) -> Result<()> {
            let target = self.target();
            if query.trim().is_empty() {
                return Err(Error::invalid(
                    target,
                    "the query is empty; give a PromQL expression such as \
                     sum(rate(http_requests_total[5m]))",
                ));
            }
            if self.timeout.is_zero() {
                return Err(Error::invalid(
                    target,
                    "the timeout is 0, so no answer can arrive in time; give it time, e.g. 30 s",
                ));
            }
            self.endpoint(&target, "query_range")?;
            self.authorization(&target).map(|_| ())
        }
    }

    /// `2025-11-30T14:25:00.000Z`.
    fn time_param(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Whether a URL password is the (percent-encoded) redaction placeholder.
    fn is_redacted(password: &str) -> bool {
        password == REDACTED || password.eq_ignore_ascii_case("%3Credacted%3E")
    }

    fn redact_url(url: &str) -> String {
        crate::redact::url(url)
    }

    fn serialize_url<S: Serializer>(url: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&redact_url(url))
    }

    fn serialize_token<S: Serializer>(
        _token: &Option<String>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const SRC: &str = "prometheus/http://prom";

    #[cfg(feature = "http")]
    #[test]
    fn validate_query_refuses_what_cannot_be_sent() {
        use crate::metrics::MetricSource;
        use crate::revision::REDACTED;
        use std::time::Duration;
        let ok = || PrometheusSource::new("http://prom:9090");
        assert!(ok().validate_query("up").is_ok());
        let cases = [
            (ok(), "", "query is empty"),
            (PrometheusSource::new("prom:9090"), "up", "not usable"),
            (PrometheusSource::new("ftp://prom"), "up", "not usable"),
            (ok().timeout(Duration::ZERO), "up", "timeout is 0"),
            (ok().bearer_token(REDACTED), "up", "not journaled"),
            (ok().bearer_token("a\nb"), "up", "cannot hold"),
            (
                ok().bearer_token_env("ROLLBACK_TEST_UNSET_PROM_TOKEN_VAR"),
                "up",
                "is not set",
            ),
        ];
        for (src, query, want) in cases {
            let err = src.validate_query(query).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{src:?}");
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn vector_with_name_and_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"api"},"value":[1764513000.5,"1"]},
            {"metric":{"job":"a"},"value":[1764513000,"NaN"]},
            {"metric":{"job":"b"},"value":[1764513000,"+Inf"]},
            {"metric":{"job":"c"},"value":[1764513000,"-Inf"]},
            {"metric":{"job":"d"},"value":[1764513000,"1e-3"]}]}}"#;
        let s = parse_response(SRC, "up", body).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].name, "up");
        assert_eq!(s[0].labels.get("job").unwrap(), "api");
        assert!(!s[0].labels.contains_key("__name__"));
        assert_eq!(s[0].samples[0].at.timestamp_millis(), 1_764_513_000_500);
        assert!(s[1].samples[0].value.is_nan());
        assert_eq!(s[2].samples[0].value, f64::INFINITY);
        assert_eq!(s[3].samples[0].value, f64::NEG_INFINITY);
        assert_eq!(s[4].samples[0].value, 0.001);
        assert_eq!(s[1].name, "");
    }

    #[test]
    fn matrix_scalar_and_empty() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"service":"api"},"values":[[1764512970,"0.01"],[1764513000,"0.02"]]}]}}"#;
        let s = parse_response(SRC, "q", body).unwrap();
        assert_eq!(s[0].samples.len(), 2);
        assert_eq!(s[0].samples[1].value, 0.02);
        let body =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1764513000,"42"]}}"#;
        let s = parse_response(SRC, "scalar(1)", body).unwrap();
        assert_eq!((s.len(), s[0].samples[0].value), (1, 42.0));
        let body =
            br#"{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":["w"]}"#;
        assert!(parse_response(SRC, "q", body).unwrap().is_empty());
    }

    #[test]
    fn errors_by_kind() {
        let bad = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#;
        let e = parse_response(SRC, "sum(", bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let text = e.to_string();
        assert!(
            text.starts_with(SRC) && text.contains(r#""sum(""#),
            "{text}"
        );
        assert!(text.contains("parse error"), "{text}");

        let busy = br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#;
        assert!(parse_response(SRC, "q", busy).unwrap_err().is_retryable());

        let html = b"<html>login</html>";
        let e = parse_response(SRC, "q", html).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(!e.is_retryable());
        // Quoted as the HTTP check quotes a body: tags dropped, secret-free (redact::body_excerpt).
        assert!(e.to_string().ends_with(": login"), "{e}");

        let string = br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        assert_eq!(
            parse_response(SRC, "q", string).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let garbage = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1764513000,"lots"]}]}}"#;
        let e = parse_response(SRC, "q", garbage).unwrap_err();
        assert!(e.to_string().contains("\"lots\", not a number"), "{e}");
    }
}
