"""The aiohttp application: one catch-all route that classifies, authorises and dispatches.

For every Azure request: classify it into an operation (:mod:`routing`), check its credentials
(:mod:`auth`), apply any injected fault (:mod:`faults`), run the operation's handler, persist
what changed, count it (and, for a successful content write, the file it wrote), and stamp the
headers every Azure response carries. Errors are answered as Azure does: status,
``x-ms-error-code`` and an XML body (none for HEAD).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from email.utils import formatdate

import aiohttp
from aiohttp import web

from shareferry.emulator import ops_copy, ops_directory, ops_file, ops_service, ops_share
from shareferry.emulator.admin import add_admin_routes
from shareferry.emulator.auth import AuthInput, authorize, redact_query
from shareferry.emulator.body import BodyStalled, ClientGone
from shareferry.emulator.config import EmulatorConfig
from shareferry.emulator.content import ContentFactory
from shareferry.emulator.context import MAX_RANGE_BYTES, Ctx, policy_lookup
from shareferry.emulator.errors import StorageError
from shareferry.emulator.faults import Fault, FaultInjector, RequestCounters
from shareferry.emulator.persist import NoPersistence, SqlitePersistence
from shareferry.emulator.protocol import DEFAULT_VERSION
from shareferry.emulator.routing import CONTENT_WRITE_OPS, Route, classify
from shareferry.emulator.store import Store
from shareferry.emulator.wire import check_version, is_version, parse_query

log = logging.getLogger("shareferry.emulator")

Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]

HANDLERS: dict[str, Handler] = {
    "ListShares": ops_service.list_shares,
    "GetServiceProperties": ops_service.get_service_properties,
    "SetServiceProperties": ops_service.set_service_properties,
    "CreateShare": ops_share.create_share,
    "GetShareProperties": ops_share.get_share_properties,
    "DeleteShare": ops_share.delete_share,
    "SetShareMetadata": ops_share.set_share_metadata,
    "SetShareProperties": ops_share.set_share_properties,
    "SnapshotShare": ops_share.snapshot_share,
    "CreatePermission": ops_share.create_permission,
    "GetPermission": ops_share.get_permission,
    "GetShareAcl": ops_share.get_share_acl,
    "SetShareAcl": ops_share.set_share_acl,
    "GetShareStats": ops_share.get_share_stats,
    "ShareLease": ops_share.share_lease,
    "CreateDirectory": ops_directory.create_directory,
    "GetDirectoryProperties": ops_directory.get_directory_properties,
    "DeleteDirectory": ops_directory.delete_directory,
    "SetDirectoryProperties": ops_directory.set_directory_properties,
    "SetDirectoryMetadata": ops_directory.set_directory_metadata,
    "ListDirectory": ops_directory.list_directory,
    "ListHandles": ops_directory.list_handles,
    "ForceCloseHandles": ops_directory.force_close_handles,
    "RenameDirectory": ops_directory.rename,
    "RenameFile": ops_directory.rename,
    "CreateFile": ops_file.create_file,
    "GetFile": ops_file.get_file,
    "GetFileProperties": ops_file.get_file_properties,
    "DeleteFile": ops_file.delete_file,
    "PutRange": ops_file.put_range,
    "SetFileProperties": ops_file.set_file_properties,
    "SetFileMetadata": ops_file.set_file_metadata,
    "ListRanges": ops_file.list_ranges,
    "FileLease": ops_file.file_lease,
    "CopyFile": ops_copy.copy_file,
    "PutRangeFromURL": ops_copy.put_range_from_url,
    "AbortCopy": ops_copy.abort_copy,
}

#: Query parameters the File API knows; others fail with 400 unless the emulator runs --loose.
KNOWN_QUERY = frozenset(
    [
        "comp",
        "restype",
        "sharesnapshot",
        "prefix",
        "marker",
        "maxresults",
        "include",
        "timeout",
        "copyid",
        "prevsharesnapshot",
        "sv",
        "ss",
        "srt",
        "sp",
        "st",
        "se",
        "sip",
        "spr",
        "sig",
        "sr",
        "si",
        "ses",
        "rscc",
        "rscd",
        "rsce",
        "rscl",
        "rsct",
        "sdd",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "saoid",
        "suoid",
        "scid",
    ]
)
#: Reads the snapshot-only checks allow on a share snapshot.
_SNAPSHOT_WRITES_ALLOWED = frozenset({"DeleteShare"})


class Emulator:
    """The state behind one running emulator: config, store, faults, counters, HTTP client."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        if config.data_dir is not None:
            persistence: NoPersistence = SqlitePersistence(config.data_dir)
            content = ContentFactory(config.data_dir / "content")
        else:
            persistence = NoPersistence()
            content = ContentFactory(None)
        self.store = Store([a.name for a in config.accounts], content, persistence)
        self.faults = FaultInjector(
            [FaultInjector.parse_spec(s) for s in config.fault_specs], seed=config.fault_seed
        )
        self.counters = RequestCounters()
        self._client: aiohttp.ClientSession | None = None

    async def client(self) -> aiohttp.ClientSession:
        """A shared HTTP client for copy sources outside this emulator."""
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self.store.persistence.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        op = "Unknown"
        written: str | None = None  # the file a successful content write wrote
        try:
            raw_path, _, raw_query = request.raw_path.partition("?")
            query = parse_query(raw_query)
            route = classify(request.method, raw_path, query, request.headers)
            op = route.op
            check_version(
                request.headers.get("x-ms-version"), authenticated="Authorization" in request.headers
            )
            self._check_query(query)
            authorize(
                AuthInput(
                    request.method,
                    raw_path,
                    query,
                    request.headers,
                    request.scheme,
                    request.remote or "127.0.0.1",
                ),
                route,
                self.config,
                policy_lookup(self.store),
            )
            if route.snapshot and route.writes and route.op not in _SNAPSHOT_WRITES_ALLOWED:
                raise StorageError(
                    400,
                    "InvalidQueryParameterValue",
                    "A share snapshot is read-only: this operation cannot target it.",
                )
            faults = self.faults.decide(op)
            for fault in faults:
                self.counters.record_fault(op, fault.kind)
                if fault.kind == "latency":
                    await asyncio.sleep(fault.latency_ms / 1000)
            terminal = next((f for f in faults if f.kind != "latency"), None)
            if terminal is not None and terminal.kind != "drop":
                raise _fault_error(terminal)
            ctx = Ctx(
                request,
                route,
                query,
                request.headers,
                self.store,
                self.config,
                self.client,
                functools.partial(_stamp, request, request_id=request_id),
            )
            if terminal is not None:
                return await self._drop(request, ctx, route)
            response = await HANDLERS[op](ctx)
            if route.writes:
                self.store.commit()
            if op in CONTENT_WRITE_OPS and 200 <= response.status < 300:
                written = ctx.stored_key()  # no await since the handler: the file is as it wrote it
            if ctx.renamed_from is not None and 200 <= response.status < 300:
                self.counters.moved(ctx.renamed_from, ctx.stored_key())
        except StorageError as error:
            response = _error_response(request, error)
        except BodyStalled:
            log.info(
                "%s %s: no byte of the body for %gs, connection cut",
                op,
                request.method,
                self.config.body_read_timeout,
            )
            return _cut(request)  # the operation was not applied; nothing is answered or counted
        except ClientGone:
            return _cut(request)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("internal error in %s %s", request.method, _redacted(request.raw_path))
            response = _error_response(
                request, StorageError(500, "InternalError", "The emulator failed unexpectedly.")
            )
        self.counters.record(op, response.status, written)
        if not response.prepared:  # a streamed answer was stamped before its headers went out
            _stamp(request, response, request_id=request_id)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s -> %s", op, request.method, _redacted(request.raw_path), response.status)
        return response

    def _check_query(self, query: dict[str, str]) -> None:
        if self.config.loose:
            return
        unknown = sorted(set(query) - KNOWN_QUERY)
        if unknown:
            raise StorageError(
                400,
                "InvalidQueryParameterValue",
                f"Unknown query parameter {unknown[0]!r} (run the emulator with --loose to ignore it).",
            )

    async def _drop(self, request: web.Request, ctx: Ctx, route: Route) -> web.StreamResponse:
        """Cut the connection as a network failure would: the client never gets a whole answer.

        A request with a body: half of the body is read, then the connection is cut (the operation
        is not applied). A write without a body is cut before it runs. A read runs, then its answer
        is cut after the headers and half the body, or before anything is sent when the answer has
        no body (HEAD, empty). A dropped request is counted as a fault, not as an answer. Returning
        normally (not raising) keeps aiohttp from logging the cut as a handler error.
        """
        if request.body_exists:
            wanted = request.content_length // 2 if request.content_length else 64 * 1024
            # less than announced, or a stalled body: cut anyway
            with contextlib.suppress(asyncio.IncompleteReadError, TimeoutError):
                async with asyncio.timeout(self.config.body_read_timeout):
                    await request.content.readexactly(max(1, wanted))
            return _cut(request)
        if route.writes:
            return _cut(request)
        ctx.cut_reads_halfway = True  # a streamed read cuts itself after half its bytes
        response = await HANDLERS[route.op](ctx)
        body = (
            response.body
            if isinstance(response, web.Response) and isinstance(response.body, bytes | bytearray)
            else b""
        )
        if request.method == "HEAD" or len(body) < 2:
            return _cut(request)
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        await stream.prepare(request)
        await stream.write(body[: len(body) // 2])
        _cut(request)
        return stream


def _cut(request: web.Request) -> web.Response:
    """Abort the connection; the returned response is never sent (aiohttp drops it quietly)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def _fault_error(fault: Fault) -> StorageError:
    if fault.kind == "busy":
        return StorageError(
            503,
            "ServerBusy",
            "The server is busy (injected fault).",
            headers={"Retry-After": str(fault.retry_after)},
        )
    return StorageError(500, "InternalError", "The server encountered an internal error (injected fault).")


def _error_response(request: web.Request, error: StorageError) -> web.Response:
    headers = {"x-ms-error-code": error.code, **error.headers}
    if request.method == "HEAD":
        return web.Response(status=error.status, headers=headers)
    return web.Response(
        status=error.status, headers=headers, body=error.body(), content_type="application/xml"
    )


def _stamp(request: web.BaseRequest, response: web.StreamResponse, *, request_id: str) -> None:
    response.headers["x-ms-request-id"] = request_id
    version = request.headers.get("x-ms-version")
    response.headers["x-ms-version"] = version if version and is_version(version) else DEFAULT_VERSION
    response.headers["Date"] = formatdate(usegmt=True)
    response.headers["Server"] = "ShareFerry-Files-Emulator"
    client_id = request.headers.get("x-ms-client-request-id")
    if client_id is not None:
        response.headers["x-ms-client-request-id"] = client_id


def _redacted(raw_path: str) -> str:
    path, sep, query = raw_path.partition("?")
    return path + sep + redact_query(query) if sep else path


def build_app(emulator: Emulator) -> web.Application:
    """The aiohttp application serving the File API and the ``/_emulator/`` admin endpoint."""
    app = web.Application(client_max_size=MAX_RANGE_BYTES + 64 * 1024)
    add_admin_routes(app, emulator.faults, emulator.counters)
    # Every path, a decoded newline included (".*" alone would leave it to aiohttp's bare 404).
    app.router.add_route("*", r"/{tail:[\s\S]*}", emulator.handle)

    async def close(_app: web.Application) -> None:
        await emulator.close()

    app.on_cleanup.append(close)
    return app
