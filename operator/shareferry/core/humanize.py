"""Numbers as a person reads them: byte counts in binary units, durations as H:MM:SS."""

from __future__ import annotations


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB``; binary units, as the throughput is in MiB/s."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value = float(count)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """``75`` -> ``0:01:15``."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
