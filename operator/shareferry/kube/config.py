"""Where the API server is and how to authenticate to it: env vars, in-cluster, or kubeconfig."""

from __future__ import annotations

import atexit
import base64
import contextlib
import importlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shareferry.kube.errors import ConfigError

ENV_SERVER = "SHAREFERRY_KUBE_SERVER"
ENV_TOKEN_FILE = "SHAREFERRY_KUBE_TOKEN_FILE"  # noqa: S105 (a variable name, not a secret)
ENV_INSECURE = "SHAREFERRY_KUBE_INSECURE"
ENV_CA_FILE = "SHAREFERRY_KUBE_CA_FILE"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class KubeConfig:
    """How to reach one API server. ``token`` is a fixed bearer token; ``token_file`` one read
    again at every request (projected service account tokens rotate): ``bearer_token()`` gives
    whichever applies. Neither is ever part of ``repr()``."""

    server: str
    token: str | None = field(default=None, repr=False)
    ca_path: str | None = None
    insecure: bool = False
    token_file: str | None = None
    ca_data: str | None = field(default=None, repr=False)  # PEM text, from kubeconfig *-data
    client_cert_path: str | None = None
    client_key_path: str | None = None

    def bearer_token(self) -> str | None:
        """The token to send now: the file's current content when there is a file."""
        if self.token_file is not None:
            try:
                return Path(self.token_file).read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the API token file {self.token_file}: {exc.strerror}"
                ) from None
        return self.token


def load_config(
    environ: Mapping[str, str] | None = None,
    *,
    service_account_dir: str | os.PathLike[str] | None = None,
) -> KubeConfig:
    """The API server to use, looked up in this order:

    1. ``SHAREFERRY_KUBE_SERVER`` (with optional ``SHAREFERRY_KUBE_TOKEN_FILE``,
       ``SHAREFERRY_KUBE_CA_FILE`` and ``SHAREFERRY_KUBE_INSECURE=1``);
    2. in-cluster: ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` with the pod's service
       account token and CA in ``service_account_dir`` (default
       ``/var/run/secrets/kubernetes.io/serviceaccount``);
    3. kubeconfig (``$KUBECONFIG``, first existing file of the list, else ``~/.kube/config``):
       the current context's server, CA, and bearer token or client certificate.

    Anything unusable raises ``ConfigError`` with one line saying what to fix.
    """
    env = os.environ if environ is None else environ
    server = env.get(ENV_SERVER, "").strip()
    if server:
        return KubeConfig(
            server=server.rstrip("/"),
            token_file=env.get(ENV_TOKEN_FILE) or None,
            ca_path=env.get(ENV_CA_FILE) or None,
            insecure=env.get(ENV_INSECURE, "").strip().lower() in {"1", "true", "yes"},
        )
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    if host:
        return _in_cluster(env, host, Path(service_account_dir or SERVICE_ACCOUNT_DIR))
    return _from_kubeconfig(env)


def _in_cluster(env: Mapping[str, str], host: str, sa_dir: Path) -> KubeConfig:
    port = env.get("KUBERNETES_SERVICE_PORT", "443").strip() or "443"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 service address
    token_file = sa_dir / "token"
    if not token_file.is_file():
        raise ConfigError(f"running in a cluster but the service account token {token_file} is missing")
    ca_file = sa_dir / "ca.crt"
    return KubeConfig(
        server=f"https://{host}:{port}",
        token_file=str(token_file),
        ca_path=str(ca_file) if ca_file.is_file() else None,
    )


def _kubeconfig_path(env: Mapping[str, str]) -> Path:
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
    for candidate in listed:
        if Path(candidate).expanduser().is_file():
            return Path(candidate).expanduser()
    if listed:
        raise ConfigError(f"none of the kubeconfig files in KUBECONFIG exists: {', '.join(listed)}")
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".kube" / "config"


def _named(entries: Any, name: str, what: str, path: Path) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            inner = entry.get(what)
            return dict(inner) if isinstance(inner, Mapping) else {}
    raise ConfigError(f"kubeconfig {path} has no {what} named {name!r}")


def _relative(value: str, path: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else path.parent / p)


def _data_file(data: str, *, suffix: str) -> str:
    """A private temporary file holding base64-decoded kubeconfig ``*-data`` (TLS needs a path)."""
    fd, name = tempfile.mkstemp(prefix="shareferry-kube-", suffix=suffix)  # mode 0600
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64decode(data))
    atexit.register(_remove, name)
    return name


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        Path(path).unlink(missing_ok=True)


def _from_kubeconfig(env: Mapping[str, str]) -> KubeConfig:
    yaml: Any = importlib.import_module("yaml")  # PyYAML; only this path needs it (untyped)

    path = _kubeconfig_path(env)
    if not path.is_file():
        raise ConfigError(
            f"no Kubernetes API server configured: set {ENV_SERVER}, run in a cluster, or provide a kubeconfig "
            f"({path} does not exist)"
        )
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {type(exc).__name__}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    context_name = doc.get("current-context")
    if not context_name:
        raise ConfigError(f"kubeconfig {path} has no current-context")
    context = _named(doc.get("contexts"), str(context_name), "context", path)
    cluster = _named(doc.get("clusters"), str(context.get("cluster")), "cluster", path)
    user_name = context.get("user")
    user = _named(doc.get("users"), str(user_name), "user", path) if user_name else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"kubeconfig {path}: cluster {context.get('cluster')!r} has no server")
    for unsupported in ("exec", "auth-provider", "username", "password"):
        if user.get(unsupported):
            raise ConfigError(
                f"kubeconfig {path}: user {user_name!r} authenticates with {unsupported!r}, which shareferry does "
                f"not support; use a bearer token, a token file or a client certificate"
            )
    ca_path = (
        _relative(str(cluster["certificate-authority"]), path)
        if cluster.get("certificate-authority")
        else None
    )
    ca_data = None
    if cluster.get("certificate-authority-data"):
        ca_data = base64.b64decode(str(cluster["certificate-authority-data"])).decode("ascii")
    cert_path = _relative(str(user["client-certificate"]), path) if user.get("client-certificate") else None
    key_path = _relative(str(user["client-key"]), path) if user.get("client-key") else None
    if user.get("client-certificate-data"):
        cert_path = _data_file(str(user["client-certificate-data"]), suffix=".crt")
    if user.get("client-key-data"):
        key_path = _data_file(str(user["client-key-data"]), suffix=".key")
    if (cert_path is None) != (key_path is None):
        raise ConfigError(
            f"kubeconfig {path}: user {user_name!r} has a client certificate without its key (or the reverse)"
        )
    token_file = _relative(str(user["tokenFile"]), path) if user.get("tokenFile") else None
    return KubeConfig(
        server=server,
        token=str(user["token"]) if user.get("token") else None,
        token_file=token_file,
        ca_path=ca_path,
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        client_cert_path=cert_path,
        client_key_path=key_path,
    )
