"""A pod's volumes as directories on the host, ready to be bind-mounted into its containers.

* ``emptyDir``: a fresh directory ``<pod dir>/volumes/<name>`` (``medium`` and ``sizeLimit``
  are ignored), deleted with the pod.
* ``persistentVolumeClaim`` (and generic ``ephemeral`` volumes, whose claim is
  ``<pod>-<volume>``): the claim must be Bound; the volume is its PV's ``hostPath.path`` or
  ``local.path``. ``hostPath`` volumes are the path itself (``DirectoryOrCreate`` creates it).
* ``secret``, ``configMap``, ``downwardAPI`` and ``projected``: files written under the pod
  directory, ``items``, ``mode``/``defaultMode`` and ``optional`` honoured, mounted read-only as a
  kubelet mounts them. A projected ``serviceAccountToken`` comes from the TokenRequest API,
  bound to the pod, and is rewritten atomically (write, then rename) at 80% of its life.

Anything that cannot be had yet (a claim not bound, a Secret not found, a 403 while the Node
authorizer has not yet seen the pod) raises :class:`VolumeError`; the pod worker retries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from tests.cluster.kubelet.api import Api, Json, describe, parse_time
from tests.cluster.kubelet.downward import FieldError, field_value, resource_value
from tests.cluster.kubelet.objects import ObjectError, Objects

LOG = logging.getLogger("kubelet.volumes")
DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600
REFRESH_FRACTION = 0.8
RETRY_SECONDS = 10.0


class VolumeError(Exception):
    """A volume that cannot be set up (yet)."""


@dataclass(frozen=True)
class Volume:
    """A volume's directory (or file) on the host and whether every mount of it is read-only."""

    path: Path
    read_only: bool = False


