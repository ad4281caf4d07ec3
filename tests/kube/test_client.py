"""The kube client (the facade over the ``kubernetes`` package) against a real API server (the
tests' own control plane, TLS and RBAC): CRUD, merge patches, the status subresource, error
mapping, selectors, watches, deletion and garbage collection, a bearer token's handling and the
thread pool; a server that answers with a non-JSON error (KMock, which can be told to) and
watches ended with 410 Gone or left open (a plain HTTP server)."""

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
    SERVICEACCOUNTS,
    Conflict,
    KubeClient,
    KubeError,
    NotFound,
    Resource,
)
from tests.kube.conftest import default_service_account
from tests.support.cluster_api import ClusterApi
from tests.support.operator_plane import Plane

ROOT_CA = "kube-root-ca.crt"
"""The ConfigMap the controller manager publishes into every namespace (the cluster's CA)."""
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
UNSCHEDULABLE = {"nodeSelector": {"shareferry.test/nowhere": "true"}}
"""A pod spec's placement that no node matches: the pod stays Pending, nothing runs it."""


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


def ours(items: list[dict[str, Any]]) -> list[str]:
    """The names of a listing, without the CA ConfigMap every namespace holds."""
    return [item["metadata"]["name"] for item in items if item["metadata"]["name"] != ROOT_CA]


async def test_create_get_list_delete_round_trip(kube: KubeClient, ns: str, other: str) -> None:
    created = await kube.create(CONFIGMAPS, ns, configmap("settings", colour="blue"))
    meta = created["metadata"]
    assert meta["namespace"] == ns
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"

    fetched = await kube.get(CONFIGMAPS, ns, "settings")
    assert fetched == created
    assert ours(await kube.list(CONFIGMAPS, ns)) == ["settings"]
    assert ours(await kube.list(CONFIGMAPS, other)) == []
    everywhere = await kube.list(CONFIGMAPS)
    assert [
        (item["metadata"]["namespace"], item["metadata"]["name"])
        for item in everywhere
        if item["metadata"]["namespace"] in (ns, other) and item["metadata"]["name"] != ROOT_CA
    ] == [(ns, "settings")]

    await kube.delete(CONFIGMAPS, ns, "settings")
    with pytest.raises(NotFound) as caught:
        await kube.get(CONFIGMAPS, ns, "settings")
    assert caught.value.status == 404
    assert caught.value.reason == "NotFound"
    assert caught.value.message == 'configmaps "settings" not found'


async def test_merge_patch_deletes_null_keys_and_replaces_lists(kube: KubeClient, ns: str) -> None:
    await kube.create(
        CONFIGMAPS,
        ns,
        {
            "metadata": {
                "name": "m",
                "annotations": {"keep": "1", "drop": "2"},
                "finalizers": ["example.com/a", "example.com/b"],
            },
            "data": {"x": "1"},
        },
    )
    patched = await kube.patch(
        CONFIGMAPS,
        ns,
        "m",
        {
            "metadata": {"annotations": {"drop": None, "new": "3"}, "finalizers": ["example.com/c"]},
            "data": {"y": "2"},
        },
    )
    assert patched["metadata"]["annotations"] == {"keep": "1", "new": "3"}
    assert patched["metadata"]["finalizers"] == ["example.com/c"]
    assert patched["data"] == {"x": "1", "y": "2"}
    assert int(patched["metadata"]["resourceVersion"]) > 0
    await kube.patch(CONFIGMAPS, ns, "m", {"metadata": {"finalizers": None}})


