"""CloudFront: invalidations that take time to complete and honour CallerReference, as AWS's."""

from __future__ import annotations

import botocore.exceptions
import pytest
from conftest import _client, wait_until


@pytest.fixture
def cf(emu):
    return _client(emu, "cloudfront")


@pytest.fixture
def dist(emu):
    (d,) = emu.seed({"cloudfront": [{"name": "web", "origin": "web.example.com"}]})["cloudfront"]
    return d


def batch(ref, *paths):
    return {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": ref}


def test_seeded_distribution(dist, cf):
    assert dist["name"] == "web" and dist["id"] and dist["arn"].endswith(f":distribution/{dist['id']}")
    got = cf.get_distribution(Id=dist["id"])["Distribution"]
    assert got["DistributionConfig"]["Comment"] == "web"
    assert got["DomainName"] == dist["domain_name"]


def test_seeding_a_name_twice_is_refused(dist, emu):
    with pytest.raises(Exception, match="already exists"):
        emu.seed({"cloudfront": [{"name": "web"}]})


def test_invalidation_is_in_progress_then_completed(dist, cf, emu):
    emu.set_cloudfront_delay(300)
    inv = cf.create_invalidation(DistributionId=dist["id"], InvalidationBatch=batch("r1", "/*"))["Invalidation"]
    assert inv["Status"] == "InProgress"
    got = cf.get_invalidation(DistributionId=dist["id"], Id=inv["Id"])["Invalidation"]
    assert got["Status"] == "InProgress" and got["InvalidationBatch"]["Paths"]["Items"] == ["/*"]
    wait_until(lambda: cf.get_invalidation(DistributionId=dist["id"], Id=inv["Id"])["Invalidation"]["Status"] == "Completed", timeout=5)


def test_zero_delay_completes_at_once(dist, cf, emu):
    emu.set_cloudfront_delay(0)
    inv = cf.create_invalidation(DistributionId=dist["id"], InvalidationBatch=batch("r0", "/index.html"))["Invalidation"]
    assert inv["Status"] == "Completed"
    assert emu.control("GET", "cloudfront/config") == {"delay_ms": 0}
    emu.reset()
    assert emu.control("GET", "cloudfront/config") == {"delay_ms": 1000}


def test_caller_reference_is_idempotent(dist, cf, emu):
    first = cf.create_invalidation(DistributionId=dist["id"], InvalidationBatch=batch("run-1", "/*"))["Invalidation"]
    again = cf.create_invalidation(DistributionId=dist["id"], InvalidationBatch=batch("run-1", "/*"))["Invalidation"]
    assert again["Id"] == first["Id"]
    assert cf.list_invalidations(DistributionId=dist["id"])["InvalidationList"]["Quantity"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cf.create_invalidation(DistributionId=dist["id"], InvalidationBatch=batch("run-1", "/other"))
    assert err.value.response["Error"]["Code"] == "InvalidationBatchAlreadyExists"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    calls = emu.calls()["by_service"]["cloudfront"]
    assert calls == {"CreateInvalidation": 3, "ListInvalidations": 1}


def test_bad_paths_and_distributions(dist, cf):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cf.create_invalidation(DistributionId=dist["id"], InvalidationBatch=batch("r2", "index.html"))
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cf.create_invalidation(DistributionId="E000000000000", InvalidationBatch=batch("r3", "/*"))
    assert err.value.response["Error"]["Code"] == "NoSuchDistribution"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cf.get_distribution(Id="E000000000000")
    assert err.value.response["Error"]["Code"] == "NoSuchDistribution"
