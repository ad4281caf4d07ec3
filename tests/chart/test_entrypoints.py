"""The commands the chart and the operator put into pods are ones the package really has.

The operator Deployment's command is parsed by the package's own argument parser and its
subcommand's ``--help`` is run from the installed console script; the worker Job is the one the
operator builds (:func:`shareferry.controller.worker_job.build_worker_job`) from a CopyJob the
chart renders, with the settings the chart gives the operator.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shareferry.api.copyjob import spec_hash
from shareferry.cli.main import build_parser
from shareferry.controller.settings import OperatorSettings
from shareferry.controller.worker_job import build_worker_job
from tests.chart.conftest import CONFIGURATIONS, Manifests, of_kind, one
from tests.cluster.crds import dry_run_all
from tests.cluster.kubectl import Kubectl
from tests.support.paths import repo_root

CONSOLE_SCRIPT = Path(sys.executable).parent / "shareferry"


def console_scripts() -> dict[str, str]:
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text(encoding="utf-8"))
    scripts: dict[str, str] = project["project"]["scripts"]
    return scripts


@cache
def help_of(subcommand: str) -> subprocess.CompletedProcess[str]:
    """``shareferry <subcommand> --help`` run from the installed console script."""
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is missing: pip install -e ."
    return subprocess.run(
        [str(CONSOLE_SCRIPT), subcommand, "--help"], capture_output=True, text=True, timeout=60, check=False
    )


def operator_container(manifests: Manifests) -> dict[str, Any]:
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def settings_of(container: dict[str, Any]) -> OperatorSettings:
    """The operator's settings, read from the environment the chart gives its container."""
    environ = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    return OperatorSettings.from_environment(environ)


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_operator_command_parses_with_the_package_parser(rendered: dict[str, Manifests], name: str) -> None:
    command = operator_container(rendered[name])["command"]
    assert command[0] in console_scripts(), f"{command[0]} is not a console script of the package"
    try:
        args = build_parser().parse_args(command[1:])
    except SystemExit as exit_:
        pytest.fail(f"`{' '.join(command)}` is refused by the package's parser (exit {exit_.code})")
    assert args.command == "operator"
    assert args.run.__module__ == "shareferry.cli.operator_cmd"
    watched = [arg.split("=", 1)[1] for arg in command if arg.startswith("--namespace=")]
    assert args.namespace == watched
    assert args.all_namespaces is (not watched)
    assert args.liveness_endpoint == "http://0.0.0.0:8081/healthz"


def test_operator_subcommand_and_its_flags_exist_in_the_console_script(
    rendered: dict[str, Manifests],
) -> None:
    result = help_of("operator")
    assert result.returncode == 0, result.stderr
    flags = {
        arg.split("=", 1)[0]
        for name in CONFIGURATIONS
        for arg in operator_container(rendered[name])["command"][2:]
    }
    assert flags >= {"--all-namespaces", "--namespace", "--metrics-port", "--liveness-endpoint"}
    missing = [flag for flag in sorted(flags) if flag not in result.stdout]
    assert missing == [], f"`shareferry operator --help` does not mention {missing}"


@pytest.mark.parametrize("name", ["default", "all-features"])
def test_operator_settings_from_the_chart_are_accepted(rendered: dict[str, Manifests], name: str) -> None:
    container = operator_container(rendered[name])
    settings = settings_of(container)
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    assert settings.worker_image == env["SHAREFERRY_WORKER_IMAGE"]
    assert settings.worker_pull_policy == env["SHAREFERRY_WORKER_IMAGE_PULL_POLICY"]
    assert settings.worker_service_account == env["SHAREFERRY_WORKER_SERVICE_ACCOUNT"]
    assert settings.status_interval == float(env["SHAREFERRY_STATUS_INTERVAL"])


@pytest.mark.parametrize("name", ["all-features", "migration"])
def test_worker_job_built_by_the_operator_runs_an_existing_command_as_the_charts_account(
    rendered: dict[str, Manifests], crds_installed: Kubectl, name: str
) -> None:
    manifests = rendered[name]
    settings = settings_of(operator_container(manifests))
    accounts = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in of_kind(manifests, "ServiceAccount")
    }
    copyjobs = of_kind(manifests, "CopyJob")
    assert copyjobs
    for answer in dry_run_all(crds_installed, copyjobs):
        copyjob = answer.stored()  # as the API server stores it
        copyjob["metadata"]["uid"] = "6b1f3c52-2a4e-4a8e-9f0e-0c3f1d2b7a10"
        job = build_worker_job(copyjob, settings=settings, spec_hash=spec_hash(copyjob["spec"]))
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        namespace = copyjob["metadata"]["namespace"]
        assert job["metadata"]["namespace"] == namespace
        assert (namespace, pod["serviceAccountName"]) in accounts, (
            "no worker ServiceAccount where the pods run"
        )
        assert container["image"] == settings.worker_image
        assert container["command"][0] in console_scripts()
        result = help_of(container["command"][1])
        assert container["command"][1:] == ["worker"]
        assert result.returncode == 0, result.stderr
        assert container["resources"]["requests"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_images_other_entrypoint_exists() -> None:
    result = help_of("emulator")
    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout
