"""Patches to moto 5.2.1's backends and responses, applied once per process at start-up.

Each module documents the moto gaps it closes; README.md lists them all.
"""

from __future__ import annotations

import threading

_applied = False
_lock = threading.Lock()

PINNED_MOTO = "5.2.1"


def apply_all() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        import moto

        if moto.__version__ != PINNED_MOTO:
            import warnings

            warnings.warn(
                f"rollback_emulator patches moto {PINNED_MOTO} internals but moto {moto.__version__} is "
                "installed; run `bash scripts/setup-python.sh` to install the pinned version",
                stacklevel=2,
            )
        from . import awslambda, cloudformation, cloudfront, cloudwatch, codepipeline, ecs, iam_auth, rds, s3, secretsmanager

        ecs.apply()
        awslambda.apply()
        secretsmanager.apply()
        rds.apply()
        cloudwatch.apply()
        codepipeline.apply()
        cloudformation.apply()
        s3.apply()
        iam_auth.apply()
        cloudfront.apply()
        _applied = True
