"""Command line of the process kubelet (see the package docstring).

Log lines go to stderr with timestamps. SIGTERM or SIGINT stops every pod (grace period capped
at 10 s), reports them, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from tests.cluster.kubelet.agent import Kubelet
from tests.cluster.kubelet.api import Api, describe
from tests.cluster.kubelet.env import NodeContext
from tests.cluster.kubelet.node import NodeAgent, node_resources, parse_taints
from tests.cluster.kubelet.pod import Runtime
from tests.cluster.kubelet.provisioner import Provisioner

LOG = logging.getLogger("kubelet")
REPOSITORY = Path(__file__).resolve().parents[3]
REGISTER_ATTEMPTS = 60


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.kubelet", description=__doc__)
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="the node's kubeconfig (system:node:NAME)"
    )
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--api-host", default="127.0.0.1", help="KUBERNETES_SERVICE_HOST for the pods")
    parser.add_argument("--api-port", type=int, required=True, help="KUBERNETES_SERVICE_PORT for the pods")
    parser.add_argument("--ca-file", type=Path, required=True, help="the cluster CA (checked to exist)")
    parser.add_argument(
        "--shareferry", type=Path, help="the image's ENTRYPOINT (default: <repo>/.venv/bin/shareferry)"
    )
    parser.add_argument(
        "--provisioner-kubeconfig", type=Path, help="admin kubeconfig: also run the local-path provisioner"
    )
    parser.add_argument(
        "--register-with-taints", default="", help="taints the Node is created with: key=value:Effect,..."
    )
    return parser


def _entrypoint(explicit: Path | None) -> tuple[list[str], Path | None, str | None]:
    """The ENTRYPOINT argv, the directory to put first on PATH, and a PYTHONPATH (fallback only)."""
    candidate = explicit or REPOSITORY / ".venv" / "bin" / "shareferry"
    if candidate.exists():
        return [str(candidate)], candidate.parent, None
    python = Path(sys.executable)
    return [str(python), "-m", "shareferry"], python.parent, str(REPOSITORY / "operator")


def _software(entrypoint_bin: Path | None) -> list[Path]:
    """The host paths that play the image's part: this checkout and the Python it runs on."""
    paths = {REPOSITORY, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    if entrypoint_bin is not None:
        paths.add(entrypoint_bin.resolve().parent)
    return sorted(paths)


async def _main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    api = Api(args.kubeconfig)
    node = NodeAgent(api, name=args.node_name, state_dir=args.state_dir, taints=args.taints)
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            await node.register()
            break
        except Exception as error:
            LOG.warning("registration failed (attempt %d): %s", attempt + 1, describe(error))
            if stop.is_set() or attempt + 1 == REGISTER_ATTEMPTS:
                return 1
            await asyncio.sleep(1.0)
    entrypoint, entrypoint_bin, python_path = _entrypoint(args.shareferry)
    runtime = Runtime(
        api,
        state_dir=args.state_dir,
        node=NodeContext(args.api_host, args.api_port, node_resources(args.state_dir)),
        entrypoint=entrypoint,
        entrypoint_bin=entrypoint_bin,
        python_path=python_path,
        software=_software(entrypoint_bin),
    )
    provisioner = None
    if args.provisioner_kubeconfig:
        worker = Provisioner(
            Api(args.provisioner_kubeconfig), state_dir=args.state_dir, node_name=args.node_name
        )
        provisioner = asyncio.create_task(worker.run(), name="provisioner")
    await Kubelet(api, node, runtime).run(stop)
    if provisioner is not None:
        provisioner.cancel()
        await asyncio.gather(provisioner, return_exceptions=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.taints = parse_taints(args.register_with_taints)
    except ValueError as error:
        print(f"kubelet: --register-with-taints: {error}", file=sys.stderr)
        return 2
    if not args.ca_file.is_file():
        print(f"kubelet: --ca-file {args.ca_file} does not exist", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
