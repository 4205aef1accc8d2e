"""The node bus on one machine: gateway processes sharing one SQLite state file poll a table.

Attacker-controlled here: rows of `cluster_signals` (decoded with gateway.cluster.signals' bounds;
a bad row is logged and skipped). Limits: each poll reads at most BATCH rows; rows older than
KEEP_SECONDS are pruned by publishers, so the table stays small.
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
        while True:
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
            if len(rows) < BATCH:
                await asyncio.sleep(self._poll)

    async def close(self) -> None:
        with self._lock:
            self._db.close()

