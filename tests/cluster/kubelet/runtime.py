"""The "container runtime": one container as processes in private mount and PID namespaces.

``setpriv --pdeathsig KILL unshare --mount --propagation private --pid --fork --kill-child
--mount-proc sh -c SCRIPT`` starts a new session (process group). Its leader, ``unshare``, gets
SIGKILL if the kubelet dies, which kills the namespace's first process and with it, by the
kernel's rule for PID namespaces, every process of the container: nothing outlives the kubelet,
not even a process that left the process group.

The script runs as PID 1 of the container. It bind-mounts each volume at its ``mountPath``
(``subPath`` and ``readOnly`` honoured, a read-only bind is remounted read-only), remounts ``/``
read-only when the container asks for ``readOnlyRootFilesystem`` (after the binds, which are
mounts of their own and so stay writable), changes to the working directory and starts the
container's command as its only child. It then waits for that child and exits with its status
(128 + signal number when a signal ended it), so the exit code the kubelet reports is the
command's. A SIGTERM sent to the process group reaches the command directly, as it reaches a
container's processes; the script itself only passes it on and keeps waiting. When the command
ends, PID 1 ends, and whatever the command left behind is killed with the namespace.

A mount point missing on the host is created on the host (an empty directory, or an empty file
when a ``subPath`` names a file), as a runtime creates it in the container's root filesystem.
So is the staging point (``<pod dir>/stage``, or ``/run/shareferry-kubelet`` when a mount
covers the pod directory), an empty directory on the host: what is staged lives in a tmpfs
private to the container's mount namespace.
When the setup itself fails, the script says why in the container's log and exits 128.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.cluster.kubelet.api import Json, now
from tests.cluster.kubelet.env import expand
from tests.cluster.kubelet.volumes import Volume

SETUP_FAILED = 128


class MountError(Exception):
    """A ``volumeMounts`` entry that names no volume of the pod or an invalid ``subPath``."""


@dataclass(frozen=True)
class Mount:
    """One bind mount: ``source`` on the host at ``target`` inside the container."""

    source: Path
    target: PurePosixPath
    read_only: bool


def mounts_for(container: Json, volumes: dict[str, Volume], env: dict[str, str]) -> list[Mount]:
    """The container's ``volumeMounts`` resolved against the pod's volumes, parents first.

    A ``subPath`` (or ``subPathExpr``, expanded with the container's variables) that does not
    exist yet is created as a directory, as the kubelet does."""
    mounts: list[Mount] = []
    for spec in container.get("volumeMounts") or []:
        volume = volumes.get(str(spec.get("name")))
        if volume is None:
            raise MountError(f"volumeMount {spec.get('name')!r}: no such volume in the pod")
        sub = str(spec.get("subPath") or "") or expand(str(spec.get("subPathExpr") or ""), env)
        source = volume.path
        if sub:
            relative = PurePosixPath(sub)
            if relative.is_absolute() or ".." in relative.parts:
                raise MountError(f"invalid subPath {sub!r}")
            source = volume.path / relative
            if not source.exists():
                source.mkdir(parents=True, exist_ok=True)
        target = PurePosixPath(str(spec.get("mountPath", "")))
        mounts.append(Mount(source, target, bool(spec.get("readOnly")) or volume.read_only))
    return sorted(mounts, key=lambda mount: len(mount.target.parts))


def keep_reachable(mounts: list[Mount], paths: list[tuple[Path, bool]]) -> list[Mount]:
    """``mounts`` plus a bind of each host path in ``paths`` (with its read-only flag) that a
    mount would hide, so the container still finds it where its environment says.

    Processes see the host's filesystem, so the checkout and interpreter that play the image's
    part, and the container's home directory, live at host paths; a volume mounted at, say,
    ``/tmp`` must not hide them when they happen to lie under /tmp."""
    kept = list(mounts)
    for path, read_only in paths:
        target = PurePosixPath(path)
        if any(target != m.target and target.is_relative_to(m.target) for m in mounts):
            kept.append(Mount(path, target, read_only))
    return sorted(kept, key=lambda mount: len(mount.target.parts))


STAGE_CANDIDATES = (PurePosixPath("/run/shareferry-kubelet"), PurePosixPath("/mnt/.shareferry-kubelet"))


def stage_dir(mounts: list[Mount], preferred: PurePosixPath) -> PurePosixPath:
    """Where the script stages the volumes: the first candidate no mount target covers."""
    for candidate in (preferred, *STAGE_CANDIDATES):
        if not any(candidate == m.target or candidate.is_relative_to(m.target) for m in mounts):
            return candidate
    raise MountError("the volume mounts cover every place the kubelet could stage them")


def setup_script(mounts: list[Mount], *, read_only_root: bool, working_dir: str, stage: PurePosixPath) -> str:
    """The shell script that prepares the mount namespace and then runs ``"$@"``.

    Every volume is first bind-mounted into ``stage`` (a private tmpfs), while nothing hides
    its source, and only then at its target: a mount at ``/tmp`` must not hide the source of a
    later one that lives under /tmp on the host. The stage is unmounted before the command
    starts."""

    def fail(message: str) -> str:
        return f"fail {shlex.quote(message)}"

    staged = shlex.quote(str(stage))
    lines = [
        f'fail() {{ echo "kubelet: $1" >&2; exit {SETUP_FAILED}; }}',
        f"mkdir -p {staged} && mount -t tmpfs -o size=1m,mode=700 kubelet-stage {staged} || {fail('cannot stage the volumes')}",
    ]
    for index, mount in enumerate(mounts):
        slot = shlex.quote(f"{stage}/{index}")
        make = "mkdir" if mount.source.is_dir() else ": >"
        lines.append(
            f"{make} {slot} && mount --bind {shlex.quote(str(mount.source))} {slot} || {fail(f'cannot mount {mount.source}')}"
        )
    for index, mount in enumerate(mounts):
        slot, target = shlex.quote(f"{stage}/{index}"), shlex.quote(str(mount.target))
        if mount.source.is_dir():
            lines.append(f"mkdir -p {target} || {fail(f'cannot create mount point {mount.target}')}")
        else:
            parent = shlex.quote(str(mount.target.parent))
            lines.append(
                f"[ -e {target} ] || {{ mkdir -p {parent} && : > {target}; }} || {fail(f'cannot create mount point {mount.target}')}"
            )
        lines.append(f"mount --bind {slot} {target} || {fail(f'cannot mount {mount.target}')}")
        if mount.read_only:
            lines.append(
                f"mount -o remount,bind,ro {target} || {fail(f'cannot make {mount.target} read-only')}"
            )
    lines.append(f"umount -R {staged} || {fail('cannot unmount the stage')}")
    if read_only_root:
        lines.append(f"mount -o remount,bind,ro / || {fail('cannot make / read-only')}")
    lines.append(f"cd {shlex.quote(working_dir)} || {fail(f'no working directory {working_dir}')}")
    lines.append(_INIT)
    return "\n".join(lines)


# PID 1's own messages (a shell reports a child killed by a signal) go nowhere; the command's
# stderr goes to the log through fd 3.
_INIT = """exec 3>&2 2>/dev/null
"$@" 2>&3 3>&- &
child=$!
trap 'kill -TERM $child' TERM
trap 'kill -INT $child' INT
while :; do
  wait $child
  code=$?
  kill -0 $child || break
done
exit $code"""


class ContainerProcess:
    """A running container: ``unshare``, which leads the container's process group and whose
    exit status is the command's."""

    def __init__(self, process: asyncio.subprocess.Process, env: dict[str, str], working_dir: str) -> None:
        self.process = process
        self.pid = process.pid
        self.env = env
        self.working_dir = working_dir
        self.started_at = now()

    def signal(self, number: int) -> None:
        """Send ``number`` to every process of the container."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, number)

    async def wait(self) -> int:
        """Wait for the container to end; kill what is left of its process group; return the
        exit code (128 + signal number when a signal ended it, as a runtime reports it)."""
        code = await self.process.wait()
        self.signal(signal.SIGKILL)
        return 128 - code if code < 0 else code


async def start(
    argv: list[str],
    *,
    env: dict[str, str],
    mounts: list[Mount],
    stage: PurePosixPath,
    read_only_root: bool,
    working_dir: str,
    log_file: Path,
) -> ContainerProcess:
    """Start one container process; its output is appended to ``log_file``."""
    script = setup_script(mounts, read_only_root=read_only_root, working_dir=working_dir, stage=stage)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            "setpriv",
            "--pdeathsig",
            "KILL",
            "--",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--",
            "sh",
            "-c",
            script,
            "container",
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd="/",
            start_new_session=True,
        )
    return ContainerProcess(process, env, working_dir)
