"""Persistence of the emulator's state under ``--data-dir``: SQLite for metadata, files for bytes.

One row per share (or snapshot) and one per directory or file, written at the end of every
request that changed something (one transaction), and read back at start. In-memory emulators
use :class:`NoPersistence`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    account TEXT NOT NULL, name TEXT NOT NULL, snapshot TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (account, name, snapshot));
CREATE TABLE IF NOT EXISTS nodes (
    account TEXT NOT NULL, share TEXT NOT NULL, snapshot TEXT NOT NULL, path TEXT NOT NULL,
    depth INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (account, share, snapshot, path));
"""

ShareKey = tuple[str, str, str]  # account, share name, snapshot ("" for the live share)


class NoPersistence:
    """Keeps nothing: the state lives and dies with the process."""

    def save_share(self, key: ShareKey, data: dict[str, Any]) -> None:
        return None

    def delete_share(self, key: ShareKey) -> None:
        return None

    def save_node(self, key: ShareKey, path: str, data: dict[str, Any]) -> None:
        return None

    def delete_node(self, key: ShareKey, path: str) -> None:
        return None

    def commit(self) -> None:
        return None

    def close(self) -> None:
        return None

    def load_shares(self) -> Iterator[tuple[ShareKey, dict[str, Any]]]:
        return iter(())

    def load_nodes(self, key: ShareKey) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(())


class SqlitePersistence(NoPersistence):
    """State in ``<data-dir>/state.sqlite3`` (WAL), bytes under ``<data-dir>/content/``."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "state.sqlite3", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, tuple[Any, ...]]] = []

    def save_share(self, key: ShareKey, data: dict[str, Any]) -> None:
        self._pending.append(("INSERT OR REPLACE INTO shares VALUES (?, ?, ?, ?)", (*key, json.dumps(data))))

    def delete_share(self, key: ShareKey) -> None:
        self._pending.append(("DELETE FROM shares WHERE account=? AND name=? AND snapshot=?", key))
        self._pending.append(("DELETE FROM nodes WHERE account=? AND share=? AND snapshot=?", key))

    def save_node(self, key: ShareKey, path: str, data: dict[str, Any]) -> None:
        depth = path.count("/") + (1 if path else 0)
        self._pending.append(
            (
                "INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?)",
                (*key, path.casefold(), depth, json.dumps(data)),
            )
        )

    def delete_node(self, key: ShareKey, path: str) -> None:
        self._pending.append(
            (
                "DELETE FROM nodes WHERE account=? AND share=? AND snapshot=? AND path=?",
                (*key, path.casefold()),
            )
        )

    def commit(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self._db.execute("BEGIN")
        try:
            for statement, args in pending:
                self._db.execute(statement, args)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self.commit()
        self._db.close()

    def load_shares(self) -> Iterator[tuple[ShareKey, dict[str, Any]]]:
        for account, name, snapshot, data in self._db.execute(
            "SELECT account, name, snapshot, data FROM shares"
        ).fetchall():
            yield (account, name, snapshot), json.loads(data)

    def load_nodes(self, key: ShareKey) -> Iterator[tuple[str, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT path, data FROM nodes WHERE account=? AND share=? AND snapshot=? ORDER BY depth",
            key,
        ).fetchall()
        for path, data in rows:
            yield path, json.loads(data)
