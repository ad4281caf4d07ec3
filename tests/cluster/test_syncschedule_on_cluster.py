"""A SyncSchedule on the real control plane with the real clock: a slot due within the test fires,
``Forbid`` starts no second run while one is active and says why, the history keeps the latest
run only. Two cron slots pass, so this test takes about two minutes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from shareferry.api import names
from tests.cluster.kubectl import wait_for
from tests.cluster.release import NAMESPACE, Release, condition
from tests.support.trees import read_share, write_share

SOURCE_TREE = {f"ledger/{month:02}.csv": os.urandom(900 + month * 61) for month in range(1, 7)}


def runs_of(release: Release, schedule: str) -> list[str]:
    listed = release.kube.json(
        "get", "copyjobs", "-n", NAMESPACE, "-l", f"{names.LABEL_SYNCSCHEDULE}={schedule}"
    )
    return sorted(item["metadata"]["name"] for item in listed["items"])


def reasons(release: Release, name: str) -> list[str]:
    return [str(event["reason"]) for event in release.events(name)]


def test_a_schedule_fires_honours_forbid_and_keeps_its_history(release: Release) -> None:
    write_share(release.service.create_share("ledger"), SOURCE_TREE)
    release.service.create_share("ledger-copy")
    release.apply(release.fileshare("ledger", "ledger"), release.fileshare("ledger-copy", "ledger-copy"))
    release.wait_ready_share("ledger")
    release.wait_ready_share("ledger-copy")
    # The claim the first run reads does not exist yet: the real scheduler leaves its pod
    # Pending, so the run stays active across the next slot.
    template: dict[str, Any] = {
        "source": {"fileShare": {"name": "ledger"}},
        "destination": {"fileShare": {"name": "ledger-copy"}},
        "stateVolume": {"claimName": "ledger-state"},
    }
    release.apply(
        {
            "apiVersion": names.API_VERSION,
            "kind": names.SYNCSCHEDULE_KIND,
            "metadata": {"name": "ledger-mirror", "namespace": NAMESPACE},
            "spec": {
                "schedule": "* * * * *",
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"spec": template},
            },
        }
    )
    created = release.get("syncschedule", "ledger-mirror")
    assert created is not None
    creation = datetime.fromisoformat(created["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    first_slot = creation.replace(second=0, microsecond=0) + timedelta(minutes=1)
    first = names.scheduled_copyjob_name("ledger-mirror", first_slot)

    wait_for(lambda: first in runs_of(release, "ledger-mirror"), timeout=90, what=f"the first run {first}")
    run = release.get("copyjob", first)
    assert run is not None
    [owner] = run["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("SyncSchedule", "ledger-mirror")
    assert run["spec"]["mode"] == "sync"

    # The next slot finds the first run active: Forbid starts nothing and says why.
    wait_for(
        lambda: "JobAlreadyActive" in reasons(release, "ledger-mirror"),
        timeout=100,
        what="the JobAlreadyActive event",
    )
    assert runs_of(release, "ledger-mirror") == [first]
    schedule = release.get("syncschedule", "ledger-mirror")
    assert schedule is not None
    assert schedule["status"]["active"] == [first]
    assert condition(schedule, "Ready")["reason"] == "RunWaiting"

    # The claim appears: the first run goes ahead, and the slot that waited runs after it.
    release.volume("ledger-state")
    body = release.wait_finished(first, timeout=120)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert read_share(release.service.get_share_client("ledger-copy")).files == SOURCE_TREE

    def later_run_done() -> str | None:
        later = [name for name in runs_of(release, "ledger-mirror") if name != first]
        for name in later:
            finished = release.get("copyjob", name)
            if finished and finished.get("status", {}).get("phase") == "Succeeded":
                return name
        return None

    second = wait_for(later_run_done, timeout=150, what="a later run to succeed")
    # The history keeps the latest successful run only.
    wait_for(
        lambda: runs_of(release, "ledger-mirror") == [second], timeout=60, what="the history trimmed to one"
    )
    status = wait_for(
        lambda: (s := release.get("syncschedule", "ledger-mirror")) and s["status"].get("lastSuccessfulTime") and s["status"],
        what="lastSuccessfulTime",
    )  # fmt: skip
    assert status["active"] == []
    assert datetime.fromisoformat(status["lastScheduleTime"].replace("Z", "+00:00")) > first_slot
    assert status["lastScheduleTime"] <= datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    release.kube.run("delete", "syncschedule", "ledger-mirror", "-n", NAMESPACE, timeout=120)
    wait_for(lambda: runs_of(release, "ledger-mirror") == [], timeout=60, what="its runs deleted with it")
