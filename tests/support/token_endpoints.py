"""Local stand-ins for where a Microsoft Entra ID token travels: a managed-identity endpoint that
hands out a fixed token (App Service style, found by azure-identity through ``IDENTITY_ENDPOINT``
and ``IDENTITY_HEADER``) and an HTTPS "storage" host that records the headers of every request
it gets (answering 403). Both count what reached them, so a test can prove a token was never
asked for, or never sent."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN = "test-entra-token-0123456789"


@dataclass
class Seen:
    """What one listener received: each request's path and headers (names lower-case)."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def authorizations(self) -> list[str]:
        return [headers["authorization"] for _, headers in self.requests if "authorization" in headers]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``127.0.0.1`` and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _handler(seen: Seen, *, token_endpoint: bool) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if token_endpoint:
                body = json.dumps(
                    {
                        "access_token": TOKEN,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": "https://storage.azure.com",
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
            else:
                body = b'<?xml version="1.0"?><Error><Code>AuthenticationFailed</Code></Error>'
                self.send_response(403)
                self.send_header("x-ms-error-code", "AuthenticationFailed")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = _answer

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def _serving(server: http.server.ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def token_endpoint() -> Iterator[tuple[str, Seen]]:
    """A managed-identity endpoint on loopback: ``(its URL, what it received)``."""
    seen = Seen()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen, token_endpoint=True))
    with _serving(server) as port:
        yield f"http://127.0.0.1:{port}/msi/token", seen


@contextmanager
def https_recorder(cert: Path, key: Path) -> Iterator[tuple[int, Seen]]:
    """An HTTPS host on ``127.0.0.1`` answering every request 403: ``(its port, what it received)``."""
    seen = Seen()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen, token_endpoint=False))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with _serving(server) as port:
        yield port, seen
