"""Secrets Manager: staging labels, on top of moto 5.2.1.

* GetSecretValue with neither VersionId nor VersionStage returned moto's ``default_version_id``,
  which UpdateSecretVersionStage never moves: after moving AWSCURRENT it kept returning the
  old value. Now it returns the version that has AWSCURRENT, and UpdateSecretVersionStage
  keeps ``default_version_id`` on that version (PutSecretValue relies on it to decide which
  version becomes AWSPREVIOUS).
* UpdateSecretVersionStage could attach a label twice to one version, and attached labels other
  than AWSCURRENT to a second version without RemoveFromVersionId; both are fixed.
* ListSecretVersionIds answered ARN = the secret's name, CreatedDate = the time of the call
  (every version looked new), NextToken "" and a KeyError (HTTP 500) for a missing secret;
  versions without labels were listed though IncludeDeprecated was false. Now: the real ARN,
  each version's creation time, no NextToken, ResourceNotFoundException, deprecated versions
  only with IncludeDeprecated.
* Version creation times are kept with sub-second precision (moto: whole seconds), so
  versions made in the same second still sort in creation order.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from moto.secretsmanager import models as sm_models
from moto.secretsmanager import responses as sm_responses
from moto.secretsmanager.exceptions import InvalidParameterException, SecretNotFoundException

Backend = sm_models.SecretsManagerBackend
LOCK = threading.RLock()
_orig: dict[str, Any] = {}
_last_created = [0.0]


def _get_secret_value(self: Backend, secret_id: str, version_id: str, version_stage: str) -> dict[str, Any]:
    if not version_id and not version_stage:
        version_stage = "AWSCURRENT"
    with LOCK:
        return _orig["get_secret_value"](self, secret_id, version_id, version_stage)


def _update_secret_version_stage(
    self: Backend, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
) -> tuple[str, str]:
    with LOCK:
        if move_to_version_id and secret_id in self.secrets:
            # AWS: a label attached to another version can only be moved by naming that
            # version in RemoveFromVersionId (moto checks this for AWSCURRENT only).
            holders = [
                vid
                for vid, v in self.secrets[secret_id].versions.items()
                if version_stage in v["version_stages"] and vid != move_to_version_id
            ]
            if holders and remove_from_version_id != holders[0] and version_stage != "AWSCURRENT":
                raise InvalidParameterException(
                    f"The parameter RemoveFromVersionId can't be empty. Staging label {version_stage} is "
                    f"currently attached to version {holders[0]}, so you must explicitly reference that "
                    "version in RemoveFromVersionId."
                )
        arn, name = _orig["update_secret_version_stage"](
            self, secret_id, version_stage, remove_from_version_id, move_to_version_id
        )
        secret = self.secrets[secret_id]
        for version in secret.versions.values():
            stages = version["version_stages"]
            version["version_stages"] = list(dict.fromkeys(stages))
        current = [vid for vid, v in secret.versions.items() if "AWSCURRENT" in v["version_stages"]]
        if current:
            secret.default_version_id = current[0]
        return arn, name


def _add_secret(self: Backend, secret_id: str, *args: Any, **kwargs: Any) -> Any:
    with LOCK:
        secret, new_version = _orig["_add_secret"](self, secret_id, *args, **kwargs)
        if new_version:
            now = max(time.time(), _last_created[0] + 0.001)
            _last_created[0] = now
            vid = kwargs.get("version_id")
            for version_id, version in secret.versions.items():
                if (vid and version_id == vid) or (not vid and version_id == secret.default_version_id):
                    if isinstance(version.get("createdate"), int):
                        version["createdate"] = round(now, 3)
        return secret, new_version


def _list_secret_version_ids_response(self: Any) -> str:
    secret_id = self._get_param("SecretId", if_none="")
    include_deprecated = bool(self._get_param("IncludeDeprecated", if_none=False))
    backend = self.backend
    with LOCK:
        if secret_id not in backend.secrets:
            raise SecretNotFoundException()
        secret = backend.secrets[secret_id]
        versions = []
        for version_id, version in secret.versions.items():
            stages = list(version["version_stages"])
            if not stages and not include_deprecated:
                continue
            versions.append(
                {"VersionId": version_id, "VersionStages": stages, "CreatedDate": version.get("createdate")}
            )
        versions.sort(key=lambda v: v["CreatedDate"] or 0)
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "Versions": versions})


def apply() -> None:
    if _orig:
        return
    for name, new in (
        ("get_secret_value", _get_secret_value),
        ("update_secret_version_stage", _update_secret_version_stage),
        ("_add_secret", _add_secret),
    ):
        _orig[name] = getattr(Backend, name)
        setattr(Backend, name, new)
    _orig["list_secret_version_ids_response"] = sm_responses.SecretsManagerResponse.list_secret_version_ids
    sm_responses.SecretsManagerResponse.list_secret_version_ids = _list_secret_version_ids_response
