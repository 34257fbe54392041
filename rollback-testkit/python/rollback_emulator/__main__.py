"""python -m rollback_emulator --host 127.0.0.1 --port 0

Prints exactly one line ``READY http://127.0.0.1:<port>`` on stdout once requests are served,
then serves until SIGTERM / SIGINT (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import DEFAULT_ACCOUNT_ID, DEFAULT_CONVERGENCE_MS, DEFAULT_RDS_DELAY_MS, DEFAULT_REGION, Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollback_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"default region (default {DEFAULT_REGION})")
    parser.add_argument(
        "--convergence-ms",
        type=int,
        default=DEFAULT_CONVERGENCE_MS,
        help=f"how long an ECS deployment takes to converge (default {DEFAULT_CONVERGENCE_MS})",
    )
    parser.add_argument(
        "--rds-delay-ms",
        type=int,
        default=DEFAULT_RDS_DELAY_MS,
        help=f"how long RDS creates, restores, snapshots and modifications take (default {DEFAULT_RDS_DELAY_MS})",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    emulator = Emulator(
        host=args.host,
        port=args.port,
        region=args.region,
        account_id=DEFAULT_ACCOUNT_ID,
        convergence_ms=args.convergence_ms,
        rds_delay_ms=args.rds_delay_ms,
        verbose=args.verbose,
    )
    emulator.start()
    sys.stdout.write(f"READY {emulator.endpoint}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
