"""S3: GetBucketVersioning answered with the wrong XML root on moto 5.2.1.

moto 5.2.1 serialises GetBucketVersioning as ``<GetBucketVersioningResponse>``; AWS (and
aws-sdk-rust's strict parser) use ``<VersioningConfiguration>``, with no ``Status`` when
versioning was never enabled. Here the answer is AWS's.
"""

from __future__ import annotations

from typing import Any

from moto.s3 import responses as s3_responses

_orig: dict[str, Any] = {}
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _get_bucket_versioning(self: Any) -> Any:
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{status}</Status>" if status else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="{XMLNS}">{inner}</VersioningConfiguration>'
    return 200, {"Content-Type": "application/xml"}, body


def apply() -> None:
    if _orig:
        return
    _orig["get_bucket_versioning"] = s3_responses.S3Response.get_bucket_versioning
    s3_responses.S3Response.get_bucket_versioning = _get_bucket_versioning  # type: ignore[method-assign]
