"""Where the kube client finds its API server, as the ``kubernetes`` package loads it: the
in-cluster service account when KUBERNETES_SERVICE_HOST is set, else the kubeconfig (KUBECONFIG
or ~/.kube/config, its current context, tokens, certificates and exec credential plugins); the
one-line errors when neither is usable; and what kopf's login is handed."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import kubernetes.config.incluster_config
import pytest
import yaml

from shareferry.controller.login import login
from shareferry.kube import SERVICEACCOUNTS, ConfigError, KubeClient, credentials, load_configuration
from tests.support.operator_plane import Plane


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No cluster, no kubeconfig, a HOME of our own: each test says what it has."""
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def write_kubeconfig(
    path: Path, *, user: dict[str, object], cluster: dict[str, object] | None = None
) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "work",
        "contexts": [
            {"name": "home", "context": {"cluster": "other", "user": "other"}},
            {"name": "work", "context": {"cluster": "prod", "user": "me"}},
        ],
        "clusters": [
            {"name": "other", "cluster": {"server": "https://other.example:6443"}},
            {"name": "prod", "cluster": cluster or {"server": "https://prod.example:6443"}},
        ],
        "users": [{"name": "other", "user": {"token": "x"}}, {"name": "me", "user": user}],
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_kubeconfig_current_context_with_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_text("pem")
    path = write_kubeconfig(
        tmp_path / "config",
        user={"token": "kubeconfig-token"},
        cluster={"server": "https://prod.example:6443", "certificate-authority": "ca.pem"},
    )
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{path}")
    found = credentials(load_configuration())
    assert found.server == "https://prod.example:6443"
    assert found.ca_path == str(tmp_path / "ca.pem")  # relative to the kubeconfig's folder
    assert (found.scheme, found.token) == ("Bearer", "kubeconfig-token")
    assert found.insecure is False
    assert "kubeconfig-token" not in repr(found)


def test_kubeconfig_in_home_with_embedded_certificates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir()
    cert, key, ca = b"CERT-PEM", b"KEY-PEM", b"-----BEGIN CERTIFICATE-----\nCA\n"
    write_kubeconfig(
        home / ".kube" / "config",
        user={
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
        cluster={
            "server": "https://prod.example:6443",
            "certificate-authority-data": base64.b64encode(ca).decode(),
        },
    )
    found = credentials(load_configuration())
    assert found.ca_path and Path(found.ca_path).read_bytes() == ca
    assert found.certificate_path and Path(found.certificate_path).read_bytes() == cert
    assert found.private_key_path and Path(found.private_key_path).read_bytes() == key
    assert found.token is None and found.scheme is None


def test_in_cluster_wins_over_a_kubeconfig_and_reads_the_service_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("projected-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    # The package reads the service account from /var/run/secrets/...: point it here.
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", user={"token": "kc"})))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    found = credentials(load_configuration())
    assert found.server == "https://[fd00::1]:6443"
    assert found.ca_path == str(account / "ca.crt")
    assert (found.scheme, found.token) == ("bearer", "projected-token")
    assert "projected-token" not in repr(found)


def test_in_cluster_without_a_service_account_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError) as caught:
        load_configuration()
    assert str(caught.value) == (
        "running in a cluster (KUBERNETES_SERVICE_HOST is set) but its service account is unusable: "
        "Service token file does not exist."
    )


def test_no_configuration_at_all_says_what_to_provide(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_configuration()
    assert str(caught.value) == (
        "no Kubernetes API server configured: run in a cluster, or provide a kubeconfig "
        "(KUBECONFIG or ~/.kube/config; no file at ~/.kube/config)"
    )
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=f"no file at {tmp_path / 'nope'}"):
        load_configuration()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"current-context": "gone", "contexts": [], "clusters": [], "users": []},
            "Expected object with name gone in",
        ),
        ({"current-context": "c", "contexts": "not: a list"}, "cannot use the kubeconfig"),
        ("clusters: [unclosed", "not YAML (ParserError at line 1)"),
        (
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": "https://k.example"}}],
                "users": [
                    {"name": "u", "user": {"client-certificate-data": "s3cr3t!", "client-key-data": "x"}}
                ],
            },
            "a malformed entry (binascii.Error)",
        ),
    ],
)
def test_an_unusable_kubeconfig_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, document: object, expected: str
) -> None:
    path = tmp_path / "config"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_configuration()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def write_exec_plugin(tmp_path: Path) -> Path:
    """A credential plugin as kubelogin is one: it prints an ExecCredential with a token, the next
    one of a list each time it runs (counted in a counter file), already expired when told so."""
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, os, pathlib\n"
        "counter = pathlib.Path(os.environ['PLUGIN_COUNTER'])\n"
        "runs = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(runs))\n"
        "tokens = json.loads(pathlib.Path(os.environ['PLUGIN_TOKENS']).read_text())\n"
        "status = {'token': tokens[(runs - 1) % len(tokens)]}\n"
        "if os.environ.get('PLUGIN_EXPIRED'):\n"
        "    status['expirationTimestamp'] = '2000-01-01T00:00:00Z'\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', 'status': status}))\n"
    )
    return script


