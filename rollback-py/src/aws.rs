//! `rollback.aws`: targets and checks on the official AWS SDK, configured from the standard
//! AWS environment (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL`) or an
//! `AwsConfig`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rollback_aws::{
    AlarmCheck, Aws, AwsCache, AwsConfig, CloudFormationStack, CloudFrontInvalidation,
    ConnectionHandover, DynamoDbKnownGood, DynamoDbLocks, EcsDesiredCount, EcsRestart, EcsService,
    LambdaAlias, PipelineExecution, PipelineTransition, RdsInstance, S3Journals, S3KnownGood,
    SecretVersion, StopInFlight,
};
use rollback_core::{Progress, RollbackTarget};

use crate::action::PyActionBase;
use crate::check::PyCheck;
use crate::errors::{invalid, py_err};
use crate::runtime::{awaitable, block_on};
use crate::stores::{PyJournalStore, PyKnownGoodStore, PyLocks};
use crate::target::PyTarget;
use crate::types::{revision, PyPolicy, PyRevision, Seconds};

/// AWS settings: unset fields come from the standard AWS environment. Credentials are
/// never part of it. Targets made with the same settings share their loaded form.
#[pyclass(module = "rollback.aws", name = "AwsConfig", frozen)]
pub(crate) struct PyAwsConfig {
    config: AwsConfig,
}

#[pymethods]
impl PyAwsConfig {
    #[new]
    #[pyo3(signature = (region=None, endpoint_url=None, profile=None))]
    fn new(
        region: Option<String>,
        endpoint_url: Option<String>,
        profile: Option<String>,
    ) -> PyResult<Self> {
        if let Some(url) = &endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "aws",
                    format!("endpoint_url={url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        for (what, v) in [("region", &region), ("profile", &profile)] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(invalid(
                    "aws",
                    format!("{what} is empty; leave it out to use the environment's"),
                ));
            }
        }
        Ok(PyAwsConfig {
            config: AwsConfig {
                region,
                endpoint_url,
                profile,
            },
        })
    }

    /// The region (None: `AWS_REGION` / the profile's).
    #[getter]
    fn region(&self) -> Option<String> {
        self.config.region.clone()
    }

    /// A custom endpoint (None: `AWS_ENDPOINT_URL`).
    #[getter]
    fn endpoint_url(&self) -> Option<String> {
        self.config.endpoint_url.clone()
    }

    /// A named profile (None: `AWS_PROFILE`).
    #[getter]
    fn profile(&self) -> Option<String> {
        self.config.profile.clone()
    }

    /// The standard AWS environment's settings, resolved now and checked (a region, and
    /// credentials the chain yields): what a person calls to see a configuration problem
    /// before anything else. Targets made later with no `config` (or this one) use them.
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Self> {
        let c = PyAwsConfig {
            config: AwsConfig::default(),
        };
        c.resolve(py)?;
        Ok(c)
    }

    /// Resolves these settings now and checks them (a region, and credentials the chain
    /// yields); returns them. Targets never need it: they resolve their settings, once per
    /// process, at their first call.
    fn load(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<Py<Self>> {
        slf.resolve(py)?;
        Ok(slf.into())
    }

    /// `load` as a coroutine, for an event loop.
    fn load_async<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let aws = loaded().lazy(&slf.config);
        let me: Py<Self> = slf.into();
        awaitable(py, async move {
            aws.ensure_ready().await.map_err(py_err)?;
            Ok(me)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "AwsConfig(region={:?}, endpoint_url={:?}, profile={:?})",
            self.config.region, self.config.endpoint_url, self.config.profile
        )
    }
}

impl PyAwsConfig {
    fn resolve(&self, py: Python<'_>) -> PyResult<()> {
        let aws = loaded().lazy(&self.config);
        block_on(py, async move { aws.ensure_ready().await.map_err(py_err) })
    }
}

/// The process's loaded AWS settings (`rollback_aws::AwsCache`): each configuration, the
/// environment's included, is resolved once per environment, however many targets use it.
static LOADED: OnceLock<AwsCache> = OnceLock::new();

