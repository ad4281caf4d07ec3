"""Where the kube client finds its API server: env vars, the in-cluster service account, or a
kubeconfig file; and the one-line errors when none of them is usable."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from shareferry.kube import ConfigError, KubeConfig, load_config


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
            {"name": "prod", "cluster": cluster or {"server": "https://prod.example:6443/"}},
        ],
        "users": [{"name": "other", "user": {"token": "x"}}, {"name": "me", "user": user}],
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_explicit_server_from_the_environment(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc\n")
    config = load_config(
        {
            "SHAREFERRY_KUBE_SERVER": "https://api.example:6443/",
            "SHAREFERRY_KUBE_TOKEN_FILE": str(token),
            "SHAREFERRY_KUBE_INSECURE": "1",
            "KUBERNETES_SERVICE_HOST": "10.0.0.1",  # the explicit server wins
        }
    )
    assert config.server == "https://api.example:6443"
    assert config.insecure is True
    assert config.bearer_token() == "abc"
    token.write_text("rotated")
    assert config.bearer_token() == "rotated"


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREFERRY_KUBE_SERVER", "http://127.0.0.1:9999")
    assert load_config() == KubeConfig(server="http://127.0.0.1:9999")


def test_in_cluster_uses_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("projected-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": str(tmp_path)}
    config = load_config(env, service_account_dir=tmp_path)
    assert config.server == "https://10.96.0.1:443"
    assert config.ca_path == str(tmp_path / "ca.crt")
    assert config.bearer_token() == "projected-token"
    assert "projected-token" not in repr(config)

    ipv6 = load_config(
        {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"},
        service_account_dir=tmp_path,
    )
    assert ipv6.server == "https://[fd00::1]:6443"


def test_in_cluster_without_a_token_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"service account token .*token is missing"):
        load_config({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, service_account_dir=tmp_path)


def test_kubeconfig_current_context_with_a_token(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("pem")
    path = write_kubeconfig(
        tmp_path / "config",
        user={"token": "kubeconfig-token"},
        cluster={"server": "https://prod.example:6443/", "certificate-authority": "ca.pem"},
    )
    config = load_config({"KUBECONFIG": f"{tmp_path / 'missing'}:{path}"})
    assert config.server == "https://prod.example:6443"
    assert config.ca_path == str(tmp_path / "ca.pem")  # relative to the kubeconfig's folder
    assert config.bearer_token() == "kubeconfig-token"
    assert "kubeconfig-token" not in repr(config)


def test_kubeconfig_in_home_with_embedded_certificates(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    cert, key, ca = b"CERT-PEM", b"KEY-PEM", b"-----BEGIN CERTIFICATE-----\nCA\n"
    write_kubeconfig(
        tmp_path / ".kube" / "config",
        user={
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
        cluster={
            "server": "https://prod.example:6443",
            "certificate-authority-data": base64.b64encode(ca).decode(),
            "insecure-skip-tls-verify": False,
        },
    )
    config = load_config({"HOME": str(tmp_path)})
    assert config.ca_data == ca.decode()
    assert config.client_cert_path and Path(config.client_cert_path).read_bytes() == cert
    assert config.client_key_path and Path(config.client_key_path).read_bytes() == key
    assert stat.S_IMODE(Path(config.client_key_path).stat().st_mode) == 0o600
    assert config.bearer_token() is None


@pytest.mark.parametrize("method", ["exec", "auth-provider"])
def test_kubeconfig_with_plugin_auth_is_refused_in_one_line(tmp_path: Path, method: str) -> None:
    path = write_kubeconfig(tmp_path / "config", user={method: {"command": "cloud-login"}})
    with pytest.raises(ConfigError) as caught:
        load_config({"KUBECONFIG": str(path)})
    assert f"'{method}'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_no_configuration_at_all_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="set SHAREFERRY_KUBE_SERVER, run in a cluster, or provide a kubeconfig"
    ):
        load_config({"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="none of the kubeconfig files"):
        load_config({"KUBECONFIG": str(tmp_path / "nope")})


def test_a_kubeconfig_pointing_at_a_missing_context_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"current-context": "gone", "contexts": [], "clusters": [], "users": []}))
    with pytest.raises(ConfigError, match="has no context named 'gone'"):
        load_config({"KUBECONFIG": str(path)})
