//! `rollback.aws`: targets and checks on the official AWS SDK, configured from the standard
//! AWS environment (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL`) or an
//! `AwsConfig`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;
use rollback_aws::{
    AlarmCheck, Aws, AwsConfig, ConnectionHandover, EcsDesiredCount, EcsService, LambdaAlias,
    PipelineTransition, RdsInstance, SecretVersion,
};
use rollback_core::{Progress, RollbackTarget};

use crate::check::PyCheck;
use crate::errors::{invalid, py_err};
use crate::runtime::{awaitable, block_on};
use crate::target::PyTarget;
use crate::types::{revision, PyPolicy, PyRevision, Seconds};

/// AWS settings: unset fields come from the standard AWS environment. Credentials are
/// never part of it. Targets made with the same `AwsConfig` share its loaded settings.
#[pyclass(module = "rollback.aws", name = "AwsConfig", frozen)]
pub(crate) struct PyAwsConfig {
    config: AwsConfig,
    loaded: OnceLock<Aws>,
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
            loaded: OnceLock::new(),
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

    fn __repr__(&self) -> String {
        format!(
            "AwsConfig(region={:?}, endpoint_url={:?}, profile={:?})",
            self.config.region, self.config.endpoint_url, self.config.profile
        )
    }
}

/// Settings loaded from the environment, by the `AWS_*` variables they were loaded with
/// (so a changed environment loads anew).
static FROM_ENV: OnceLock<Mutex<HashMap<EnvKey, Aws>>> = OnceLock::new();

/// The `AWS_*` variables, sorted.
type EnvKey = Vec<(String, String)>;

fn aws_env() -> EnvKey {
    let mut v: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    v.sort();
    v
}

/// The loaded settings for `config` (or the environment's).
pub(crate) fn aws_for(py: Python<'_>, config: Option<&Bound<'_, PyAwsConfig>>) -> PyResult<Aws> {
    if let Some(c) = config {
        let c = c.get();
        if let Some(aws) = c.loaded.get() {
            return Ok(aws.clone());
        }
        let cfg = c.config.clone();
        let aws = block_on(py, async move { Ok(cfg.load().await) })?;
        return Ok(c.loaded.get_or_init(|| aws).clone());
    }
    let key = aws_env();
    let cache = FROM_ENV.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(aws) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(aws);
    }
    let aws = block_on(py, async { Ok(Aws::from_env().await) })?;
    if let Ok(mut m) = cache.lock() {
        m.insert(key, aws.clone());
    }
    Ok(aws)
}

fn target(t: impl RollbackTarget + 'static) -> PyClassInitializer<PyTarget> {
    PyTarget::init(Arc::new(t))
}

/// A Lambda alias: revisions are published versions (`"7"`); a rollback points the alias
/// at the version and clears canary weights, guarded by the alias's RevisionId.
#[pyclass(module = "rollback.aws", name = "LambdaAlias", extends = PyTarget, frozen)]
pub(crate) struct PyLambdaAlias {
    function_name: String,
    alias: String,
}

#[pymethods]
impl PyLambdaAlias {
    #[new]
    #[pyo3(signature = (function_name, alias, *, config=None))]
    fn new(
        py: Python<'_>,
        function_name: &str,
        alias: &str,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let t = LambdaAlias::new(&aws, function_name, alias).map_err(py_err)?;
        Ok(target(t).add_subclass(PyLambdaAlias {
            function_name: function_name.into(),
            alias: alias.into(),
        }))
    }

    /// The function's name or ARN.
    #[getter]
    fn function_name(&self) -> &str {
        &self.function_name
    }

    /// The alias.
    #[getter]
    fn alias(&self) -> &str {
        &self.alias
    }
}

/// An ECS service: revisions are its family's task-definition revisions (`"family:14"`);
/// a rollback is UpdateService(taskDefinition), stable by the ServicesStable rules, and a
/// FAILED rollout (circuit breaker) fails at once.
#[pyclass(module = "rollback.aws", name = "EcsService", extends = PyTarget, frozen)]
pub(crate) struct PyEcsService {
    svc: EcsService,
}