/// The process's cache: what the targets made here and the ones a resume rebuilds share.
pub(crate) fn loaded() -> AwsCache {
    LOADED.get_or_init(AwsCache::new).clone()
}

/// The settings for `config` (or the environment's), never blocking: the process's one
/// `Aws` for them, resolved at its first use (or already, by `AwsConfig.load`).
pub(crate) fn aws_for(config: Option<&Bound<'_, PyAwsConfig>>) -> Aws {
    let config = config.map(|c| c.get().config.clone()).unwrap_or_default();
    loaded().lazy(&config)
}

fn target(t: impl RollbackTarget + 'static) -> PyClassInitializer<PyTarget> {
    PyTarget::init(Arc::new(t))
}

/// One Python class per AWS target: `Class(<names>, *, <options>=None, config=None)` makes
/// the Rust target with `Target::new(&aws, <names>)` and `.option(value)` for each option
/// given, and reads its names back with getters. A new target is one invocation.
macro_rules! aws_target {
    (
        $(#[doc = $doc:literal])*
        $py:ident($name:literal) = $rust:ident::new($($arg:ident),*)
            $(.$option:ident(=$kw:ident))*;
        getters { $($(#[doc = $gdoc:literal])* $getter:ident => $method:ident),* $(,)? }
        $($extra:tt)*
    ) => {
        $(#[doc = $doc])*
        #[pyclass(module = "rollback.aws", name = $name, extends = PyTarget, frozen)]
        pub(crate) struct $py {
            inner: $rust,
        }

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = ($($arg,)* * $(, $kw = None)*, config = None))]
            fn new(
                $($arg: &str,)*
                $($kw: Option<String>,)*
                config: Option<&Bound<'_, PyAwsConfig>>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let aws = aws_for(config);
                let t = $rust::new(&aws, $($arg),*).map_err(py_err)?;
                $(let t = match $kw {
                    Some(v) => t.$option(v).map_err(py_err)?,
                    None => t,
                };)*
                Ok(target(t.clone()).add_subclass($py { inner: t }))
            }

            $(
                $(#[doc = $gdoc])*
                #[getter]
                fn $getter(&self) -> String {
                    self.inner.$method().to_string()
                }
            )*

            $($extra)*
        }
    };
}

aws_target! {
    /// A Lambda alias: revisions are published versions (`"7"`); a rollback points the alias
    /// at the version and clears canary weights, guarded by the alias's RevisionId.
    PyLambdaAlias("LambdaAlias") = LambdaAlias::new(function_name, alias);
    getters {
        /// The function's name or ARN.
        function_name => function,
        /// The alias.
        alias => alias,
    }
}

/// An ECS service: revisions are its family's task-definition revisions (`"family:14"`);
/// a rollback is UpdateService(taskDefinition), with `force_new_deployment=True` also
/// forceNewDeployment; stable by the ServicesStable rules, and a FAILED rollout (circuit
/// breaker) fails at once. The plan confirms the chosen revision's ECR images still exist
/// (`check_images=False` to skip) and shows their digests.
#[pyclass(module = "rollback.aws", name = "EcsService", extends = PyTarget, frozen)]
pub(crate) struct PyEcsService {
    inner: EcsService,
}

#[pymethods]
impl PyEcsService {
    #[new]
    #[pyo3(signature = (cluster, service, *, force_new_deployment = false, check_images = true, config = None))]
    fn new(
        cluster: &str,
        service: &str,
        force_new_deployment: bool,
        check_images: bool,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let t = EcsService::new(&aws, cluster, service)
            .map_err(py_err)?
            .force_new_deployment(force_new_deployment)
            .check_images(check_images);
        Ok(target(t.clone()).add_subclass(PyEcsService { inner: t }))
    }

    /// The cluster.
    #[getter]
    fn cluster(&self) -> String {
        self.inner.cluster().to_string()
    }

    /// The service.
    #[getter]
    fn service(&self) -> String {
        self.inner.service().to_string()
    }

    /// Whether the rollback also forces a new deployment.
    #[getter]
    fn force_new_deployment(&self) -> bool {
        self.inner.forces_new_deployment()
    }

    /// This service's desired count as a target (stop it with `Exact("0")`, usually as a
    /// temporary step).
    fn desired_count(&self, py: Python<'_>) -> PyResult<Py<PyEcsDesiredCount>> {
        let t = self.inner.desired_count();
        Py::new(
            py,
            target(t.clone()).add_subclass(PyEcsDesiredCount { inner: t }),
        )
    }

    /// This service's forced new deployment as a target (`--force-new-deployment`).
    fn restart(&self, py: Python<'_>) -> PyResult<Py<PyEcsRestart>> {
        let t = self.inner.restart();
        Py::new(
            py,
            target(t.clone()).add_subclass(PyEcsRestart { inner: t }),
        )
    }
}

aws_target! {
    /// An ECS service's forced new deployment as a target: the revision in use is the
    /// PRIMARY deployment; `Previous` asks for a new deployment (`after:<id>`), waited for
    /// to the end; never made twice on resume; cannot be undone.
    PyEcsRestart("EcsRestart") = EcsRestart::new(cluster, service);
    getters {
        /// The cluster.
        cluster => cluster,
        /// The service.
        service => service,
    }
}

aws_target! {
    /// An ECS service's desired count as a target: revisions are counts (`"0"`, `"2"`), chosen
    /// with `Exact`; scaling up from 0 starts a new deployment.
    PyEcsDesiredCount("EcsDesiredCount") = EcsDesiredCount::new(cluster, service);
    getters {
        /// The cluster.
        cluster => cluster,
        /// The service.
        service => service,
    }
}

/// A Secrets Manager secret: revisions are version ids; a rollback moves AWSCURRENT to the
/// version, then gives each consumer ECS service (`consumers=[(cluster, service), ...]`) a
/// new deployment and waits for it; putting it back restarts them again. Never reads a
/// secret value.
#[pyclass(module = "rollback.aws", name = "SecretVersion", extends = PyTarget, frozen)]
pub(crate) struct PySecretVersion {
    inner: SecretVersion,
}

#[pymethods]
impl PySecretVersion {
    #[new]
    #[pyo3(signature = (secret_id, *, consumers = None, config = None))]
    fn new(
        secret_id: &str,
        consumers: Option<Vec<Bound<'_, PyAny>>>,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        // `(cluster, service)` for an ECS service; any other consumer is its restart target
        // (`rollback.k8s.Deployment(...).restart()`).
        let (mut services, mut restarts) = (Vec::new(), Vec::new());
        for c in consumers.unwrap_or_default() {
            match c.extract::<(String, String)>() {
                Ok(names) => services.push(names),
                Err(_) => restarts.push(crate::target::target_of(&c).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "a consumer is a (cluster, service) tuple for an ECS service or a workload's restart target (rollback.k8s.Deployment(...).restart()), not {}",
                        c.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                    ))
                })?),
            }
        }
        let mut t = SecretVersion::new(&aws, secret_id)
            .and_then(|t| t.consumers(services))
            .map_err(py_err)?;
        for r in restarts {
            t = t.consumer(r).map_err(py_err)?;
        }
        Ok(target(t.clone()).add_subclass(PySecretVersion { inner: t }))
    }

    /// The ids of the consumers given as restart targets.
    #[getter]
    fn consumer_targets(&self) -> Vec<String> {
        self.inner
            .consumer_targets()
            .iter()
            .map(|t| t.id().to_string())
            .collect()
    }

    /// The secret's name or ARN.
    #[getter]
    fn secret_id(&self) -> String {
        self.inner.secret_id().to_string()
    }

    /// The consumer services, `(cluster, service)`.
    #[getter]
    fn consumers(&self) -> Vec<(String, String)> {
        self.inner
            .consumer_services()
            .iter()
            .map(|c| (c.cluster().to_string(), c.service().to_string()))
            .collect()
    }
}

