//! [`HttpCheck`]: an HTTP health check (`curl -s https://api/health | jq .status`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::redacted::{redacted_placeholders, serialize_redacted};
use super::{CheckOutcome, Verifier, VerifierSpec};
use crate::error::{Error, Result};
use crate::redact;
use crate::revision::{is_secret_key, REDACTED};

/// The target named in errors about an HTTP check.
const TARGET: &str = "http-check";
/// At most this many bytes of a body are read.
const MAX_BODY: usize = 1024 * 1024;

fn default_method() -> String {
    "GET".to_string()
}

fn default_status() -> u16 {
    200
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// An HTTP request that passes when the answer looks healthy.
///
/// By default a `GET` that must answer `200` within 10 s. Optionally the body must contain
/// a substring, a JSON value must be found (and equal a given value) at an
/// [RFC 6901](https://www.rfc-editor.org/rfc/rfc6901) pointer, and the answer must come
/// within a maximum latency.
///
/// ```
/// use std::time::Duration;
/// use rollback_core::verify::HttpCheck;
///
/// let health = HttpCheck::new("https://api.internal/health")
///     .json_value("/status", "ok")
///     .max_latency(Duration::from_millis(500))
///     .header("Authorization", "Bearer s3cr3t");
/// ```
///
/// A service that does not answer (connection refused, timeout, TLS failure) is a failed
/// check with the error as evidence, not an `Err`. Each check opens a fresh connection.
///
/// # Secrets
///
/// Header values of secret-looking names (`Authorization`, `Cookie`, `X-Api-Key`...; see
/// [`is_secret_key`]) are shown as [`REDACTED`] in `Debug` and written as [`REDACTED`]
/// when the check is serialized into a journal or a [`VerifierSpec`]; other headers are
/// written as they are. A check rebuilt from such data refuses to run
/// ([`Error::InvalidInput`]) until the secret header is set again.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    /// The absolute `http://` or `https://` URL.
    pub url: String,
    /// The request method (`GET` by default).
    #[serde(default = "default_method")]
    pub method: String,
    /// The status the answer must have (200 by default).
    #[serde(default = "default_status")]
    pub status: u16,
    /// A substring the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// An RFC 6901 pointer (`/status`, `/checks/0/ok`) at which the JSON body must hold a
    /// value; with [`HttpCheck::json_value`] unset, any value passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_pointer: Option<String>,
    /// The value that must be found at [`HttpCheck::json_pointer`] (at the document root
    /// when there is no pointer). `null` is a value to expect, not "unset".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub json_value: Option<Value>,
    /// The longest the whole answer (headers and body) may take.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub max_latency: Option<Duration>,
    /// How long to wait for the answer before failing (10 s by default).
    #[serde(default = "default_timeout", with = "crate::serde_duration")]
    pub timeout: Duration,
    /// Request headers.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "serialize_headers"
    )]
    pub headers: BTreeMap<String, String>,
}

impl HttpCheck {
    /// A `GET url` that must answer 200 within 10 s.
    pub fn new(url: impl Into<String>) -> Self {
        HttpCheck {
            url: url.into(),
            method: default_method(),
            status: default_status(),
            body_contains: None,
            json_pointer: None,
            json_value: None,
            max_latency: None,
            timeout: default_timeout(),
            headers: BTreeMap::new(),
        }
    }

