"""The emulator's HTTP connections: aiohttp's, with an Azure answer for requests that do not parse.

aiohttp answers a request it cannot parse (a control character or a bad escape in the request
line, a line too long, an unknown method, a broken header) with a plain-text 400. Azure clients
look for ``x-ms-error-code`` on every error, so such a request gets the status, the header and
the XML error document like any other error; the connection is then closed, as aiohttp does.
"""

from __future__ import annotations

import logging
import uuid
from email.utils import formatdate

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, InvalidHeader, InvalidURLError
from aiohttp.web_protocol import RequestHandler

from shareferry.emulator.errors import StorageError
from shareferry.emulator.wire import NEWEST_VERSION

log = logging.getLogger("shareferry.emulator")

#: The x-ms-version of answers to requests that never got as far as naming one.
DEFAULT_VERSION = NEWEST_VERSION


def unparsed_request_error(status: int, exc: BaseException | None) -> StorageError:
    """The Azure error for a request aiohttp could not parse (or, never expected, could not serve)."""
    if status >= 500:
        return StorageError(500, "InternalError", "The server encountered an internal error.")
    if isinstance(exc, BadHttpMethod):
        return StorageError(
            400, "InvalidHttpVerb", "The HTTP verb specified was not recognized by the server."
        )
    if isinstance(exc, InvalidURLError):
        return StorageError(
            400, "InvalidUri", "The requested URI does not represent any resource on the server."
        )
    if isinstance(exc, InvalidHeader):
        return StorageError(
            400,
            "InvalidHeaderValue",
            "The value provided for one of the HTTP headers was not in the correct format.",
        )
    return StorageError(400, "InvalidInput", "One of the request inputs is not valid.")


class AzureRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering unparseable requests as Azure does."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is half sent: nothing can be added to it
            raise ConnectionError("an answer was already partly sent")
        log.info("refused a request that does not parse (%s): %r", status, message)
        error = unparsed_request_error(status, exc)
        headers = {
            "x-ms-error-code": error.code,
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-version": DEFAULT_VERSION,
            "Date": formatdate(usegmt=True),
            "Server": "ShareFerry-Files-Emulator",
        }
        response = web.Response(
            status=error.status, headers=headers, body=error.body(), content_type="application/xml"
        )
        response.force_close()
        return response


class AzureServer(web.Server):
    """aiohttp's low-level server, making :class:`AzureRequestHandler` connections."""

    def __call__(self) -> RequestHandler:
        return AzureRequestHandler(self, loop=self._loop, **self._kwargs)


class AzureAppRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections answer unparseable requests as Azure does."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = AzureServer  # same state, one method more specific
        return server
