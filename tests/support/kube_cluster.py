"""A Kubernetes API server for tests, on a real loopback HTTP port: KMock's KubernetesEmulator
(PyPI ``kmock``, kopf's own test server) with ShareFerry's CRDs and the built-in resources the
operator, its worker and kopf use registered, and the server-side rules they rely on added.

Use::

    async with KubeCluster.start() as cluster:            # namespaces=("default",) exist
        env = cluster.environ()                             # KUBECONFIG=<its kubeconfig file>
        await cluster.apply({"apiVersion": "v1", "kind": "Secret", ...})
        async with cluster.client() as kube:                # a shareferry.kube.KubeClient
            await kube.get(COPYJOBS, "default", "name")
        cluster.get(JOBS, "default", "name-worker")         # the stored object, or None
        await cluster.wait_for(lambda: cluster.get(...), timeout=5)

Running kopf against it (the controller's tests do this)::

    registry = kopf.OperatorRegistry()
    @kopf.on.create(GROUP, VERSION, COPYJOBS, registry=registry)
    def created(patch, **_): patch.status["phase"] = "Pending"

    async with KubeCluster.start() as cluster, run_operator(registry, cluster, namespaces=["default"]):
        ...   # kopf runs in a background task in this event loop, standalone (no peering)

``run_operator`` hands kopf the cluster's credentials through a pre-filled vault (no login
handler needed, and the registry is not changed; ``credentials=False`` leaves login to the
registry's ``@kopf.on.login`` handlers, e.g. one returning
``kopf.ConnectionInfo(server=cluster.url)``, or the operator's, which reads the kubeconfig
``cluster.environ()`` names), waits until kopf is ready, and on exit sets kopf's stop flag
and waits for it to finish. Handlers run in the test's event loop, so they may use the test's
objects. Plain ``kopf.operator`` would, on exit, wait 5 s for and then cancel every task created
after its start (the server's request handlers, the kubelet's pods, the test's own tasks);
``run_operator`` runs ``kopf.spawn_tasks`` + ``kopf.run_tasks`` so that kopf only waits for its
own. With the test kubelet, nest it either way: ``async with run_operator(...),
Kubelet.run(cluster)``. kopf posts Events only for ``kopf.event``/``info``/``warn`` calls unless
``settings.posting.loggers`` is set.

Registered resources: ``crds/*.yaml`` (kind, plural, singular, shortNames, categories, scope and
subresources read from each CRD's served versions; the CRD documents themselves are stored as
apiextensions.k8s.io/v1 customresourcedefinitions, which kopf watches), and from KMock's bundled
discovery data: v1 namespaces, secrets, configmaps, events, pods, serviceaccounts; batch/v1
jobs; coordination.k8s.io/v1 leases; events.k8s.io/v1 events. Anything else is 404, as on a
server without that API.

What KMock does by itself, and what this harness changes (``tests/support/kube_emulator.py``):

* Identity and versions. KMock stores bodies as sent: no ``uid``, ``creationTimestamp``,
  ``resourceVersion`` or ``generation``. kopf needs resourceVersion (its JSON patches carry a
  ``test`` operation on it and it waits for the version it wrote to come back through the
  watch), and the operator uses uid (ownerReferences) and generation (observedGeneration). The
  harness's create handler sets all four, fills apiVersion/kind and the namespace from the URL,
  honours ``generateName`` (kopf names its Events that way) and refuses a namespace that does not
  exist (``namespaces "x" not found``) as the real server does. Each write takes the next number
  of one cluster-wide counter as resourceVersion; a write that changes nothing keeps the version
  and sends no watch event. generation goes up when anything outside metadata (and status, for
  resources with a status subresource) changes. uid, name, namespace, creationTimestamp,
  generation and deletionTimestamp cannot be changed by a client.
* Patches. KMock merges dicts and deletes keys set to ``null`` (RFC 7386, lists replaced whole),
  but it turns a JSON patch (kopf uses them, with a ``test`` on resourceVersion) failure into a
  500 and has no PUT. The harness applies ``application/merge-patch+json`` per RFC 7386
  (``application/strategic-merge-patch+json`` is read the same way: no list merging by key),
  ``application/json-patch+json`` with a failed operation as 422 (what kopf expects), PUT as a
  replace, and a ``metadata.resourceVersion`` in a merge patch or PUT body as a precondition (409
  Conflict when stale). Server-side apply is 415.
* Status subresource. KMock ignores the ``/status`` suffix: a status patch could change the spec
  and the other way round. Here, for resources with a status subresource (our CRDs, Jobs, Pods,
  Namespaces), the main resource ignores changes to ``status`` (and ``status`` in a create body),
  and ``/status`` ignores changes to anything but ``status``. Other subresources are 404.
* Schema. Neither KMock nor the harness applies a CRD's schema: custom resources are stored as
  given, with no pruning, defaulting or validation. What the API server does with them is tested
  on a real one (tests/cluster/crds.py).
* Errors. KMock answers with reasons like "Object Not Found"; here every error is a Status with
  the server's reason (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, MethodNotAllowed)
  and message (``copyjobs.shareferry.dev "x" not found``).
* Deletion. KMock deletes at once, or sets deletionTimestamp when finalizers are present and
  deletes when a patch empties them; the harness keeps that and bumps the version. Adding a
  finalizer to an object being deleted is refused, as on a real server.
* Garbage collection. KMock has none. The harness deletes, synchronously, every object all of
  whose ownerReferences point at deleted objects (Jobs, Pods, ConfigMaps, ... owned by a deleted
  CopyJob or Job), recursively, honouring finalizers on the dependents. propagationPolicy
  Foreground deletes the dependents before the owner, Background right after it, Orphan removes
  the ownerReferences; with no policy, batch/v1 Jobs orphan their pods (the API default for
  Jobs) and everything else is Background. Deleting a Namespace does not delete its content.
* Lists and watches. KMock ignores selectors, returns ``resourceVersion: "..."`` on lists,
  replays every object as ADDED on each watch whatever the resourceVersion, can lose a change
  made between its snapshot and its subscription, and never ends a watch. Here lists carry the
  current resourceVersion and are sorted by namespace/name; ``labelSelector`` (=, ==, !=, in,
  notin, exists, !exists) and ``fieldSelector`` (any dotted path, = and !=) filter lists and
  watches; a watch from resourceVersion N replays the logged changes after N and then streams
  live ones (from 0 or none: the current objects as ADDED first); ``timeoutSeconds`` ends it.
  No BOOKMARK events and no 410 Gone (the change log is never compacted); an object that stops
  matching a label selector is not sent as DELETED.
* Not emulated: authentication and RBAC (any token is accepted), admission webhooks, server-side
  apply, managedFields, dry-run, the scale/log/exec subresources, the Job and Pod controllers
  (see ``tests/support/kubelet.py``), namespace finalization, validation of built-in kinds.
  A create answers 200 (a real server says 201); a delete answers with the object.
* KMock's URL parser cannot read ``/api/v1/namespaces`` and ``/api/v1/namespaces/<name>``
  ("namespaces" is its keyword for a namespaced path); the harness re-addresses those requests
  before KMock parses them.

KMock's reaction DSL still works on ``cluster.emulator`` and takes precedence over the
harness's handlers, e.g. ``cluster.emulator["patch", kmock.resource(...)] << 500`` for faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import importlib.util
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import kmock
import kubernetes.client
import kubernetes.config
import yaml

from shareferry.kube import KubeClient, NotFound, Resource
from tests.support.kube_emulator import ApiServerEmulator

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
_KOPF_DIR = str(Path(importlib.util.find_spec("kopf").origin).parent)  # type: ignore[arg-type,union-attr]
BUILTIN_RESOURCES = (
    "v1/namespaces",
    "v1/secrets",
    "v1/configmaps",
    "v1/events",
    "v1/pods",
    "v1/serviceaccounts",
    "batch/v1/jobs",
    "coordination.k8s.io/v1/leases",
    "events.k8s.io/v1/events",
    "apiextensions.k8s.io/v1/customresourcedefinitions",
)
T = TypeVar("T")


def _kmock_resource(res: Resource | kmock.resource | str) -> kmock.resource:
    return kmock.resource(res)


def _resource_of(api_version: str, plural: str, *, namespaced: bool) -> Resource:
    group, _, version = api_version.rpartition("/")
    return Resource(group, version, plural, namespaced=namespaced)


@functools.cache
def _bundled_resources() -> kmock.ResourcesArray:
    """KMock's discovery data of a stock cluster's built-in resources (read once)."""
    bundled = kmock.ResourcesArray()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # KMock reads it with a deprecated call
        bundled.load_bundled()
    return bundled


def _register_builtins(emulator: ApiServerEmulator, names: Iterable[str]) -> None:
    bundled = _bundled_resources()
    for name in names:
        res = kmock.resource(name)
        emulator.register(res, copy.deepcopy(bundled[res]))


def _register_crd(emulator: ApiServerEmulator, crd: Mapping[str, Any]) -> None:
    spec = crd["spec"]
    names = spec["names"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        info = kmock.ResourceInfo(
            kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs={"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"},
            shortnames=set(names.get("shortNames") or []),
            categories=set(names.get("categories") or []),
            subresources=set((version.get("subresources") or {}).keys()),
        )
        emulator.register(kmock.resource(spec["group"], version["name"], names["plural"]), info)


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig whose current context reaches ``server`` as a user with no credentials."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "test",
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "default"}}
        ],
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {}}],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def configuration_of(kubeconfig: Path) -> kubernetes.client.Configuration:
    """The package's configuration read from ``kubeconfig`` (as ``load_kube_config`` reads it)."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return configuration


