"""Lambda aliases: RevisionId is enforced and renewed; routing can be cleared; versions are Active."""

from __future__ import annotations

import botocore.exceptions
import pytest
from conftest import FUNCTION

MESSAGE = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetAlias API to retrieve the latest Revision Id"
)


def test_stale_revision_id_is_precondition_failed(seeded, lam):
    before = lam.get_alias(FunctionName=FUNCTION, Name="live")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1", RevisionId="not-the-revision")
    resp = err.value.response
    assert resp["Error"]["Code"] == "PreconditionFailedException"
    assert resp["Error"]["Message"] == MESSAGE
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "PreconditionFailedException"
    after = lam.get_alias(FunctionName=FUNCTION, Name="live")
    assert after["FunctionVersion"] == "2" and after["RevisionId"] == before["RevisionId"]


def test_matching_revision_id_updates_and_renews_it(seeded, lam):
    before = lam.get_alias(FunctionName=FUNCTION, Name="live")["RevisionId"]
    updated = lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1", RevisionId=before)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["FunctionVersion"] == "1" and updated["RevisionId"] != before
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["RevisionId"] == updated["RevisionId"]
    # The old RevisionId is now stale.
    with pytest.raises(botocore.exceptions.ClientError) as err:
        lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="2", RevisionId=before)
    assert err.value.response["Error"]["Code"] == "PreconditionFailedException"


def test_update_without_revision_id_also_renews_it(seeded, lam):
    before = lam.get_alias(FunctionName=FUNCTION, Name="live")["RevisionId"]
    after = lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")["RevisionId"]
    assert after != before


def test_routing_config_is_reported_and_can_be_cleared(seeded, lam):
    listed = lam.list_aliases(FunctionName=FUNCTION)["Aliases"]
    assert [(a["Name"], a["RoutingConfig"]["AdditionalVersionWeights"]) for a in listed] == [("live", {"1": 0.1})]
    assert listed[0]["RevisionId"]
    lam.update_alias(FunctionName=FUNCTION, Name="live", RoutingConfig={"AdditionalVersionWeights": {}})
    alias = lam.get_alias(FunctionName=FUNCTION, Name="live")
    assert alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {}) == {}
    assert alias["FunctionVersion"] == "2"
    assert "RoutingConfig" not in lam.list_aliases(FunctionName=FUNCTION)["Aliases"][0]


def test_update_without_routing_keeps_it(seeded, lam):
    lam.update_alias(FunctionName=FUNCTION, Name="live", Description="keep routing")
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.1}}


def test_invalid_routing_is_rejected(seeded, lam):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        lam.update_alias(FunctionName=FUNCTION, Name="live", RoutingConfig={"AdditionalVersionWeights": {"7": 0.5}})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_versions_are_active_with_description_and_last_modified(seeded, lam):
    for version, description in (("1", "release 1"), ("2", "release 2")):
        conf = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)
        assert conf["Version"] == version and conf["State"] == "Active"
        assert conf["Description"] == description and conf["LastModified"]
        assert conf["FunctionArn"].endswith(f":{FUNCTION}:{version}")
    versions = lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert all(v["State"] == "Active" and v["LastModified"] for v in versions)


def test_lambda_responses_are_json(seeded, lam):
    resp = lam.get_alias(FunctionName=FUNCTION, Name="live")
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"


def test_revision_id_is_compare_and_set_under_concurrency(seeded, lam):
    from concurrent.futures import ThreadPoolExecutor

    revision = lam.get_alias(FunctionName=FUNCTION, Name="live")["RevisionId"]

    def attempt(_):
        try:
            lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1", RevisionId=revision)
            return "ok"
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count("ok") == 1
    assert results.count("PreconditionFailedException") == 7
