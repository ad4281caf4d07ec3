"""``shareferry operator``: run the Kubernetes operator (kopf) that reconciles ShareFerry's CRDs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

EPILOG = """\
environment:
  SHAREFERRY_WORKER_IMAGE               the image the worker Jobs run (shareferry worker)
  SHAREFERRY_WORKER_IMAGE_PULL_POLICY   Always, IfNotPresent (default) or Never
  SHAREFERRY_WORKER_SERVICE_ACCOUNT     the worker pods' ServiceAccount (default shareferry-worker)
  SHAREFERRY_STATUS_INTERVAL            seconds between a worker's status updates (default 5)
  SHAREFERRY_WATCH_NAMESPACES           comma-separated namespaces, when --namespace is not given
the Kubernetes API is found in-cluster (the pod's service account), else through the kubeconfig
($KUBECONFIG or ~/.kube/config: its current context, with any exec credential plugin)."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "operator",
        help="run the operator that reconciles FileShare, CopyJob and SyncSchedule resources",
        description="Run the ShareFerry operator (kopf) until interrupted.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; glob patterns allowed)",
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)"
    )
    parser.add_argument("--metrics-port", type=int, default=8080, help="serve /metrics on this port (0: off)")
    parser.add_argument("--metrics-address", default="0.0.0.0", help="address for /metrics (default 0.0.0.0)")
    parser.add_argument(
        "--liveness-endpoint",
        default="http://0.0.0.0:8081/healthz",
        metavar="URL",
        help="kopf's liveness probe endpoint (default http://0.0.0.0:8081/healthz; '' turns it off)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from shareferry.controller.metrics import OperatorMetrics
    from shareferry.controller.runner import run_operator
    from shareferry.controller.settings import OperatorSettings, SettingsError
    from shareferry.kube import ConfigError

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    namespaces: list[str] = list(args.namespace)
    if not namespaces and not args.all_namespaces:
        namespaces = [
            ns.strip() for ns in os.environ.get("SHAREFERRY_WATCH_NAMESPACES", "").split(",") if ns.strip()
        ]
    try:
        settings = OperatorSettings.from_environment()
    except SettingsError as error:
        print(f"shareferry operator: {error}", file=sys.stderr)
        return 2
    metrics = OperatorMetrics()
    if args.metrics_port:
        metrics.serve(port=args.metrics_port, address=args.metrics_address)
    try:
        asyncio.run(
            run_operator(
                namespaces=namespaces,
                settings=settings,
                metrics=metrics,
                liveness_endpoint=args.liveness_endpoint or None,
            )
        )
    except ConfigError as error:
        print(f"shareferry operator: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