    /// Sets the request method (`GET`, `HEAD`, `POST`...).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Sets the status the answer must have.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Requires the body to contain `text`.
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(text.into());
        self
    }

    /// Requires the JSON body to hold some value at `pointer` (RFC 6901, e.g. `/status`).
    pub fn json_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.json_pointer = Some(pointer.into());
        self
    }

    /// Requires the JSON body to hold `value` at `pointer` (RFC 6901, e.g. `/status`).
    pub fn json_value(mut self, pointer: impl Into<String>, value: impl Into<Value>) -> Self {
        self.json_pointer = Some(pointer.into());
        self.json_value = Some(value.into());
        self
    }

    /// Sets the longest the answer may take.
    pub fn max_latency(mut self, max: Duration) -> Self {
        self.max_latency = Some(max);
        self
    }

    /// Sets how long to wait for the answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Turns the data into a request, or says what to fix.
    fn prepare(&self) -> Result<(reqwest::Method, reqwest::Url, HeaderMap)> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| e.to_string())
            .and_then(|url| match url.scheme() {
                // The URL standard reads `http:///health` as host `health`; a person wrote
                // no host there.
                "http" | "https" if no_authority(&self.url) => {
                    Err("it has no host between // and the path".to_string())
                }
                "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
                "http" | "https" => Err("it has no host".to_string()),
                other => Err(format!("scheme {other:?} is not supported")),
            })
            .map_err(|why| {
                Error::invalid(
                    TARGET,
                    format!(
                        "{:?} is not a valid URL ({why}); give an absolute http:// or https:// \
                         URL such as http://127.0.0.1:8080/health",
                        self.url
                    ),
                )
            })?;
        let method = reqwest::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                Error::invalid(
                    TARGET,
                    format!(
                        "{:?} is not an HTTP method; use GET, HEAD, POST...",
                        self.method
                    ),
                )
            })?;
        if !(100..=599).contains(&self.status) {
            return Err(Error::invalid(
                TARGET,
                format!(
                    "expected status {} is not an HTTP status, so the check can never pass; \
                     give one from 100 to 599, e.g. 200",
                    self.status
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid(
                TARGET,
                "the timeout is 0, so no answer can arrive in time; give it time, e.g. 10 s",
            ));
        }
        if self.max_latency.is_some_and(|m| m.is_zero()) {
            return Err(Error::invalid(
                TARGET,
                "max_latency is 0, so every answer is too slow; give the longest acceptable \
                 latency, e.g. 500 ms",
            ));
        }
        if let Some(p) = &self.json_pointer {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(Error::invalid(
                    TARGET,
                    format!(
                        "json pointer {p:?} must be empty or start with '/' (RFC 6901), \
                         e.g. \"/{p}\""
                    ),
                ));
            }
        }
        if let Some(name) = redacted_placeholders(&self.headers, is_secret_header).next() {
            return Err(Error::invalid(
                TARGET,
                format!(
                    "{}: header {name} holds {REDACTED:?} because secrets are not journaled; \
                     set it again with .header({name:?}, ...) before running the check",
                    self.name()
                ),
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::invalid(
                    TARGET,
                    format!(
                        "{name:?} is not a valid header name; use letters, digits and '-', \
                         e.g. X-Api-Key"
                    ),
                )
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                Error::invalid(
                    TARGET,
                    format!("the value of header {name} has characters a header cannot hold (newlines, control characters); remove them"),
                )
            })?;
            value.set_sensitive(is_secret_header(name));
            headers.insert(header, value);
        }
        Ok((method, url, headers))
    }

    /// What the answer lacks, or notes on what matched.
    fn judge(&self, status: u16, elapsed: Duration, body: &[u8], cut: bool) -> Judgement {
        let mut j = Judgement::default();
        // A body that echoes the request (a debug endpoint) would quote our own secrets.
        let secrets: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| is_secret_header(k))
            .map(|(_, v)| v.as_str())
            .collect();
        let show = |t: &str| redact::body_excerpt(&redact::scrub(t, &secrets));
        let text = String::from_utf8_lossy(body);
        let body_note = || {
            let mut s = format!("body: {}", show(&text));
            if cut {
                s.push_str(" (only the first 1 MiB was read)");
            }
            s
        };
        if let Some(max) = self.max_latency {
            if elapsed > max {
                j.problems.push(format!(
                    "latency {} over the maximum {}",
                    ms(elapsed),
                    ms(max)
                ));
            }
        }
        if status != self.status {
            j.problems.push(format!("expected status {}", self.status));
            j.problems.push(body_note());
            return j;
        }
        if let Some(needle) = &self.body_contains {
            if !text.contains(needle.as_str()) {
                j.problems
                    .push(format!("body does not contain {needle:?}; {}", body_note()));
            }
        }
        if self.json_pointer.is_none() && self.json_value.is_none() {
            return j;
        }
        let pointer = self.json_pointer.as_deref().unwrap_or("");
        let at = if pointer.is_empty() {
            "the document root".to_string()
        } else {
            pointer.to_string()
        };
        match serde_json::from_slice::<Value>(body) {
            Err(e) => j
                .problems
                .push(format!("body is not JSON ({e}); {}", body_note())),
            Ok(doc) => match (doc.pointer(pointer), &self.json_value) {
                (None, _) => j
                    .problems
                    .push(format!("no JSON value at {at}; {}", body_note())),
                (Some(found), Some(want)) if found != want => j.problems.push(format!(
                    "at {at} expected {}, found {}",
                    show(&want.to_string()),
                    show(&found.to_string())
                )),
                (Some(found), _) => j.notes.push(format!("{at} = {}", show(&found.to_string()))),
            },
        }
        j
    }
}

