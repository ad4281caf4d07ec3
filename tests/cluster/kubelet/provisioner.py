"""A tiny local-path volume provisioner, run beside the kubelet with admin credentials.

Every second it looks at the cluster's claims and volumes:

* a PVC that is Pending without ``volumeName`` gets a PV ``pvc-<claim uid>``: ``hostPath``
  ``<state>/volumes/<namespace>/<claim>-<uid8>`` (created now), the claim's requested storage
  as capacity, its access modes, volume mode and storage class, ``claimRef`` to it, reclaim
  policy Delete and node affinity to this node (the directory lives here). The real PV
  controller binds the pair, and the real scheduler's VolumeBinding plugin admits the pod.
* a PV it provisioned (annotation ``pv.kubernetes.io/provisioned-by``) that is Released (or
  Failed) under reclaim policy Delete loses its directory, then the PV is deleted. The PV
  controller leaves such volumes to their external provisioner, which is this.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from tests.cluster.kubelet.api import Api, Json, describe, status_of

LOG = logging.getLogger("kubelet.provisioner")
PROVISIONER = "shareferry.test/local-path"
ANNOTATION = "pv.kubernetes.io/provisioned-by"
INTERVAL = 1.0


class Provisioner:
    """Provisions and reclaims hostPath volumes under ``<state>/volumes``."""

    def __init__(self, api: Api, *, state_dir: Path, node_name: str) -> None:
        self.api = api
        self.root = (state_dir / "volumes").resolve()
        self.node_name = node_name

    async def run(self) -> None:
        """Provision and reclaim forever (cancel to stop)."""
        while True:
            try:
                await self._pass()
            except Exception as error:
                LOG.warning("provisioner pass failed: %s", describe(error))
            await asyncio.sleep(INTERVAL)

    async def _pass(self) -> None:
        claims = await self.api.call(self.api.core.list_persistent_volume_claim_for_all_namespaces)
        for claim in claims.get("items") or []:
            spec, meta = claim.get("spec", {}), claim.get("metadata", {})
            if (
                claim.get("status", {}).get("phase") == "Pending"
                and not spec.get("volumeName")
                and not meta.get("deletionTimestamp")
            ):
                await self._provision(claim)
        volumes = await self.api.call(self.api.core.list_persistent_volume)
        for volume in volumes.get("items") or []:
            meta, spec = volume.get("metadata", {}), volume.get("spec", {})
            if (
                (meta.get("annotations") or {}).get(ANNOTATION) == PROVISIONER
                and spec.get("persistentVolumeReclaimPolicy") == "Delete"
                and volume.get("status", {}).get("phase") in ("Released", "Failed")
                and not meta.get("deletionTimestamp")
            ):
                await self._reclaim(volume)

    async def _provision(self, claim: Json) -> None:
        meta, spec = claim["metadata"], claim.get("spec", {})
        uid = str(meta["uid"])
        directory = self.root / str(meta["namespace"]) / f"{meta['name']}-{uid[:8]}"
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)
        volume: Json = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"pvc-{uid}", "annotations": {ANNOTATION: PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "storageClassName": spec.get("storageClassName") or "",
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": uid,
                },
                "hostPath": {"path": str(directory), "type": "Directory"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [self.node_name],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }
        try:
            await self.api.call(self.api.core.create_persistent_volume, volume)
        except Exception as error:
            if status_of(error) != 409:
                raise
            return
        LOG.info("provisioned pvc-%s for %s/%s at %s", uid, meta["namespace"], meta["name"], directory)

    async def _reclaim(self, volume: Json) -> None:
        name = str(volume["metadata"]["name"])
        path = Path(str(volume.get("spec", {}).get("hostPath", {}).get("path", ""))).resolve()
        if path.is_relative_to(self.root) and path != self.root:
            shutil.rmtree(path, ignore_errors=True)
        try:
            await self.api.call(self.api.core.delete_persistent_volume, name)
        except Exception as error:
            if status_of(error) != 404:
                raise
        LOG.info("reclaimed %s (%s)", name, path)
