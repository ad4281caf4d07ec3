"""The emulator's admin endpoint: fault rules, request counters and a health check.

Mounted under ``/_emulator/``, a path the Azure protocol never uses (no account name starts with
``_``). Every answer is JSON; errors are ``{"error": "..."}`` with a 4xx status.

``GET /_emulator/faults``
    ``{"rules": [...]}``: every rule in its JSON form (see :mod:`shareferry.emulator.faults`),
    with how many times it has fired.
``PUT /_emulator/faults``
    Body ``{"rules": [...]}`` replaces every rule. Each item is a rule object or
    ``{"spec": "KIND[:OPS][:key=value,...]"}``. All or nothing: one bad item and no rule changes
    (400, the error names the item). Answers ``{"rules": [...]}``.
``POST /_emulator/faults``
    Body: one rule object, or ``{"spec": "busy:PutRange:count=2"}``; appended after the existing
    rules. Answers 201 ``{"rule": {...}, "rules": [...]}``.
``DELETE /_emulator/faults``
    Removes every rule. Answers ``{"rules": []}``.
``GET /_emulator/counters``
    The request counters (:meth:`RequestCounters.snapshot`). With ``?paths=1`` (or ``true``)
    also ``"paths"``: successful content writes (Create File, Put Range, Put Range From URL,
    Copy File) per file, ``{"account/share/dir/a.txt": {"CreateFile": 1, "PutRange": 3}}``, and
    ``"paths_truncated"``: true once files beyond the tracking cap went uncounted. ``paths=0``
    or ``false`` is the plain answer; another value is a 400.
``DELETE /_emulator/counters``
    Resets them, the per-file writes included; answers the (empty) snapshot.
``GET /_emulator/health``
    ``{"status": "ok"}``.

Other paths under ``/_emulator/`` answer 404, other methods on these paths 405 (JSON either way),
so admin requests never reach the Azure handler.

There is no authentication: the emulator is a local test server and anyone who can reach it may
change its fault rules. The app should neither count admin requests nor inject faults into them
(:func:`is_admin_path` tells them apart).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from shareferry.emulator.faults import FaultInjector, FaultRule, RequestCounters

#: Every admin path starts with this.
ADMIN_PREFIX = "/_emulator/"

INJECTOR_KEY = web.AppKey("shareferry.emulator.fault_injector", FaultInjector)
COUNTERS_KEY = web.AppKey("shareferry.emulator.request_counters", RequestCounters)

#: Values a boolean query parameter (``?paths=``) accepts.
_FLAGS = {"1": True, "true": True, "0": False, "false": False}

_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "/_emulator/faults": ("GET", "PUT", "POST", "DELETE"),
    "/_emulator/counters": ("GET", "DELETE"),
    "/_emulator/health": ("GET",),
}


def is_admin_path(path: str) -> bool:
    """The request path belongs to the admin endpoint, not to the Azure protocol."""
    return path == ADMIN_PREFIX.rstrip("/") or path.startswith(ADMIN_PREFIX)


def add_admin_routes(app: web.Application, injector: FaultInjector, counters: RequestCounters) -> None:
    """Register the admin routes on ``app`` and store the injector and counters on it.

    Call it before adding the catch-all Azure route. ``app[INJECTOR_KEY]`` and
    ``app[COUNTERS_KEY]`` then hold the objects the handlers use.
    """
    app[INJECTOR_KEY] = injector
    app[COUNTERS_KEY] = counters
    router = app.router
    router.add_get("/_emulator/faults", _get_faults)
    router.add_put("/_emulator/faults", _put_faults)
    router.add_post("/_emulator/faults", _post_faults)
    router.add_delete("/_emulator/faults", _delete_faults)
    router.add_get("/_emulator/counters", _get_counters)
    router.add_delete("/_emulator/counters", _delete_counters)
    router.add_get("/_emulator/health", _health)
    # Keep every other /_emulator request (unknown path, or a method a path lacks) away from the
    # Azure catch-all: the router tries longer path prefixes first, then these.
    router.add_route("*", "/_emulator", _fallback)
    router.add_route("*", "/_emulator/{tail:.*}", _fallback)


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response({"rules": request.app[INJECTOR_KEY].to_json()})


async def _put_faults(request: web.Request) -> web.Response:
    injector = request.app[INJECTOR_KEY]
    try:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
            raise ValueError('the body must be a JSON object {"rules": [...]}')
        extra = sorted(key for key in body if key != "rules")
        if extra:
            raise ValueError(f"unknown key(s) in the body: {', '.join(extra)} (only 'rules')")
        rules: list[FaultRule] = []
        for index, item in enumerate(body["rules"]):
            try:
                rules.append(_rule_from_item(item))
            except ValueError as exc:
                raise ValueError(f"rules[{index}]: {exc}") from None
    except ValueError as exc:
        return _error(400, str(exc))
    injector.replace(rules)
    return web.json_response({"rules": injector.to_json()})


async def _post_faults(request: web.Request) -> web.Response:
    injector = request.app[INJECTOR_KEY]
    try:
        rule = _rule_from_item(await _json_body(request))
    except ValueError as exc:
        return _error(400, str(exc))
    injector.add(rule)
    return web.json_response({"rule": rule.to_json(), "rules": injector.to_json()}, status=201)


async def _delete_faults(request: web.Request) -> web.Response:
    injector = request.app[INJECTOR_KEY]
    injector.clear()
    return web.json_response({"rules": injector.to_json()})


async def _get_counters(request: web.Request) -> web.Response:
    value = request.query.get("paths", "0")
    paths = _FLAGS.get(value.lower())
    if paths is None:
        return _error(400, f"paths must be 1, true, 0 or false, not {value!r}")
    return web.json_response(request.app[COUNTERS_KEY].snapshot(paths=paths))


async def _delete_counters(request: web.Request) -> web.Response:
    counters = request.app[COUNTERS_KEY]
    counters.reset()
    return web.json_response(counters.snapshot())


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _fallback(request: web.Request) -> web.Response:
    allowed = _ENDPOINTS.get(request.path)
    if allowed is None:
        return _error(404, f"no admin endpoint {request.path}; known: {', '.join(_ENDPOINTS)}")
    methods = ", ".join(allowed)
    return _error(
        405, f"{request.method} is not allowed on {request.path} (allowed: {methods})", Allow=methods
    )


def _rule_from_item(item: Any) -> FaultRule:
    """A rule object, or ``{"spec": "..."}`` in the CLI syntax."""
    if isinstance(item, dict) and "spec" in item:
        if len(item) != 1:
            raise ValueError("a {'spec': ...} rule takes no other keys")
        spec = item["spec"]
        if not isinstance(spec, str):
            raise ValueError("'spec' must be a string such as 'busy:PutRange:count=2'")
        return FaultInjector.parse_spec(spec)
    return FaultInjector.rule_from_json(item)


async def _json_body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        raise ValueError("the request body is empty; expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the request body is not valid JSON: {exc}") from None


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)