async fn snapshot(
    rds: RdsInstance,
    name: Option<String>,
    timeout: Duration,
) -> PyResult<PyRevision> {
    rds.snapshot(name.as_deref(), timeout, &Progress::none())
        .await
        .map(|r| revision(&r))
        .map_err(py_err)
}

async fn restored_endpoint(rds: RdsInstance) -> PyResult<Option<(String, i32)>> {
    rds.restored_endpoint().await.map_err(py_err)
}

aws_target! {
    /// An RDS instance whose data is rolled back by restoring a snapshot (or a point in time:
    /// `Exact("<RFC 3339>")`, `Exact("latest")`) to a NEW instance, `restore_as` (default
    /// `<id>-rollback-<time>`); the original is never touched. Revisions: `live`, then its
    /// snapshots, newest first.
    PyRdsInstance("RdsInstance") = RdsInstance::new(db_instance_id).restore_as(=restore_as);
    getters {
        /// The original instance.
        db_instance_id => db_instance_id,
        /// The identifier a restore gives the new instance.
        restore_identifier => restore_identifier,
    }

    /// Snapshots the instance as `name` (default `pre-migration-<time>`) and waits until the
    /// snapshot is available; returns it as a revision.
    #[pyo3(signature = (name=None, *, timeout=Seconds::of(1800)))]
    #[pyo3(text_signature = "($self, name=None, *, timeout=1800.0)")]
    fn snapshot(
        &self,
        py: Python<'_>,
        name: Option<String>,
        timeout: Seconds,
    ) -> PyResult<PyRevision> {
        let timeout = timeout.get(&self.inner.id().to_string(), "timeout")?;
        block_on(py, snapshot(self.inner.clone(), name, timeout))
    }

    /// `snapshot()`, awaitable.
    #[pyo3(signature = (name=None, *, timeout=Seconds::of(1800)))]
    #[pyo3(text_signature = "($self, name=None, *, timeout=1800.0)")]
    fn snapshot_async<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        timeout: Seconds,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout.get(&self.inner.id().to_string(), "timeout")?;
        awaitable(py, snapshot(self.inner.clone(), name, timeout))
    }

    /// The restored instance's `(host, port)`, once it has an endpoint.
    fn restored_endpoint(&self, py: Python<'_>) -> PyResult<Option<(String, i32)>> {
        block_on(py, restored_endpoint(self.inner.clone()))
    }

    /// `restored_endpoint()`, awaitable.
    fn restored_endpoint_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, restored_endpoint(self.inner.clone()))
    }
}