async def test_status_subresource_is_separate_and_generation_follows_the_spec(
    kube: KubeClient, ns: str
) -> None:
    body = copyjob("job1", parallelism=1)
    body["status"] = {"phase": "Succeeded"}
    created = await kube.create(COPYJOBS, ns, body)
    assert "status" not in created  # a client cannot create an object with a status
    assert created["metadata"]["generation"] == 1

    status = await kube.patch(COPYJOBS, ns, "job1", {"status": {"phase": "Running"}}, subresource="status")
    assert status["status"] == {"phase": "Running"}
    assert status["metadata"]["generation"] == 1

    # The status endpoint ignores everything but status; the main endpoint ignores status.
    ignored = await kube.patch(
        COPYJOBS,
        ns,
        "job1",
        {"spec": {"parallelism": 4}, "status": {"phase": "Failed"}},
        subresource="status",
    )
    assert ignored["spec"]["parallelism"] == 1 and ignored["status"]["phase"] == "Failed"
    main = await kube.patch(
        COPYJOBS, ns, "job1", {"spec": {"parallelism": 4}, "status": {"phase": "Pending"}}
    )
    assert main["spec"]["parallelism"] == 4 and main["status"]["phase"] == "Failed"
    assert main["metadata"]["generation"] == 2

    labelled = await kube.patch(COPYJOBS, ns, "job1", {"metadata": {"labels": {"team": "data"}}})
    assert labelled["metadata"]["generation"] == 2  # metadata changes do not bump it


async def test_already_exists_and_stale_versions_are_conflicts(kube: KubeClient, ns: str) -> None:
    first = await kube.create(CONFIGMAPS, ns, configmap("c", a="1"))
    with pytest.raises(Conflict) as exists:
        await kube.create(CONFIGMAPS, ns, configmap("c"))
    assert exists.value.status == 409
    assert exists.value.reason == "AlreadyExists"
    assert exists.value.message == 'configmaps "c" already exists'

    await kube.patch(CONFIGMAPS, ns, "c", {"data": {"a": "2"}})
    stale = {
        "metadata": {"name": "c", "resourceVersion": first["metadata"]["resourceVersion"]},
        "data": {"a": "3"},
    }
    with pytest.raises(Conflict) as modified:
        await kube.patch(CONFIGMAPS, ns, "c", stale)
    assert modified.value.reason == "Conflict"
    assert "the object has been modified" in modified.value.message
    with pytest.raises(Conflict):
        await kube.replace(CONFIGMAPS, ns, "c", {**configmap("c", a="4"), **stale})

    current = await kube.get(CONFIGMAPS, ns, "c")
    replaced = await kube.replace(
        CONFIGMAPS,
        ns,
        "c",
        {
            "metadata": {"name": "c", "resourceVersion": current["metadata"]["resourceVersion"]},
            "data": {"b": "1"},
        },
    )
    assert replaced["data"] == {"b": "1"}
    assert replaced["metadata"]["uid"] == first["metadata"]["uid"]


async def test_other_errors_keep_the_status_reason_and_message(kube: KubeClient, ns: str) -> None:
    with pytest.raises(KubeError) as invalid:
        await kube.create(CONFIGMAPS, ns, {"metadata": {}})
    assert not isinstance(invalid.value, (NotFound, Conflict))
    assert invalid.value.status == 422
    assert invalid.value.reason == "Invalid"
    assert invalid.value.message == (
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
    )

    with pytest.raises(NotFound) as namespace:
        await kube.create(CONFIGMAPS, f"{ns}-nowhere", configmap("c"))
    assert namespace.value.message == f'namespaces "{ns}-nowhere" not found'

    with pytest.raises(KubeError) as selector:
        await kube.list(CONFIGMAPS, ns, label_selector="a in b")
    assert (selector.value.status, selector.value.reason) == (400, "BadRequest")


async def test_a_non_json_error_body_still_becomes_a_kube_error() -> None:
    # A real API server answers every error with a JSON Status; a proxy or load balancer in
    # front of it may not. KMock can be told to answer a plain-text 503; the real one cannot.
    handler = kmock.RawHandler()
    handler["get"] << 503 << b"upstream is down"
    async with kmock.Server(handler) as server:
        configuration = kubernetes.client.Configuration(host=str(server.url).rstrip("/"))
        async with KubeClient(configuration) as kube:
            with pytest.raises(KubeError) as caught:
                await kube.get(CONFIGMAPS, "default", "anything")
    assert (caught.value.status, caught.value.reason) == (503, "ServiceUnavailable")
    assert caught.value.message == "upstream is down"


