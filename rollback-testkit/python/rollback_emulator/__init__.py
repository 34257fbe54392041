"""rollback_emulator: the AWS emulator for rollback's tests.

moto (pinned, in-process) speaks the real AWS protocols; this package patches the moto gaps
rollback depends on (ECS deployments and RDS statuses that move, Lambda alias RevisionId,
Secrets Manager staging labels, CloudWatch alarm filters, CodePipeline stage transitions),
serves CloudWatch in the Smithy RPC v2 CBOR protocol aws-sdk-rust speaks, injects faults,
counts calls and serves a control API under /_emulator/.
See README.md.

    from rollback_emulator import Emulator
    with Emulator(port=0) as emu:
        boto3.client("ecs", endpoint_url=emu.endpoint, ...)
"""

from .server import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Emulator, EmulatorControlError

__all__ = ["Emulator", "EmulatorControlError", "DEFAULT_REGION", "DEFAULT_ACCOUNT_ID"]