aws_target! {
    /// Hands a restored instance over: a new version of the connection secret pointing at
    /// `db_instance_id`'s endpoint (URL or JSON form, everything else kept, the value never
    /// shown). Select `Exact(handover.revision_id)`.
    PyConnectionHandover("ConnectionHandover") = ConnectionHandover::new(secret_id, db_instance_id);
    getters {
        /// The connection secret.
        secret_id => secret_id,
        /// The instance handed over to.
        db_instance_id => db_instance_id,
        /// The revision to select (`Exact(handover.revision_id)`).
        revision_id => revision_id,
    }
}

/// The inbound transition of a CodePipeline stage: `enabled` / `disabled` (runbook 003's
/// freeze: `Exact("disabled")` as a temporary step); `stop_in_flight="finish"` or
/// `"abandon"` also stops the executions in flight when freezing.
#[pyclass(module = "rollback.aws", name = "PipelineTransition", extends = PyTarget, frozen)]
pub(crate) struct PyPipelineTransition {
    inner: PipelineTransition,
}

#[pymethods]
impl PyPipelineTransition {
    #[new]
    #[pyo3(signature = (pipeline, stage, *, stop_in_flight = None, config = None))]
    fn new(
        pipeline: &str,
        stage: &str,
        stop_in_flight: Option<&str>,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let mut t = PipelineTransition::new(&aws, pipeline, stage).map_err(py_err)?;
        if let Some(mode) = stop_in_flight {
            t = t.stop_in_flight(mode.parse::<StopInFlight>().map_err(py_err)?);
        }
        Ok(target(t.clone()).add_subclass(PyPipelineTransition { inner: t }))
    }

