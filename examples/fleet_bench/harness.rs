//! The fleet benchmark's harness: where the calls go, and how the fleet is seeded and the
//! calls counted (our emulator through its control API, or any other AWS-compatible endpoint,
//! a plain moto server or LocalStack, through the SDK, counted by a small proxy in front of
//! it); the `aws` CLI runner; readings from /proc; the table's layout.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_ecs::types::ContainerDefinition;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, LastUpdateStatus, Runtime, State};
use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

use super::{sdk_error, Res, CLUSTER};

/// The resources of one seeding: service `i` runs task-definition family `family(i)`.
pub struct Fleet {
    pub n: usize,
    pub prefix: String,
}

impl Fleet {
    pub fn service(&self, i: usize) -> String {
        format!("{}svc-{i:04}", self.prefix)
    }
    pub fn family(&self, i: usize) -> String {
        format!("{}fam-{i:04}", self.prefix)
    }
    pub fn function(&self, i: usize) -> String {
        format!("{}fn-{i:04}", self.prefix)
    }
}

/// Credentials and region, for the SDK clients and the `aws` processes alike.
#[derive(Clone)]
pub struct Creds {
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
    pub region: String,
}

impl Creds {
    /// What the benchmark gives the emulator it starts itself.
    fn testing() -> Creds {
        Creds {
            key: "testing".into(),
            secret: "testing".into(),
            token: None,
            region: "us-east-1".into(),
        }
    }

    /// From the standard AWS environment variables, defaulting to [`Creds::testing`]'s.
    fn from_env() -> Creds {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let t = Creds::testing();
        Creds {
            key: var("AWS_ACCESS_KEY_ID").unwrap_or(t.key),
            secret: var("AWS_SECRET_ACCESS_KEY").unwrap_or(t.secret),
            token: var("AWS_SESSION_TOKEN"),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or(t.region),
        }
    }
}

/// Where the calls go and how they are seeded and counted.
enum Counter {
    /// Our emulator (started here, or attached): its control API seeds and counts.
    Emulator(AwsEmulator),
    /// Any other endpoint: seeded through the SDK, counted by the proxy in front of it.
    Proxy(Proxy),
}

/// The endpoint the benchmark runs against, with its seeding and counting.
pub struct Backend {
    counter: Counter,
    /// What the clients talk to (the proxy's URL for a plain endpoint).
    pub endpoint: String,
    /// What another process passes as `--endpoint` to use the same one.
    pub attach: String,
    pub creds: Creds,
    pub sdk: SdkConfig,
    pub description: String,
    seedings: AtomicUsize,
    convergence_ms: u64,
}

/// An SDK configuration for `endpoint`: those credentials and region, the SDK's retries off.
pub async fn sdk_config(endpoint: &str, c: &Creds) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .region(Region::new(c.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            &c.key,
            &c.secret,
            c.token.clone(),
            None,
            "fleet_bench",
        ))
        .load()
        .await
}

impl Backend {
    /// Our emulator, started here (`endpoint` None) or attached; or, when `endpoint` has no
    /// control API (or `plain`), that endpoint behind a counting proxy.
    pub async fn open(endpoint: Option<&str>, plain: bool, convergence_ms: u64) -> Res<Backend> {
        let attached = match endpoint {
            Some(url) if !plain => Some(AwsEmulator::connect(url).await),
            _ => None,
        };
        let (counter, creds, description) = match endpoint {
            None => {
                let emu = AwsEmulator::start().await?;
                let moto = moto_version(&emu).await;
                let d = format!("our emulator (moto {moto} + the project's patches), started by the benchmark at {}", emu.endpoint());
                (Counter::Emulator(emu), Creds::testing(), d)
            }
            Some(url) => match attached {
                Some(Ok(emu)) => {
                    let moto = moto_version(&emu).await;
                    let d = format!("our emulator (moto {moto}) at {url}, not started by the benchmark; seeded and counted through its control API");
                    (Counter::Emulator(emu), Creds::from_env(), d)
                }
                other => {
                    if let Some(Err(e)) = other {
                        let e = e.to_string();
                        let e = e.lines().next().unwrap_or_default();
                        eprintln!("{url} has no emulator control API ({e}); seeding through the SDK, counting with a proxy");
                    }
                    let proxy = Proxy::start(url).await?;
                    let d = format!("{url} (not our emulator: seeded through the SDK, counted by a proxy at {}; ECS convergence is the endpoint's own)", proxy.url());
                    (Counter::Proxy(proxy), Creds::from_env(), d)
                }
            },
        };
        let (endpoint, attach) = match &counter {
            Counter::Emulator(emu) => (emu.endpoint().to_string(), emu.endpoint().to_string()),
            Counter::Proxy(p) => (p.url().to_string(), p.upstream.clone()),
        };
        let sdk = sdk_config(&endpoint, &creds).await;
        Ok(Backend {
            counter,
            endpoint,
            attach,
            creds,
            sdk,
            description,
            seedings: AtomicUsize::new(0),
            convergence_ms,
        })
    }