async def test_label_selectors(kube: KubeClient, ns: str) -> None:
    await kube.create(CONFIGMAPS, ns, configmap("a", {"app": "ferry", "tier": "web"}))
    await kube.create(CONFIGMAPS, ns, configmap("b", {"app": "ferry", "tier": "db"}))
    await kube.create(CONFIGMAPS, ns, configmap("c", {"app": "other"}))

    async def names(selector: str) -> list[str]:
        return ours(await kube.list(CONFIGMAPS, ns, label_selector=selector))

    assert await names("app=ferry") == ["a", "b"]
    assert await names("app==ferry,tier!=db") == ["a"]
    assert await names("tier in (db, cache)") == ["b"]
    assert await names("tier notin (db)") == ["a", "c"]
    assert await names("tier") == ["a", "b"]
    assert await names("!tier") == ["c"]


async def test_watch_streams_changes_after_a_list(kube: KubeClient, ns: str) -> None:
    await kube.create(CONFIGMAPS, ns, configmap("before"))
    listing = await kube.request("GET", CONFIGMAPS.path(ns))
    version = listing["metadata"]["resourceVersion"]

    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event in kube.watch(CONFIGMAPS, ns, resource_version=version, timeout_seconds=10):
            if event["object"]["metadata"]["name"] == ROOT_CA:
                continue  # published into the new namespace by the controller manager meanwhile
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                return

    watcher = asyncio.create_task(consume())
    await kube.create(CONFIGMAPS, ns, configmap("after"))
    await kube.patch(CONFIGMAPS, ns, "after", {"data": {"k": "v"}})
    await kube.delete(CONFIGMAPS, ns, "after")
    await asyncio.wait_for(watcher, timeout=10)
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