    /// The pipeline.
    #[getter]
    fn pipeline(&self) -> String {
        self.inner.pipeline().to_string()
    }

    /// The stage.
    #[getter]
    fn stage(&self) -> String {
        self.inner.stage().to_string()
    }

    /// What freezing does with the executions in flight: `leave`, `finish` or `abandon`.
    #[getter]
    fn stop_in_flight(&self) -> String {
        self.inner.stop_mode().to_string()
    }
}

/// A pipeline re-run for an earlier commit (runbook 003 step 3): revisions are the source
/// commits of past successful executions, newest first; a rollback starts an execution
/// pinned to the commit (StartPipelineExecution with sourceRevisions), stable when it
/// Succeeded.
#[pyclass(module = "rollback.aws", name = "PipelineExecution", extends = PyTarget, frozen)]
pub(crate) struct PyPipelineExecution {
    inner: PipelineExecution,
}

#[pymethods]
impl PyPipelineExecution {
    #[new]
    #[pyo3(signature = (pipeline, *, source_action = None, config = None))]
    fn new(
        pipeline: &str,
        source_action: Option<String>,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let mut t = PipelineExecution::new(&aws, pipeline).map_err(py_err)?;
        if let Some(a) = source_action {
            t = t.source_action(a).map_err(py_err)?;
        }
        Ok(target(t.clone()).add_subclass(PyPipelineExecution { inner: t }))
    }

    /// The pipeline.
    #[getter]
    fn pipeline(&self) -> String {
        self.inner.pipeline().to_string()
    }

    /// The source action pinned, when one was named.
    #[getter]
    fn source_action(&self) -> Option<String> {
        self.inner.source_action_name().map(str::to_string)
    }
}

/// A CloudFormation stack rolled back to an earlier version of its template artifact in a
/// versioned S3 bucket (runbook 003 step 3): revisions are the S3 versions of `template`
/// (`s3://bucket/key`), newest first; a rollback is UpdateStack pinned to the version, stable
/// on UPDATE_COMPLETE, failed with the failing stack events when CloudFormation rolls it back.
#[pyclass(module = "rollback.aws", name = "CloudFormationStack", extends = PyTarget, frozen)]
pub(crate) struct PyCloudFormationStack {
    inner: CloudFormationStack,
}

#[pymethods]
impl PyCloudFormationStack {
    #[new]
    #[pyo3(signature = (stack, template, *, keep_parameters = None, capabilities = None, config = None))]
    fn new(
        stack: &str,
        template: &str,
        keep_parameters: Option<Vec<String>>,
        capabilities: Option<Vec<String>>,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let mut t = CloudFormationStack::new(&aws, stack, template).map_err(py_err)?;
        if let Some(names) = keep_parameters {
            t = t.keep_parameters(names).map_err(py_err)?;
        }
        if let Some(caps) = capabilities {
            t = t.capabilities(caps).map_err(py_err)?;
        }
        Ok(target(t.clone()).add_subclass(PyCloudFormationStack { inner: t }))
    }

    /// The stack name.
    #[getter]
    fn stack(&self) -> String {
        self.inner.stack().to_string()
    }

    /// The template location, `s3://bucket/key`.
    #[getter]
    fn template(&self) -> String {
        self.inner.template().to_string()
    }
}

/// CloudWatch GetMetricData as a metric source for `rollback.metrics.Threshold` and
/// `decide`; a query is `Namespace MetricName Stat [Dimension=Value ...]`, e.g.
/// `AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum LoadBalancer=app/api/1234`.
#[pyclass(module = "rollback.aws", name = "CloudWatchSource", extends = crate::metrics::PyMetricSource, frozen)]
pub(crate) struct PyCloudWatchSource {}