    /// A fresh fleet of `n` services and `n` aliases, each at its second revision; then the
    /// call counts are reset.
    pub async fn seed(&self, n: usize) -> Res<Fleet> {
        let seeding = self.seedings.fetch_add(1, Ordering::Relaxed);
        match &self.counter {
            Counter::Emulator(emu) => {
                let fleet = Fleet {
                    n,
                    prefix: String::new(),
                };
                emu.control("POST", "reset", None).await?;
                emu.set_ecs_convergence(Duration::from_millis(self.convergence_ms))
                    .await?;
                let ecs: Vec<Value> = (0..n)
                    .map(|i| {
                        let s = fleet.service(i);
                        json!({"cluster": CLUSTER, "service": s, "family": fleet.family(i), "desired_count": 2,
                               "revisions": [{"image": format!("repo/{s}:good")}, {"image": format!("repo/{s}:bad")}],
                               "current": 2})
                    })
                    .collect();
                let lambda: Vec<Value> = (0..n)
                    .map(|i| json!({"function": fleet.function(i), "alias": "live", "versions": ["good", "bad"], "alias_version": "2"}))
                    .collect();
                emu.seed(json!({"ecs": ecs, "lambda": lambda})).await?;
                emu.reset_calls().await?;
                Ok(fleet)
            }
            Counter::Proxy(proxy) => {
                let fleet = Fleet {
                    n,
                    prefix: format!("b{}g{seeding}-", std::process::id()),
                };
                let services: Vec<_> = (0..n)
                    .map(|i| (fleet.service(i), fleet.family(i)))
                    .collect();
                let functions: Vec<_> = (0..n).map(|i| fleet.function(i)).collect();
                seed(
                    &self.sdk,
                    proxy,
                    &self.creds.region,
                    CLUSTER,
                    &services,
                    &functions,
                )
                .await?;
                proxy.reset();
                Ok(fleet)
            }
        }
    }

    /// Why a wait may never end here.
    pub fn stall_hint(&self) -> &'static str {
        match self.counter {
            Counter::Emulator(_) => "",
            Counter::Proxy(_) => "; a plain moto server never moves ECS deployments (moto 5.2.1 leaves them IN_PROGRESS, runningCount 0, the old task definition: rollback-testkit/python/README.md, \"moto gaps\"), so no wait for stability ends there",
        }
    }

    /// Whether it is our emulator (whose ECS convergence the benchmark sets).
    pub fn emulator(&self) -> bool {
        matches!(self.counter, Counter::Emulator(_))
    }

    /// The calls by operation since the last seeding.
    pub async fn calls(&self) -> Res<BTreeMap<String, u64>> {
        match &self.counter {
            Counter::Emulator(emu) => {
                let calls = emu.calls().await?;
                let ops = calls["operations"]
                    .as_object()
                    .ok_or(format!("the emulator's calls have no operations: {calls}"))?;
                Ok(ops
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect())
            }
            Counter::Proxy(proxy) => Ok(proxy.counts()),
        }
    }
}

