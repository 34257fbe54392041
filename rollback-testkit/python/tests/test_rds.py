"""RDS statuses move like AWS's: creating -> backing-up -> available, failures, snapshots, modify."""

from __future__ import annotations

import datetime as dt

import botocore.exceptions
import pytest
from conftest import AUTO_SNAPSHOT, DB, MANUAL_SNAPSHOT, wait_until

ROLLBACK = "agentauri-production-rollback"
DB_SECRET = "agentauri/production/database-url"


def instance(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def restore(rds, name=ROLLBACK, snapshot=MANUAL_SNAPSHOT, **kw):
    kw.setdefault("DBInstanceClass", "db.t3.micro")
    kw.setdefault("VpcSecurityGroupIds", ["sg-0abc"])
    kw.setdefault("DBSubnetGroupName", "agentauri-production")
    return rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=snapshot, **kw)["DBInstance"]


def error_code(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    return err.value.response["Error"]["Code"]


def test_seeded_instance_is_available_with_its_settings(rds_seeded, rds):
    (seeded,) = rds_seeded["rds"]
    assert seeded["endpoint"] == {"address": f"{DB}.aaaaaaaaaa.us-east-1.rds.amazonaws.com", "port": 5432}
    assert seeded["arn"] == f"arn:aws:rds:us-east-1:123456789012:db:{DB}"
    assert seeded["snapshots"] == [MANUAL_SNAPSHOT, AUTO_SNAPSHOT]
    assert seeded["automated_snapshots"] == [AUTO_SNAPSHOT]
    # The seeded automated snapshot is older than the 7-day retention: the window starts then.
    earliest = dt.datetime.fromisoformat(seeded["earliest_restorable_time"].replace("Z", "+00:00"))
    week_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
    assert abs(earliest - week_ago) < dt.timedelta(seconds=30)
    db = instance(rds, DB)
    assert db["DBInstanceStatus"] == "available"
    assert db["Endpoint"] == {"Address": seeded["endpoint"]["address"], "Port": 5432}
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == ["sg-0abc"]
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "agentauri-production"
    assert db["DBSubnetGroup"]["VpcId"] == seeded["vpc_id"] and len(db["DBSubnetGroup"]["Subnets"]) == 2
    assert [g["DBParameterGroupName"] for g in db["DBParameterGroups"]] == ["default.postgres15"]
    assert db["DBInstanceClass"] == "db.t3.micro" and db["MultiAZ"] is False and db["BackupRetentionPeriod"] == 7
    assert dt.datetime.now(dt.timezone.utc) - db["InstanceCreateTime"] < dt.timedelta(seconds=30)  # seeding time
    # LatestRestorableTime is "now" (AWS: usually up to 5 minutes behind).
    age = dt.datetime.now(dt.timezone.utc) - db["LatestRestorableTime"]
    assert dt.timedelta(0) <= age < dt.timedelta(seconds=30)
    snaps = {s["DBSnapshotIdentifier"]: s for s in rds.describe_db_snapshots(DBInstanceIdentifier=DB)["DBSnapshots"]}
    assert set(snaps) == {MANUAL_SNAPSHOT, AUTO_SNAPSHOT}
    assert snaps[MANUAL_SNAPSHOT]["SnapshotType"] == "manual" and snaps[AUTO_SNAPSHOT]["SnapshotType"] == "automated"
    assert snaps[MANUAL_SNAPSHOT]["SnapshotCreateTime"] == dt.datetime(2025, 12, 28, 14, 30, tzinfo=dt.timezone.utc)
    assert all(s["Status"] == "available" and s["PercentProgress"] == 100 for s in snaps.values())
    assert [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="automated")["DBSnapshots"]] == [AUTO_SNAPSHOT]