class KubeCluster:
    """A running test API server (see the module docstring) and helpers to seed and inspect it."""

    def __init__(
        self, emulator: ApiServerEmulator, server: kmock.Server, client: KubeClient, kubeconfig: Path
    ) -> None:
        self.emulator = emulator
        self.server = server
        self._client = client
        self.kubeconfig = kubeconfig

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        namespaces: Iterable[str] = ("default",),
        crd_dir: Path = CRD_DIR,
    ) -> AsyncIterator[KubeCluster]:
        """Start a cluster on a free loopback port, with ``namespaces`` created and the CRDs of
        ``crd_dir`` registered (and stored); stop it on exit."""
        emulator = ApiServerEmulator()
        _register_builtins(emulator, BUILTIN_RESOURCES)
        crds = [
            doc
            for path in sorted(crd_dir.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
            if doc
        ]
        for crd in crds:
            _register_crd(emulator, crd)
        async with emulator, kmock.Server(emulator) as server:
            with tempfile.TemporaryDirectory(prefix="kube-cluster-") as workdir:
                kubeconfig = write_kubeconfig(Path(workdir) / "kubeconfig", str(server.url).rstrip("/"))
                async with KubeClient(configuration_of(kubeconfig)) as client:
                    cluster = cls(emulator, server, client, kubeconfig)
                    for namespace in namespaces:
                        await cluster.create_namespace(namespace)
                    for crd in crds:
                        await cluster.apply(crd)
                    yield cluster

    # -- where it is ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return str(self.server.url).rstrip("/")

    def environ(self) -> dict[str, str]:
        """The environment that makes ``shareferry.kube.load_configuration()`` (and so the
        operator and the worker) reach this cluster: ``KUBECONFIG``, a file whose one context
        names the server with no credentials (the test server checks none)."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    def configuration(self) -> kubernetes.client.Configuration:
        """The ``kubernetes`` package's configuration of this cluster, from its kubeconfig."""
        return configuration_of(self.kubeconfig)

    def client(self) -> KubeClient:
        """A new client of this cluster (use ``async with``)."""
        return KubeClient(self.configuration())

    # -- reading the store (synchronous, no HTTP) ------------------------------------------

    def get(
        self, resource: Resource | kmock.resource | str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """A copy of the stored object, or None when it does not exist (or was deleted)."""
        return self.emulator.alive(_kmock_resource(resource), namespace, name)

    def objects(
        self, resource: Resource | kmock.resource | str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the live objects of ``resource`` (in ``namespace``, or all), by name."""
        items = [
            copy.deepcopy(obj)
            for _, obj in self.emulator.alive_items(_kmock_resource(resource))
            if namespace is None or obj.get("metadata", {}).get("namespace") == namespace
        ]
        return sorted(
            items, key=lambda obj: (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        )

    def history(
        self, resource: Resource | kmock.resource | str, namespace: str | None, name: str
    ) -> list[dict[str, Any] | None]:
        """Every stored version of one object, oldest first (None marks a deletion)."""
        obj = self.emulator.objects[_kmock_resource(resource), namespace, name]
        return [None if version is None else copy.deepcopy(version.raw) for version in obj.history]

    def requests(self) -> list[kmock.Request]:
        """Every request the server received, in order (KMock's log: method, url, headers,
        data, and the parsed resource/namespace/name/subresource/action)."""
        return list(self.emulator)

    def events(self, namespace: str | None = None, *, involving: str | None = None) -> list[dict[str, Any]]:
        """The core v1 Events (kopf's and the operator's), optionally about one object name."""
        return [
            event
            for event in self.objects("v1/events", namespace)
            if involving is None or (event.get("involvedObject") or {}).get("name") == involving
        ]

    # -- writing through the API (so watches see it) -----------------------------------

    def resource_of(self, body: Mapping[str, Any]) -> Resource:
        """The resource of a manifest, from its apiVersion and kind."""
        res = self.emulator.resource_for(body["apiVersion"], body["kind"])
        info = self.emulator.info(res)
        return _resource_of(body["apiVersion"], str(res.plural), namespaced=bool(info and info.namespaced))

    async def create_namespace(self, name: str) -> dict[str, Any]:
        return await self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    async def apply(self, body: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        """Create the object, or merge-patch it when it exists; a ``status`` in ``body`` is then
        written through the status subresource (the way a controller would). Returns the
        stored object."""
        res = self.resource_of(body)
        body = copy.deepcopy(dict(body))
        meta = body.setdefault("metadata", {})
        ns = (namespace or meta.get("namespace") or "default") if res.namespaced else None
        if res.namespaced:
            meta["namespace"] = ns
        status = body.get("status")
        try:
            current = await self._client.get(res, ns, meta["name"])
        except NotFound:
            current = await self._client.create(res, ns, body)
        else:
            patch = {key: value for key, value in body.items() if key != "status"}
            current = await self._client.patch(res, ns, meta["name"], patch)
        info = self.emulator.info(_kmock_resource(res))
        if status is not None and info is not None and "status" in info.subresources:
            current = await self._client.patch(
                res, ns, meta["name"], {"status": status}, subresource="status"
            )
        return current

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, propagation: str = "Background"
    ) -> None:
        await self._client.delete(resource, namespace, name, propagation=propagation)

    async def patch_status(
        self, resource: Resource, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self._client.patch(
            resource, namespace, name, {"status": dict(status)}, subresource="status"
        )

    # -- waiting ----------------------------------------------------------------------------

    @staticmethod
    async def wait_for(
        probe: Callable[[], T | None],
        *,
        timeout: float = 5.0,
        interval: float = 0.02,
        what: str = "the condition",
    ) -> T:
        """Poll ``probe`` until it returns something truthy, and return that; TimeoutError (with
        ``what`` in the message) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            await asyncio.sleep(interval)

    async def wait_for_object(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda obj: True,
        *,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The object once it exists and satisfies ``predicate``."""

        def probe() -> dict[str, Any] | None:
            obj = self.get(resource, namespace, name)
            return obj if obj is not None and predicate(obj) else None

        return await self.wait_for(probe, timeout=timeout, what=f"{resource.plural}/{name} in {namespace}")

    async def wait_for_absence(
        self, resource: Resource, namespace: str | None, name: str, *, timeout: float = 5.0
    ) -> None:
        await self.wait_for(
            lambda: self.get(resource, namespace, name) is None,
            timeout=timeout,
            what=f"{resource.plural}/{name} in {namespace} to be gone",
        )


class _NotKopfTasks(Collection["asyncio.Task[Any]"]):
    """The tasks kopf must leave alone when it stops: every task whose coroutine is not kopf's.

    ``kopf.operator`` takes every task created after its start for one of its own: on exit it
    waits up to 5 s for them and then cancels them. In a test, those are the API server's
    request handlers, the test kubelet's pods and the test's own tasks. ``run_tasks`` accepts
    the collection of tasks to ignore; this one answers by the coroutine's source file.
    """

    def __contains__(self, task: object) -> bool:
        if not isinstance(task, asyncio.Task):
            return True
        code = getattr(task.get_coro(), "cr_code", None)
        return code is None or not code.co_filename.startswith(_KOPF_DIR)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@contextlib.asynccontextmanager
async def run_operator(
    registry: Any,
    cluster: KubeCluster,
    *,
    namespaces: Iterable[str] = ("default",),
    clusterwide: bool = False,
    settings: Any = None,
    memo: Any = None,
    credentials: bool = True,
    startup_timeout: float = 10.0,
    stop_timeout: float = 10.0,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run kopf with ``registry`` against ``cluster`` in a background task of this event loop,
    standalone (no peering), watching ``namespaces`` (or the whole cluster). With
    ``credentials`` the cluster's URL is put in kopf's vault up front; without, the registry
    must have an ``@kopf.on.login`` handler. Yields the task once kopf is ready; on exit sets
    kopf's stop flag and waits for the task (cancelling it after ``stop_timeout``).

    It is ``kopf.operator`` split into ``kopf.spawn_tasks`` and ``kopf.run_tasks``, so that on
    exit kopf waits for and cancels only its own tasks (see ``_NotKopfTasks``).
    """
    import kopf  # only the tests that run kopf pay for importing it

    settings = settings if settings is not None else kopf.OperatorSettings()
    vault = None
    if credentials:
        # kopf does not export its Vault class; passing a filled one is the only way to give
        # it credentials without adding a login handler to (and so changing) ``registry``.
        from kopf._cogs.structs.credentials import Vault

        vault = Vault()
        await vault.populate(
            {"kube-cluster": kopf.ConnectionInfo(server=cluster.url, default_namespace="default")}
        )
    stop_flag = asyncio.Event()
    ready_flag = asyncio.Event()

    async def operate() -> None:
        tasks = await kopf.spawn_tasks(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=clusterwide,
            namespaces=[] if clusterwide else list(namespaces),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            vault=vault,
            memo=memo,
        )
        await kopf.run_tasks(tasks, ignored=_NotKopfTasks())

    task = asyncio.create_task(operate(), name="kopf operator (tests)")
    ready = asyncio.create_task(ready_flag.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises what made kopf stop
            raise RuntimeError("kopf stopped before it was ready")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TimeoutError(f"kopf was not ready after {startup_timeout:g}s")
    try:
        yield task
    finally:
        stop_flag.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
