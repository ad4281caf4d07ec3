"""Where the API server is and how to authenticate to it, as the ``kubernetes`` package reads it.

In a pod (``KUBERNETES_SERVICE_HOST`` set) the service account: its token (re-read as it
rotates) and the cluster CA under ``/var/run/secrets/kubernetes.io/serviceaccount``. Anywhere
else the kubeconfig: ``$KUBECONFIG`` (a list of files, merged) or ``~/.kube/config``, its current
context, and whatever that user authenticates with (token, token file, client certificate, exec
credential plugins such as kubelogin, OIDC). This module only chooses between the two and turns
the package's errors into one-line ``ConfigError``s; :func:`credentials` hands the result to
another client (kopf) without anyone re-reading the files.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config

from shareferry.kube.errors import ConfigError

IN_CLUSTER_HOST = "KUBERNETES_SERVICE_HOST"
DEFAULT_KUBECONFIG = "~/.kube/config"
yaml: Any = importlib.import_module("yaml")  # PyYAML ships no type hints; the package reads with it


def load_configuration() -> kubernetes.client.Configuration:
    """A fresh ``kubernetes.client.Configuration`` for this process's API server.

    In-cluster when ``KUBERNETES_SERVICE_HOST`` is set (a pod whose service account cannot be
    read is an error, not a reason to try a kubeconfig), else the kubeconfig. The environment
    is read at each call (the package reads ``$KUBECONFIG`` only once, when imported).
    Anything unusable raises ``ConfigError`` with one line saying what to fix.
    """
    configuration = kubernetes.client.Configuration()
    if os.environ.get(IN_CLUSTER_HOST, "").strip():
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException as exc:
            raise ConfigError(
                f"running in a cluster ({IN_CLUSTER_HOST} is set) but its service account is unusable: {exc}"
            ) from None
        return configuration
    files = os.environ.get("KUBECONFIG", "").strip() or DEFAULT_KUBECONFIG
    listed = [entry for entry in files.split(os.pathsep) if entry.strip()]
    if not any(Path(entry).expanduser().is_file() for entry in listed):
        raise ConfigError(
            "no Kubernetes API server configured: run in a cluster, or provide a kubeconfig "
            f"(KUBECONFIG or {DEFAULT_KUBECONFIG}; no file at {', '.join(listed)})"
        )
    try:
        kubernetes.config.load_kube_config(
            config_file=files, client_configuration=configuration, persist_config=False
        )
    except kubernetes.config.ConfigException as exc:
        raise ConfigError(f"cannot use the kubeconfig {files}: {_one_line(str(exc))}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"cannot read the kubeconfig {files}: not YAML ({type(exc).__name__}{where})"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {exc.filename or files}: {exc.strerror or type(exc).__name__}"
        ) from None
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:  # a malformed entry; its text may quote a secret
        raise ConfigError(
            f"cannot use the kubeconfig {files}: a malformed entry ({type(exc).__module__}.{type(exc).__name__})"
        ) from None
    return configuration


@dataclass(frozen=True)
class Credentials:
    """What another HTTP client needs to reach the API server as this configuration does: the
    ``kubernetes`` package's result, flattened (``scheme``/``token`` from its Authorization
    header, after any refresh: an exec plugin's or a rotated service account token). The token
    and password are never part of ``repr()``."""

    server: str
    ca_path: str | None = None
    insecure: bool = False
    scheme: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    private_key_path: str | None = None


def credentials(configuration: kubernetes.client.Configuration) -> Credentials:
    """The credentials a configuration stands for now (refreshing an expired token first)."""
    header = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    scheme, token = None, None
    if header:
        first, _, rest = str(header).partition(" ")
        scheme, token = (first, rest) if rest else (None, first)
    return Credentials(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        username=configuration.username or None,
        password=configuration.password or None,
        certificate_path=configuration.cert_file or None,
        private_key_path=configuration.key_file or None,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