#[pymethods]
impl PyCloudWatchSource {
    #[new]
    #[pyo3(signature = (*, config = None))]
    fn new(config: Option<&Bound<'_, PyAwsConfig>>) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let source = rollback_aws::CloudWatchSource::new(&aws);
        Ok(crate::metrics::PyMetricSource::init(Arc::new(source))
            .add_subclass(PyCloudWatchSource {}))
    }
}

/// Passes when no CloudWatch alarm whose name starts with `prefix` (or in `names`) is in
/// ALARM; the evidence names every alarm in ALARM with its reason.
#[pyclass(module = "rollback.aws", name = "AlarmCheck", extends = PyCheck, frozen)]
pub(crate) struct PyAlarmCheck {}

#[pymethods]
impl PyAlarmCheck {
    #[new]
    #[pyo3(signature = (prefix=None, *, names=None, config=None, policy=None))]
    fn new(
        prefix: Option<String>,
        names: Option<Vec<String>>,
        config: Option<&Bound<'_, PyAwsConfig>>,
        policy: Option<PyPolicy>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let check = match (prefix, names) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "cloudwatch-alarms",
                    "give prefix or names, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "cloudwatch-alarms",
                    "give prefix=\"...\" (alarms whose names start with it) or names=[...]",
                ))
            }
            (Some(p), None) => AlarmCheck::prefix(&aws_for(config), p),
            (None, Some(n)) => AlarmCheck::names(&aws_for(config), n).map_err(py_err)?,
        };
        Ok(PyCheck::init(check, policy).add_subclass(PyAlarmCheck {}))
    }
}

/// The cache invalidation after a rollback: a CloudFront invalidation of `paths` (`"/*"`,
/// `"/index.html"`) of the distribution whose id is `distribution`, given to
/// `Transaction.on_success`. Preflight checks the paths and reads the distribution
/// (GetDistribution); after the run succeeded, CreateInvalidation (idempotent per run: a
/// resume gets the same invalidation back), waited for until Completed (at most `timeout`,
/// default 20 minutes).
#[pyclass(module = "rollback.aws", name = "CloudFrontInvalidation", extends = PyActionBase, frozen)]
pub(crate) struct PyCloudFrontInvalidation {
    inner: CloudFrontInvalidation,
}

#[pymethods]
impl PyCloudFrontInvalidation {
    #[new]
    #[pyo3(signature = (distribution, paths, *, timeout=None, config=None))]
    fn new(
        distribution: String,
        paths: Vec<String>,
        timeout: Option<Seconds>,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let mut a = CloudFrontInvalidation::new(&aws, distribution, paths).map_err(py_err)?;
        if let Some(t) = Seconds::get_opt(timeout, rollback_aws::cloudfront::KIND, "timeout")? {
            a = a.timeout(t);
        }
        Ok(PyActionBase::init(Arc::new(a.clone()))
            .add_subclass(PyCloudFrontInvalidation { inner: a }))
    }

    /// The distribution's id.
    #[getter]
    fn distribution(&self) -> String {
        self.inner.distribution().to_string()
    }

    /// The paths invalidated.
    #[getter]
    fn paths(&self) -> Vec<String> {
        self.inner.paths().to_vec()
    }
}

/// A store made by `new`, or with `create=True` by `create` (which makes its table or
/// bucket unless it exists).
fn new_or_create<T, F>(
    py: Python<'_>,
    aws: Aws,
    create: bool,
    new: impl FnOnce(&Aws) -> rollback_core::Result<T>,
    make: impl FnOnce(Aws) -> F + Send + 'static,
) -> PyResult<T>
where
    F: std::future::Future<Output = rollback_core::Result<T>> + Send,
    T: Send + 'static,
{
    if create {
        block_on(py, async move { make(aws).await.map_err(py_err) })
    } else {
        new(&aws).map_err(py_err)
    }
}

/// Leases in a DynamoDB table a team shares (`rollback_aws::DynamoDbLocks`): one item per
/// target, conditional writes, fencing tokens. `create=True` makes the table (partition key
/// `target`, on-demand billing) unless it exists.
#[pyclass(module = "rollback.aws", name = "DynamoDbLocks", extends = PyLocks, frozen)]
pub(crate) struct PyDynamoDbLocks;

