"""Trees of files for copy-job tests: write one into a local directory, an Azure Files share or a
Blob container, and read any of them back (bytes, stored MD5s, directories) with the plain SDKs,
independently of the ShareFerry backends under test."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient
from azure.storage.blob import ContentSettings as BlobContentSettings
from azure.storage.fileshare import ContentSettings as FileContentSettings
from azure.storage.fileshare import ShareClient

from shareferry.core.accounting import FileResult, Outcome


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


@dataclass
class Listing:
    """What a tree holds: file bytes and stored Content-MD5s by path, and directory paths."""

    files: dict[str, bytes] = field(default_factory=dict)
    stored_md5: dict[str, bytes | None] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: depth + 1]) for depth in range(len(parts))]


# ---- local ------------------------------------------------------------------------------------


def write_local(root: Path, files: Mapping[str, bytes], dirs: tuple[str, ...] = ()) -> None:
    for directory in dirs:
        (root / directory).mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_local(root: Path) -> Listing:
    """Every file and directory below ``root`` (hidden ones included: a leftover temporary file
    must show up)."""
    listing = Listing()
    for current, dirnames, filenames in os.walk(root):
        relative = Path(current).relative_to(root).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        listing.dirs.update(prefix + name for name in dirnames)
        for name in filenames:
            listing.files[prefix + name] = (Path(current) / name).read_bytes()
            listing.stored_md5[prefix + name] = None
    return listing


# ---- Azure Files ------------------------------------------------------------------------------


def write_share(
    share: ShareClient, files: Mapping[str, bytes], dirs: tuple[str, ...] = (), *, with_md5: bool = True
) -> None:
    """Upload ``files`` (replacing any there, creating parents) with their Content-MD5 unless
    ``with_md5`` is off."""
    made: set[str] = set()

    def make(directory: str) -> None:
        for parent in _parents(directory + "/x"):
            if parent not in made:
                with contextlib.suppress(ResourceExistsError):
                    share.get_directory_client(parent).create_directory()
                made.add(parent)

    for directory in dirs:
        make(directory)
    for path, data in files.items():
        if "/" in path:
            make(path.rpartition("/")[0])
        settings = FileContentSettings(content_md5=bytearray(md5(data)) if with_md5 else None)
        share.get_file_client(path).upload_file(data, content_settings=settings)


def read_share(share: ShareClient, under: str = "") -> Listing:
    listing = Listing()
    pending = [under]
    while pending:
        directory = pending.pop()
        for item in share.get_directory_client(directory).list_directories_and_files():
            path = f"{directory}/{item.name}" if directory else item.name
            if item.is_directory:
                listing.dirs.add(path)
                pending.append(path)
                continue
            client = share.get_file_client(path)
            listing.files[path] = client.download_file().readall()
            stored = client.get_file_properties().content_settings.content_md5
            listing.stored_md5[path] = bytes(stored) if stored else None
    return listing


# ---- Blob -------------------------------------------------------------------------------------


def write_container(container: ContainerClient, files: Mapping[str, bytes], *, with_md5: bool = True) -> None:
    for path, data in files.items():
        settings = BlobContentSettings(content_md5=bytearray(md5(data)) if with_md5 else None)
        container.upload_blob(path, data, content_settings=settings)


def read_container(container: ContainerClient) -> Listing:
    listing = Listing()
    for blob in container.list_blobs():
        listing.files[blob.name] = container.download_blob(blob.name).readall()
        stored = blob.content_settings.content_md5
        listing.stored_md5[blob.name] = bytes(stored) if stored else None
    return listing


# ---- results ----------------------------------------------------------------------------------


class RecordingSubscriber:
    """Keeps every event a job reports, as a progress subscriber."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, int]] = []
        self.progress = 0
        self.results: list[FileResult] = []

    def on_queued(self, path: str, size: int) -> None:
        self.queued.append((path, size))

    def on_progress(self, nbytes: int) -> None:
        self.progress += nbytes

    def on_done(self, result: FileResult) -> None:
        self.results.append(result)

    def files(self, outcome: Outcome) -> dict[str, FileResult]:
        """File (not folder) results with ``outcome``, by destination path."""
        return {r.path: r for r in self.results if r.outcome is outcome and not r.is_dir}

    def folders(self, outcome: Outcome) -> set[str]:
        return {r.path for r in self.results if r.outcome is outcome and r.is_dir}
