"""Run kopf in the test's own event loop, against whatever API server its login handler finds.

Use::

    async with run_operator(registry, namespaces=[namespace], memo=kopf.Memo(ctx=context)):
        ...   # kopf runs in a background task of this loop, standalone (no peering)

The registry must have an ``@kopf.on.login`` handler: ShareFerry's (``build_registry`` adds
``shareferry.controller.login.login``, which loads the ``kubernetes`` package's configuration, so
``KUBECONFIG`` decides the server) or a test's own. ``run_operator`` waits until kopf is ready,
and on exit sets kopf's stop flag and waits for it to finish. Handlers run in the test's event
loop, so they may use the test's objects.

Plain ``kopf.operator`` would, on exit, wait 5 s for and then cancel every task created after its
start (the test's own tasks, the clients' watch pumps); ``run_operator`` runs
``kopf.spawn_tasks`` + ``kopf.run_tasks`` so that kopf only waits for its own. kopf posts Events
only for ``kopf.event``/``info``/``warn`` calls unless ``settings.posting.loggers`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

_KOPF_DIR = str(Path(importlib.util.find_spec("kopf").origin).parent)  # type: ignore[arg-type,union-attr]


class _NotKopfTasks(Collection["asyncio.Task[Any]"]):
    """The tasks kopf must leave alone when it stops: every task whose coroutine is not kopf's.

    ``kopf.operator`` takes every task created after its start for one of its own: on exit it
    waits up to 5 s for them and then cancels them. ``run_tasks`` accepts the collection of
    tasks to ignore; this one answers by the coroutine's source file.
    """

    def __contains__(self, task: object) -> bool:
        if not isinstance(task, asyncio.Task):
            return True
        code = getattr(task.get_coro(), "cr_code", None)
        return code is None or not code.co_filename.startswith(_KOPF_DIR)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@contextlib.asynccontextmanager
async def run_operator(
    registry: Any,
    *,
    namespaces: Iterable[str],
    settings: Any = None,
    memo: Any = None,
    startup_timeout: float = 30.0,
    stop_timeout: float = 15.0,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run kopf with ``registry`` in a background task of this event loop, standalone (no
    peering), watching exactly ``namespaces``. Yields the task once kopf is ready; on exit sets
    kopf's stop flag and waits for the task (cancelling it after ``stop_timeout``)."""
    import kopf  # only the tests that run kopf pay for importing it

    settings = settings if settings is not None else kopf.OperatorSettings()
    stop_flag = asyncio.Event()
    ready_flag = asyncio.Event()

    async def operate() -> None:
        tasks = await kopf.spawn_tasks(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=False,
            namespaces=list(namespaces),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            memo=memo,
        )
        await kopf.run_tasks(tasks, ignored=_NotKopfTasks())

    task = asyncio.create_task(operate(), name="kopf operator (tests)")
    ready = asyncio.create_task(ready_flag.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises what made kopf stop
            raise RuntimeError("kopf stopped before it was ready")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TimeoutError(f"kopf was not ready after {startup_timeout:g}s")
    try:
        yield task
    finally:
        stop_flag.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
