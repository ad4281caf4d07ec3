"""The decision table of a sync for a file on both sides (``judge_files``, ``judge_hashes``):
AzCopy's rule that a newer destination is never overwritten, with ``--mirror-mode`` and
``--compare-hash MD5`` keeping their meanings. Pure: objects as listings describe them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shareferry.core.objects import SmbInfo, StoredObject
from shareferry.core.planning.sync_plan import (
    NEWER_AT_DESTINATION,
    SAME_SECOND_AT_DESTINATION,
    Compare,
    Verdict,
    judge_files,
    judge_hashes,
)

T0 = datetime(2024, 5, 1, 10, 20, 30, 250_000, tzinfo=UTC)  # sub-second: a local mtime
SECOND = T0.replace(microsecond=0)  # an HTTP date: whole seconds
MD5_A = bytes(16)
MD5_B = bytes([1]) * 16

Side = tuple[int, datetime | None, bytes | None]  # size, time, MD5


def obj(size: int, when: datetime | None, md5: bytes | None = None) -> StoredObject:
    return StoredObject("f.txt", is_dir=False, size=size, last_modified=when, md5=md5)


#: (source, destination, verdict) by time, the default comparison.
BY_TIME: dict[str, tuple[Side, Side, Verdict]] = {
    "source newer, same size": ((4, T0 + timedelta(hours=1), None), (4, T0, None), Verdict.COPY),
    "source newer, other size": ((5, T0 + timedelta(hours=1), None), (4, T0, None), Verdict.COPY),
    "same time, same size": ((4, T0, None), (4, T0, None), Verdict.UNCHANGED),
    "same time, other size": ((5, T0, None), (4, T0, None), Verdict.COPY),
    "same time, MD5s differ": ((4, T0, MD5_A), (4, T0, MD5_B), Verdict.COPY),
    "destination newer, same size": ((4, T0, None), (4, T0 + timedelta(hours=1), None), Verdict.UNCHANGED),
    "destination newer, other size": (
        (5, T0, None),
        (4, T0 + timedelta(seconds=1), None),
        Verdict.NEWER_AT_DESTINATION,
    ),
    "destination newer, same size, MD5s differ": (
        (4, T0, MD5_A),
        (4, T0 + timedelta(hours=1), MD5_B),
        Verdict.NEWER_AT_DESTINATION,
    ),
    "destination newer, same MD5": ((4, T0, MD5_A), (4, T0 + timedelta(hours=1), MD5_A), Verdict.UNCHANGED),
    "destination newer by a microsecond, other size": (
        (5, T0, None),
        (4, T0 + timedelta(microseconds=1), None),
        Verdict.NEWER_AT_DESTINATION,
    ),
    "source time unknown": ((4, None, None), (5, T0, None), Verdict.COPY),
    "destination time unknown": ((4, T0, None), (5, None, None), Verdict.COPY),
    # One side knows whole seconds only: both are compared to the second.
    "same second, same size": ((4, T0, None), (4, SECOND, None), Verdict.UNCHANGED),
    # ... and when they agree only to the second, which was written last is unknown: kept.
    "same second, other size": ((5, T0, None), (4, SECOND, None), Verdict.NEWER_AT_DESTINATION),
    "next second at the destination, other size": (
        (5, T0, None),
        (4, SECOND + timedelta(seconds=1), None),
        Verdict.NEWER_AT_DESTINATION,
    ),
    "source a second later, other size": (
        (5, SECOND + timedelta(seconds=1), None),
        (4, T0, None),
        Verdict.COPY,
    ),
}


@pytest.mark.parametrize("case", list(BY_TIME))
def test_by_time_a_newer_destination_is_never_overwritten(case: str) -> None:
    source, destination, expected = BY_TIME[case]
    judgement = judge_files(obj(*source), obj(*destination), Compare.TIME, smb_times=False)
    assert judgement.verdict is expected, judgement.reason
    if expected is Verdict.NEWER_AT_DESTINATION and case.startswith("same second"):
        assert judgement.reason == SAME_SECOND_AT_DESTINATION
        assert judgement.reason.startswith("skipped: the destination may be newer")
    elif expected is Verdict.NEWER_AT_DESTINATION:
        assert judgement.reason == NEWER_AT_DESTINATION == "skipped: the destination is newer"


#: An Azure file whose SMB last-write time (set by its writer) is an hour older than when the
#: service last wrote it (its Last-Modified), against a local file written in between.
SMB_OLDER = SmbInfo(last_write_time="2024-05-01T09:20:30.2500000Z")
SHARE_FILE = StoredObject("f.txt", is_dir=False, size=4, last_modified=SECOND, smb=SMB_OLDER)
LOCAL_FILE = obj(5, T0 - timedelta(minutes=30))

#: (source, destination, --preserve-smb-info, verdict): AzCopy 10.32.2 compares the SMB time
#: only with --preserve-info (IsMoreRecentThan's preferSMBTime), else Last-Modified.
SMB_OR_HTTP: dict[str, tuple[StoredObject, StoredObject, bool, Verdict]] = {
    "upload: the share file was written later, kept": (
        LOCAL_FILE,
        SHARE_FILE,
        False,
        Verdict.NEWER_AT_DESTINATION,
    ),
    "download: the share file was written later, copied": (SHARE_FILE, LOCAL_FILE, False, Verdict.COPY),
    "upload, --preserve-smb-info: its SMB time is older, copied": (
        LOCAL_FILE,
        SHARE_FILE,
        True,
        Verdict.COPY,
    ),
    "download, --preserve-smb-info: its SMB time is older, kept": (
        SHARE_FILE,
        LOCAL_FILE,
        True,
        Verdict.NEWER_AT_DESTINATION,
    ),
    "--preserve-smb-info between shares: same SMB time, unchanged": (
        replace(SHARE_FILE, last_modified=SECOND - timedelta(days=1)),
        SHARE_FILE,
        True,
        Verdict.UNCHANGED,
    ),
}


@pytest.mark.parametrize("case", list(SMB_OR_HTTP))
def test_the_smb_last_write_time_decides_only_with_preserve_smb_info(case: str) -> None:
    source, destination, smb_times, expected = SMB_OR_HTTP[case]
    judgement = judge_files(source, destination, Compare.TIME, smb_times=smb_times)
    assert judgement.verdict is expected, judgement.reason


#: (source, destination, verdict) with --mirror-mode: anything not known identical is copied.
MIRROR: dict[str, tuple[Side, Side, Verdict]] = {
    "destination newer, other size": ((5, T0, None), (4, T0 + timedelta(hours=1), None), Verdict.COPY),
    "destination newer, same size": ((4, T0, None), (4, T0 + timedelta(hours=1), None), Verdict.COPY),
    "same size and time": ((4, T0, None), (4, T0, None), Verdict.UNCHANGED),
    "same MD5, destination newer": ((4, T0, MD5_A), (4, T0 + timedelta(hours=1), MD5_A), Verdict.UNCHANGED),
    "MD5s differ, same time": ((4, T0, MD5_A), (4, T0, MD5_B), Verdict.COPY),
    "times unknown": ((4, None, None), (4, None, None), Verdict.COPY),
}


@pytest.mark.parametrize("case", list(MIRROR))
def test_mirror_mode_overwrites_whatever_is_not_known_identical(case: str) -> None:
    source, destination, expected = MIRROR[case]
    assert judge_files(obj(*source), obj(*destination), Compare.MIRROR, smb_times=False).verdict is expected


#: (source, destination, verdict) with --compare-hash MD5, both MD5s in the listings.
HASH_LISTED: dict[str, tuple[Side, Side, Verdict]] = {
    "MD5s differ, destination newer": ((4, T0, MD5_A), (4, T0 + timedelta(hours=1), MD5_B), Verdict.COPY),
    "MD5s differ, other size, destination newer": (
        (5, T0, MD5_A),
        (4, T0 + timedelta(hours=1), MD5_B),
        Verdict.COPY,
    ),
    "same MD5, source newer": ((4, T0 + timedelta(hours=1), MD5_A), (4, T0, MD5_A), Verdict.UNCHANGED),
    "an MD5 missing from a listing": ((5, T0, MD5_A), (4, T0 + timedelta(hours=1), None), Verdict.CHECK),
}


@pytest.mark.parametrize("case", list(HASH_LISTED))
def test_compare_hash_copies_exactly_what_differs_whatever_the_times(case: str) -> None:
    source, destination, expected = HASH_LISTED[case]
    assert judge_files(obj(*source), obj(*destination), Compare.HASH, smb_times=False).verdict is expected


#: (source, destination, source MD5, destination MD5, verdict) after the closer look.
HASH_LOOKED: dict[str, tuple[Side, Side, bytes | None, bytes | None, Verdict]] = {
    "both known, differ, destination newer": (
        (4, T0, None),
        (4, T0 + timedelta(hours=1), None),
        MD5_A,
        MD5_B,
        Verdict.COPY,
    ),
    "both known, same": ((4, T0 + timedelta(hours=1), None), (4, T0, None), MD5_A, MD5_A, Verdict.UNCHANGED),
    "destination's unknown, destination newer, other size": (
        (5, T0, None),
        (4, T0 + timedelta(hours=1), None),
        MD5_A,
        None,
        Verdict.NEWER_AT_DESTINATION,
    ),
    "source's unknown, destination newer, same size": (
        (4, T0, None),
        (4, T0 + timedelta(hours=1), None),
        None,
        MD5_B,
        Verdict.UNCHANGED,
    ),
    "destination's unknown, source newer": (
        (4, T0 + timedelta(hours=1), None),
        (5, T0, None),
        MD5_A,
        None,
        Verdict.COPY,
    ),
    # Different sizes: a caller that knows an MD5 exists passes any value for it (b"").
    "other sizes, both exist": ((5, T0, None), (4, T0 + timedelta(hours=1), None), b"", MD5_B, Verdict.COPY),
}


@pytest.mark.parametrize("case", list(HASH_LOOKED))
def test_compare_hash_falls_back_to_the_newer_destination_rule_without_an_md5(case: str) -> None:
    source, destination, source_md5, destination_md5, expected = HASH_LOOKED[case]
    judgement = judge_hashes(
        obj(*source),
        obj(*destination),
        source_md5=source_md5,
        destination_md5=destination_md5,
        smb_times=False,
    )
    assert judgement.verdict is expected, judgement.reason