async fn moto_version(emu: &AwsEmulator) -> String {
    let status = emu.control("GET", "status", None).await.unwrap_or_default();
    status["moto_version"].as_str().unwrap_or("?").to_string()
}

// ---------------------------------------------------------------------------------------
// Plain endpoints.

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// An HTTP proxy on a loopback port that forwards every request to the endpoint and tallies
/// it by AWS operation: `X-Amz-Target` (ECS and the other JSON-protocol services), the
/// method and path for Lambda's REST API, `Action` for the query protocol (IAM).
pub struct Proxy {
    url: String,
    counts: Counts,
    http: reqwest::Client,
    upstream: String,
    /// The Lambda functions' IAM role, made on the first seeding.
    role: tokio::sync::OnceCell<String>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Res<Proxy> {
        let upstream = upstream.trim_end_matches('/').to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Counts::default();
        let http = reqwest::Client::builder().build()?;
        let (c, h, u) = (counts.clone(), http.clone(), upstream.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (c, h, u) = (c.clone(), h.clone(), u.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        forward(req, c.clone(), h.clone(), u.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(Proxy {
            url,
            counts,
            http,
            upstream,
            role: tokio::sync::OnceCell::new(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn reset(&self) {
        self.counts
            .lock()
            .map(|mut c| c.clear())
            .unwrap_or_default();
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

const HOP_BY_HOP: [HeaderName; 4] = [CONNECTION, TRANSFER_ENCODING, CONTENT_LENGTH, HOST];

async fn forward(
    req: Request<Incoming>,
    counts: Counts,
    http: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let answer = |status: StatusCode, text: String| {
        let mut r = Response::new(Full::new(Bytes::from(text)));
        *r.status_mut() = status;
        Ok(r)
    };
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!("fleet_bench proxy: reading the request: {e}"),
            )
        }
    };
    let op = operation(&parts.method, parts.uri.path(), &parts.headers, &body);
    if let Ok(mut c) = counts.lock() {
        *c.entry(op).or_default() += 1;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = http
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (k, v) in parts
        .headers
        .iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(k))
    {
        out = out.header(k, v);
    }
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            return answer(
                StatusCode::BAD_GATEWAY,
                format!("fleet_bench proxy: {upstream}: {e}"),
            )
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return answer(
                StatusCode::BAD_GATEWAY,
                format!("fleet_bench proxy: {upstream}: {e}"),
            )
        }
    };
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = status;
    for (k, v) in headers.iter().filter(|(k, _)| !HOP_BY_HOP.contains(k)) {
        r.headers_mut().append(k, v.clone());
    }
    Ok(r)
}

/// The AWS operation a request calls.
fn operation(method: &hyper::Method, path: &str, headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if let Some(rest) = path.strip_prefix("/2015-03-31/functions") {
        let p: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let op = match (method.as_str(), p.as_slice()) {
            ("POST", []) => "CreateFunction",
            ("GET", []) => "ListFunctions",
            ("GET", [_]) => "GetFunction",
            ("DELETE", [_]) => "DeleteFunction",
            ("GET", [_, "configuration"]) => "GetFunctionConfiguration",
            ("PUT", [_, "configuration"]) => "UpdateFunctionConfiguration",
            ("PUT", [_, "code"]) => "UpdateFunctionCode",
            ("GET", [_, "versions"]) => "ListVersionsByFunction",
            ("POST", [_, "versions"]) => "PublishVersion",
            ("GET", [_, "aliases"]) => "ListAliases",
            ("POST", [_, "aliases"]) => "CreateAlias",
            ("GET", [_, "aliases", _]) => "GetAlias",
            ("PUT", [_, "aliases", _]) => "UpdateAlias",
            ("DELETE", [_, "aliases", _]) => "DeleteAlias",
            _ => "",
        };
        if !op.is_empty() {
            return op.to_string();
        }
    }
    let form = String::from_utf8_lossy(body);
    if let Some(action) = form.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    format!("{method} {path}")
}

/// Seeds `services` ((service, family), in `cluster`) and `functions` (alias `live`) through
/// the SDK, each at its second revision: RegisterTaskDefinition x2 per family, CreateCluster,
/// CreateService; an IAM role (moto wants one), CreateFunction with a tiny zip,
/// PublishVersion, UpdateFunctionCode, PublishVersion, CreateAlias.
pub async fn seed(
    sdk: &SdkConfig,
    proxy: &Proxy,
    region: &str,
    cluster: &str,
    services: &[(String, String)],
    functions: &[String],
) -> Res<()> {
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let lambda = aws_sdk_lambda::Client::new(sdk);
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(sdk_error)?;
    stream::iter(services)
        .map(|(service, family)| {
            let ecs = &ecs;
            async move {
                for tag in ["good", "bad"] {
                    let container = ContainerDefinition::builder()
                        .name("app")
                        .image(format!("repo/{service}:{tag}"))
                        .memory(512)
                        .essential(true)
                        .build();
                    ecs.register_task_definition()
                        .family(family)
                        .container_definitions(container)
                        .send()
                        .await
                        .map_err(sdk_error)?;
                }
                ecs.create_service()
                    .cluster(cluster)
                    .service_name(service)
                    .task_definition(format!("{family}:2"))
                    .desired_count(2)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Res::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    let role = proxy
        .role
        .get_or_try_init(|| create_role(proxy, region))
        .await?;
    stream::iter(functions)
        .map(|function| {
            let lambda = &lambda;
            async move {
                lambda
                    .create_function()
                    .function_name(function)
                    .runtime(Runtime::Python312)
                    .role(role)
                    .handler("index.handler")
                    .code(
                        FunctionCode::builder()
                            .zip_file(Blob::new(handler_zip(1)))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for version in ["1", "2"] {
                    if version == "2" {
                        lambda
                            .update_function_code()
                            .function_name(function)
                            .zip_file(Blob::new(handler_zip(2)))
                            .send()
                            .await
                            .map_err(sdk_error)?;
                    }
                    wait_ready(lambda, function).await?;
                    let v = lambda
                        .publish_version()
                        .function_name(function)
                        .send()
                        .await
                        .map_err(sdk_error)?;
                    if v.version() != Some(version) {
                        return Err(format!(
                            "PublishVersion of {function} made version {:?}, not {version}",
                            v.version()
                        )
                        .into());
                    }
                }
                lambda
                    .create_alias()
                    .function_name(function)
                    .name("live")
                    .function_version("2")
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Res::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Waits until a function is Active and its last update finished (LocalStack takes a while).
async fn wait_ready(lambda: &aws_sdk_lambda::Client, function: &str) -> Res<()> {
    let start = Instant::now();
    loop {
        let c = lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(sdk_error)?;
        let busy = c.state() == Some(&State::Pending)
            || c.last_update_status() == Some(&LastUpdateStatus::InProgress);
        if c.state() == Some(&State::Failed)
            || c.last_update_status() == Some(&LastUpdateStatus::Failed)
        {
            return Err(format!("function {function} failed: {:?}", c.state_reason()).into());
        }
        if !busy {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("function {function} was not ready after 120 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Lambda functions' role, made with a raw IAM CreateRole (query
/// protocol; the workspace has no IAM SDK crate). Moto and LocalStack do not check
/// signatures, so the request carries only the credential scope they route by.
async fn create_role(proxy: &Proxy, region: &str) -> Res<String> {
    let name = format!("rollback-bench-{}", std::process::id());
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form = [
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", name.as_str()),
        ("AssumeRolePolicyDocument", policy),
    ];
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    let auth = format!("AWS4-HMAC-SHA256 Credential=testing/20240101/{region}/iam/aws4_request, SignedHeaders=host, Signature=0");
    let resp = proxy
        .http
        .post(format!("{}/", proxy.upstream))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", auth)
        .body(body.join("&"))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let arn = text
        .split("<Arn>")
        .nth(1)
        .and_then(|t| t.split("</Arn>").next());
    match arn {
        Some(arn) if status.is_success() => Ok(arn.to_string()),
        _ => Err(format!(
            "IAM CreateRole {name} (for the Lambda functions) failed: {status}: {text}"
        )
        .into()),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A zip archive (stored, no compression) of `index.py`, a handler returning `release`.
fn handler_zip(release: u32) -> Vec<u8> {
    let name = b"index.py";
    let data = format!("def handler(event, context):\n    return {{\"release\": {release}}}\n")
        .into_bytes();
    let crc = crc32(&data);
    let (size, name_len) = (data.len() as u32, name.len() as u16);
    let mut z = Vec::new();
    let common = |z: &mut Vec<u8>| {
        // version needed, flags, method (stored), time, date (1980-01-01), crc, sizes, name length
        for v in [20u16, 0, 0, 0, 0x21] {
            z.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            z.extend_from_slice(&v.to_le_bytes());
        }
        z.extend_from_slice(&name_len.to_le_bytes());
    };
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    common(&mut z);
    z.extend_from_slice(&0u16.to_le_bytes()); // extra length
    z.extend_from_slice(name);
    z.extend_from_slice(&data);
    let central = z.len() as u32;
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&20u16.to_le_bytes()); // version made by
    common(&mut z);
    for v in [0u16, 0, 0, 0] {
        // extra, comment, disk, internal attributes
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    z.extend_from_slice(name);
    let central_size = z.len() as u32 - central;
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&central_size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes()); // comment length
    z
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---------------------------------------------------------------------------------------
// The aws CLI, and /proc.

/// Runs `aws` processes one at a time, with a thread sampling the running one's peak RSS.
pub struct Cli {
    endpoint: String,
    creds: Creds,
    child: Arc<AtomicU32>,
    /// The largest peak RSS of an `aws` process since it was last set to 0 (kB).
    pub peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Cli {
    pub fn new(endpoint: &str, creds: &Creds) -> Cli {
        let cli = Cli {
            endpoint: endpoint.to_string(),
            creds: creds.clone(),
            child: Arc::default(),
            peak_kb: Arc::default(),
            stop: Arc::default(),
        };
        let (child, peak, stop) = (cli.child.clone(), cli.peak_kb.clone(), cli.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let pid = child.load(Ordering::Relaxed);
                if let Some(kb) = (pid != 0)
                    .then(|| proc_kb(&pid.to_string(), "VmHWM"))
                    .flatten()
                {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        cli
    }

    /// Runs `aws <args>` (split at whitespace); its standard output, trimmed.
    pub fn aws(&self, args: &str) -> Res<String> {
        let mut cmd = Command::new("aws");
        cmd.args(args.split_whitespace())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.creds.key)
            .env("AWS_SECRET_ACCESS_KEY", &self.creds.secret)
            .env("AWS_DEFAULT_REGION", &self.creds.region)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.creds.token {
            Some(t) => cmd.env("AWS_SESSION_TOKEN", t),
            None => cmd.env_remove("AWS_SESSION_TOKEN"),
        };
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run the aws CLI ({e}); {NO_CLI}"))?;
        self.child.store(child.id(), Ordering::Relaxed);
        let out = child.wait_with_output();
        self.child.store(0, Ordering::Relaxed);
        let out = out?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("aws {args} failed ({}): {}", out.status, stderr.trim()).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub const NO_CLI: &str = "`bash scripts/bench.sh` installs it into .venv; or pass --skip-cli";

/// A `kB` field (`VmHWM`, `VmRSS`) of /proc/<pid>/status.
pub fn proc_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Resets this process's VmHWM to its current RSS; false if the kernel refused.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The 1-minute load average.
pub fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_string()
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------------
// The table.

/// The methods compared.
#[derive(Clone, Copy, PartialEq)]
pub enum Method {
    Rollback,
    /// The library with its leases in a DynamoDB table on the same endpoint (`--shared-state`).
    RollbackShared,
    Sdk,
    Cli,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Rollback => "rollback",
            Method::RollbackShared => "rollback, DynamoDB locks",
            Method::Sdk => "hand-written SDK loop",
            Method::Cli => "runbook script",
        }
    }
}

/// One repetition of a method.
pub struct Rep {
    /// Which repetition (from 1): the methods' repetitions of one number ran back to back.
    pub number: usize,
    pub wall: Duration,
    pub calls: BTreeMap<String, u64>,
    pub peak_kb: u64,
}

/// A row of the table: a method at one N.
pub struct Row {
    pub method: Method,
    pub n: usize,
    /// Sorted by wall time once measured.
    pub reps: Vec<Rep>,
    /// The largest `aws` process (runbook script only).
    pub child_kb: Option<u64>,
}

impl Row {
    fn median(&self) -> f64 {
        let (v, m) = (&self.reps, self.reps.len() / 2);
        match v.len() % 2 {
            1 => v[m].wall.as_secs_f64(),
            _ => (v[m - 1].wall + v[m].wall).as_secs_f64() / 2.0,
        }
    }
}

/// `count / targets`, to 3 decimals at most and 1 at least.
fn per(count: u64, targets: usize) -> String {
    let s = format!("{:.3}", count as f64 / targets as f64);
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_string()
    }
}

pub fn print_table(rows: &[Row]) {
    let head = (
        "method",
        "N",
        "wall",
        "min - max",
        "vs rollback",
        "calls/target",
        "peak RSS",
    );
    println!(
        "\n{:<22} {:>5} {:>9} {:>17} {:>11} {:>16}  {}",
        head.0, head.1, head.2, head.3, head.4, head.5, head.6
    );
    for row in rows {
        let targets = 2 * row.n;
        let (min, max) = (row.reps[0].wall, row.reps[row.reps.len() - 1].wall);
        let base = rows
            .iter()
            .find(|r| r.n == row.n && r.method == Method::Rollback);
        let ratio = base.map_or("-".into(), |b| {
            format!("{:.2}x", row.median() / b.median().max(1e-9))
        });
        let shown = &row.reps[row.reps.len() / 2];
        let total: u64 = shown.calls.values().sum();
        let peak = row.reps.iter().map(|r| r.peak_kb).max().unwrap_or(0);
        let rss = match row.child_kb {
            Some(c) => format!("{} + aws {}", mb(peak), mb(c)),
            None => mb(peak),
        };
        let (wall, range) = (
            format!("{:.2} s", row.median()),
            format!("{:.2} - {:.2} s", min.as_secs_f64(), max.as_secs_f64()),
        );
        let calls = format!("{} ({total})", per(total, targets));
        println!(
            "{:<22} {:>5} {wall:>9} {range:>17} {ratio:>11} {calls:>16}  {rss}",
            row.method.name(),
            row.n
        );
        let ops: Vec<String> = shown
            .calls
            .iter()
            .map(|(op, c)| format!("{op} {} ({c})", per(*c, targets)))
            .collect();
        for (k, line) in ops.chunks(4).enumerate() {
            println!(
                "    {} {}",
                if k == 0 { "per target:" } else { "           " },
                line.join(", ")
            );
        }
        if let Some(b) = base.filter(|b| b.method != row.method) {
            let mut pairs: Vec<f64> = row
                .reps
                .iter()
                .filter_map(|r| {
                    let mine = b.reps.iter().find(|x| x.number == r.number)?;
                    Some(mine.wall.as_secs_f64() / r.wall.as_secs_f64().max(1e-9))
                })
                .collect();
            pairs.sort_by(f64::total_cmp);
            if !pairs.is_empty() {
                let shown: Vec<String> = pairs.iter().map(|p| format!("{p:.2}")).collect();
                println!(
                    "    rollback / this, repetition by repetition: {} (median {:.2})",
                    shown.join(", "),
                    pairs[pairs.len() / 2]
                );
            }
        }
        let totals: Vec<u64> = row.reps.iter().map(|r| r.calls.values().sum()).collect();
        if totals.iter().any(|t| *t != total) {
            println!(
                "    (totals by repetition, fastest first: {totals:?}; shown: the median one's)"
            );
        }
    }
}