def exec_user(tmp_path: Path, *, expired: bool, tokens: list[str] | None = None) -> dict[str, object]:
    listed = tmp_path / "tokens.json"
    listed.write_text(json.dumps(tokens or [f"exec-token-{run}" for run in range(1, 4)]))
    env = [
        {"name": "PLUGIN_COUNTER", "value": str(tmp_path / "runs")},
        {"name": "PLUGIN_TOKENS", "value": str(listed)},
    ]
    if expired:
        env.append({"name": "PLUGIN_EXPIRED", "value": "1"})
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(write_exec_plugin(tmp_path))],
            "env": env,
            "interactiveMode": "Never",
        }
    }


async def service_account_tokens(namespace: str, plane: Plane, names: list[str]) -> list[str]:
    """A token (TokenRequest API) for each of new ServiceAccounts ``names``."""
    tokens = []
    async with plane.client() as admin:
        for name in names:
            await admin.create(SERVICEACCOUNTS, namespace, {"metadata": {"name": name}})
            answer = await admin.request(
                "POST",
                SERVICEACCOUNTS.path(namespace, name, "token"),
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
            )
            tokens.append(str(answer["status"]["token"]))
    return tokens


async def who_am_i(kube: KubeClient) -> str:
    """The user the server authenticated the request as (a SelfSubjectReview)."""
    answer = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(answer["status"]["userInfo"]["username"])


def real_server(plane: Plane) -> dict[str, object]:
    return {"server": plane.state.server, "certificate-authority": str(plane.state.pki.ca_cert)}


async def test_an_exec_credential_plugin_token_reaches_the_server(
    operator_plane: Plane, kube_namespace: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    accounts = ["exec-1", "exec-2", "exec-3"]
    tokens = await service_account_tokens(kube_namespace, operator_plane, accounts)
    path = write_kubeconfig(
        tmp_path / "config",
        user=exec_user(tmp_path, expired=False, tokens=tokens),
        cluster=real_server(operator_plane),
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    async with KubeClient.from_environment() as kube:
        seen = [await who_am_i(kube), await who_am_i(kube)]
    assert seen == [f"system:serviceaccount:{kube_namespace}:exec-1"] * 2
    assert (tmp_path / "runs").read_text() == "1"  # one run: the token has not expired


async def test_an_expired_exec_token_is_fetched_again(
    operator_plane: Plane, kube_namespace: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    accounts = ["exec-1", "exec-2", "exec-3"]
    tokens = await service_account_tokens(kube_namespace, operator_plane, accounts)
    path = write_kubeconfig(
        tmp_path / "config",
        user=exec_user(tmp_path, expired=True, tokens=tokens),
        cluster=real_server(operator_plane),
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    async with KubeClient.from_environment() as kube:
        seen = [await who_am_i(kube), await who_am_i(kube)]
    # Loading the configuration ran the plugin once; each call finds that token expired.
    assert seen == [f"system:serviceaccount:{kube_namespace}:exec-{run}" for run in (2, 3)]
    assert (tmp_path / "runs").read_text() == "3"


def test_kopf_logs_in_with_what_the_package_loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "KUBECONFIG",
        str(
            write_kubeconfig(
                tmp_path / "config",
                user=exec_user(tmp_path, expired=False),
                cluster={"server": "https://prod.example:6443", "insecure-skip-tls-verify": True},
            )
        ),
    )
    info = login()
    assert info.server == "https://prod.example:6443"
    assert info.insecure is True
    assert (info.scheme, info.token) == ("Bearer", "exec-token-1")
