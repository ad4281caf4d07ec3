"""The test cluster's own rules, where KMock alone differs from a real API server: the
namespaces endpoints, generateName, Secret stringData, JSON patches, no-op writes, custom
resources stored as given (no schema: the real server's is tested in tests/cluster), and unknown
resources."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from shareferry.kube import (
    CONFIGMAPS,
    COPYJOBS,
    NAMESPACES,
    SECRETS,
    KubeClient,
    KubeError,
    NotFound,
    Resource,
)
from tests.support.kube_cluster import KubeCluster


async def test_namespaces_are_a_cluster_scoped_resource(kube: KubeClient) -> None:
    names = [ns["metadata"]["name"] for ns in await kube.list(NAMESPACES)]
    assert names == ["default", "other"]
    created = await kube.create(NAMESPACES, None, {"metadata": {"name": "team-a"}})
    assert "namespace" not in created["metadata"]
    assert (await kube.get(NAMESPACES, None, "team-a"))["metadata"]["uid"] == created["metadata"]["uid"]
    await kube.create(CONFIGMAPS, "team-a", {"metadata": {"name": "now-possible"}})


async def test_generate_name_makes_unique_names(kube: KubeClient) -> None:
    first = await kube.create(CONFIGMAPS, "default", {"metadata": {"generateName": "result-"}})
    second = await kube.create(CONFIGMAPS, "default", {"metadata": {"generateName": "result-"}})
    for made in (first, second):
        assert made["metadata"]["name"].startswith("result-")
        assert len(made["metadata"]["name"]) == len("result-") + 5
    assert first["metadata"]["name"] != second["metadata"]["name"]
    with pytest.raises(KubeError) as nameless:
        await kube.create(CONFIGMAPS, "default", {"metadata": {}})
    assert nameless.value.status == 422


async def test_secret_string_data_is_stored_as_base64_data(kube: KubeClient) -> None:
    created = await kube.create(SECRETS, "default", {"metadata": {"name": "s"}, "stringData": {"KEY": "abc"}})
    assert created["data"] == {"KEY": "YWJj"}
    assert "stringData" not in created
    patched = await kube.patch(SECRETS, "default", "s", {"stringData": {"OTHER": "xyz"}})
    assert patched["data"] == {"KEY": "YWJj", "OTHER": "eHl6"}


async def test_json_patches_apply_and_a_failed_test_is_422(cluster: KubeCluster, kube: KubeClient) -> None:
    made = await kube.create(CONFIGMAPS, "default", {"metadata": {"name": "j"}, "data": {"a": "1"}})
    url = cluster.url + CONFIGMAPS.path("default", "j")
    headers = {"Content-Type": "application/json-patch+json"}
    version = made["metadata"]["resourceVersion"]
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/data/b", "value": "2"},
    ]
    async with aiohttp.ClientSession() as http:
        async with http.patch(url, json=ops, headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["data"] == {"a": "1", "b": "2"}
        async with http.patch(url, json=ops, headers=headers) as response:  # the version moved on
            assert response.status == 422
            assert (await response.json())["reason"] == "Invalid"


async def test_a_write_that_changes_nothing_keeps_the_version(kube: KubeClient) -> None:
    made = await kube.create(CONFIGMAPS, "default", {"metadata": {"name": "same"}, "data": {"a": "1"}})
    again = await kube.patch(CONFIGMAPS, "default", "same", {"data": {"a": "1"}})
    assert again["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    events = [
        event["type"]
        async for event in kube.watch(
            CONFIGMAPS, "default", resource_version=made["metadata"]["resourceVersion"], timeout_seconds=1
        )
    ]
    assert events == []


async def test_custom_resources_are_stored_as_given(kube: KubeClient) -> None:
    invalid = {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": "raw"},
        "spec": {"parallelism": 0, "unknownField": True},
    }
    stored = await kube.create(COPYJOBS, "default", invalid)
    assert stored["spec"] == invalid["spec"]


async def test_unknown_resources_and_subresources_are_404(kube: KubeClient) -> None:
    with pytest.raises(NotFound) as caught:
        await kube.list(Resource("apps", "v1", "deployments"), "default")
    assert caught.value.message == "the server could not find the requested resource"
    await kube.create(CONFIGMAPS, "default", {"metadata": {"name": "c"}})
    with pytest.raises(NotFound):
        await kube.patch(CONFIGMAPS, "default", "c", {"data": {}}, subresource="scale")