#[pymethods]
impl PyDynamoDbLocks {
    #[new]
    #[pyo3(signature = (table, *, config=None, create=false))]
    fn new(
        py: Python<'_>,
        table: String,
        config: Option<&Bound<'_, PyAwsConfig>>,
        create: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let named = table.clone();
        let locks = new_or_create(
            py,
            aws,
            create,
            |aws| DynamoDbLocks::new(aws, table),
            move |aws| async move { DynamoDbLocks::create_table(&aws, named).await },
        )?;
        Ok(PyLocks::init(Arc::new(locks)).add_subclass(PyDynamoDbLocks))
    }
}

/// Verified-good revisions in a DynamoDB table a team shares
/// (`rollback_aws::DynamoDbKnownGood`), for `rollback.LastKnownGood()`.
#[pyclass(module = "rollback.aws", name = "DynamoDbKnownGood", extends = PyKnownGoodStore, frozen)]
pub(crate) struct PyDynamoDbKnownGood;

#[pymethods]
impl PyDynamoDbKnownGood {
    #[new]
    #[pyo3(signature = (table, *, config=None, create=false))]
    fn new(
        py: Python<'_>,
        table: String,
        config: Option<&Bound<'_, PyAwsConfig>>,
        create: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let named = table.clone();
        let store = new_or_create(
            py,
            aws,
            create,
            |aws| DynamoDbKnownGood::new(aws, table),
            move |aws| async move { DynamoDbKnownGood::create_table(&aws, named).await },
        )?;
        Ok(PyKnownGoodStore::init(Arc::new(store)).add_subclass(PyDynamoDbKnownGood))
    }
}

/// Verified-good revisions in an S3 bucket under a prefix (`rollback_aws::S3KnownGood`):
/// every record kept, the newest read. `create=True` makes the bucket unless it exists.
#[pyclass(module = "rollback.aws", name = "S3KnownGood", extends = PyKnownGoodStore, frozen)]
pub(crate) struct PyS3KnownGood;

#[pymethods]
impl PyS3KnownGood {
    #[new]
    #[pyo3(signature = (bucket, prefix=None, *, config=None, create=false))]
    fn new(
        py: Python<'_>,
        bucket: String,
        prefix: Option<String>,
        config: Option<&Bound<'_, PyAwsConfig>>,
        create: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let prefix = prefix.unwrap_or_default();
        let (named, under) = (bucket.clone(), prefix.clone());
        let store = new_or_create(
            py,
            aws,
            create,
            |aws| S3KnownGood::new(aws, bucket, prefix),
            move |aws| async move { S3KnownGood::create_bucket(&aws, named, under).await },
        )?;
        Ok(PyKnownGoodStore::init(Arc::new(store)).add_subclass(PyS3KnownGood))
    }
}

/// Journals in an S3 bucket (`rollback_aws::S3Journals`): every record written there too,
/// so that `rollback.resume_from_store` finishes a run whose machine died. `create=True`
/// makes the bucket unless it exists.
#[pyclass(module = "rollback.aws", name = "S3Journals", extends = PyJournalStore, frozen)]
pub(crate) struct PyS3Journals;

#[pymethods]
impl PyS3Journals {
    #[new]
    #[pyo3(signature = (bucket, prefix=None, *, config=None, create=false))]
    fn new(
        py: Python<'_>,
        bucket: String,
        prefix: Option<String>,
        config: Option<&Bound<'_, PyAwsConfig>>,
        create: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(config);
        let prefix = prefix.unwrap_or_default();
        let (named, under) = (bucket.clone(), prefix.clone());
        let store = new_or_create(
            py,
            aws,
            create,
            |aws| S3Journals::new(aws, bucket, prefix),
            move |aws| async move { S3Journals::create_bucket(&aws, named, under).await },
        )?;
        Ok(PyJournalStore::init(Arc::new(store)).add_subclass(PyS3Journals))
    }
}
