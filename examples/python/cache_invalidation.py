"""Runbooks 000 + 002 "Cache Invalidation" + 004 "Communication": after the rollback, the
CDN cache is invalidated and the team is told.

Release 1.5.0 of the MCP server went to version 2 of ``agentcore-mcp-s3-tools-prod`` and its
``live`` alias, behind a CloudFront distribution whose edge caches still serve the bad
release's answers. One transaction moves the alias back, verified by the health check;
then, only because it succeeded, invalidates ``/*`` on the distribution (waited for until
Completed, journaled so a resume never makes a second one) and records the all-clear. A
webhook (a local HTTP server here, Slack's incoming webhook in real life) is told when the
run starts and how it ended; its URL's path, a credential, is shown nowhere.

Run: ``.venv/bin/python examples/python/cache_invalidation.py [--endpoint URL]``
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rollback
from emulators import arguments, aws, expect, health_check, progress
from rollback.aws import CloudFrontInvalidation, LambdaAlias

FUNCTION = "agentcore-mcp-s3-tools-prod"


def team_channel() -> tuple[ThreadingHTTPServer, str]:
    """A stand-in for the team's Slack webhook: prints each notice it is sent."""

    class Channel(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body: Any = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            print("   [#incidents] " + str(body["text"]).replace("\n", "\n                "), flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Channel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXXXXXX"


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        seeded = emu.seed(
            {
                "lambda": [{"function": FUNCTION, "alias": "live", "versions": ["release 1.4.0", "release 1.5.0"], "alias_version": "2"}],
                "cloudfront": [{"name": "mcp", "origin": "mcp.example.com"}],
            }
        )
        distribution = seeded["cloudfront"][0]["id"]
        emu.control("POST", "cloudfront/config", {"delay_ms": 1500})
        emu.mark_bad("lambda", f"{FUNCTION}:live", "2")
        print(f"== incident: release 1.5.0 is live behind CloudFront {distribution}; health answers {emu.health()}")

        server, url = team_channel()
        try:
            report = (
                rollback.Transaction("roll back the MCP server and its cache", reason="INC-3112: MCP tool bug in release 1.5.0")
                .add(LambdaAlias(FUNCTION, "live"), rollback.Previous(), verify=health_check(emu), timeout=60)
                .on_success(CloudFrontInvalidation(distribution, ["/*"], timeout=120))
                .on_success(lambda: "status page set to resolved", name="all clear")
                .notify(rollback.Webhook(url, timeout=5))
                .run(on_event=progress(time.monotonic()))
            )
        finally:
            server.shutdown()
        print(f"\n{report}")
        for a in report.on_success:
            print(f"after the rollback: {a.name}: {'ok' if a.ok else 'FAILED'}: {a.message}")
        calls = emu.calls()["operations"]
        print(f"CloudFront calls: CreateInvalidation {calls.get('CreateInvalidation', 0)}, GetInvalidation {calls.get('GetInvalidation', 0)}")
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