#[pymethods]
impl PyEcsService {
    #[new]
    #[pyo3(signature = (cluster, service, *, config=None))]
    fn new(
        py: Python<'_>,
        cluster: &str,
        service: &str,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let svc = EcsService::new(&aws, cluster, service).map_err(py_err)?;
        Ok(target(svc.clone()).add_subclass(PyEcsService { svc }))
    }

    /// The cluster.
    #[getter]
    fn cluster(&self) -> &str {
        self.svc.cluster()
    }

    /// The service.
    #[getter]
    fn service(&self) -> &str {
        self.svc.service()
    }

    /// This service's desired count as a target (stop it with `Exact("0")`, usually as a
    /// temporary step).
    fn desired_count(&self, py: Python<'_>) -> PyResult<Py<PyEcsDesiredCount>> {
        let t = self.svc.desired_count();
        Py::new(
            py,
            target(t).add_subclass(PyEcsDesiredCount {
                cluster: self.svc.cluster().into(),
                service: self.svc.service().into(),
            }),
        )
    }
}

/// An ECS service's desired count as a target: revisions are counts (`"0"`, `"2"`), chosen
/// with `Exact`; scaling up from 0 starts a new deployment.
#[pyclass(module = "rollback.aws", name = "EcsDesiredCount", extends = PyTarget, frozen)]
pub(crate) struct PyEcsDesiredCount {
    cluster: String,
    service: String,
}

#[pymethods]
impl PyEcsDesiredCount {
    #[new]
    #[pyo3(signature = (cluster, service, *, config=None))]
    fn new(
        py: Python<'_>,
        cluster: &str,
        service: &str,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let t = EcsDesiredCount::new(&aws, cluster, service).map_err(py_err)?;
        Ok(target(t).add_subclass(PyEcsDesiredCount {
            cluster: cluster.into(),
            service: service.into(),
        }))
    }

    /// The cluster.
    #[getter]
    fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The service.
    #[getter]
    fn service(&self) -> &str {
        &self.service
    }
}

/// A Secrets Manager secret: revisions are version ids; a rollback moves AWSCURRENT to the
/// version. Never reads a secret value.
#[pyclass(module = "rollback.aws", name = "SecretVersion", extends = PyTarget, frozen)]
pub(crate) struct PySecretVersion {
    secret_id: String,
}

#[pymethods]
impl PySecretVersion {
    #[new]
    #[pyo3(signature = (secret_id, *, config=None))]
    fn new(
        py: Python<'_>,
        secret_id: &str,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let t = SecretVersion::new(&aws, secret_id).map_err(py_err)?;
        Ok(target(t).add_subclass(PySecretVersion {
            secret_id: secret_id.into(),
        }))
    }

