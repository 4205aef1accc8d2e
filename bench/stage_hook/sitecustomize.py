"""bench.stage_cpu's hook inside the measured gateway process (loaded through PYTHONPATH).

Does nothing unless STAFFROOM_STAGE_LOG names a file and the process is a gateway
(``staffroom gateway ...``). Then, once gateway.live.session is imported, it wraps each stage of
the per-frame path that STAFFROOM_STAGES lists (bench.stage_cpu.STAGES, as JSON: the gateway
cannot import the bench) so that every call adds the CPU time of the calling thread
(time.thread_time) to that stage's total, and a daemon thread appends all totals, with the
process's CPU and the wall time, as one JSON line to the file every half second.

Python imports the first sitecustomize on its path: this one shadows the interpreter's own
(Debian's sets nothing the gateway needs), and only in the processes the bench starts.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

LOG_ENV = "STAFFROOM_STAGE_LOG"
EVERY = 0.5  # seconds between two lines of totals

STAGES_ENV = "STAFFROOM_STAGES"  # JSON: stage -> [module, class or "", function]

totals: dict[str, float] = {}


def timed(label: str, f: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + time.thread_time() - start
    return wrapper


def install(stages: dict[str, tuple[str, str, str]]) -> None:
    """Wrap every stage (its module imported now). Sums may race between threads by a few
    microseconds; the figures are tenths of milliseconds a frame."""
    for label, (module_name, cls, name) in stages.items():
        owner: Any = importlib.import_module(module_name)
        if cls:
            owner = getattr(owner, cls)
        setattr(owner, name, timed(label, getattr(owner, name)))


def _write_forever(path: str) -> None:
    while True:
        time.sleep(EVERY)
        line = {**totals, "_process": time.process_time(), "_wall": time.time()}
        with open(path, "a") as out:
            out.write(json.dumps(line) + "\n")


class _OnSessionImport(importlib.abc.MetaPathFinder):
    """Installs the wrappers as gateway.live.session is first imported (by then the modules
    the stages live in import cleanly), and steps aside."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "gateway.live.session":
            sys.meta_path.remove(self)
            install({k: tuple(v) for k, v in json.loads(os.environ[STAGES_ENV]).items()})
            threading.Thread(target=_write_forever, args=(os.environ[LOG_ENV],),
                             name="stage-cpu", daemon=True).start()
        return None


if os.environ.get(LOG_ENV) and os.environ.get(STAGES_ENV) and "gateway" in sys.argv[1:2]:
    sys.meta_path.insert(0, _OnSessionImport())