@dataclass
class _Token:
    file: Path
    mode: int
    audience: str
    seconds: int
    renew_at: float = 0.0


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` so that a reader sees the old bytes or the new ones, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    temporary.replace(path)


def _relative(text: str) -> PurePosixPath:
    relative = PurePosixPath(text)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise VolumeError(f"invalid volume item path {text!r}")
    return relative


@dataclass
class PodVolumes:
    """Sets up, refreshes and removes the volumes of one pod."""

    api: Api
    pod: Json
    pod_dir: Path
    allocatable: dict[str, str]
    volumes: dict[str, Volume] = field(default_factory=dict)
    _tokens: list[_Token] = field(default_factory=list)
    _refresher: asyncio.Task[None] | None = None

    @property
    def _namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    async def prepare(self) -> dict[str, Volume]:
        """Set up every volume of the pod; idempotent, so a retry after an error is fine."""
        objects = Objects(self.api, self._namespace)
        self._tokens.clear()
        for spec in self.pod.get("spec", {}).get("volumes") or []:
            name = str(spec["name"])
            self.volumes[name] = await self._one(name, spec, objects)
        if self._tokens and self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh(), name=f"tokens-{self.pod_dir.name}")
        return self.volumes

    async def _one(self, name: str, spec: Json, objects: Objects) -> Volume:
        own = self.pod_dir / "volumes" / name
        if "emptyDir" in spec:
            own.mkdir(parents=True, exist_ok=True)
            own.chmod(0o777)
            return Volume(own)
        if "hostPath" in spec:
            return Volume(_host_path(spec["hostPath"]))
        if "persistentVolumeClaim" in spec:
            claim = spec["persistentVolumeClaim"]
            return Volume(await self._claim(str(claim["claimName"])), read_only=bool(claim.get("readOnly")))
        if "ephemeral" in spec:
            return Volume(await self._claim(f"{self.pod['metadata']['name']}-{name}"))
        try:
            if "secret" in spec:
                source = spec["secret"]
                await self._keys(
                    own, "secret", str(source.get("secretName", "")), source, objects, _mode(source)
                )
            elif "configMap" in spec:
                source = spec["configMap"]
                await self._keys(
                    own, "configmap", str(source.get("name", "")), source, objects, _mode(source)
                )
            elif "downwardAPI" in spec:
                self._downward(own, spec["downwardAPI"].get("items") or [], _mode(spec["downwardAPI"]))
            elif "projected" in spec:
                await self._projected(own, spec["projected"], objects)
            else:
                raise VolumeError(f"volume {name!r}: this kubelet does not support its type")
        except ObjectError as error:
            raise VolumeError(f"volume {name!r}: {error}") from None
        return Volume(own, read_only=True)

    async def _claim(self, claim_name: str) -> Path:
        try:
            claim = await self.api.call(
                self.api.core.read_namespaced_persistent_volume_claim, claim_name, self._namespace
            )
        except Exception as error:
            raise VolumeError(f"persistentvolumeclaim {claim_name!r}: {describe(error)}") from None
        volume_name = claim.get("spec", {}).get("volumeName")
        if not volume_name or claim.get("status", {}).get("phase") != "Bound":
            raise VolumeError(f"persistentvolumeclaim {claim_name!r} is not bound")
        try:
            volume = await self.api.call(self.api.core.read_persistent_volume, volume_name)
        except Exception as error:
            raise VolumeError(f"persistentvolume {volume_name!r}: {describe(error)}") from None
        spec = volume.get("spec", {})
        if "hostPath" in spec:
            return _host_path(spec["hostPath"])
        if "local" in spec:
            return Path(spec["local"]["path"])
        raise VolumeError(f"persistentvolume {volume_name!r} is neither hostPath nor local")

    async def _keys(
        self, target: Path, kind: str, name: str, source: Json, objects: Objects, mode: int
    ) -> None:
        data = await objects.require(kind, name, optional=bool(source.get("optional")))
        target.mkdir(parents=True, exist_ok=True)
        if data is None:
            return
        items = source.get("items")
        if not items:
            for key, value in data.items():
                write_atomic(target / _relative(key), value, mode)
            return
        for item in items:
            key = str(item.get("key", ""))
            if key not in data:
                if source.get("optional"):
                    continue
                title = "Secret" if kind == "secret" else "ConfigMap"
                raise ObjectError(f"couldn't find key {key} in {title} {self._namespace}/{name}")
            write_atomic(target / _relative(str(item.get("path", key))), data[key], _mode(item, mode))

    def _downward(self, target: Path, items: list[Json], mode: int) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for item in items:
            try:
                if "fieldRef" in item:
                    value = field_value(self.pod, str(item["fieldRef"].get("fieldPath", "")), whole_maps=True)
                else:
                    value = resource_value(
                        self.pod,
                        item.get("resourceFieldRef") or {},
                        container="",
                        allocatable=self.allocatable,
                    )
            except FieldError as error:
                raise VolumeError(str(error)) from None
            write_atomic(target / _relative(str(item.get("path", ""))), value.encode(), _mode(item, mode))

    async def _projected(self, target: Path, projected: Json, objects: Objects) -> None:
        mode = _mode(projected)
        target.mkdir(parents=True, exist_ok=True)
        for source in projected.get("sources") or []:
            if "secret" in source:
                ref = source["secret"]
                await self._keys(target, "secret", str(ref.get("name", "")), ref, objects, mode)
            elif "configMap" in source:
                ref = source["configMap"]
                await self._keys(target, "configmap", str(ref.get("name", "")), ref, objects, mode)
            elif "downwardAPI" in source:
                self._downward(target, source["downwardAPI"].get("items") or [], mode)
            elif "serviceAccountToken" in source:
                ref = source["serviceAccountToken"]
                token = _Token(
                    file=target / _relative(str(ref.get("path", "token"))),
                    mode=mode,
                    audience=str(ref.get("audience") or ""),
                    seconds=int(ref.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
                )
                await self._issue(token)
                self._tokens.append(token)

    async def _issue(self, token: _Token) -> None:
        """Request a token bound to the pod, write it, and set when to renew it."""
        meta = self.pod["metadata"]
        account = str(self.pod.get("spec", {}).get("serviceAccountName") or "default")
        body: Json = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [token.audience] if token.audience else [],
                "expirationSeconds": token.seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            answer = await self.api.call(
                self.api.core.create_namespaced_service_account_token, account, self._namespace, body
            )
        except Exception as error:
            raise VolumeError(
                f"token for serviceaccount {self._namespace}/{account}: {describe(error)}"
            ) from None
        status = answer.get("status", {})
        write_atomic(token.file, str(status.get("token", "")).encode(), token.mode)
        expires = parse_time(str(status.get("expirationTimestamp")))
        life = max((expires - datetime.now(UTC)).total_seconds(), 1.0)
        token.renew_at = asyncio.get_running_loop().time() + REFRESH_FRACTION * life

    async def _refresh(self) -> None:
        """Renew every token at 80% of its life (retrying every 10 s when the request fails)."""
        loop = asyncio.get_running_loop()
        while True:
            token = min(self._tokens, key=lambda item: item.renew_at)
            await asyncio.sleep(max(token.renew_at - loop.time(), 0.0))
            try:
                await self._issue(token)
                LOG.info("refreshed the token at %s", token.file)
            except VolumeError as error:
                LOG.warning("token refresh failed, retrying: %s", error)
                token.renew_at = loop.time() + RETRY_SECONDS

    async def close(self) -> None:
        """Stop refreshing tokens."""
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None

    def remove(self) -> None:
        """Delete the pod's own volume directories (never a claim's or host path's)."""
        shutil.rmtree(self.pod_dir / "volumes", ignore_errors=True)


def _mode(spec: Json, fallback: int = DEFAULT_MODE) -> int:
    value = spec.get("mode", spec.get("defaultMode"))
    return int(value) if value is not None else fallback


def _host_path(spec: Json) -> Path:
    path = Path(str(spec.get("path", "")))
    kind = spec.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif kind in ("Directory", "File") and not path.exists():
        raise VolumeError(f"hostPath {path} does not exist")
    return path