def test_restore_window_from_automated_backups(rds_seeded, rds, emu):
    (backup,) = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=DB)["DBInstanceAutomatedBackups"]
    assert backup["Status"] == "active" and backup["BackupRetentionPeriod"] == 7
    assert backup["DBInstanceArn"] == rds_seeded["rds"][0]["arn"] and backup["Engine"] == "postgres"
    window = backup["RestoreWindow"]
    now = dt.datetime.now(dt.timezone.utc)
    assert abs(window["EarliestTime"] - (now - dt.timedelta(days=7))) < dt.timedelta(seconds=30)
    assert now - window["LatestTime"] < dt.timedelta(seconds=30)
    # With a recent automated snapshot inside the retention period, the window starts there.
    emu.reset()
    recent = (now - dt.timedelta(days=2)).replace(microsecond=0)
    emu.seed({"rds": [{"db_instance_id": "db2", "snapshots": [{"type": "automated", "created": recent.isoformat()}]}]})
    (backup,) = rds.describe_db_instance_automated_backups(DBInstanceIdentifier="db2")["DBInstanceAutomatedBackups"]
    assert backup["RestoreWindow"]["EarliestTime"] == recent


def test_restore_from_snapshot_goes_creating_backing_up_available(rds_seeded, rds, emu):
    emu.set_rds_delay(500)
    resp = restore(rds)
    assert resp["DBInstanceStatus"] == "creating"
    for key in ("Endpoint", "InstanceCreateTime", "LatestRestorableTime"):
        assert key not in resp  # AWS has none of them while creating
    seen = []

    def status():
        db = instance(rds, ROLLBACK)
        if not seen or seen[-1] != db["DBInstanceStatus"]:
            seen.append(db["DBInstanceStatus"])
        return db if db["DBInstanceStatus"] == "available" else None

    db = wait_until(status, timeout=5, interval=0.02)
    assert seen == ["creating", "backing-up", "available"]
    assert db["Endpoint"] == {"Address": f"{ROLLBACK}.aaaaaaaaaa.us-east-1.rds.amazonaws.com", "Port": 5432}
    assert "InstanceCreateTime" in db and "LatestRestorableTime" in db
    # The request's settings are used and reported.
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == ["sg-0abc"]
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "agentauri-production"
    assert db["DBInstanceClass"] == "db.t3.micro" and db["DbInstancePort"] == 5432
    # Its first automated snapshot was taken while backing-up; the original is untouched.
    autos = rds.describe_db_snapshots(DBInstanceIdentifier=ROLLBACK, SnapshotType="automated")["DBSnapshots"]
    assert len(autos) == 1 and autos[0]["DBSnapshotIdentifier"].startswith(f"rds:{ROLLBACK}-")
    assert instance(rds, DB)["DBInstanceStatus"] == "available"


def test_restore_request_settings_override(rds_seeded, rds, emu):
    emu.set_rds_delay(0)
    db = restore(rds, DBInstanceClass="db.m5.large", MultiAZ=True, Port=6543, DBParameterGroupName="default.postgres15")
    assert db["DBInstanceStatus"] == "available"  # delay 0: at once, inside the call
    assert db["DBInstanceClass"] == "db.m5.large" and db["MultiAZ"] is True
    assert db["Endpoint"]["Port"] == 6543 and db["DbInstancePort"] == 6543
    assert [g["DBParameterGroupName"] for g in db["DBParameterGroups"]] == ["default.postgres15"]


def test_botocore_waiter_passes(rds_seeded, rds, emu):
    emu.set_rds_delay(300)
    restore(rds)
    rds.get_waiter("db_instance_available").wait(
        DBInstanceIdentifier=ROLLBACK, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert instance(rds, ROLLBACK)["DBInstanceStatus"] == "available"


@pytest.mark.parametrize("status", ["incompatible-restore", "incompatible-parameters", "failed"])
def test_restore_from_failing_snapshot_ends_in_that_status(rds_seeded, rds, emu, status):
    emu.set_rds_delay(200)
    emu.fail_restore(MANUAL_SNAPSHOT, status)
    assert restore(rds)["DBInstanceStatus"] == "creating"
    db = wait_until(lambda: (d := instance(rds, ROLLBACK))["DBInstanceStatus"] != "creating" and d, timeout=5)
    assert db["DBInstanceStatus"] == status and "Endpoint" not in db
    # botocore's DBInstanceAvailable waiter fails on it (a failure acceptor, not a timeout).
    with pytest.raises(botocore.exceptions.WaiterError, match="terminal failure state"):
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=ROLLBACK, WaiterConfig={"Delay": 0.1, "MaxAttempts": 5})
    # Another snapshot restores fine.
    emu.set_rds_delay(0)
    assert restore(rds, name="other", snapshot=AUTO_SNAPSHOT)["DBInstanceStatus"] == "available"