    /// The secret's name or ARN.
    #[getter]
    fn secret_id(&self) -> &str {
        &self.secret_id
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

/// An RDS instance whose data is rolled back by restoring a snapshot (or a point in time:
/// `Exact("<RFC 3339>")`, `Exact("latest")`) to a NEW instance, `restore_as` (default
/// `<id>-rollback-<time>`); the original is never touched. Revisions: `live`, then its
/// snapshots, newest first.
#[pyclass(module = "rollback.aws", name = "RdsInstance", extends = PyTarget, frozen)]
pub(crate) struct PyRdsInstance {
    rds: RdsInstance,
}

#[pymethods]
impl PyRdsInstance {
    #[new]
    #[pyo3(signature = (db_instance_id, *, restore_as=None, config=None))]
    fn new(
        py: Python<'_>,
        db_instance_id: &str,
        restore_as: Option<String>,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let mut rds = RdsInstance::new(&aws, db_instance_id).map_err(py_err)?;
        if let Some(id) = restore_as {
            rds = rds.restore_as(id).map_err(py_err)?;
        }
        Ok(target(rds.clone()).add_subclass(PyRdsInstance { rds }))
    }

    /// The original instance.
    #[getter]
    fn db_instance_id(&self) -> &str {
        self.rds.db_instance_id()
    }

    /// The identifier a restore gives the new instance.
    #[getter]
    fn restore_identifier(&self) -> &str {
        self.rds.restore_identifier()
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
        let timeout = timeout.get(&self.rds.id().to_string(), "timeout")?;
        block_on(py, snapshot(self.rds.clone(), name, timeout))
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
        let timeout = timeout.get(&self.rds.id().to_string(), "timeout")?;
        awaitable(py, snapshot(self.rds.clone(), name, timeout))
    }

    /// The restored instance's `(host, port)`, once it has an endpoint.
    fn restored_endpoint(&self, py: Python<'_>) -> PyResult<Option<(String, i32)>> {
        block_on(py, restored_endpoint(self.rds.clone()))
    }

    /// `restored_endpoint()`, awaitable.
    fn restored_endpoint_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, restored_endpoint(self.rds.clone()))
    }
}

/// Hands a restored instance over: a new version of the connection secret pointing at
/// `db_instance_id`'s endpoint (URL or JSON form, everything else kept, the value never
/// shown). Select `Exact(handover.revision_id)`.
#[pyclass(module = "rollback.aws", name = "ConnectionHandover", extends = PyTarget, frozen)]
pub(crate) struct PyConnectionHandover {
    secret_id: String,
    db_instance_id: String,
    revision_id: String,
}

#[pymethods]
impl PyConnectionHandover {
    #[new]
    #[pyo3(signature = (secret_id, db_instance_id, *, config=None))]
    fn new(
        py: Python<'_>,
        secret_id: &str,
        db_instance_id: &str,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let t = ConnectionHandover::new(&aws, secret_id, db_instance_id).map_err(py_err)?;
        let sub = PyConnectionHandover {
            secret_id: t.secret_id().into(),
            db_instance_id: t.db_instance_id().into(),
            revision_id: t.revision_id(),
        };
        Ok(target(t).add_subclass(sub))
    }

    /// The connection secret.
    #[getter]
    fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The instance handed over to.
    #[getter]
    fn db_instance_id(&self) -> &str {
        &self.db_instance_id
    }

    /// The revision to select (`Exact(handover.revision_id)`).
    #[getter]
    fn revision_id(&self) -> &str {
        &self.revision_id
    }
}

/// The inbound transition of a CodePipeline stage: `enabled` / `disabled` (runbook 003's
/// freeze: `Exact("disabled")` as a temporary step).
#[pyclass(module = "rollback.aws", name = "PipelineTransition", extends = PyTarget, frozen)]
pub(crate) struct PyPipelineTransition {
    pipeline: String,
    stage: String,
}

#[pymethods]
impl PyPipelineTransition {
    #[new]
    #[pyo3(signature = (pipeline, stage, *, config=None))]
    fn new(
        py: Python<'_>,
        pipeline: &str,
        stage: &str,
        config: Option<&Bound<'_, PyAwsConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let aws = aws_for(py, config)?;
        let t = PipelineTransition::new(&aws, pipeline, stage).map_err(py_err)?;
        Ok(target(t).add_subclass(PyPipelineTransition {
            pipeline: pipeline.into(),
            stage: stage.into(),
        }))
    }

    /// The pipeline.
    #[getter]
    fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The stage.
    #[getter]
    fn stage(&self) -> &str {
        &self.stage
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
        py: Python<'_>,
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
            (Some(p), None) => AlarmCheck::prefix(&aws_for(py, config)?, p),
            (None, Some(n)) => AlarmCheck::names(&aws_for(py, config)?, n).map_err(py_err)?,
        };
        Ok(PyCheck::init(check, policy).add_subclass(PyAlarmCheck {}))
    }
}
