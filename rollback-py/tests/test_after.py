"""After the rollback (runbooks 000, 002, 004): on-success actions (callables and
rollback.aws.CloudFrontInvalidation against the emulator, through the real AWS SDK for
Rust) and notifications (rollback.Webhook, posting to a local HTTP server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import rollback
from conftest import EmulatorHandle
from rollback.aws import CloudFrontInvalidation, LambdaAlias

FN = "storefront-web"
SECRET_PATH = "/services/T000/B000/very-secret-token"


class Hook:
    """A local HTTP server keeping the JSON bodies posted to it, answering `status`."""

    def __init__(self, status: int = 200) -> None:
        bodies: list[Any] = []
        self.bodies = bodies
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def seed(emu: EmulatorHandle, delay_ms: int = 300) -> str:
    seeded = emu.seed(
        {
            "lambda": [{"function": FN, "alias": "live", "versions": ["release 1", "release 2"], "alias_version": "2"}],
            "cloudfront": [{"name": "storefront", "origin": "storefront.example.com"}],
        }
    )
    emu.set_cloudfront_delay(delay_ms)
    return str(seeded["cloudfront"][0]["id"])


def invalidations(emu: EmulatorHandle, distribution: str) -> list[dict[str, Any]]:
    import boto3

    cf = boto3.client("cloudfront", endpoint_url=emu.endpoint, region_name="us-east-1")
    listed = cf.list_invalidations(DistributionId=distribution)["InvalidationList"]
    return list(listed.get("Items") or [])


def test_on_success_runs_after_a_success_only_and_is_reported(emu: EmulatorHandle, tmp_path: Path) -> None:
    seed(emu)
    ran: list[str] = []

    def all_clear() -> str:
        ran.append("all clear")
        return "status page green"

    report = (
        rollback.Transaction("storefront back", reason="release 2 serves 5xx", journal=tmp_path / "ok.jsonl")
        .add(LambdaAlias(FN, "live"), rollback.Previous())
        .on_success(all_clear, name="all clear")
        .on_failure(lambda: ran.append("maintenance"), name="maintenance page")
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    assert ran == ["all clear"]
    assert [(a.name, a.ok, a.message) for a in report.on_success] == [("all clear", True, "status page green")]
    assert report.actions == []
    assert "on-success all clear ok: status page green" in str(report)
    kinds = [json.loads(line)["record"] for line in (tmp_path / "ok.jsonl").read_text().splitlines()]
    assert kinds.count("action_intent") == 1 and kinds.count("action") == 1

    def broken() -> str:
        raise RuntimeError("status page API is down")

    report = (
        rollback.Transaction("storefront forward", reason="test", journal=tmp_path / "fail.jsonl")
        .add(LambdaAlias(FN, "live"), rollback.Exact("2"))
        .on_success(broken, name="status page")
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    assert not report.on_success[0].ok
    assert "status page API is down" in report.on_success[0].message
    assert any("on-success action \"status page\" failed" in n for n in report.needs_attention), report.needs_attention


def test_cloudfront_invalidation_after_the_rollback(emu: EmulatorHandle) -> None:
    distribution = seed(emu)
    purge = CloudFrontInvalidation(distribution, ["/*"], timeout=60)
    assert (purge.distribution, purge.paths) == (distribution, ["/*"])
    assert purge.name == f"invalidate CloudFront {distribution} /*"
    assert isinstance(purge, rollback.Action)
    report = (
        rollback.Transaction("storefront back", reason="release 2 serves 5xx")
        .add(LambdaAlias(FN, "live"), rollback.Previous())
        .on_success(purge)
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    done = invalidations(emu, distribution)
    assert [i["Status"] for i in done] == ["Completed"]
    assert report.on_success[0].message == f"invalidation {done[0]['Id']} of 1 path(s) Completed"
    assert emu.count("CreateInvalidation") == 1
    assert emu.count("GetDistribution") == 1
    assert emu.count("GetInvalidation") >= 2  # seen InProgress, then Completed


def test_bad_invalidations_are_refused_before_anything_changes(emu: EmulatorHandle) -> None:
    seed(emu)
    with pytest.raises(rollback.InvalidInputError, match="does not start with /"):
        CloudFrontInvalidation("E2QWRUHAPOMQZL", ["index.html"])
    with pytest.raises(rollback.InvalidInputError, match="not a distribution id"):
        CloudFrontInvalidation("d111.cloudfront.net", ["/*"])
    with pytest.raises(TypeError):
        CloudFrontInvalidation("E2QWRUHAPOMQZL", "/*")  # a str is not a list of paths
    missing = CloudFrontInvalidation("E0000000000000", ["/*"])
    tx = rollback.Transaction("storefront back", reason="test").add(LambdaAlias(FN, "live"), rollback.Previous()).on_success(missing)
    for dry_run in (True, False):
        with pytest.raises(rollback.NotFoundError, match="E0000000000000"):
            tx.run(dry_run=dry_run)
    assert emu.mutations() == 0
    assert LambdaAlias(FN, "live").current().id == "2"
    with pytest.raises(rollback.InvalidInputError, match="name= is for a callable"):
        tx.on_success(missing, name="purge")
    with pytest.raises(TypeError, match="on_success takes a callable or a rollback.Action"):
        tx.on_success("purge")  # type: ignore[arg-type]


def test_webhook_is_told_of_the_start_and_the_end_without_its_secret(emu: EmulatorHandle, hook: Hook) -> None:
    seed(emu)
    webhook = rollback.Webhook(hook.url, format="json", timeout=5)
    assert webhook.format == "json" and webhook.name == "webhook 127.0.0.1"
    assert "very-secret-token" not in repr(webhook)
    report = (
        rollback.Transaction("storefront back", reason="release 2 serves 5xx")
        .add(LambdaAlias(FN, "live"), rollback.Previous())
        .notify(webhook)
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    assert [b["event"] for b in hook.bodies] == ["started", "ended"], hook.bodies
    assert hook.paths == [SECRET_PATH, SECRET_PATH]
    ended = hook.bodies[1]
    assert ended["outcome"] == "succeeded" and ended["reason"] == "release 2 serves 5xx"
    assert all("very-secret-token" not in json.dumps(b) for b in hook.bodies)
    assert ended["targets"] == [{"target": f"lambda-alias/{FN}:live", "from": "2", "to": "1"}]
    assert "very-secret-token" not in str(report)


def test_slack_format_and_a_failing_webhook_never_fail_the_run(emu: EmulatorHandle) -> None:
    seed(emu)
    down = Hook(status=500)
    try:
        report = (
            rollback.Transaction("storefront back", reason="release 2 serves 5xx")
            .add(LambdaAlias(FN, "live"), rollback.Previous())
            .notify(rollback.Webhook(down.url))
            .run()
        )
    finally:
        down.close()
    assert report.outcome == "succeeded", str(report)
    assert all(set(b) == {"text"} for b in down.bodies) and len(down.bodies) == 2, down.bodies
    assert "storefront back" in down.bodies[0]["text"]
    assert any("webhook 127.0.0.1" in n and "HTTP 500" in n for n in report.needs_attention), report.needs_attention
    assert all("very-secret-token" not in n for n in report.needs_attention)
    for bad, match in [("ftp://example.com/x", "not http"), ("not a url", "does not parse")]:
        with pytest.raises(rollback.InvalidInputError, match=match):
            rollback.Webhook(bad)
    with pytest.raises(rollback.InvalidInputError, match="not slack or json"):
        rollback.Webhook("https://hooks.example.com/x", format="xml")  # type: ignore[arg-type]
