"""RDS: DB instance and snapshot statuses that move like AWS's, on top of moto 5.2.1.

moto makes every DB instance and snapshot ``available`` the moment it is asked for, reports
an Endpoint, InstanceCreateTime and LatestRestorableTime for an instance that AWS would still
be creating, and takes the first automated snapshot inside the create call. Here:

* CreateDBInstance, RestoreDBInstanceFromDBSnapshot and RestoreDBInstanceToPointInTime make
  the new instance ``creating`` (no Endpoint, InstanceCreateTime or LatestRestorableTime),
  then ``backing-up`` for the last fifth of the delay (its first automated snapshot is taken
  then), then ``available`` with Endpoint.Address / Port.
* A restore whose snapshot (or, for point-in-time, whose source instance) was marked with
  ``POST /_emulator/rds/fail`` stays ``creating`` for the delay and then ends in the marked
  status (``incompatible-restore``, ``incompatible-parameters`` or ``failed``), without an
  endpoint, as AWS leaves an instance whose restore failed.
* CreateDBSnapshot makes the snapshot ``creating`` (PercentProgress 0..100), then ``available``.
* ModifyDBInstance makes the instance ``modifying``, then ``available``.
* CreateDBSnapshot and ModifyDBInstance on an instance that is not ``available`` are refused
  with InvalidDBInstanceState; restoring from a snapshot that is not ``available`` with
  InvalidDBSnapshotState (AWS rules).
* Point-in-time restores follow AWS's documented defaults: the new instance gets the default
  VPC security group, no (the default) subnet group, the default parameter group and
  single-AZ unless the request names them (moto copied the source's), needs a source with
  BackupRetentionPeriod > 0 (PointInTimeRestoreNotEnabled), and a RestoreTime inside the
  restore window (InvalidRestoreFault); RestoreTime with UseLatestRestorableTime is
  InvalidParameterCombination.
* DescribeDBInstanceAutomatedBackups reports ``RestoreWindow {EarliestTime, LatestTime}``
  (EarliestTime = the oldest automated snapshot's SnapshotCreateTime, but not before
  ``now - BackupRetentionPeriod days``; LatestTime = LatestRestorableTime), BackupRetentionPeriod,
  DBInstanceArn, Engine, InstanceCreateTime, as AWS does; moto reported identifier and status only.

The delay (``delay_ms``, default 1500) is set with ``POST /_emulator/rds/config``; 0 finishes
every transition inside the call. ``RdsScheduler`` moves the statuses on a thread, under
``LOCK``; the patched responses serialize copies taken under it.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.rds import models as rds_models
from moto.rds import responses as rds_responses
from moto.rds.exceptions import InvalidParameterCombination, RDSClientError

from .ticker import Ticker

LOCK = threading.RLock()
Backend = rds_models.RDSBackend
DBInstance = rds_models.DBInstance
DBSnapshot = rds_models.DBSnapshot

DEFAULT_DELAY_MS = 1500
FAIL_STATUSES = ("incompatible-restore", "incompatible-parameters", "failed")
BACKING_UP_FRACTION = 0.2  # the last fifth of a create / restore is "backing-up"

_local = threading.local()


@dataclass
class Job:
    kind: str  # "create" | "modify" | "snapshot"
    backend: Any
    obj: Any  # DBInstance or DBSnapshot
    started: float
    duration: float
    final: str = "available"
    backed_up: bool = False

    def progress(self, now: float) -> float:
        if self.duration <= 0:
            return 1.0
        return max(0.0, min(1.0, (now - self.started) / self.duration))


class RdsScheduler(Ticker):
    """Moves RDS statuses forward; one per process (moto's state is process-global)."""

    thread_name = "rollback-emulator-rds"

    def __init__(self, delay_ms: int = DEFAULT_DELAY_MS, tick_ms: int = 50):
        super().__init__(tick_ms)
        self.delay_ms = delay_ms
        self.fail_snapshots: dict[str, str] = {}  # snapshot id (lower case) -> final status
        self.fail_sources: dict[str, str] = {}  # source DB instance id (lower case) -> final status
        self._jobs: dict[int, Job] = {}

    def reset(self, delay_ms: int = DEFAULT_DELAY_MS) -> None:
        with LOCK:
            self._jobs.clear()
            self.fail_snapshots.clear()
            self.fail_sources.clear()
            self.delay_ms = delay_ms

    def in_progress(self) -> int:
        with LOCK:
            return len(self._jobs)

    def failing(self) -> dict[str, Any]:
        with LOCK:
            return {"snapshots": dict(sorted(self.fail_snapshots.items())), "sources": dict(sorted(self.fail_sources.items()))}

    # -- jobs -----------------------------------------------------------------------------
    def begin(self, kind: str, backend: Any, obj: Any, final: str = "available") -> Job:
        """Called under LOCK: sets the first status and schedules the rest."""
        job = Job(kind, backend, obj, time.monotonic(), self.delay_ms / 1000, final)
        self._jobs[id(obj)] = job
        self._apply(job, 0.0)
        if job.duration <= 0:
            self._apply(job, 1.0)
            del self._jobs[id(obj)]
        return job

    def job_of(self, obj: Any) -> Job | None:
        return self._jobs.get(id(obj))

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with LOCK:
            for key, job in list(self._jobs.items()):
                if not _alive(job):
                    del self._jobs[key]
                    continue
                p = job.progress(now)
                self._apply(job, p)
                if p >= 1.0:
                    del self._jobs[key]

    def advance(self) -> int:
        """Finishes every transition now; returns how many there were."""
        with LOCK:
            n = len(self._jobs)
            for job in list(self._jobs.values()):
                if _alive(job):
                    self._apply(job, 1.0)
            self._jobs.clear()
            return n

    def complete(self, obj: Any) -> None:
        """Finishes the transition of one instance or snapshot now (seeding)."""
        with LOCK:
            job = self._jobs.pop(id(obj), None)
            if job is not None:
                self._apply(job, 1.0)

    def _apply(self, job: Job, p: float) -> None:
        obj = job.obj
        if job.kind == "snapshot":
            obj.status = "available" if p >= 1.0 else "creating"
            obj.percent_progress = 100 if p >= 1.0 else int(p * 100)
            return
        if job.kind == "modify":
            obj.status = "available" if p >= 1.0 else "modifying"
            return
        # create / restore
        if job.final != "available":
            obj.status = job.final if p >= 1.0 else "creating"
            return
        if p >= 1.0 - BACKING_UP_FRACTION and not job.backed_up:
            job.backed_up = True
            obj._rb_first_backup_pending = False
            obj.status = "backing-up"
            _orig["save_automated_backup"](obj)  # the first automated snapshot, as AWS takes it now
        if p >= 1.0:
            obj.status = "available"
        elif p < 1.0 - BACKING_UP_FRACTION:
            obj.status = "creating"


def _alive(job: Job) -> bool:
    if job.kind == "snapshot":
        return job.backend.database_snapshots.get(job.obj.db_snapshot_identifier) is job.obj
    return job.backend.databases.get(job.obj.db_instance_identifier) is job.obj


SCHEDULER = RdsScheduler()


# -- model patches ----------------------------------------------------------------------------
_orig: dict[str, Any] = {}


def _no_endpoint(db: Any) -> bool:
    return db.status == "creating" or db.status in FAIL_STATUSES


def _endpoint(self: Any) -> Any:
    if _no_endpoint(self):
        return None  # AWS has no Endpoint while creating
    return _orig["endpoint"].fget(self)


def _latest_restorable_time(self: Any) -> Any:
    if _no_endpoint(self) or getattr(self, "_rb_first_backup_pending", False):
        return None
    if not self.backup_retention_period:
        return None  # no automated backups, no point-in-time restore
    return _orig["latest_restorable_time"].fget(self)


def _get_instance_create_time(self: Any) -> Any:
    if self.status == "creating" and getattr(self, "_rb_first_backup_pending", False):
        return None
    return self.__dict__.get("_rb_instance_create_time")


def _set_instance_create_time(self: Any, value: Any) -> None:
    self.__dict__["_rb_instance_create_time"] = value


def _save_automated_backup(self: Any) -> None:
    if getattr(_local, "defer_backup", False):
        return  # taken by the scheduler when the instance goes "backing-up"
    _orig["save_automated_backup"](self)


def automated_snapshots(backend: Any, db_instance_identifier: str) -> list[Any]:
    return sorted(
        (
            s
            for s in backend.database_snapshots.values()
            if s.snapshot_type == "automated" and s.db_instance_identifier.lower() == db_instance_identifier.lower()
        ),
        key=lambda s: s.snapshot_create_time,
    )


def earliest_restorable_time(backend: Any, db_instance_identifier: str) -> dt.datetime | None:
    """The start of the restore window: the oldest available automated snapshot, but never
    before ``now - BackupRetentionPeriod days`` (AWS deletes automated backups older than the
    retention period; seeded ones may be older). None without automated snapshots."""
    snaps = [s for s in automated_snapshots(backend, db_instance_identifier) if s.status == "available"]
    if not snaps:
        return None
    oldest = utc(snaps[0].snapshot_create_time)
    db = backend.databases.get(db_instance_identifier)
    retention = getattr(db, "backup_retention_period", None) if db is not None else None
    if retention:
        oldest = max(oldest, now() - dt.timedelta(days=int(retention)))
    return oldest


class _AutomatedBackupProps:
    """Properties added to moto's DBInstanceAutomatedBackup (AWS's DBInstanceAutomatedBackup shape)."""

    @staticmethod
    def _db(self: Any) -> Any:
        return self.backend.databases.get(self.db_instance_identifier)

    @staticmethod
    def _snaps(self: Any) -> list[Any]:
        return sorted(self.automated_snapshots, key=lambda s: s.snapshot_create_time)

    @staticmethod
    def restore_window(self: Any) -> dict[str, Any]:
        snaps = [s for s in _AutomatedBackupProps._snaps(self) if s.status == "available"]
        db = _AutomatedBackupProps._db(self)
        window: dict[str, Any] = {}
        if snaps:
            earliest = earliest_restorable_time(self.backend, self.db_instance_identifier)
            window["EarliestTime"] = earliest if earliest is not None else utc(snaps[0].snapshot_create_time)
            latest = db.latest_restorable_time if db is not None else None
            window["LatestTime"] = latest or snaps[-1].snapshot_create_time
        return window

    @staticmethod
    def source(self: Any, attr: str) -> Any:
        db = _AutomatedBackupProps._db(self)
        if db is not None:
            return getattr(db, attr, None)
        snaps = _AutomatedBackupProps._snaps(self)
        return getattr(snaps[-1], attr, None) if snaps else None


def _patch_automated_backup_class() -> None:
    cls = rds_models.DBInstanceAutomatedBackup
    cls.restore_window = property(_AutomatedBackupProps.restore_window)  # type: ignore[attr-defined]
    cls.db_instance_arn = property(lambda self: _AutomatedBackupProps.source(self, "db_instance_arn") or (
        f"arn:{self.backend.partition}:rds:{self.backend.region_name}:{self.backend.account_id}:db:{self.db_instance_identifier}"
    ))  # type: ignore[attr-defined]
    cls.region = property(lambda self: self.backend.region_name)  # type: ignore[attr-defined]
    for attr in ("engine", "engine_version", "backup_retention_period", "instance_create_time", "port",
                 "availability_zone", "dbi_resource_id", "master_username", "allocated_storage"):
        setattr(cls, attr, property(lambda self, a=attr: _AutomatedBackupProps.source(self, a)))


# -- backend patches --------------------------------------------------------------------------
def _create_db_instance(self: Backend, db_kwargs: dict[str, Any]) -> Any:
    with LOCK:
        pitr = getattr(_local, "pitr_request", None)
        if pitr is not None:
            # AWS: the point-in-time target gets the default security group, subnet group and
            # parameter group, single-AZ, unless the request names them.
            db_kwargs["vpc_security_group_ids"] = list(pitr.get("vpc_security_group_ids") or [])
            db_kwargs["db_subnet_group_name"] = pitr.get("db_subnet_group_name")
            db_kwargs["db_parameter_group_name"] = pitr.get("db_parameter_group_name")
            db_kwargs["multi_az"] = bool(pitr.get("multi_az") or False)
        _local.defer_backup = True
        try:
            db = _orig["create_db_instance"](self, db_kwargs)
        finally:
            _local.defer_backup = False
        if getattr(db, "db_cluster_identifier", None) is not None:
            _orig["save_automated_backup"](db)
            return db
        db._rb_first_backup_pending = True
        final = getattr(_local, "restore_final", None) or "available"
        SCHEDULER.begin("create", self, db, final)
        return db


def _restore_db_instance_from_db_snapshot(self: Backend, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
    with LOCK:
        snap_id = from_snapshot_id
        if snap_id.startswith("arn:"):
            snap_id = self.extract_snapshot_name_from_arn(snap_id)
        snapshot = self.describe_db_snapshots(db_instance_identifier=None, db_snapshot_identifier=snap_id)[0]
        if snapshot.status != "available":
            raise RDSClientError(
                "InvalidDBSnapshotState",
                f"DBSnapshot must have state available but actually has {snapshot.status}",
            )
        _local.restore_final = SCHEDULER.fail_snapshots.get(snap_id.lower())
        try:
            return _orig["restore_db_instance_from_db_snapshot"](self, from_snapshot_id, overrides)
        finally:
            _local.restore_final = None


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    text = str(value).strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _restore_db_instance_to_point_in_time(
    self: Backend, source_db_identifier: str, target_db_identifier: str, overrides: dict[str, Any]
) -> Any:
    with LOCK:
        source = self.describe_db_instances(db_instance_identifier=source_db_identifier)[0]
        restore_time = _as_datetime(overrides.get("restore_time"))
        use_latest = bool(overrides.get("use_latest_restorable_time"))
        if restore_time is not None and use_latest:
            raise InvalidParameterCombination("Cannot specify both RestoreTime and UseLatestRestorableTime.")
        if not source.backup_retention_period:
            raise RDSClientError(
                "PointInTimeRestoreNotEnabled",
                f"Point-in-time restore is not enabled for DB instance {source.db_instance_identifier} "
                "(its BackupRetentionPeriod is 0).",
            )
        if restore_time is not None:
            earliest = earliest_restorable_time(self, source.db_instance_identifier)
            latest = source.latest_restorable_time
            earliest = utc(earliest) if earliest is not None else None
            latest = utc(latest) if latest is not None else None
            if earliest is None or latest is None or not (earliest <= restore_time <= latest):
                raise RDSClientError(
                    "InvalidRestoreFault",
                    f"The restore time {restore_time.isoformat()} is outside the restore window of DB instance "
                    f"{source.db_instance_identifier} "
                    f"({earliest.isoformat() if earliest else 'no backup'} .. {latest.isoformat() if latest else 'none'}).",
                )
        _local.restore_final = SCHEDULER.fail_sources.get(source.db_instance_identifier.lower())
        _local.pitr_request = overrides
        try:
            return _orig["restore_db_instance_to_point_in_time"](self, source_db_identifier, target_db_identifier, overrides)
        finally:
            _local.restore_final = None
            _local.pitr_request = None


# -- response patches -------------------------------------------------------------------------
def _freeze(result: Any) -> Any:
    """Copies of the instances / snapshots in an ActionResult, taken under LOCK."""
    if not isinstance(result, ActionResult) or not isinstance(result.result, dict):
        return result
    data = result.result
    for key, value in list(data.items()):
        if isinstance(value, (DBInstance, DBSnapshot)):
            data[key] = copy.copy(value)
        elif isinstance(value, list):
            data[key] = [copy.copy(v) if isinstance(v, (DBInstance, DBSnapshot)) else v for v in value]
    return result


def _locked_response(name: str) -> Any:
    def wrapper(self: Any) -> Any:
        with LOCK:
            return _freeze(_orig[f"response_{name}"](self))

    wrapper.__name__ = name
    return wrapper


def _require_available(backend: Any, db_instance_identifier: str | None, action: str) -> None:
    if not db_instance_identifier:
        return
    db = backend.databases.get(db_instance_identifier)
    if db is not None and db.status != "available":
        raise RDSClientError(
            "InvalidDBInstanceState",
            f"Cannot {action} because the database instance {db.db_instance_identifier} is not currently "
            f"in the available state (it is {db.status}).",
        )


def _create_db_snapshot_response(self: Any) -> Any:
    with LOCK:
        _require_available(self.backend, self.params.get("DBInstanceIdentifier"), "create a snapshot")
        result = _orig["response_create_db_snapshot"](self)
        snapshot = result.result.get("DBSnapshot") if isinstance(result.result, dict) else None
        if snapshot is not None:
            SCHEDULER.begin("snapshot", self.backend, snapshot)
        return _freeze(result)


def _modify_db_instance_response(self: Any) -> Any:
    with LOCK:
        _require_available(self.backend, self.params.get("DBInstanceIdentifier"), "modify the instance")
        result = _orig["response_modify_db_instance"](self)
        db = result.result.get("DBInstance") if isinstance(result.result, dict) else None
        if db is not None:
            SCHEDULER.begin("modify", self.backend, db)
        return _freeze(result)


def apply() -> None:
    if _orig:
        return
    _orig["endpoint"] = DBInstance.endpoint
    _orig["latest_restorable_time"] = DBInstance.latest_restorable_time
    _orig["save_automated_backup"] = DBInstance.save_automated_backup
    DBInstance.endpoint = property(_endpoint)  # type: ignore[assignment,method-assign]
    DBInstance.latest_restorable_time = property(_latest_restorable_time)  # type: ignore[assignment,method-assign]
    DBInstance.instance_create_time = property(_get_instance_create_time, _set_instance_create_time)  # type: ignore[attr-defined]
    DBInstance.save_automated_backup = _save_automated_backup  # type: ignore[method-assign]
    DBSnapshot.percent_progress = 100  # type: ignore[attr-defined]
    _patch_automated_backup_class()
    for name, new in (
        ("create_db_instance", _create_db_instance),
        ("restore_db_instance_from_db_snapshot", _restore_db_instance_from_db_snapshot),
        ("restore_db_instance_to_point_in_time", _restore_db_instance_to_point_in_time),
    ):
        _orig[name] = getattr(Backend, name)
        setattr(Backend, name, new)
    Response = rds_responses.RDSResponse
    for name in (
        "create_db_instance",
        "describe_db_instances",
        "describe_db_snapshots",
        "restore_db_instance_from_db_snapshot",
        "restore_db_instance_to_point_in_time",
        "delete_db_instance",
        "describe_db_instance_automated_backups",
    ):
        _orig[f"response_{name}"] = getattr(Response, name)
        setattr(Response, name, _locked_response(name))
    _orig["response_create_db_snapshot"] = Response.create_db_snapshot
    Response.create_db_snapshot = _create_db_snapshot_response  # type: ignore[method-assign]
    _orig["response_modify_db_instance"] = Response.modify_db_instance
    Response.modify_db_instance = _modify_db_instance_response  # type: ignore[method-assign]


def utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def now() -> dt.datetime:
    return utc(utcnow())
