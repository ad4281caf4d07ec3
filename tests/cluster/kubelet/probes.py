"""Container probes: ``httpGet``, ``tcpSocket`` and ``exec``, and the loop that counts results.

Pods share the host's network, so a probe without ``host`` dials 127.0.0.1. An ``exec`` probe
runs in the container's mount namespace (``nsenter --mount``) with the container's environment
and working directory. ``httpGet`` succeeds on a status from 200 to 399 (HTTPS is not
verified, as the kubelet does not verify it either).
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
from collections.abc import Awaitable, Callable

from tests.cluster.kubelet.api import Json
from tests.cluster.kubelet.downward import POD_IP
from tests.cluster.kubelet.runtime import ContainerProcess


class ProbeError(Exception):
    """A probe that cannot be run as written (say, a named port the container does not have)."""


def _port(value: object, container: Json) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    for port in container.get("ports") or []:
        if port.get("name") == text:
            return int(port["containerPort"])
    raise ProbeError(f"no port named {text!r} in container {container.get('name')!r}")


def _http(host: str, port: int, path: str, *, https: bool, headers: dict[str, str], timeout: float) -> bool:
    connection: http.client.HTTPConnection
    if https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "kube-probe/1", **headers})
        return 200 <= connection.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


async def _exec(command: list[str], process: ContainerProcess, timeout: float) -> bool:
    child = await asyncio.create_subprocess_exec(
        "nsenter",
        "--target",
        str(process.pid),
        "--mount",
        "--",
        "sh",
        "-c",
        'cd "$0" && exec "$@"',
        process.working_dir,
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=process.env,
        start_new_session=True,
    )
    try:
        return await asyncio.wait_for(child.wait(), timeout) == 0
    except TimeoutError:
        child.kill()
        await child.wait()
        return False


async def check(probe: Json, container: Json, process: ContainerProcess) -> bool:
    """Run ``probe`` once; True when it succeeds within ``timeoutSeconds``."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if "httpGet" in probe:
        spec = probe["httpGet"]
        headers = {str(h.get("name")): str(h.get("value", "")) for h in spec.get("httpHeaders") or []}
        return await asyncio.to_thread(
            _http,
            str(spec.get("host") or POD_IP),
            _port(spec.get("port"), container),
            str(spec.get("path") or "/"),
            https=str(spec.get("scheme", "HTTP")).upper() == "HTTPS",
            headers=headers,
            timeout=timeout,
        )
    if "tcpSocket" in probe:
        spec = probe["tcpSocket"]
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(str(spec.get("host") or POD_IP), _port(spec.get("port"), container)),
                timeout,
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True
    if "exec" in probe:
        return await _exec([str(part) for part in probe["exec"].get("command") or []], process, timeout)
    raise ProbeError("probe has no handler (httpGet, tcpSocket or exec)")


async def run(probe: Json, attempt: Callable[[], Awaitable[bool]], report: Callable[[bool], None]) -> None:
    """Probe every ``periodSeconds`` after ``initialDelaySeconds``; call ``report(True)`` after
    ``successThreshold`` successes in a row and ``report(False)`` after ``failureThreshold``
    failures in a row (each time the outcome changes). Runs until cancelled."""
    await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
    period = float(probe.get("periodSeconds") or 10)
    need_success = int(probe.get("successThreshold") or 1)
    need_failure = int(probe.get("failureThreshold") or 3)
    successes = failures = 0
    outcome: bool | None = None
    while True:
        if await attempt():
            successes, failures = successes + 1, 0
            if successes >= need_success and outcome is not True:
                outcome = True
                report(True)
        else:
            successes, failures = 0, failures + 1
            if failures >= need_failure and outcome is not False:
                outcome = False
                report(False)
        await asyncio.sleep(period)
