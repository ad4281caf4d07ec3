"""Split one copy among N workers: each file belongs to exactly one shard, by a stable hash.

The hash is the first 8 bytes of SHA-1 over the UTF-8 path, read as a big-endian number, modulo
the shard count: it does not depend on the process, the platform or Python's hash seed, so N
workers planning the same source agree without talking to each other, the shards are disjoint
and together cover every file. Directories are not split: every shard creates every folder it
meets (creating a folder that exists is idempotent), so a shard never waits on another's folder.
A sync's extra directories are deleted by one shard only, their owner by the same hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shareferry.core.errors import UsageError


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(
                f"shard {self.index} of {self.count} is invalid: the index must be 0 to count - 1"
            )

    def owns(self, relative_path: str) -> bool:
        """Whether the file at ``relative_path`` is this shard's to transfer."""
        if self.count == 1:
            return True
        digest = hashlib.sha1(relative_path.encode("utf-8"), usedforsecurity=False).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index
