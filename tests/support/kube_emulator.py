"""The API server behind the test cluster: KMock's KubernetesEmulator plus the server-side rules
(object identity, versions, status subresource, patches, deletion, garbage collection, watches)
that kopf and ShareFerry rely on. ``tests/support/kube_cluster.py`` documents what differs from a
real API server; this module is the implementation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock

from tests.support.kube_selectors import SelectorError, field_matcher, label_matcher, merge_patch

NAMESPACES = kmock.resource("", "v1", "namespaces")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
# KMock's URL parser cannot read /api/v1/namespaces[/name] ("namespaces" is its keyword for the
# namespace of namespaced resources): such requests are re-addressed to this alias before parsing.
_NAMESPACES_ALIAS = "x-shareferry-namespaces"
_NAMESPACES_PATH = re.compile(r"^/api/v1/namespaces(/[^/]+(/(status|finalize))?)?/?$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses for generateName
_IMMUTABLE_METADATA = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# Resources whose API default for propagationPolicy is Orphan (batch/v1 Jobs keep their pods
# unless the client asks for Background or Foreground).
_ORPHAN_BY_DEFAULT = {kmock.resource("batch", "v1", "jobs")}
SECRETS = kmock.resource("", "v1", "secrets")


def _fold_string_data(obj: dict[str, Any]) -> None:
    """A Secret's ``stringData`` is written into ``data`` (base64) and never stored."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, Mapping) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
        obj["data"] = data


def _disconnected(request: kmock.Request) -> bool:
    raw = getattr(request, "_raw_request", None)  # KMock keeps the aiohttp request there
    transport = raw.transport if raw is not None else None
    return transport is None or transport.is_closing()


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LoggedEvent:
    """One change, as watches stream it: ``revision`` is the object's new resourceVersion."""

    revision: int
    resource: kmock.resource
    type: str  # ADDED, MODIFIED, DELETED
    object: dict[str, Any]


def _status_error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=status, reason=reason, message=message, details=details or {"causes": []}
    )