def test_point_in_time_restore(rds_seeded, rds, emu):
    emu.set_rds_delay(0)
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    db = rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=DB, TargetDBInstanceIdentifier="pitr", RestoreTime=when
    )["DBInstance"]
    assert db["DBInstanceStatus"] == "available"
    # AWS defaults for a point-in-time target: default security group, no subnet group, default
    # parameter group, single-AZ (moto copied the source's).
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] != ["sg-0abc"]
    assert "DBSubnetGroup" not in db
    db = rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=DB,
        TargetDBInstanceIdentifier="pitr2",
        UseLatestRestorableTime=True,
        VpcSecurityGroupIds=["sg-0abc"],
        DBSubnetGroupName="agentauri-production",
        MultiAZ=True,
    )["DBInstance"]
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == ["sg-0abc"]
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "agentauri-production" and db["MultiAZ"] is True


def test_point_in_time_restore_rules(rds_seeded, rds, emu):
    too_early = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)  # retention is 7 days
    kw = {"SourceDBInstanceIdentifier": DB, "TargetDBInstanceIdentifier": "pitr"}
    assert error_code(rds.restore_db_instance_to_point_in_time, RestoreTime=too_early, **kw) == "InvalidRestoreFault"
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert error_code(rds.restore_db_instance_to_point_in_time, RestoreTime=future, **kw) == "InvalidRestoreFault"
    assert (
        error_code(rds.restore_db_instance_to_point_in_time, RestoreTime=future, UseLatestRestorableTime=True, **kw)
        == "InvalidParameterCombination"
    )
    assert (
        error_code(rds.restore_db_instance_to_point_in_time, SourceDBInstanceIdentifier="nope", TargetDBInstanceIdentifier="x")
        == "DBInstanceNotFound"
    )
    # A failing source makes its point-in-time restores fail.
    emu.set_rds_delay(0)
    emu.fail_point_in_time_restore(DB, "incompatible-parameters")
    db = rds.restore_db_instance_to_point_in_time(UseLatestRestorableTime=True, **kw)["DBInstance"]
    assert db["DBInstanceStatus"] == "incompatible-parameters"
    assert emu.control("GET", "rds/fail") == {"failing": {"snapshots": {}, "sources": {DB: "incompatible-parameters"}}}


