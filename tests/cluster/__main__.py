"""``python -m tests.cluster build|up|down|status``: the local Kubernetes control plane."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from tests.cluster import build, controlplane


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a start half-way as Ctrl-C does: cleanly


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("command", choices=("build", "up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=controlplane.DEFAULT_STATE)
    parser.add_argument(
        "--no-kubelet", action="store_true", help="start the control plane without the process kubelet"
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    if args.command == "build":
        started = time.monotonic()
        tools = build.ensure_built()
        build.link_user_tools(tools)
        print(f"built in {time.monotonic() - started:.0f} s: {tools.bin_dir}", file=sys.stderr)
        return 0
    if args.command == "down":
        stopped = controlplane.down(state_dir)
        print("stopped" if stopped else "not running", file=sys.stderr)
        return 0
    if args.command == "status":
        state = controlplane.running(state_dir)
        if state is None:
            print("not running", file=sys.stderr)
            return 1
        print(f"KUBECONFIG={state.kubeconfig}")
        return 0
    tools = build.ensure_built()
    bin_dir = build.link_user_tools(tools)
    try:
        state = controlplane.up(state_dir, tools=tools, kubelet=not args.no_kubelet)
    except RuntimeError as exc:  # up() has stopped what it started
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted; stopped what had started", file=sys.stderr)
        return 130
    print(f"cluster: kubectl and helm are in {bin_dir}; logs in {state.root / 'logs'}", file=sys.stderr)
    print(f"KUBECONFIG={state.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
