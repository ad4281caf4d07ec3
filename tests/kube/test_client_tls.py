"""The kube client over TLS, configured by the ``kubernetes`` package, against a real HTTPS
server with generated certificates: the cluster CA (file or kubeconfig data), insecure mode, a
client certificate, an exec credential plugin's token and the in-cluster service account."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes.client
import kubernetes.config.incluster_config
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shareferry.kube import CONFIGMAPS, ConfigError, KubeClient, KubeError


@dataclass
class Pem:
    cert: bytes
    key: bytes


def _issue(name: str, *, issuer: Pem | None, server: bool, ca: bool = False) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert)
        issuer_name = issuer_cert.subject
        signing_key = serialization.load_pem_private_key(issuer.key, password=None)  # type: ignore[assignment]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]
    return Pem(
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@dataclass
class TlsServer:
    url: str
    ca: Pem
    client: Pem
    ca_path: Path
    seen: list[dict[str, str | None]]


async def _serve(tmp_path: Path, *, require_client_cert: bool) -> AsyncIterator[TlsServer]:
    ca = _issue("test-ca", issuer=None, server=False, ca=True)
    server_pem = _issue("127.0.0.1", issuer=ca, server=True)
    client_pem = _issue("shareferry-operator", issuer=ca, server=False)
    for name, data in {
        "ca.crt": ca.cert,
        "server.crt": server_pem.cert,
        "server.key": server_pem.key,
    }.items():
        (tmp_path / name).write_bytes(data)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(tmp_path / "ca.crt")
    seen: list[dict[str, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        seen.append(
            {"authorization": request.headers.get("Authorization"), "client": subject.get("commonName")}
        )
        return web.json_response({"metadata": {"name": request.match_info["name"]}, "data": {}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield TlsServer(f"https://127.0.0.1:{port}", ca, client_pem, tmp_path / "ca.crt", seen)
    finally:
        await runner.cleanup()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    async for server in _serve(tmp_path, require_client_cert=False):
        yield server


@pytest.fixture
async def mtls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    async for server in _serve(tmp_path, require_client_cert=True):
        yield server


def use_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, path: Path, *, cluster: dict[str, object], user: dict[str, object]
) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


async def test_the_cluster_ca_is_trusted_and_the_token_sent(
    tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_kubeconfig(
        monkeypatch,
        tmp_path / "kubeconfig",
        cluster={"server": tls_server.url, "certificate-authority": str(tls_server.ca_path)},
        user={"token": "t0k3n"},
    )
    async with KubeClient.from_environment() as kube:
        assert (await kube.get(CONFIGMAPS, "default", "cm"))["metadata"]["name"] == "cm"
    assert tls_server.seen == [{"authorization": "Bearer t0k3n", "client": None}]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_an_unknown_ca_is_refused_unless_insecure(
    tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    use_kubeconfig(monkeypatch, kubeconfig, cluster={"server": tls_server.url}, user={"token": "t0k3n"})
    async with KubeClient.from_environment() as kube:
        with pytest.raises(KubeError) as caught:
            await kube.get(CONFIGMAPS, "default", "cm")
    assert (caught.value.status, caught.value.reason) == (0, "ServiceUnavailable")
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message, caught.value.message
    assert caught.value.message.startswith(f"cannot reach the API server {tls_server.url}: SSLError")
    assert "t0k3n" not in str(caught.value)
    assert tls_server.seen == []
    use_kubeconfig(
        monkeypatch, kubeconfig, cluster={"server": tls_server.url, "insecure-skip-tls-verify": True}, user={}
    )
    async with KubeClient.from_environment() as kube:
        assert (await kube.get(CONFIGMAPS, "default", "cm"))["metadata"]["name"] == "cm"


async def test_a_kubeconfig_client_certificate_authenticates(
    mtls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_kubeconfig(
        monkeypatch,
        tmp_path / "kubeconfig",
        cluster={
            "server": mtls_server.url,
            "certificate-authority-data": base64.b64encode(mtls_server.ca.cert).decode(),
        },
        user={
            "client-certificate-data": base64.b64encode(mtls_server.client.cert).decode(),
            "client-key-data": base64.b64encode(mtls_server.client.key).decode(),
        },
    )
    async with KubeClient.from_environment() as kube:
        await kube.get(CONFIGMAPS, "default", "cm")
    assert mtls_server.seen == [{"authorization": None, "client": "shareferry-operator"}]


async def test_an_exec_plugin_token_reaches_the_server_over_tls(
    tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',\n"
        "                  'status': {'token': 'from-the-plugin'}}))\n"
    )
    use_kubeconfig(
        monkeypatch,
        tmp_path / "kubeconfig",
        cluster={"server": tls_server.url, "certificate-authority": str(tls_server.ca_path)},
        user={
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(plugin)],
                "interactiveMode": "Never",
            }
        },
    )
    async with KubeClient.from_environment() as kube:
        await kube.get(CONFIGMAPS, "default", "cm")
    assert tls_server.seen == [{"authorization": "Bearer from-the-plugin", "client": None}]


async def test_in_cluster_the_service_account_token_and_ca_are_used(
    tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("service-account-token")
    (account / "ca.crt").write_bytes(tls_server.ca.cert)
    # The package's own seam: its loader reads these two files from a directory of our choosing.
    loader = kubernetes.config.incluster_config.InClusterConfigLoader(
        token_filename=str(account / "token"),
        cert_filename=str(account / "ca.crt"),
        environ={
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": tls_server.url.rsplit(":", 1)[1],
        },
    )
    configuration = kubernetes.client.Configuration()
    loader.load_and_set(configuration)
    async with KubeClient(configuration) as kube:
        await kube.get(CONFIGMAPS, "default", "cm")
    assert tls_server.seen == [{"authorization": "bearer service-account-token", "client": None}]


async def test_a_missing_ca_file_is_a_config_error(
    tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing-ca.crt"
    use_kubeconfig(
        monkeypatch,
        tmp_path / "kubeconfig",
        cluster={"server": tls_server.url, "certificate-authority": str(missing)},
        user={"token": "t0k3n"},
    )
    with pytest.raises(ConfigError) as caught:
        KubeClient.from_environment()
    assert (
        str(caught.value)
        == f"cannot use the kubeconfig {tmp_path / 'kubeconfig'}: File does not exist: {missing}"
    )
