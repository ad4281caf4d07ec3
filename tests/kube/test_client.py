"""The kube client (the facade over the ``kubernetes`` package) against the test API server
over HTTP: CRUD, merge patches, the status subresource, error mapping, selectors, watches (and
their 410 Gone), deletion, the bearer token's handling and the thread pool."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes.client
import pytest
import yaml
from aiohttp import web

from shareferry.kube import (
    CONFIGMAPS,
    COPYJOBS,
    JOBS,
    PODS,
    Conflict,
    KubeClient,
    KubeError,
    NotFound,
)
from tests.support.kube_cluster import KubeCluster


def copyjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": name},
        "spec": {
            "source": {"pvc": {"claimName": "data"}},
            "destination": {"fileShare": {"name": "reports"}},
            **spec,
        },
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


async def test_create_get_list_delete_round_trip(kube: KubeClient) -> None:
    created = await kube.create(CONFIGMAPS, "default", configmap("settings", colour="blue"))
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"

    fetched = await kube.get(CONFIGMAPS, "default", "settings")
    assert fetched == created
    names = [item["metadata"]["name"] for item in await kube.list(CONFIGMAPS, "default")]
    assert names == ["settings"]
    assert await kube.list(CONFIGMAPS, "other") == []
    assert [item["metadata"]["name"] for item in await kube.list(CONFIGMAPS)] == ["settings"]

    await kube.delete(CONFIGMAPS, "default", "settings")
    with pytest.raises(NotFound) as caught:
        await kube.get(CONFIGMAPS, "default", "settings")
    assert caught.value.status == 404
    assert caught.value.reason == "NotFound"
    assert caught.value.message == 'configmaps "settings" not found'


async def test_merge_patch_deletes_null_keys_and_replaces_lists(kube: KubeClient) -> None:
    await kube.create(
        CONFIGMAPS,
        "default",
        {
            "metadata": {
                "name": "m",
                "annotations": {"keep": "1", "drop": "2"},
                "finalizers": ["a/b", "c/d"],
            },
            "data": {"x": "1"},
        },
    )
    patched = await kube.patch(
        CONFIGMAPS,
        "default",
        "m",
        {"metadata": {"annotations": {"drop": None, "new": "3"}, "finalizers": ["e/f"]}, "data": {"y": "2"}},
    )
    assert patched["metadata"]["annotations"] == {"keep": "1", "new": "3"}
    assert patched["metadata"]["finalizers"] == ["e/f"]
    assert patched["data"] == {"x": "1", "y": "2"}
    assert int(patched["metadata"]["resourceVersion"]) > 0


async def test_status_subresource_is_separate_and_generation_follows_the_spec(kube: KubeClient) -> None:
    body = copyjob("job1", parallelism=1)
    body["status"] = {"phase": "Succeeded"}
    created = await kube.create(COPYJOBS, "default", body)
    assert "status" not in created  # a client cannot create an object with a status
    assert created["metadata"]["generation"] == 1

    status = await kube.patch(
        COPYJOBS, "default", "job1", {"status": {"phase": "Running"}}, subresource="status"
    )
    assert status["status"] == {"phase": "Running"}
    assert status["metadata"]["generation"] == 1

    # The status endpoint ignores everything but status; the main endpoint ignores status.
    ignored = await kube.patch(
        COPYJOBS,
        "default",
        "job1",
        {"spec": {"parallelism": 4}, "status": {"phase": "Failed"}},
        subresource="status",
    )
    assert ignored["spec"]["parallelism"] == 1 and ignored["status"]["phase"] == "Failed"
    main = await kube.patch(
        COPYJOBS, "default", "job1", {"spec": {"parallelism": 4}, "status": {"phase": "Pending"}}
    )
    assert main["spec"]["parallelism"] == 4 and main["status"]["phase"] == "Failed"
    assert main["metadata"]["generation"] == 2

    labelled = await kube.patch(COPYJOBS, "default", "job1", {"metadata": {"labels": {"team": "data"}}})
    assert labelled["metadata"]["generation"] == 2  # metadata changes do not bump it


async def test_already_exists_and_stale_versions_are_conflicts(kube: KubeClient) -> None:
    first = await kube.create(CONFIGMAPS, "default", configmap("c", a="1"))
    with pytest.raises(Conflict) as exists:
        await kube.create(CONFIGMAPS, "default", configmap("c"))
    assert exists.value.status == 409
    assert exists.value.reason == "AlreadyExists"
    assert exists.value.message == 'configmaps "c" already exists'

    await kube.patch(CONFIGMAPS, "default", "c", {"data": {"a": "2"}})
    stale = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "data": {"a": "3"}}
    with pytest.raises(Conflict) as modified:
        await kube.patch(CONFIGMAPS, "default", "c", stale)
    assert modified.value.reason == "Conflict"
    assert "the object has been modified" in modified.value.message
    with pytest.raises(Conflict):
        await kube.replace(CONFIGMAPS, "default", "c", {**configmap("c", a="4"), **stale})

    current = await kube.get(CONFIGMAPS, "default", "c")
    replaced = await kube.replace(
        CONFIGMAPS,
        "default",
        "c",
        {
            "metadata": {"name": "c", "resourceVersion": current["metadata"]["resourceVersion"]},
            "data": {"b": "1"},
        },
    )
    assert replaced["data"] == {"b": "1"}
    assert replaced["metadata"]["uid"] == first["metadata"]["uid"]


async def test_other_errors_keep_the_status_reason_and_message(kube: KubeClient) -> None:
    with pytest.raises(KubeError) as invalid:
        await kube.create(CONFIGMAPS, "default", {"metadata": {}})
    assert not isinstance(invalid.value, (NotFound, Conflict))
    assert invalid.value.status == 422
    assert invalid.value.reason == "Invalid"
    assert invalid.value.message == (
        "ConfigMap is invalid: metadata.name: Required value: name or generateName is required"
    )

    with pytest.raises(NotFound) as namespace:
        await kube.create(CONFIGMAPS, "nowhere", configmap("c"))
    assert namespace.value.message == 'namespaces "nowhere" not found'

    with pytest.raises(KubeError) as selector:
        await kube.list(CONFIGMAPS, "default", label_selector="a in b")
    assert (selector.value.status, selector.value.reason) == (400, "BadRequest")


async def test_a_non_json_error_body_still_becomes_a_kube_error(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    cluster.emulator["get", kmock.resource("v1/configmaps")] << 503 << b"upstream is down"
    with pytest.raises(KubeError) as caught:
        await kube.get(CONFIGMAPS, "default", "anything")
    assert (caught.value.status, caught.value.reason) == (503, "ServiceUnavailable")
    assert caught.value.message == "upstream is down"


async def test_label_selectors(kube: KubeClient) -> None:
    await kube.create(CONFIGMAPS, "default", configmap("a", {"app": "ferry", "tier": "web"}))
    await kube.create(CONFIGMAPS, "default", configmap("b", {"app": "ferry", "tier": "db"}))
    await kube.create(CONFIGMAPS, "default", configmap("c", {"app": "other"}))

    async def names(selector: str) -> list[str]:
        return [
            item["metadata"]["name"]
            for item in await kube.list(CONFIGMAPS, "default", label_selector=selector)
        ]

    assert await names("app=ferry") == ["a", "b"]
    assert await names("app==ferry,tier!=db") == ["a"]
    assert await names("tier in (db, cache)") == ["b"]
    assert await names("tier notin (db)") == ["a", "c"]
    assert await names("tier") == ["a", "b"]
    assert await names("!tier") == ["c"]


async def test_watch_streams_changes_after_a_list(kube: KubeClient) -> None:
    await kube.create(CONFIGMAPS, "default", configmap("before"))
    listing = await kube.request("GET", CONFIGMAPS.path("default"))
    version = listing["metadata"]["resourceVersion"]

    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event in kube.watch(CONFIGMAPS, "default", resource_version=version, timeout_seconds=5):
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                return

    watcher = asyncio.create_task(consume())
    await kube.create(CONFIGMAPS, "default", configmap("after"))
    await kube.patch(CONFIGMAPS, "default", "after", {"data": {"k": "v"}})
    await kube.delete(CONFIGMAPS, "default", "after")
    await asyncio.wait_for(watcher, timeout=5)
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


async def test_watch_from_scratch_lists_first_and_ends_after_its_timeout(kube: KubeClient) -> None:
    await kube.create(CONFIGMAPS, "default", configmap("one", {"pick": "yes"}))
    await kube.create(CONFIGMAPS, "default", configmap("two"))
    started = asyncio.get_running_loop().time()
    events = [
        event async for event in kube.watch(CONFIGMAPS, "default", label_selector="pick", timeout_seconds=1)
    ]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one")]
    assert asyncio.get_running_loop().time() - started < 5


async def test_deleting_an_owner_collects_what_it_owns(cluster: KubeCluster, kube: KubeClient) -> None:
    owner = await kube.create(COPYJOBS, "default", copyjob("owner"))
    reference = {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    job = await kube.create(
        JOBS,
        "default",
        {
            "metadata": {"name": "owner-worker", "ownerReferences": [reference]},
            "spec": {"template": {"spec": {}}},
        },
    )
    job_ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "owner-worker", "uid": job["metadata"]["uid"]}
    await kube.create(
        PODS, "default", {"metadata": {"name": "owner-worker-abcde", "ownerReferences": [job_ref]}}
    )
    await kube.create(
        CONFIGMAPS, "default", {"metadata": {"name": "owner-md5-0", "ownerReferences": [reference]}}
    )
    await kube.create(CONFIGMAPS, "default", configmap("unrelated"))

    await kube.delete(COPYJOBS, "default", "owner")

    assert cluster.get(JOBS, "default", "owner-worker") is None
    assert cluster.get(PODS, "default", "owner-worker-abcde") is None
    assert [cm["metadata"]["name"] for cm in cluster.objects(CONFIGMAPS, "default")] == ["unrelated"]


async def test_orphan_keeps_dependents_and_jobs_orphan_their_pods_by_default(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    job = await kube.create(JOBS, "default", {"metadata": {"name": "j"}, "spec": {"template": {"spec": {}}}})
    job_ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": job["metadata"]["uid"]}
    await kube.create(PODS, "default", {"metadata": {"name": "j-pod", "ownerReferences": [job_ref]}})

    await kube.request("DELETE", JOBS.path("default", "j"))  # no propagationPolicy: the API's default

    pod = cluster.get(PODS, "default", "j-pod")
    assert pod is not None
    assert "ownerReferences" not in pod["metadata"]


async def test_finalizers_hold_a_deletion_until_they_are_removed(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    owner = await kube.create(
        CONFIGMAPS, "default", {"metadata": {"name": "held", "finalizers": ["shareferry.dev/x"]}}
    )
    owned_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "held", "uid": owner["metadata"]["uid"]}
    await kube.create(CONFIGMAPS, "default", {"metadata": {"name": "child", "ownerReferences": [owned_ref]}})

    await kube.delete(CONFIGMAPS, "default", "held", propagation="Background")
    marked = await kube.get(CONFIGMAPS, "default", "held")
    assert marked["metadata"]["deletionTimestamp"]
    assert cluster.get(CONFIGMAPS, "default", "child") is not None
    with pytest.raises(KubeError) as refused:
        await kube.patch(
            CONFIGMAPS, "default", "held", {"metadata": {"finalizers": ["shareferry.dev/x", "new/one"]}}
        )
    assert refused.value.status == 422

    await kube.patch(CONFIGMAPS, "default", "held", {"metadata": {"finalizers": None}})
    assert cluster.get(CONFIGMAPS, "default", "held") is None
    assert cluster.get(CONFIGMAPS, "default", "child") is None


async def test_a_kubeconfig_token_is_sent_and_never_shown(
    cluster: KubeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": cluster.url}}],
                "users": [{"name": "u", "user": {"token": "first-secret-token"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    async with KubeClient.from_environment() as kube:
        await kube.list(CONFIGMAPS, "default")
        with pytest.raises(NotFound) as caught:
            await kube.get(CONFIGMAPS, "default", "missing")
    sent = [request.headers.get("Authorization") for request in cluster.requests()]
    assert sent[-2:] == ["Bearer first-secret-token", "Bearer first-secret-token"]
    assert "secret-token" not in str(caught.value)
    assert "secret-token" not in repr(caught.value)


async def test_an_unreachable_server_is_a_kube_error_without_the_token(unused_tcp_port: int) -> None:
    configuration = kubernetes.client.Configuration(
        host=f"http://127.0.0.1:{unused_tcp_port}", api_key={"BearerToken": "Bearer very-secret-token"}
    )
    async with KubeClient(configuration, timeout=5) as kube:
        with pytest.raises(KubeError) as caught:
            await kube.get(CONFIGMAPS, "default", "x")
    assert caught.value.status == 0
    assert caught.value.reason == "ServiceUnavailable"
    assert f"127.0.0.1:{unused_tcp_port}" in caught.value.message
    assert "Connection refused" in caught.value.message
    assert "very-secret-token" not in str(caught.value)


async def test_many_calls_at_once_share_a_few_threads(kube: KubeClient) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    await kube.create(CONFIGMAPS, "default", configmap("shared", a="1"))
    answers = await asyncio.gather(*(kube.get(CONFIGMAPS, "default", "shared") for _ in range(30)))
    assert {answer["data"]["a"] for answer in answers} == {"1"}
    workers = [
        thread
        for thread in threading.enumerate()
        if thread.ident not in before and thread.name.startswith("kube-api")
    ]
    assert 1 <= len(workers) <= 4


# -- watches against a server that ends them with an ERROR event, or never ends them -----------


@pytest.fixture
async def stream_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A plain HTTP server whose configmaps watch sends one ADDED event and then, for a
    ``resourceVersion`` of "7", a 410 Expired ERROR event (as the API server does once the
    version left its window), for anything else nothing more until its timeoutSeconds."""
    seen: list[dict[str, str]] = []

    async def watch(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.query))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        added = {"type": "ADDED", "object": {"metadata": {"name": "cm", "resourceVersion": "8"}}}
        await response.write(json.dumps(added).encode() + b"\n")
        if request.query.get("resourceVersion") == "7":
            gone = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "too old resource version: 7 (9)",
                "reason": "Expired",
                "code": 410,
            }
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
        else:  # until the timeout, or until the client hangs up
            deadline = time.monotonic() + float(request.query["timeoutSeconds"])
            while time.monotonic() < deadline and request.transport and not request.transport.is_closing():
                await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps", watch)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_watch_from_a_version_too_old_ends_with_410_gone(
    stream_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = stream_server
    events: list[str] = []
    async with KubeClient(kubernetes.client.Configuration(host=url)) as kube:
        with pytest.raises(KubeError) as caught:
            async for event in kube.watch(CONFIGMAPS, "default", resource_version="7", timeout_seconds=5):
                events.append(event["object"]["metadata"]["name"])
    assert events == ["cm"]
    assert (caught.value.status, caught.value.reason) == (410, "Expired")
    assert caught.value.message == "too old resource version: 7 (9)"
    assert seen == [{"watch": "true", "timeoutSeconds": "5", "resourceVersion": "7"}]


async def test_leaving_a_watch_early_ends_its_thread(stream_server: tuple[str, list[dict[str, str]]]) -> None:
    url, _ = stream_server
    started = time.monotonic()
    async with KubeClient(kubernetes.client.Configuration(host=url)) as kube:
        async for event in kube.watch(CONFIGMAPS, "default", timeout_seconds=60):
            assert event["type"] == "ADDED"
            break

        def watching() -> bool:
            return not any(thread.name == "kube-watch" for thread in threading.enumerate())

        await KubeCluster.wait_for(watching, timeout=5, what="the watch thread to end")
    assert time.monotonic() - started < 10