async def test_watch_from_scratch_lists_first_and_ends_after_its_timeout(kube: KubeClient, ns: str) -> None:
    await kube.create(CONFIGMAPS, ns, configmap("one", {"pick": "yes"}))
    await kube.create(CONFIGMAPS, ns, configmap("two"))
    started = asyncio.get_running_loop().time()
    events = [event async for event in kube.watch(CONFIGMAPS, ns, label_selector="pick", timeout_seconds=1)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one")]
    assert asyncio.get_running_loop().time() - started < 5


def suspended_job(name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid Job the Job controller leaves alone (suspended: it makes no pod)."""
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {
        "metadata": meta,
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "shareferry:local", "command": ["true"]}],
                }
            },
        },
    }


def idle_pod(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    """A valid pod no node takes (it stays Pending; nothing runs it)."""
    return {
        "metadata": {"name": name, "ownerReferences": [owner]},
        "spec": {
            "containers": [{"name": "main", "image": "shareferry:local", "command": ["true"]}],
            **UNSCHEDULABLE,
        },
    }


def reference(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        **extra,
    }


async def test_deleting_an_owner_collects_what_it_owns(kube: KubeClient, api: ClusterApi, ns: str) -> None:
    await default_service_account(api, ns)
    owner = await kube.create(COPYJOBS, ns, copyjob("owner"))
    owned = reference(owner, controller=True)
    job = await kube.create(JOBS, ns, suspended_job("owner-worker", owned))
    await kube.create(PODS, ns, idle_pod("owner-worker-abcde", reference(job)))
    await kube.create(CONFIGMAPS, ns, {"metadata": {"name": "owner-md5-0", "ownerReferences": [owned]}})
    await kube.create(CONFIGMAPS, ns, configmap("unrelated"))

    await kube.delete(COPYJOBS, ns, "owner")

    # The real garbage collector works in the background: the dependents go a moment later.
    await api.wait_for_absence(JOBS, ns, "owner-worker")
    await api.wait_for_absence(PODS, ns, "owner-worker-abcde")
    await api.wait_for_absence(CONFIGMAPS, ns, "owner-md5-0")
    assert ours(await kube.list(CONFIGMAPS, ns)) == ["unrelated"]


async def test_orphan_keeps_dependents_and_jobs_orphan_their_pods_by_default(
    kube: KubeClient, api: ClusterApi, ns: str
) -> None:
    await default_service_account(api, ns)
    job = await kube.create(JOBS, ns, suspended_job("j"))
    await kube.create(PODS, ns, idle_pod("j-pod", reference(job)))

    await kube.request("DELETE", JOBS.path(ns, "j"))  # no propagationPolicy: the API's default

    await api.wait_for_absence(JOBS, ns, "j")
    pod = await api.wait_for_object(
        PODS, ns, "j-pod", lambda pod: "ownerReferences" not in pod["metadata"], what="the pod orphaned"
    )
    assert pod["metadata"]["uid"]


async def test_finalizers_hold_a_deletion_until_they_are_removed(
    kube: KubeClient, api: ClusterApi, ns: str
) -> None:
    owner = await kube.create(
        CONFIGMAPS, ns, {"metadata": {"name": "held", "finalizers": ["shareferry.dev/x"]}}
    )
    await kube.create(CONFIGMAPS, ns, {"metadata": {"name": "child", "ownerReferences": [reference(owner)]}})

    await kube.delete(CONFIGMAPS, ns, "held", propagation="Background")
    marked = await kube.get(CONFIGMAPS, ns, "held")
    assert marked["metadata"]["deletionTimestamp"]
    assert await api.get(CONFIGMAPS, ns, "child") is not None
    with pytest.raises(KubeError) as refused:
        await kube.patch(
            CONFIGMAPS, ns, "held", {"metadata": {"finalizers": ["shareferry.dev/x", "example.com/new"]}}
        )
    assert refused.value.status == 422

    await kube.patch(CONFIGMAPS, ns, "held", {"metadata": {"finalizers": None}})
    assert await api.get(CONFIGMAPS, ns, "held") is None
    await api.wait_for_absence(CONFIGMAPS, ns, "child")


async def service_account_token(kube: KubeClient, namespace: str, name: str) -> str:
    """A token of a new ServiceAccount ``name``, from the TokenRequest API."""
    await kube.create(SERVICEACCOUNTS, namespace, {"metadata": {"name": name}})
    answer = await kube.request(
        "POST",
        SERVICEACCOUNTS.path(namespace, name, "token"),
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    return str(answer["status"]["token"])


async def who_am_i(kube: KubeClient) -> str:
    """The user the server authenticated the request as (a SelfSubjectReview)."""
    answer = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(answer["status"]["userInfo"]["username"])


async def test_a_kubeconfig_token_is_sent_and_never_shown(
    kube: KubeClient, ns: str, operator_plane: Plane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await service_account_token(kube, ns, "reader")
    await kube.create(
        ROLEBINDINGS,
        ns,
        {
            "metadata": {"name": "reader-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {
                            "server": operator_plane.state.server,
                            "certificate-authority": str(operator_plane.state.pki.ca_cert),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": token}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    async with KubeClient.from_environment() as reader:
        assert await who_am_i(reader) == f"system:serviceaccount:{ns}:reader"  # the token was sent
        assert ours(await reader.list(CONFIGMAPS, ns)) == []  # the view role lets it list
        with pytest.raises(NotFound) as caught:
            await reader.get(CONFIGMAPS, ns, "missing")
    assert token not in str(caught.value)
    assert token not in repr(caught.value)


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


async def test_many_calls_at_once_share_a_few_threads(kube: KubeClient, ns: str) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    await kube.create(CONFIGMAPS, ns, configmap("shared", a="1"))
    answers = await asyncio.gather(*(kube.get(CONFIGMAPS, ns, "shared") for _ in range(30)))
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

        await ClusterApi.wait_for(watching, timeout=5, what="the watch thread to end")
    assert time.monotonic() - started < 10