/// What [`HttpCheck::judge`] found.
#[derive(Default)]
struct Judgement {
    problems: Vec<String>,
    notes: Vec<String>,
}

impl fmt::Debug for HttpCheck {
    /// Shows secret-looking header values as [`REDACTED`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_header(k) { REDACTED } else { v };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("HttpCheck")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("status", &self.status)
            .field("body_contains", &self.body_contains)
            .field("json_pointer", &self.json_pointer)
            .field("json_value", &self.json_value)
            .field("max_latency", &self.max_latency)
            .field("timeout", &self.timeout)
            .field("headers", &headers)
            .finish()
    }
}

/// Whether `url` has nothing between `scheme://` and the path (`http:///health`,
/// `https://`), which the URL standard would otherwise read as a host taken from the path.
fn no_authority(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(_, rest)| rest.is_empty() || rest.starts_with(['/', '?', '#']))
}

#[async_trait]
impl Verifier for HttpCheck {
    /// A plain HTTP request: no cloud permission.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        Some(Vec::new())
    }
    /// `GET <url>`, with the check's method.
    fn name(&self) -> String {
        format!(
            "{} {}",
            self.method.to_ascii_uppercase(),
            crate::redact::url(&self.url)
        )
    }

    /// Makes the request once. `Err` only for input that cannot run (a bad URL, method or
    /// header); a service that is down, slow or unhealthy is a failed check with evidence.
    async fn check(&self) -> Result<CheckOutcome> {
        let (method, url, headers) = self.prepare()?;
        let name = self.name();
        let started = Instant::now();
        let sent = crate::net::client(TARGET)?
            .request(method, url)
            .headers(headers)
            .timeout(self.timeout)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return Ok(CheckOutcome::fail(self.no_answer(&name, started, &e))),
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut cut = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() >= room {
                        cut = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let why = self.no_answer(&name, started, &e);
                    return Ok(CheckOutcome::fail(format!(
                        "{why} (status {status} arrived, the body did not)"
                    )));
                }
            }
        }
        let elapsed = started.elapsed();

        let head = format!("{name} -> {status} in {}", ms(elapsed));
        let j = self.judge(status, elapsed, &body, cut);
        Ok(if j.problems.is_empty() {
            CheckOutcome::pass(
                std::iter::once(head)
                    .chain(j.notes)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        } else {
            CheckOutcome::fail(format!("{head}; {}", j.problems.join("; ")))
        })
    }

    fn spec(&self) -> VerifierSpec {
        VerifierSpec::Http(self.clone())
    }

    /// What [`HttpCheck::check`] would refuse: the URL (absolute http/https with a host),
    /// the method, the expected status (100 to 599), a zero timeout or maximum latency,
    /// the JSON pointer (empty or starting with `/`), header names and values, and secret
    /// headers lost to the journal. Sends nothing.
    fn validate(&self) -> Result<()> {
        self.prepare().map(|_| ())
    }
}

