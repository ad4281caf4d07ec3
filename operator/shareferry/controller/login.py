"""kopf's login: the credentials the ``kubernetes`` package loads (in-cluster or kubeconfig).

kopf talks to the API server with its own HTTP client; it asks this handler for credentials at
start-up and again whenever the server answers 401 (an expired exec plugin or service account
token), so each call loads the configuration afresh, the same way :class:`KubeClient` does.
"""

from __future__ import annotations

from typing import Any

import kopf

from shareferry.kube import Credentials, credentials, load_configuration


def connection_info(found: Credentials) -> kopf.ConnectionInfo:
    """kopf's form of the package's credentials (as ``kopf.login_via_client`` builds it)."""
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_path,
        insecure=found.insecure,
        scheme=found.scheme,
        token=found.token,
        username=found.username,
        password=found.password,
        certificate_path=found.certificate_path,
        private_key_path=found.private_key_path,
    )


def login(**_: Any) -> kopf.ConnectionInfo:
    """The ``@kopf.on.login`` handler: in-cluster in a pod, else the kubeconfig."""
    return connection_info(credentials(load_configuration()))
