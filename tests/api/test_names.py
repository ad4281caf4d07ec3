"""Object names the operator derives from a CopyJob's: valid Kubernetes names, readable, stable."""

from __future__ import annotations

import re

import pytest

from shareferry.api import names

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def test_the_constants_spell_the_api_group_and_its_kinds() -> None:
    assert names.API_VERSION == f"{names.GROUP}/{names.VERSION}" == "shareferry.dev/v1alpha1"
    assert (names.COPYJOBS, names.FILESHARES, names.SYNCSCHEDULES) == (
        "copyjobs",
        "fileshares",
        "syncschedules",
    )
    assert all(key.startswith("AZURE_STORAGE_") for key in names.CREDENTIAL_KEYS)
    assert names.SOURCE_ENV_PREFIX != names.DESTINATION_ENV_PREFIX


def test_a_short_name_is_kept_readable_as_it_is() -> None:
    assert names.worker_job_name("reports-to-dr") == "reports-to-dr-worker"
    assert names.md5_configmap_name("reports-to-dr", 2) == "reports-to-dr-md5-2"
    assert names.md5_configmap_name("team.reports", 0) == "team.reports-md5-0"


@pytest.mark.parametrize("length", [56, 57, 63, 200, 253])
def test_a_long_name_is_cut_to_a_dns_label_with_a_readable_prefix_and_a_hash(length: int) -> None:
    copyjob = ("nightly-reports-" * 20)[:length].strip("-")
    job = names.worker_job_name(copyjob)
    assert len(job) <= 63 and DNS_LABEL.fullmatch(job), job
    assert job.startswith("nightly-reports") and job.endswith("-worker")
    if len(copyjob) + len("-worker") > 63:
        assert re.search(r"-[0-9a-f]{8}-worker$", job), job


def test_names_are_deterministic_and_different_names_stay_different() -> None:
    long_a, long_b = "a" * 80 + "-one", "a" * 80 + "-two"
    assert names.worker_job_name(long_a) == names.worker_job_name(long_a)
    assert names.worker_job_name(long_a) != names.worker_job_name(long_b)
    assert names.md5_configmap_name(long_a, 1) != names.md5_configmap_name(long_a, 2)


def test_a_copyjob_name_with_dots_makes_a_job_name_without_them() -> None:
    job = names.worker_job_name("team.reports")
    assert DNS_LABEL.fullmatch(job) and job.startswith("team-reports-") and job.endswith("-worker")
    assert job != names.worker_job_name("team-reports")  # the hash tells them apart


def test_a_configmap_name_fits_a_dns_subdomain() -> None:
    for copyjob in ("x" * 253, "a." * 120 + "b", "reports"):
        name = names.md5_configmap_name(copyjob, 63)
        assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), name
        assert name.endswith("-md5-63")
