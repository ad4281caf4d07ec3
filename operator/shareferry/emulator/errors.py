"""Storage errors as Azure returns them: a status, an ``x-ms-error-code`` and an XML body."""

from __future__ import annotations

from xml.sax.saxutils import escape


class StorageError(Exception):
    """An error answered to the client exactly as the Azure File service would."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        #: Extra elements of the error document after ``Message`` (``HeaderName``, ``HeaderValue``).
        self.details = dict(details or {})

    def body(self) -> bytes:
        """The XML error document (HEAD responses send none)."""
        return (
            '<?xml version="1.0" encoding="utf-8"?><Error>'
            f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            + "".join(f"<{name}>{escape(value)}</{name}>" for name, value in self.details.items())
            + "</Error>"
        ).encode()


def not_found(code: str, message: str) -> StorageError:
    return StorageError(404, code, message)


def conflict(code: str, message: str) -> StorageError:
    return StorageError(409, code, message)


def bad_request(code: str, message: str) -> StorageError:
    return StorageError(400, code, message)


def forbidden(code: str, message: str) -> StorageError:
    return StorageError(403, code, message)


def invalid_header(name: str, value: str | None, why: str = "") -> StorageError:
    detail = f" ({why})" if why else ""
    return StorageError(
        400,
        "InvalidHeaderValue",
        f"The value for header {name} is not valid: {value!r}{detail}.",
        details={"HeaderName": name, "HeaderValue": value or ""},
    )


def invalid_query(name: str, value: str | None, why: str = "") -> StorageError:
    detail = f" ({why})" if why else ""
    return StorageError(
        400,
        "InvalidQueryParameterValue",
        f"Value for query parameter {name} is not valid: {value!r}{detail}.",
    )