def _qualified(res: kmock.resource) -> str:
    return f"{res.plural}.{res.group}" if res.group else str(res.plural)


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """KMock's emulator with every write, read and watch of a registered resource served by the
    rules of a real API server (see the kube_cluster module docstring for the list).

    Objects still live in KMock's store (``self.objects``, with their history) and KMock's reaction
    DSL still takes precedence (``emulator[...] << 500`` injects faults); only the fallback
    handlers are replaced.
    """

    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _log: list[LoggedEvent] = attrs.field(factory=list, init=False)
    _log_changed: asyncio.Condition = attrs.field(factory=asyncio.Condition, init=False)
    _revision: int = attrs.field(default=100, init=False)
    _gone_uids: set[str] = attrs.field(factory=set, init=False)

    # -- registration -----------------------------------------------------------------------

    def register(self, res: kmock.resource, info: kmock.ResourceInfo) -> None:
        """Serve ``res`` (its objects are stored as given: no schema is applied)."""
        self.resources[res] = info

    def info(self, res: kmock.resource) -> kmock.ResourceInfo | None:
        # Not .get(): KMock's ResourcesArray creates a missing entry on item access.
        return self.resources[res] if res in self.resources else None  # noqa: SIM401

    def resource_for(self, api_version: str, kind: str) -> kmock.resource:
        """The registered resource of a manifest's apiVersion and kind."""
        group, _, version = api_version.rpartition("/")
        for res in self.resources:
            info = self.resources[res]
            if res.group == group and res.version == version and info.kind == kind:
                return res
        raise KeyError(f"no resource registered for {api_version} {kind}")

    # -- the store --------------------------------------------------------------------------

    def alive(self, res: kmock.resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of the stored object, or None when absent or deleted."""
        key = (res, namespace, name)
        if key not in self.objects:
            return None
        obj = self.objects[key]
        return None if obj.deleted else copy.deepcopy(obj.raw)

    def alive_items(
        self, res: kmock.resource | None = None
    ) -> Iterator[tuple[kmock.resource, dict[str, Any]]]:
        for (key_res, _, _), obj in list(self.objects.items()):
            if (res is None or key_res == res) and not obj.deleted:
                yield key_res, obj.raw

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    async def _record(self, res: kmock.resource, event_type: str, obj: dict[str, Any]) -> None:
        revision = int(_meta(obj).get("resourceVersion") or self._revision)
        async with self._log_changed:
            self._log.append(LoggedEvent(revision, res, event_type, copy.deepcopy(obj)))
            self._log_changed.notify_all()

    async def _store(self, res: kmock.resource, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        meta = _meta(obj)
        key = (res, meta.get("namespace"), meta["name"])
        async with self._lock:  # KMock's own lock over its store
            if key in self.objects:
                self.objects[key].history.append(obj)
            else:
                self.objects[key] = obj
        await self._record(res, event_type, obj)
        return obj

    async def _erase(self, res: kmock.resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = _meta(obj)
        key = (res, meta.get("namespace"), meta["name"])
        final = copy.deepcopy(obj)
        _meta(final)["resourceVersion"] = self._next_revision()
        async with self._lock:
            self.objects[key].delete()
        if meta.get("uid"):
            self._gone_uids.add(meta["uid"])
        await self._record(res, "DELETED", final)
        return final

    # -- request routing --------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if _NAMESPACES_PATH.match(raw_request.path):
            tail = raw_request.path[len("/api/v1/namespaces") :]
            url = raw_request.rel_url.with_path(f"/api/v1/{_NAMESPACES_ALIAS}{tail}").with_query(
                raw_request.rel_url.query
            )
            raw_request = raw_request.clone(rel_url=url)
        return await super().__call__(raw_request)

    def _amend(self, request: kmock.Request, **changes: Any) -> kmock.Request:
        """The request with parsed fields corrected, also in KMock's request log (its views
        find a request by identity there)."""
        amended = attrs.evolve(request, **changes)
        for index, recorded in enumerate(self._requests):
            if recorded is request:
                self._requests[index] = amended
        return amended

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.resource.plural == _NAMESPACES_ALIAS:
            request = self._amend(request, resource=NAMESPACES, namespace=None)
        if request.resource is None or request.resource.plural is None:
            return await super()._handle(request)  # discovery: KMock's own
        if request.action is None and request.method == kmock.method.PUT and request.name:
            request = self._amend(request, action=kmock.action.UPDATE)
        info = self.info(request.resource)
        if info is None or (request.namespace is not None and not info.namespaced):
            raise _status_error(404, "NotFound", "the server could not find the requested resource")
        if request.action is None:
            raise _status_error(405, "MethodNotAllowed", f"{request.method} is not supported on this path")
        # Skip KubernetesEmulator._handle (its store updates are replaced by ours) but keep the
        # reaction dispatch of the raw handler, so user reactions win over our fallbacks.
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    def _key_of(self, request: kmock.Request) -> tuple[kmock.resource, str | None, str]:
        assert request.resource is not None and request.name is not None
        return request.resource, request.namespace, request.name

    def _not_found(self, res: kmock.resource, name: str) -> kmock.KubernetesError:
        return _status_error(
            404,
            "NotFound",
            f'{_qualified(res)} "{name}" not found',
            name=name,
            group=res.group,
            kind=res.plural,
        )

    # -- reads ------------------------------------------------------------------------------

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        res, namespace, name = self._key_of(request)
        obj = self.alive(res, namespace, name)
        if obj is None:
            raise self._not_found(res, name)
        return obj

    def _matchers(self, request: kmock.Request) -> tuple[Any, Any]:
        try:
            labels = label_matcher(request.params.get("labelSelector"))
            fields = field_matcher(request.params.get("fieldSelector"))
        except SelectorError as exc:
            raise _status_error(400, "BadRequest", str(exc)) from None
        return labels, fields

    def _selects(self, request: kmock.Request, matchers: tuple[Any, Any], obj: Mapping[str, Any]) -> bool:
        meta = _meta(obj)
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        labels, fields = matchers
        return bool(labels(meta.get("labels") or {}) and fields(obj))

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        assert request.resource is not None
        matchers = self._matchers(request)
        items = [
            copy.deepcopy(obj)
            for _, obj in self.alive_items(request.resource)
            if self._selects(request, matchers, obj)
        ]
        items.sort(key=lambda obj: (_meta(obj).get("namespace") or "", _meta(obj).get("name") or ""))
        info = self.info(request.resource)
        kind = (info.kind if info and info.kind else "Object") + "List"
        api_version = request.resource.group + "/" if request.resource.group else ""
        return {
            "apiVersion": f"{api_version}{request.resource.version}",
            "kind": kind,
            "metadata": {"resourceVersion": str(self._revision)},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        assert request.resource is not None
        res = request.resource
        matchers = self._matchers(request)
        since_text = request.params.get("resourceVersion") or "0"
        try:
            since = int(since_text)
        except ValueError:
            raise _status_error(400, "BadRequest", f"invalid resourceVersion {since_text!r}") from None
        timeout_text = request.params.get("timeoutSeconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout_text) if timeout_text else None
        # The snapshot (or replay) and the log position are taken together: no change is lost.
        if since == 0:
            position = len(self._log)
            initial = [
                {"type": "ADDED", "object": copy.deepcopy(obj)}
                for _, obj in self.alive_items(res)
                if self._selects(request, matchers, obj)
            ]
        else:
            position = next((i for i, e in enumerate(self._log) if e.revision > since), len(self._log))
            initial = []
        yield b""  # send the headers now: the stream is open even when nothing happens
        for event in initial:
            yield event
        while True:
            async with self._log_changed:
                while len(self._log) <= position:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    if _disconnected(request):
                        return  # aiohttp does not cancel a handler whose client went away
                    wake = loop.time() + 0.2 if deadline is None else min(deadline, loop.time() + 0.2)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(wake):
                            await self._log_changed.wait()
                fresh = self._log[position:]
                position = len(self._log)
            for entry in fresh:
                if entry.resource == res and self._selects(request, matchers, entry.object):
                    yield {"type": entry.type, "object": copy.deepcopy(entry.object)}

    # -- writes -----------------------------------------------------------------------------

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        async with self._write_lock:
            return await self._create(request)

    async def _create(self, request: kmock.Request) -> dict[str, Any]:
        res = request.resource
        assert res is not None
        info = self.info(res)
        assert info is not None
        if not isinstance(request.data, Mapping):
            raise _status_error(400, "BadRequest", "the body of the request is not a JSON object")
        body = copy.deepcopy(dict(request.data))
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise _status_error(400, "BadRequest", "metadata must be an object")
        api_version = f"{res.group}/{res.version}" if res.group else str(res.version)
        body.setdefault("apiVersion", api_version)
        body.setdefault("kind", info.kind)
        if info.namespaced:
            namespace = request.namespace or meta.get("namespace")
            if request.namespace and meta.get("namespace") not in (None, request.namespace):
                raise _status_error(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            if not namespace:
                raise _status_error(404, "NotFound", "the server could not find the requested resource")
            if self.alive(NAMESPACES, None, namespace) is None:
                raise _status_error(
                    404, "NotFound", f'namespaces "{namespace}" not found', name=namespace, kind="namespaces"
                )
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise _status_error(
                    422,
                    "Invalid",
                    f"{info.kind} is invalid: metadata.name: Required value: name or generateName is required",
                )
            while True:
                candidate = prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                if self.alive(res, namespace, candidate) is None:
                    break
            meta["name"] = candidate
        name = meta["name"]
        if self.alive(res, namespace, name) is not None:
            raise _status_error(
                409,
                "AlreadyExists",
                f'{_qualified(res)} "{name}" already exists',
                name=name,
                group=res.group,
                kind=res.plural,
            )
        if "status" in info.subresources:
            body.pop("status", None)  # the status of a new object is not the client's to set
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        if meta.get("finalizers") == []:
            meta.pop("finalizers")
        if res == SECRETS:
            _fold_string_data(body)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        meta["resourceVersion"] = self._next_revision()
        return await self._store(res, body, "ADDED")

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        async with self._write_lock:
            return await self._update(request)

    def _patched(self, request: kmock.Request, old: dict[str, Any]) -> dict[str, Any]:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        data = request.data
        if request.method == kmock.method.PUT:
            if not isinstance(data, Mapping):
                raise _status_error(400, "BadRequest", "the body of the request is not a JSON object")
            return copy.deepcopy(dict(data))
        if content_type == "application/json-patch+json" or isinstance(data, list):
            try:
                return jsonpatch.apply_patch(copy.deepcopy(old), data, in_place=False)  # type: ignore[no-any-return]
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise _status_error(422, "Invalid", f"the JSON patch could not be applied: {exc}") from None
        if content_type == "application/apply-patch+yaml":
            raise _status_error(415, "UnsupportedMediaType", "server-side apply is not emulated")
        if not isinstance(data, Mapping):
            raise _status_error(400, "BadRequest", "the merge patch is not a JSON object")
        # application/merge-patch+json; a strategic merge patch is read as a plain merge patch.
        return merge_patch(copy.deepcopy(old), data)  # type: ignore[no-any-return]

    async def _update(self, request: kmock.Request) -> dict[str, Any]:
        res, namespace, name = self._key_of(request)
        info = self.info(res)
        assert info is not None
        old = self.alive(res, namespace, name)
        if old is None:
            raise self._not_found(res, name)
        new = self._patched(request, old)
        if not isinstance(new, dict):
            raise _status_error(422, "Invalid", "the patched object is not a JSON object")
        old_meta = _meta(old)
        requested_version = (
            _meta(request.data).get("resourceVersion") if isinstance(request.data, Mapping) else None
        )
        if requested_version and str(requested_version) != old_meta.get("resourceVersion"):
            raise _status_error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {_qualified(res)} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                name=name,
                group=res.group,
                kind=res.plural,
            )
        has_status = "status" in info.subresources
        if request.subresource == "status":
            result = copy.deepcopy(old)  # only the status stanza changes through /status
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            new = result
        elif request.subresource is not None:
            raise _status_error(404, "NotFound", f"the subresource {request.subresource!r} is not emulated")
        elif has_status:
            if "status" in old:
                new["status"] = old["status"]  # the main resource ignores status changes
            else:
                new.pop("status", None)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        for field in _IMMUTABLE_METADATA:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        new["apiVersion"], new["kind"] = old.get("apiVersion"), old.get("kind")
        if meta.get("finalizers") == []:
            meta.pop("finalizers")
        if res == SECRETS:
            _fold_string_data(new)
        if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or []) - set(
            old_meta.get("finalizers") or []
        ):
            raise _status_error(
                422,
                "Invalid",
                f'{info.kind} "{name}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted',
            )
        if new == old:
            return old  # a no-op write changes no version and sends no watch event
        meta = new["metadata"]
        skipped = {"metadata", "status"} if has_status else {"metadata"}
        if {k: v for k, v in new.items() if k not in skipped} != {
            k: v for k, v in old.items() if k not in skipped
        }:
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        meta["resourceVersion"] = self._next_revision()
        stored = await self._store(res, new, "MODIFIED")
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._erase(res, stored)  # the last finalizer is gone: the object goes
            await self._collect_garbage()
        return stored

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        async with self._write_lock:
            return await self._delete(request)

    async def _delete(self, request: kmock.Request) -> dict[str, Any]:
        res, namespace, name = self._key_of(request)
        old = self.alive(res, namespace, name)
        if old is None:
            raise self._not_found(res, name)
        options = request.data if isinstance(request.data, Mapping) else {}
        policy = request.params.get("propagationPolicy") or options.get("propagationPolicy")
        if not policy and "orphanDependents" in options:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if not policy:
            policy = "Orphan" if res in _ORPHAN_BY_DEFAULT else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            raise _status_error(422, "Invalid", f"unknown propagationPolicy {policy!r}")
        preconditions = options.get("preconditions") or {}
        old_meta = _meta(old)
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) and preconditions[field] != old_meta.get(field):
                raise _status_error(
                    409,
                    "Conflict",
                    f"Precondition failed: {field} in precondition: {preconditions[field]}, "
                    f"{field} in object meta: {old_meta.get(field)}",
                )
        uid = old_meta.get("uid")
        if policy == "Orphan" and uid:
            await self._orphan_dependents(uid)
        if policy == "Foreground" and uid:
            await self._delete_dependents(uid)
        if old_meta.get("deletionTimestamp"):
            return old
        if old_meta.get("finalizers"):
            marked = copy.deepcopy(old)
            _meta(marked)["deletionTimestamp"] = now_rfc3339()
            _meta(marked)["deletionGracePeriodSeconds"] = 0
            _meta(marked)["resourceVersion"] = self._next_revision()
            return await self._store(res, marked, "MODIFIED")
        final = await self._erase(res, old)
        await self._collect_garbage()
        return final

    # -- garbage collection ---------------------------------------------------------------

    def _dependents(self, uid: str) -> list[tuple[kmock.resource, dict[str, Any]]]:
        return [
            (res, obj)
            for res, obj in self.alive_items()
            if any(ref.get("uid") == uid for ref in _meta(obj).get("ownerReferences") or [])
        ]

    async def _remove(self, res: kmock.resource, obj: dict[str, Any]) -> None:
        meta = _meta(obj)
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            marked = copy.deepcopy(obj)
            _meta(marked)["deletionTimestamp"] = now_rfc3339()
            _meta(marked)["resourceVersion"] = self._next_revision()
            await self._store(res, marked, "MODIFIED")
        else:
            await self._erase(res, copy.deepcopy(obj))

    async def _orphan_dependents(self, uid: str) -> None:
        for res, obj in self._dependents(uid):
            new = copy.deepcopy(obj)
            refs = [ref for ref in _meta(new).get("ownerReferences") or [] if ref.get("uid") != uid]
            if refs:
                _meta(new)["ownerReferences"] = refs
            else:
                _meta(new).pop("ownerReferences", None)
            _meta(new)["resourceVersion"] = self._next_revision()
            await self._store(res, new, "MODIFIED")

    async def _delete_dependents(self, uid: str) -> None:
        for res, obj in self._dependents(uid):
            child_uid = _meta(obj).get("uid")
            if child_uid:
                await self._delete_dependents(child_uid)
            await self._remove(res, obj)

    async def _collect_garbage(self) -> None:
        """Delete every object all of whose owners are gone (at least one of them deleted here),
        until nothing more goes: what the cluster's garbage collector does, synchronously."""
        changed = True
        while changed:
            changed = False
            alive_uids = {_meta(obj).get("uid") for _, obj in self.alive_items()}
            for res, obj in list(self.alive_items()):
                refs = {ref.get("uid") for ref in _meta(obj).get("ownerReferences") or [] if ref.get("uid")}
                if not refs or refs & alive_uids or not refs & self._gone_uids:
                    continue
                if _meta(obj).get("deletionTimestamp"):
                    continue
                await self._remove(res, obj)
                changed = True
