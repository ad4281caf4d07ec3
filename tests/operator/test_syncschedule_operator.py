"""SyncSchedules end to end on a real control plane: kopf runs the schedule with a clock the test
moves by hand (frozen just before a cron slot, then moved past it), the CopyJobs it creates are
reconciled and their worker Jobs run by the real Job controller and the process kubelet against
the Files emulator. Checked as a platform team would: which CopyJobs exist and when, the bytes
at the destination, the schedule's status and Events, the metrics, and what concurrencyPolicy,
suspend, the deadline, the history limits, a manual trigger and deletion do."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from shareferry.api import names
from shareferry.kube import COPYJOBS, FILESHARES, JOBS, PODS, SYNCSCHEDULES
from tests.operator.conftest import World, condition, messages_of, reasons_of, status_of
from tests.support.cluster_api import exit_code, pod_condition
from tests.support.trees import read_share, write_share

EVERY_MINUTE = "* * * * *"
MINUTE = timedelta(minutes=1)
SOURCE_TREE = {f"ledger/{month:02}.csv": os.urandom(900 + month * 61) for month in range(1, 7)} | {
    "README.txt": b"kept in step every minute\n"
}
SHARE_SYNC = {"source": {"fileShare": {"name": "primary"}}, "destination": {"fileShare": {"name": "backup"}}}
STUCK = {
    "source": {"pvc": {"claimName": "not-on-this-node"}},
    "destination": {"fileShare": {"name": "backup"}},
}
"""A run that stays active: its claim does not exist, so the real scheduler leaves its pod
Pending (Unschedulable)."""
FINISHED = ("Succeeded", "CompletedWithErrors", "Failed")


def syncschedule(world: World, name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.SYNCSCHEDULE_KIND,
        "metadata": {"name": name, "namespace": world.namespace},
        "spec": {"schedule": EVERY_MINUTE, "jobTemplate": {"spec": template}, **spec},
    }


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_name(schedule: str, slot: datetime) -> str:
    return names.scheduled_copyjob_name(schedule, slot)


async def runs_of(world: World, schedule: str) -> list[str]:
    """The names of the CopyJobs that exist for ``schedule`` (by its label)."""
    selector = f"{names.LABEL_SYNCSCHEDULE}={schedule}"
    return [
        body["metadata"]["name"]
        for body in await world.api.objects(COPYJOBS, world.namespace, label_selector=selector)
    ]


async def get_schedule(world: World, name: str) -> dict[str, Any] | None:
    return await world.api.get(SYNCSCHEDULES, world.namespace, name)


async def schedule_status(world: World, name: str) -> dict[str, Any]:
    return status_of(await get_schedule(world, name))


def _passes(world: World, schedule: str) -> int:
    """How many times the operator has looked at ``schedule``: each pass lists its CopyJobs
    (counted by the operator's own client)."""
    return world.lists(COPYJOBS, f"{names.LABEL_SYNCSCHEDULE}={schedule}")


async def passes(world: World, schedule: str, count: int = 2) -> None:
    """Wait until the operator has looked at ``schedule`` ``count`` more times (passes over one
    schedule run one at a time: one under way when the clock moved may have read the time
    before, the next ones read it after)."""
    target = _passes(world, schedule) + count
    await world.api.wait_for(
        lambda: _passes(world, schedule) >= target, timeout=10, what=f"{count} passes over {schedule}"
    )


async def start(world: World, body: dict[str, Any]) -> datetime:
    """Create the schedule with the clock stopped at its creation, and return its first slot
    (the first whole minute after the creation time the API server gave it)."""
    world.clock.set(datetime.now(UTC))  # the API server stamps creation at or after this
    created = await world.api.apply(body)
    creation = datetime.fromisoformat(created["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    world.clock.set(creation)
    return creation.replace(second=0, microsecond=0) + MINUTE


async def with_shares(world: World) -> None:
    """The credentials Secret, a FileShare "primary" holding SOURCE_TREE and an empty "backup"."""
    await world.seed_secret()
    write_share(world.service.create_share("primary"), SOURCE_TREE)
    await world.api.apply(world.fileshare("primary", "primary"))
    await world.api.apply(world.fileshare("backup", "backup", quotaGiB=5))
    for name in ("primary", "backup"):
        await world.api.wait_for_object(
            FILESHARES, world.namespace, name, lambda body: condition(body, "Ready").get("status") == "True"
        )


async def finished(world: World, name: str, timeout: float = 60.0) -> dict[str, Any]:
    return await world.api.wait_for_object(
        COPYJOBS,
        world.namespace,
        name,
        lambda body: status_of(body).get("phase") in FINISHED,
        timeout=timeout,
    )


def unschedulable(pod: dict[str, Any]) -> bool:
    scheduled = pod_condition(pod, "PodScheduled")
    return (
        pod["status"].get("phase") == "Pending"
        and scheduled.get("status") == "False"
        and scheduled.get("reason") == "Unschedulable"
    )


async def stuck_pod(world: World, copyjob: str) -> dict[str, Any]:
    """The pod of ``copyjob``'s worker, once the scheduler has found no node for it (its claim
    does not exist)."""

    async def probe() -> dict[str, Any] | None:
        pods = await world.api.pods_of(world.namespace, names.worker_job_name(copyjob))
        return next((pod for pod in pods if unschedulable(pod)), None)

    pod: dict[str, Any] = await world.api.wait_for(probe, what=f"the pod of {copyjob} to stay Pending")
    assert "not-on-this-node" in pod_condition(pod, "PodScheduled")["message"]
    return pod


async def pod_now(world: World, pod: dict[str, Any]) -> dict[str, Any] | None:
    return await world.api.get(PODS, world.namespace, pod["metadata"]["name"])


def missed_total(world: World, schedule: str) -> float | None:
    return world.metric("shareferry_schedule_missed_runs_total", namespace=world.namespace, schedule=schedule)


def out_of_sync(world: World, schedule: str) -> float | None:
    return world.metric("shareferry_schedule_out_of_sync", namespace=world.namespace, schedule=schedule)


async def test_a_schedule_syncs_at_its_time_and_not_before(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    slot = await start(world, syncschedule(world, "mirror", SHARE_SYNC))

    world.clock.set(slot - timedelta(seconds=2))
    await passes(world, "mirror")
    assert await runs_of(world, "mirror") == []
    status = await schedule_status(world, "mirror")
    assert status["nextScheduleTime"] == stamp(slot)
    assert "lastScheduleTime" not in status
    assert condition(await get_schedule(world, "mirror"), "Ready")["status"] == "True"

    world.clock.advance(timedelta(seconds=2.5))
    name = run_name("mirror", slot)
    run = await world.api.wait_for_object(COPYJOBS, ns, name)
    schedule = await get_schedule(world, "mirror")
    assert schedule is not None
    [owner] = run["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "SyncSchedule",
        "mirror",
        schedule["metadata"]["uid"],
        True,
    )
    assert run["metadata"]["labels"][names.LABEL_SYNCSCHEDULE] == "mirror"
    assert run["metadata"]["annotations"][names.ANNOTATION_SCHEDULED_TIME] == stamp(slot)
    assert run["spec"]["mode"] == "sync"
    assert run["spec"]["source"] == SHARE_SYNC["source"]

    # The Job controller makes its pod, the kubelet runs it; the destination now holds the
    # source's bytes.
    body = await finished(world, name)
    assert status_of(body)["phase"] == "Succeeded", status_of(body)
    assert read_share(world.service.get_share_client("backup")).files == SOURCE_TREE
    await world.api.wait_for_job(ns, names.worker_job_name(name), conditions=("Complete",))
    assert [exit_code(pod) for pod in await world.api.pods_of(ns, names.worker_job_name(name))] == [0]

    schedule = await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "mirror", lambda body: "lastSuccessfulTime" in status_of(body)
    )
    status = status_of(schedule)
    assert status["lastScheduleTime"] == stamp(slot)
    assert status["lastSuccessfulTime"] == status_of(body)["completionTime"]
    assert status["nextScheduleTime"] == stamp(slot + MINUTE)
    assert status["active"] == [] and status["activeCount"] == 0
    assert status.get("missedRuns", 0) == 0
    assert await reasons_of(world, "mirror", until="SuccessfulCreate") == ["SuccessfulCreate"]
    assert name in (await messages_of(world, "mirror", "SuccessfulCreate"))[0]
    assert await runs_of(world, "mirror") == [name]
    assert out_of_sync(world, "mirror") == 0
    assert missed_total(world, "mirror") == 0


async def test_forbid_starts_no_second_run_while_one_is_active_and_says_why(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    first_slot = await start(world, syncschedule(world, "careful", STUCK, concurrencyPolicy="Forbid"))
    world.clock.set(first_slot + timedelta(seconds=0.5))
    first = run_name("careful", first_slot)
    await world.api.wait_for_object(COPYJOBS, ns, first)
    pod = await stuck_pod(world, first)
    assert exit_code(pod) is None

    world.clock.advance(MINUTE)
    second = run_name("careful", first_slot + MINUTE)
    await passes(world, "careful")
    assert await runs_of(world, "careful") == [first]
    assert await reasons_of(world, "careful", until="JobAlreadyActive") == [
        "SuccessfulCreate",
        "JobAlreadyActive",
    ]
    [why] = await messages_of(world, "careful", "JobAlreadyActive")
    assert first in why and "Forbid" in why and stamp(first_slot + MINUTE) in why
    schedule = await get_schedule(world, "careful")
    assert condition(schedule, "Ready")["reason"] == "RunWaiting"
    assert condition(schedule, "Ready")["message"] == why
    status = status_of(schedule)
    assert status["active"] == [first]
    assert status["lastScheduleTime"] == stamp(first_slot)  # the later slot has not started
    await passes(world, "careful")
    assert len(await messages_of(world, "careful", "JobAlreadyActive")) == 1  # said once, not every pass
    still = await pod_now(world, pod)
    assert still is not None and unschedulable(still)  # the scheduler really leaves it waiting
    # Two slots have come due and none succeeded.
    assert out_of_sync(world, "careful") == 1

    # Once the active run is gone, the waiting slot starts.
    await world.api.delete(COPYJOBS, ns, first)
    await world.api.wait_for_object(COPYJOBS, ns, second)
    await world.api.wait_for_absence(COPYJOBS, ns, first)
    assert await runs_of(world, "careful") == [second]
    assert missed_total(world, "careful") == 0


async def test_replace_deletes_the_active_run_and_starts_the_new_one(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    first_slot = await start(world, syncschedule(world, "eager", STUCK, concurrencyPolicy="Replace"))
    world.clock.set(first_slot + timedelta(seconds=0.5))
    first = run_name("eager", first_slot)
    await world.api.wait_for_object(COPYJOBS, ns, first)
    pod = await stuck_pod(world, first)

    world.clock.advance(MINUTE)
    second = run_name("eager", first_slot + MINUTE)
    await world.api.wait_for_object(COPYJOBS, ns, second)
    await world.api.wait_for_absence(COPYJOBS, ns, first)
    await world.api.wait_for_absence(JOBS, ns, names.worker_job_name(first))
    await world.api.wait_for_absence(PODS, ns, pod["metadata"]["name"])  # the replaced run's pod
    assert await runs_of(world, "eager") == [second]

    assert await reasons_of(world, "eager", until="SuccessfulCreate", times=2) == [
        "SuccessfulCreate",
        "SupersededRun",
        "SuccessfulCreate",
    ]
    assert first in (await messages_of(world, "eager", "SupersededRun"))[0]
    status = await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "eager", lambda body: status_of(body).get("active") == [second]
    )
    assert status_of(status)["lastScheduleTime"] == stamp(first_slot + MINUTE)


async def test_a_suspended_schedule_starts_nothing_and_counts_what_it_missed_when_resumed(
    world: World,
) -> None:
    ns = world.namespace
    await with_shares(world)
    first_slot = await start(world, syncschedule(world, "paused", STUCK))
    await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "paused", lambda body: status_of(body).get("nextScheduleTime") == stamp(first_slot)
    )
    await world.api.apply(syncschedule(world, "paused", STUCK, suspend=True))
    await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "paused", lambda body: condition(body, "Ready").get("reason") == "Suspended"
    )
    world.clock.set(first_slot + 2 * MINUTE + timedelta(seconds=0.5))  # three slots come due
    await passes(world, "paused")
    assert await runs_of(world, "paused") == []
    schedule = await get_schedule(world, "paused")
    assert condition(schedule, "Ready")["reason"] == "Suspended"
    status = status_of(schedule)
    assert "nextScheduleTime" not in status  # nothing is scheduled while suspended
    assert "lastScheduleTime" not in status and status.get("missedRuns", 0) == 0
    assert out_of_sync(world, "paused") == 0  # suspended on purpose: not out of sync
    assert missed_total(world, "paused") == 0

    # Resumed: the latest slot starts (no deadline), the two before it are missed.
    await world.api.apply(syncschedule(world, "paused", STUCK, suspend=False))
    latest = first_slot + 2 * MINUTE
    await world.api.wait_for_object(COPYJOBS, ns, run_name("paused", latest))
    schedule = await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "paused", lambda body: status_of(body).get("lastScheduleTime") == stamp(latest)
    )
    await passes(world, "paused")
    assert await runs_of(world, "paused") == [run_name("paused", latest)]
    status = await schedule_status(world, "paused")
    assert status["missedRuns"] == 2
    assert status["nextScheduleTime"] == stamp(latest + MINUTE)
    assert condition(await get_schedule(world, "paused"), "Ready")["reason"] == "Scheduled"
    assert await reasons_of(world, "paused", until="SuccessfulCreate") == ["MissSchedule", "SuccessfulCreate"]
    [missed] = await messages_of(world, "paused", "MissSchedule")
    assert "2 scheduled times" in missed and stamp(first_slot + MINUTE) in missed
    assert missed_total(world, "paused") == 2
    assert out_of_sync(world, "paused") == 1


async def test_a_slot_later_than_the_starting_deadline_is_missed_not_started(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    first_slot = await start(world, syncschedule(world, "punctual", STUCK, startingDeadlineSeconds=30))
    world.clock.set(first_slot + timedelta(seconds=45))  # the operator was away for the slot
    await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "punctual", lambda body: status_of(body).get("missedRuns") == 1
    )
    await passes(world, "punctual")
    assert await runs_of(world, "punctual") == []
    assert (await schedule_status(world, "punctual"))["missedRuns"] == 1
    assert await reasons_of(world, "punctual", until="MissSchedule") == ["MissSchedule"]
    assert "startingDeadlineSeconds" in (await messages_of(world, "punctual", "MissSchedule"))[0]
    assert missed_total(world, "punctual") == 1

    # The next slot, seen in time, starts.
    world.clock.set(first_slot + MINUTE + timedelta(seconds=1))
    await world.api.wait_for_object(COPYJOBS, ns, run_name("punctual", first_slot + MINUTE))
    assert missed_total(world, "punctual") == 1


async def test_the_history_limit_keeps_only_the_latest_successful_run(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    first_slot = await start(world, syncschedule(world, "tidy", SHARE_SYNC, successfulJobsHistoryLimit=1))
    world.clock.set(first_slot + timedelta(seconds=0.5))
    first = run_name("tidy", first_slot)
    await world.api.wait_for_object(COPYJOBS, ns, first)
    assert status_of(await finished(world, first))["phase"] == "Succeeded"

    world.service.get_share_client("primary").get_file_client("ledger/07.csv").upload_file(b"july\n")
    world.clock.advance(MINUTE)
    second = run_name("tidy", first_slot + MINUTE)
    await world.api.wait_for_object(COPYJOBS, ns, second)
    second_body = await finished(world, second)
    assert status_of(second_body)["phase"] == "Succeeded"
    await world.api.wait_for_absence(COPYJOBS, ns, first)
    assert await runs_of(world, "tidy") == [second]
    assert read_share(world.service.get_share_client("backup")).files == SOURCE_TREE | {
        "ledger/07.csv": b"july\n"
    }
    schedule = await world.api.wait_for_object(
        SYNCSCHEDULES,
        ns,
        "tidy",
        lambda body: status_of(body).get("lastSuccessfulTime") == status_of(second_body)["completionTime"],
    )
    assert status_of(schedule)["lastScheduleTime"] == stamp(first_slot + MINUTE)


async def test_a_manual_trigger_starts_one_run_per_new_value(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    # Yearly: no scheduled slot comes due during the test; Allow: an active run stops nothing.
    await start(world, syncschedule(world, "on-demand", STUCK, schedule="@yearly", concurrencyPolicy="Allow"))
    await world.api.apply(syncschedule(world, "on-demand", STUCK, schedule="@yearly", trigger="first"))
    [first] = await world.api.wait_for(lambda: runs_of(world, "on-demand"), what="a manual run")
    assert first.startswith("on-demand-manual-")
    run = await world.api.get(COPYJOBS, ns, first)
    assert run is not None
    assert run["metadata"]["annotations"][names.ANNOTATION_TRIGGER] == "first"
    await world.api.wait_for_object(
        SYNCSCHEDULES, ns, "on-demand", lambda body: status_of(body).get("lastTrigger") == "first"
    )

    # The same value again (with another change to the spec, so the operator looks): no new run.
    await world.api.apply(
        syncschedule(world, "on-demand", STUCK, schedule="@yearly", trigger="first", failedJobsHistoryLimit=2)
    )
    schedule = await world.api.wait_for_object(
        SYNCSCHEDULES,
        ns,
        "on-demand",
        lambda body: status_of(body).get("observedGeneration") == body["metadata"]["generation"],
    )
    assert schedule["spec"]["failedJobsHistoryLimit"] == 2
    await passes(world, "on-demand")
    assert await runs_of(world, "on-demand") == [first]

    # A new value: one more run.
    await world.api.apply(syncschedule(world, "on-demand", STUCK, schedule="@yearly", trigger="second"))

    async def two_runs() -> bool:
        return len(await runs_of(world, "on-demand")) == 2

    await world.api.wait_for(two_runs, what="a second manual run")
    await passes(world, "on-demand")
    [second] = [name for name in await runs_of(world, "on-demand") if name != first]
    assert second.startswith("on-demand-manual-")
    status = await schedule_status(world, "on-demand")
    assert status["lastTrigger"] == "second"
    assert sorted(status["active"]) == sorted([first, second])
    assert await reasons_of(world, "on-demand", until="SuccessfulCreate", times=2) == [
        "SuccessfulCreate",
        "SuccessfulCreate",
    ]
    assert all(
        "manual run" in message for message in await messages_of(world, "on-demand", "SuccessfulCreate")
    )


async def test_deleting_a_schedule_deletes_its_runs(world: World) -> None:
    ns = world.namespace
    await with_shares(world)
    first_slot = await start(world, syncschedule(world, "short-lived", STUCK))
    world.clock.set(first_slot + timedelta(seconds=0.5))
    run = run_name("short-lived", first_slot)
    await world.api.wait_for_object(COPYJOBS, ns, run)
    pod = await stuck_pod(world, run)
    assert out_of_sync(world, "short-lived") == 0

    await world.api.delete(SYNCSCHEDULES, ns, "short-lived")
    await world.api.wait_for_absence(SYNCSCHEDULES, ns, "short-lived")
    await world.api.wait_for_absence(COPYJOBS, ns, run)
    await world.api.wait_for_absence(JOBS, ns, names.worker_job_name(run))
    await world.api.wait_for_absence(PODS, ns, pod["metadata"]["name"])  # the run's pod
    assert out_of_sync(world, "short-lived") is None  # its series are gone too
    assert missed_total(world, "short-lived") is None
