"""The node bus on one machine: gateway processes sharing one SQLite state file poll a table.

Attacker-controlled here: rows of `cluster_signals` (decoded with gateway.cluster.signals' bounds;
a bad row is logged and skipped). Limits: each poll reads at most BATCH rows; rows older than
KEEP_SECONDS are pruned by publishers, so the table stays small.

Each poll first asks SQLite, on the event loop, whether any connection committed since the last
look (``PRAGMA data_version`` on a connection of its own: a read of the shared WAL index, a few
microseconds); only then is the table read, in a thread. Reading it every poll, a thread hop and
a query four times a second, was 0.002 of a core per gateway process when nothing happened:
most of what an idle session cost (docs/PERFORMANCE.md, issue 11 part AQ).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.cluster.bus import BusError, Deliver, Resync, deliver_text, resync_safely
from gateway.cluster.signals import check, encode

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
KEEP_SECONDS = 300.0
BATCH = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_signals (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, payload TEXT NOT NULL);
"""


class SqliteBus:
    def __init__(self, path: Path, node: str, *, poll: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self._poll = poll
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                   timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        # Only asks whether anything changed, from the event loop's thread (which need not be
        # the one that made the bus); timeout 0: a busy database answers "maybe", and the
        # thread's query finds out.
        self._watch = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                      timeout=0.0)
        self._version: int | None = None

    def _changed(self) -> bool:
        """Whether any connection (this bus's publisher included) may have committed since the
        last call: True the first time, and whenever SQLite cannot say."""
        try:
            row = self._watch.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return True
        version = int(row[0])
        changed = version != self._version
        self._version = version
        return changed

    def _insert(self, text: str) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute("INSERT INTO cluster_signals (at, payload) VALUES (?, ?)",
                             (now, text))
            self._db.execute("DELETE FROM cluster_signals WHERE at < ?", (now - KEEP_SECONDS,))

    def _after(self, last: int) -> list[tuple[int, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, payload FROM cluster_signals WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (last, BATCH)).fetchall()
        return [(int(i), str(p)) for i, p in rows]

    def _last(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM cluster_signals").fetchone()
        return int(row[0])

    async def publish(self, topic: str, payload: Mapping[str, str]) -> None:
        text = encode(check(topic, self.node, payload))
        try:
            await asyncio.to_thread(self._insert, text)
        except sqlite3.Error as e:
            raise BusError(f"the node bus cannot be written: {e}") from None

    async def listen(self, deliver: Deliver, resync: Resync) -> None:
        last: int | None = None
        missed = True  # at start: whatever happened before we listened is read from state
        more = False  # the last read stopped at BATCH rows
        while True:
            # Checked before the read: a commit after the check is seen by the next one.
            if last is not None and not (missed or more or self._changed()):
                await asyncio.sleep(self._poll)
                continue
            try:
                if last is None:
                    last = await asyncio.to_thread(self._last)
                rows = await asyncio.to_thread(self._after, last)
            except sqlite3.Error as e:
                log.warning("node bus: polling failed, retrying: %s", e)
                missed = True
                await asyncio.sleep(self._poll * 4)
                continue
            if missed:
                missed = False
                await resync_safely(resync)
            for row_id, text in rows:
                last = row_id
                await deliver_text(text, deliver, f"row {row_id}")
            more = len(rows) >= BATCH
            if not more:
                await asyncio.sleep(self._poll)

    async def close(self) -> None:
        self._watch.close()
        with self._lock:
            self._db.close()