impl HttpCheck {
    /// Evidence for a request that got no (complete) answer.
    fn no_answer(&self, name: &str, started: Instant, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("{name} -> timed out: no answer within {}", ms(self.timeout))
        } else {
            format!(
                "{name} -> no answer after {}: {}",
                ms(started.elapsed()),
                crate::net::error_chain(e)
            )
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Whether a header's value must not be shown or journaled.
fn is_secret_header(name: &str) -> bool {
    is_secret_key(name) || name.to_ascii_lowercase().contains("cookie")
}

fn serialize_headers<S: Serializer>(
    headers: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    serialize_redacted(headers, is_secret_header, s)
}

/// A present field is `Some`, even when it is `null`.
fn present_value<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `Option<Duration>` as whole milliseconds.
mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// What the test server answers to every request.
    #[derive(Clone)]
    struct Reply {
        status: u16,
        body: String,
        delay: Duration,
    }

    impl Reply {
        fn new(status: u16, body: &str) -> Self {
            Reply {
                status,
                body: body.to_string(),
                delay: Duration::ZERO,
            }
        }

        fn delayed(mut self, delay: Duration) -> Self {
            self.delay = delay;
            self
        }
    }

    /// Serves `reply` on 127.0.0.1; returns the base URL and the heads of the requests seen.
    async fn serve(reply: Reply) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (seen, heads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let reply = reply.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = seen.send(String::from_utf8_lossy(&head).into_owned());
                    // The server is slow on purpose: this is what is being measured.
                    tokio::time::sleep(reply.delay).await;
                    let answer = format!(
                        "HTTP/1.1 {} Scripted\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{}",
                        reply.status,
                        reply.body.len(),
                        reply.body
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        (base, heads)
    }

    #[tokio::test]
    async fn passes_on_200() {
        let (base, _) = serve(Reply::new(200, "ok")).await;
        let url = format!("{base}/health");
        let out = HttpCheck::new(&url).check().await.unwrap();
        assert!(out.passed, "{out:?}");
        assert!(
            out.evidence.starts_with(&format!("GET {url} -> 200 in ")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn fails_on_503_with_status_and_body() {
        let (base, _) = serve(Reply::new(503, "upstream down")).await;
        let out = HttpCheck::new(format!("{base}/health"))
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("-> 503"), "{out:?}");
        assert!(out.evidence.contains("expected status 200"), "{out:?}");
        assert!(out.evidence.contains("upstream down"), "{out:?}");
    }

    #[tokio::test]
    async fn expected_status_can_be_changed() {
        let (base, _) = serve(Reply::new(204, "")).await;
        let out = HttpCheck::new(&base).status(204).check().await.unwrap();
        assert!(out.passed, "{out:?}");
    }

    #[tokio::test]
    async fn body_substring_pass_and_fail() {
        let long = format!("{{\"version\":\"v2\",\"pad\":\"{}\"}}", "x".repeat(1000));
        let (base, _) = serve(Reply::new(200, &long)).await;
        let out = HttpCheck::new(&base)
            .body_contains("\"version\":\"v2\"")
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");

        let out = HttpCheck::new(&base)
            .body_contains("v3")
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("does not contain \"v3\""), "{out:?}");
        assert!(
            out.evidence.contains("{ \"version\": \"v2\", \"pad\""),
            "{out:?}"
        );
        assert!(out.evidence.len() < 400, "body excerpt too long: {out:?}");
    }

    #[tokio::test]
    async fn json_pointer_pass_mismatch_and_missing() {
        let (base, _) = serve(Reply::new(
            200,
            r#"{"status":"degraded","checks":[{"ok":true}]}"#,
        ))
        .await;

        let out = HttpCheck::new(&base)
            .json_value("/checks/0/ok", true)
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
        assert!(out.evidence.contains("/checks/0/ok = true"), "{out:?}");

        let out = HttpCheck::new(&base)
            .json_value("/status", "ok")
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(
            out.evidence
                .contains(r#"at /status expected "ok", found "degraded""#),
            "{out:?}"
        );

        let out = HttpCheck::new(&base)
            .json_pointer("/version")
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(
            out.evidence.contains("no JSON value at /version"),
            "{out:?}"
        );

        let out = HttpCheck::new(&base)
            .json_pointer("/status")
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
    }

    #[tokio::test]
    async fn body_that_is_not_json_fails_a_json_check() {
        let (base, _) = serve(Reply::new(200, "<html>ok</html>")).await;
        let out = HttpCheck::new(&base)
            .json_value("/status", "ok")
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("body is not JSON"), "{out:?}");
        // The excerpt is the page's text, without its tags.
        assert!(out.evidence.ends_with("body: ok"), "{out:?}");
    }

    #[tokio::test]
    async fn latency_over_the_maximum_fails() {
        let (base, _) = serve(Reply::new(200, "ok").delayed(Duration::from_millis(300))).await;
        let out = HttpCheck::new(&base)
            .max_latency(Duration::from_millis(50))
            .check()
            .await
            .unwrap();
        assert!(!out.passed, "{out:?}");
        assert!(out.evidence.contains("over the maximum 50ms"), "{out:?}");
    }

    #[tokio::test]
    async fn no_answer_within_the_timeout_fails() {
        let (base, _) = serve(Reply::new(200, "ok").delayed(Duration::from_secs(30))).await;
        let started = Instant::now();
        let out = HttpCheck::new(&base)
            .timeout(Duration::from_millis(200))
            .check()
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!out.passed);
        assert!(out.evidence.contains("timed out"), "{out:?}");
        assert!(out.evidence.contains("200ms"), "{out:?}");
    }

    #[tokio::test]
    async fn connection_refused_fails_with_the_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = format!("http://{addr}/health");
        let out = HttpCheck::new(&url).check().await.unwrap();
        assert!(!out.passed);
        assert!(
            out.evidence.starts_with(&format!("GET {url} -> no answer")),
            "{out:?}"
        );
        assert!(out.evidence.to_lowercase().contains("refused"), "{out:?}");
    }

    #[tokio::test]
    async fn invalid_input_is_an_error() {
        for url in [
            "not a url",
            "ftp://host/health",
            "/health",
            "http:///health",
            "https://",
        ] {
            let err = HttpCheck::new(url).check().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}");
            assert!(err.to_string().contains(url), "{err}");
            assert!(err.to_string().contains("http://"), "{err}");
        }
        let err = HttpCheck::new("http://127.0.0.1:1/")
            .method("GE T")
            .check()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = HttpCheck::new("http://127.0.0.1:1/")
            .json_pointer("status")
            .check()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"/status\""), "{err}");
    }

    #[tokio::test]
    async fn evidence_quotes_a_body_without_its_secrets() {
        // A debug endpoint echoing the request, and a body carrying its own credentials.
        let body = r#"{"status":"down","echo":{"authorization":"Bearer s3cr3t-t0ken"},"db":"password=hunter2-hunter2 at db:5432","session":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}"#;
        let (base, _) = serve(Reply::new(503, body)).await;
        let check = HttpCheck::new(&base).header("Authorization", "Bearer s3cr3t-t0ken");
        let out = check.check().await.unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("down"), "{out:?}");
        for secret in ["s3cr3t-t0ken", "hunter2-hunter2", "eyJhbGciOiJIUzI1NiJ9"] {
            assert!(!out.evidence.contains(secret), "{secret} in {out:?}");
        }

        let (base, _) = serve(Reply::new(200, body)).await;
        let out = HttpCheck::new(&base)
            .header("Authorization", "Bearer s3cr3t-t0ken")
            .json_value("/echo", "x")
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("at /echo expected"), "{out:?}");
        assert!(!out.evidence.contains("s3cr3t-t0ken"), "{out:?}");
    }

    #[test]
    fn validate_refuses_what_check_would_refuse_and_what_can_never_pass() {
        let ok = || HttpCheck::new("http://127.0.0.1:1/health");
        assert!(ok().validate().is_ok());
        let cases: Vec<(HttpCheck, &str)> = vec![
            (HttpCheck::new("http://"), "not a valid URL"),
            (HttpCheck::new("/health"), "not a valid URL"),
            (HttpCheck::new("file:///etc/passwd"), "scheme \"file\""),
            (HttpCheck::new("unix:/run/api.sock"), "scheme \"unix\""),
            (ok().method("GE T"), "not an HTTP method"),
            (ok().status(0), "not an HTTP status"),
            (ok().status(700), "not an HTTP status"),
            (ok().json_pointer("status"), "\"/status\""),
            (ok().header("Bad Name", "x"), "not a valid header name"),
            (ok().header("X-Env", "a\nb"), "cannot hold"),
            (ok().timeout(Duration::ZERO), "timeout is 0"),
            (ok().max_latency(Duration::ZERO), "max_latency is 0"),
        ];
        for (check, want) in cases {
            let err = check.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{check:?}");
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
    }

    #[tokio::test]
    async fn method_and_headers_are_sent() {
        let (base, mut heads) = serve(Reply::new(200, "ok")).await;
        let check = HttpCheck::new(format!("{base}/ready"))
            .method("head")
            .header("Authorization", "Bearer s3cr3t")
            .header("X-Env", "prod");
        assert_eq!(check.name(), format!("HEAD {base}/ready"));
        let out = check.check().await.unwrap();
        assert!(out.passed, "{out:?}");
        assert!(!out.evidence.contains("s3cr3t"));
        let head = heads.recv().await.unwrap().to_lowercase();
        assert!(head.starts_with("head /ready http/1.1"), "{head}");
        assert!(head.contains("authorization: bearer s3cr3t"), "{head}");
        assert!(head.contains("x-env: prod"), "{head}");
    }

    #[tokio::test]
    async fn secret_headers_are_redacted_in_debug_and_serde() {
        let check = HttpCheck::new("http://127.0.0.1:1/health")
            .header("Authorization", "Bearer s3cr3t")
            .header("Cookie", "session=abc123")
            .header("X-Env", "prod");
        let debug = format!("{check:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("abc123"),
            "{debug}"
        );
        assert!(
            debug.contains("Authorization") && debug.contains("prod"),
            "{debug}"
        );

        let json = serde_json::to_string(&check.spec()).unwrap();
        assert!(
            !json.contains("s3cr3t") && !json.contains("abc123"),
            "{json}"
        );
        assert!(json.contains(r#""Authorization":"<redacted>""#), "{json}");
        assert!(json.contains(r#""X-Env":"prod""#), "{json}");

        let back: VerifierSpec = serde_json::from_str(&json).unwrap();
        let err = back.build().unwrap().check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("Authorization"), "{err}");
    }

    #[test]
    fn serde_round_trip_and_defaults() {
        let check = HttpCheck::new("https://api.internal/health")
            .method("POST")
            .status(202)
            .body_contains("ok")
            .json_value("/db", Value::Null)
            .max_latency(Duration::from_millis(250))
            .timeout(Duration::from_secs(3))
            .header("X-Env", "prod");
        let json = serde_json::to_value(check.spec()).unwrap();
        assert_eq!(json["type"], "http");
        assert_eq!(json["max_latency"], 250);
        assert_eq!(json["timeout"], 3000);
        let back: VerifierSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, VerifierSpec::Http(check));

        let minimal: HttpCheck = serde_json::from_str(r#"{"url":"http://a/health"}"#).unwrap();
        assert_eq!(minimal, HttpCheck::new("http://a/health"));
        assert_eq!(minimal.timeout, Duration::from_secs(10));
        let json = serde_json::to_string(&minimal).unwrap();
        assert!(
            !json.contains("headers") && !json.contains("json"),
            "{json}"
        );
    }
}
