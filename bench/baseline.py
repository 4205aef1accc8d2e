"""Before vs after in one run: a git revision's ``gateway/`` beside the working tree's, the two
run in alternating order so that the machine's load drifts over both sides alike
(bench.display_compare, bench.rfb_read). Nothing here is attacker-facing."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@contextmanager
def baseline_tree(baseline: str, prefix: str) -> Iterator[Path]:
    """A temporary directory holding ``baseline``'s ``gateway/`` (for PYTHONPATH)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline, "gateway"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def alternate(rounds: int, run: Callable[[str], T]) -> dict[str, list[T]]:
    """``run("before")`` and ``run("after")`` ``rounds`` times each, the order swapped every
    round (before, after, after, before, ...)."""
    sides: dict[str, list[T]] = {"before": [], "after": []}
    for i in range(rounds):
        for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
            sides[side].append(run(side))
    return sides