def test_create_snapshot_goes_creating_then_available(rds_seeded, rds, emu):
    emu.set_rds_delay(400)
    snap = rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier="before-rollback")["DBSnapshot"]
    assert snap["Status"] == "creating" and snap["PercentProgress"] == 0
    # Restoring from it while it is being made is refused, as in AWS.
    assert error_code(restore, rds=rds, snapshot="before-rollback") == "InvalidDBSnapshotState"
    rds.get_waiter("db_snapshot_available").wait(
        DBSnapshotIdentifier="before-rollback", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    snap = rds.describe_db_snapshots(DBSnapshotIdentifier="before-rollback")["DBSnapshots"][0]
    assert snap["Status"] == "available" and snap["PercentProgress"] == 100 and snap["SnapshotType"] == "manual"


def test_modify_goes_modifying_then_available(rds_seeded, rds, emu):
    emu.set_rds_delay(300)
    db = rds.modify_db_instance(DBInstanceIdentifier=DB, DBInstanceClass="db.t3.small", ApplyImmediately=True)["DBInstance"]
    assert db["DBInstanceStatus"] == "modifying"
    assert error_code(rds.modify_db_instance, DBInstanceIdentifier=DB, BackupRetentionPeriod=3) == "InvalidDBInstanceState"
    assert error_code(rds.create_db_snapshot, DBInstanceIdentifier=DB, DBSnapshotIdentifier="x") == "InvalidDBInstanceState"
    assert emu.advance_rds() == {"finished": 1}
    db = instance(rds, DB)
    assert db["DBInstanceStatus"] == "available" and db["DBInstanceClass"] == "db.t3.small"


def test_create_db_instance_moves_too(emu, rds):
    emu.set_rds_delay(3_600_000)
    db = rds.create_db_instance(
        DBInstanceIdentifier="fresh", Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="u",
        MasterUserPassword="password123", AllocatedStorage=20,
    )["DBInstance"]
    assert db["DBInstanceStatus"] == "creating" and "Endpoint" not in db
    assert rds.describe_db_snapshots(DBInstanceIdentifier="fresh")["DBSnapshots"] == []  # no backup yet
    status = emu.control("GET", "status")["rds"]
    assert status["transitions_in_progress"] == 1 and status["delay_ms"] == 3_600_000
    emu.advance_rds()
    assert instance(rds, "fresh")["DBInstanceStatus"] == "available"
    assert len(rds.describe_db_snapshots(DBInstanceIdentifier="fresh", SnapshotType="automated")["DBSnapshots"]) == 1


def test_health_secret_endpoint_follows_the_handover(rds_seeded, rds, sm, emu):
    emu.set_rds_delay(0)
    emu.mark_bad("secret-endpoint", DB_SECRET, ROLLBACK)
    # No instance yet, and the secret names the old one.
    assert emu.health() == {"healthy": False, "bad_live": [f"secret-endpoint {DB_SECRET} not at {ROLLBACK}"]}
    address = restore(rds)["Endpoint"]["Address"]
    assert emu.health()["healthy"] is False
    sm.update_secret(SecretId=DB_SECRET, SecretString=f"postgres://user:pass@{address}:5432/agentauri_backend")
    assert emu.health() == {"healthy": True, "bad_live": []}
    sm.put_secret_value(SecretId=DB_SECRET, SecretString='{"host": "elsewhere.example", "port": 5432}')
    assert emu.health()["healthy"] is False
    sm.put_secret_value(SecretId=DB_SECRET, SecretString=f'{{"host": "{address}", "port": 5432}}')
    assert emu.health()["healthy"] is True


def test_health_secret_endpoint_needs_an_endpoint(rds_seeded, rds, sm, emu):
    emu.set_rds_delay(3_600_000)
    restore(rds)  # creating: no endpoint yet
    address = f"{ROLLBACK}.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
    sm.update_secret(SecretId=DB_SECRET, SecretString=f"postgres://user:pass@{address}:5432/db")
    emu.mark_bad("secret-endpoint", DB_SECRET, ROLLBACK)
    assert emu.health()["healthy"] is False
    emu.advance_rds()
    assert emu.health()["healthy"] is True


@pytest.mark.parametrize(
    "body, message",
    [
        ({"delay_ms": -1}, "delay_ms"),
        ({}, "delay_ms"),
    ],
)
def test_bad_rds_config(emu, body, message):
    with pytest.raises(Exception, match=message):
        emu.control("POST", "rds/config", body)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"snapshot": "s", "status": "broken"}, "'status' must be one of"),
        ({"status": "failed"}, "exactly one of"),
        ({"snapshot": "s", "source": "d"}, "exactly one of"),
    ],
)
def test_bad_rds_fail(emu, body, message):
    with pytest.raises(Exception, match=message):
        emu.control("POST", "rds/fail", body)


def test_rds_fail_list_clear_and_reset(emu):
    emu.fail_restore("Pre-Migration", "failed")
    assert emu.control("GET", "rds/fail")["failing"]["snapshots"] == {"pre-migration": "failed"}
    assert emu.control("DELETE", "rds/fail") == {"failing": {"snapshots": {}, "sources": {}}}
    emu.set_rds_delay(10)
    emu.fail_restore("x")
    emu.reset()
    assert emu.control("GET", "rds/config") == {"delay_ms": 1500}
    assert emu.control("GET", "status")["rds"]["failing"] == {"snapshots": {}, "sources": {}}
