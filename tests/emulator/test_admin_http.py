"""The admin endpoint over HTTP, on a bare aiohttp app with only the admin routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shareferry.emulator.admin import COUNTERS_KEY, INJECTOR_KEY, add_admin_routes, is_admin_path
from shareferry.emulator.faults import Fault, FaultInjector, RequestCounters


class Harness:
    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        injector: FaultInjector,
        counters: RequestCounters,
    ) -> None:
        self.client = client
        self.injector = injector
        self.counters = counters

    async def json(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        async with self.client.request(method, path, **kwargs) as response:
            body = await response.json()
            assert response.status == status, body
            assert response.content_type == "application/json"
            return body


@pytest.fixture
async def admin() -> AsyncIterator[Harness]:
    injector = FaultInjector(seed=1)
    counters = RequestCounters()
    app = web.Application()
    add_admin_routes(app, injector, counters)

    async def azure(request: web.Request) -> web.Response:
        return web.Response(status=418, text="azure handler")

    app.router.add_route("*", "/{tail:.*}", azure)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Harness(client, injector, counters)
    finally:
        await client.close()


async def test_app_keys_hold_the_objects() -> None:
    injector, counters = FaultInjector(), RequestCounters()
    app = web.Application()
    add_admin_routes(app, injector, counters)
    assert app[INJECTOR_KEY] is injector
    assert app[COUNTERS_KEY] is counters


async def test_health(admin: Harness) -> None:
    assert await admin.json("GET", "/_emulator/health", 200) == {"status": "ok"}


async def test_faults_round_trip(admin: Harness) -> None:
    assert await admin.json("GET", "/_emulator/faults", 200) == {"rules": []}

    put = await admin.json(
        "PUT",
        "/_emulator/faults",
        200,
        json={
            "rules": [
                {"kind": "busy", "ops": ["PutRange"], "count": 2, "retry_after": 3},
                {"spec": "latency:*:latency_ms=50"},
            ]
        },
    )
    assert put == {
        "rules": [
            {
                "kind": "busy",
                "ops": ["PutRange"],
                "probability": 1.0,
                "count": 2,
                "retry_after": 3,
                "fired": 0,
            },
            {"kind": "latency", "ops": [], "probability": 1.0, "count": None, "latency_ms": 50, "fired": 0},
        ]
    }
    assert admin.injector.decide("PutRange") == [
        Fault("busy", retry_after=3),
        Fault("latency", latency_ms=50),
    ]

    got = await admin.json("GET", "/_emulator/faults", 200)
    assert [rule["fired"] for rule in got["rules"]] == [1, 1]

    posted = await admin.json("POST", "/_emulator/faults", 201, json={"spec": "drop:GetFile:count=1"})
    assert posted["rule"] == {"kind": "drop", "ops": ["GetFile"], "probability": 1.0, "count": 1, "fired": 0}
    assert [rule["kind"] for rule in posted["rules"]] == ["busy", "latency", "drop"]

    posted = await admin.json(
        "POST", "/_emulator/faults", 201, json={"kind": "error", "ops": "ListDirectory"}
    )
    assert posted["rule"]["ops"] == ["ListDirectory"]
    assert len(admin.injector) == 4
    assert admin.injector.decide("GetFile") == [Fault("latency", latency_ms=50), Fault("drop")]

    # What GET returns can be PUT back as it is, fired counts included.
    got = await admin.json("GET", "/_emulator/faults", 200)
    assert await admin.json("PUT", "/_emulator/faults", 200, json=got) == got

    assert await admin.json("DELETE", "/_emulator/faults", 200) == {"rules": []}
    assert await admin.json("GET", "/_emulator/faults", 200) == {"rules": []}
    assert admin.injector.decide("PutRange") == []


@pytest.mark.parametrize(
    ("method", "body", "message"),
    [
        (
            "PUT",
            {"rules": [{"kind": "busy", "probability": 1.5}]},
            "rules[0]: probability must be between 0 and 1",
        ),
        (
            "PUT",
            {"rules": [{"kind": "error"}, {"spec": "slow:GetFile"}]},
            "rules[1]: bad fault spec 'slow:GetFile'",
        ),
        ("PUT", {"rules": [{"kind": "busy", "ops": ["putrange"]}]}, "did you mean PutRange?"),
        ("PUT", {"rule": []}, 'the body must be a JSON object {"rules": [...]}'),
        ("PUT", [], 'the body must be a JSON object {"rules": [...]}'),
        ("PUT", {"rules": [], "seed": 3}, "unknown key(s) in the body: seed"),
        ("POST", {"kind": "busy", "count": -1}, "count must not be negative"),
        ("POST", {"kind": "busy", "colour": "red"}, "unknown key(s) in fault rule: colour"),
        ("POST", {"spec": "busy:PutRange:count=x"}, "count must be an integer, got 'x'"),
        ("POST", {"spec": 5}, "'spec' must be a string"),
        ("POST", {"spec": "busy", "count": 2}, "takes no other keys"),
        ("POST", "busy", "a fault rule must be a JSON object"),
    ],
)
async def test_invalid_rules_are_refused_with_400(
    admin: Harness, method: str, body: Any, message: str
) -> None:
    await admin.json("PUT", "/_emulator/faults", 200, json={"rules": [{"spec": "error:GetFile"}]})
    answer = await admin.json(method, "/_emulator/faults", 400, json=body)
    assert message in answer["error"]
    # Nothing changed: a bad PUT replaces no rule, a bad POST adds none.
    assert [rule.to_spec() for rule in admin.injector.rules] == ["error:GetFile"]


@pytest.mark.parametrize(
    ("data", "message"),
    [("{not json", "the request body is not valid JSON"), ("", "the request body is empty")],
)
async def test_malformed_bodies_are_refused_with_400(admin: Harness, data: str, message: str) -> None:
    for method in ("PUT", "POST"):
        answer = await admin.json(method, "/_emulator/faults", 400, data=data)
        assert message in answer["error"]


async def test_counters_snapshot_and_reset(admin: Harness) -> None:
    empty = {"operations": {}, "faults": {}, "total": 0}
    assert await admin.json("GET", "/_emulator/counters", 200) == empty
    admin.counters.record("PutRange", 201)
    admin.counters.record("PutRange", 503)
    admin.counters.record("CreateFile", 201)
    admin.counters.record_fault("PutRange", "busy")
    assert await admin.json("GET", "/_emulator/counters", 200) == {
        "operations": {
            "CreateFile": {"total": 1, "by_status": {"201": 1}},
            "PutRange": {"total": 2, "by_status": {"201": 1, "503": 1}},
        },
        "faults": {"PutRange": {"busy": 1}},
        "total": 3,
    }
    assert await admin.json("DELETE", "/_emulator/counters", 200) == empty
    assert admin.counters.snapshot() == empty


async def test_unknown_admin_paths_and_methods_stay_out_of_the_azure_handler(admin: Harness) -> None:
    answer = await admin.json("GET", "/_emulator/nope", 404)
    assert "no admin endpoint /_emulator/nope" in answer["error"]
    await admin.json("GET", "/_emulator", 404)
    async with admin.client.patch("/_emulator/faults") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, PUT, POST, DELETE"
        assert "PATCH is not allowed on /_emulator/faults" in (await response.json())["error"]
    await admin.json("POST", "/_emulator/counters", 405)
    await admin.json("DELETE", "/_emulator/health", 405)
    # Everything else still reaches the Azure catch-all.
    async with admin.client.get("/devstoreaccount1/share?restype=share") as response:
        assert response.status == 418


def test_is_admin_path() -> None:
    assert is_admin_path("/_emulator/faults")
    assert is_admin_path("/_emulator")
    assert not is_admin_path("/_emulatorx")
    assert not is_admin_path("/devstoreaccount1/_emulator/faults")
