"""bench.stage_cpu: its hook times each stage by the calling thread's CPU clock, every stage it
names still exists in the gateway (a rename breaks this test, not the benchmark's figures), and
the rates per window are the differences of the hook's totals."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from types import ModuleType

import pytest

from bench import stage_cpu


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stage_hook_under_test",
                                                  stage_cpu.HOOK_DIR / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # STAFFROOM_STAGE_LOG is unset here: nothing installed
    return module


def test_every_stage_the_bench_names_still_exists_in_the_gateway() -> None:
    h = hook()
    assert (h.LOG_ENV, h.STAGES_ENV) == (stage_cpu.LOG_ENV, stage_cpu.STAGES_ENV)
    assert not any(isinstance(f, h._OnSessionImport) for f in sys.meta_path)
    for module, cls, name in stage_cpu.STAGES.values():
        owner = importlib.import_module(module)
        assert callable(getattr(getattr(owner, cls) if cls else owner, name)), (module, name)
    assert set(stage_cpu.DISJOINT) <= set(stage_cpu.STAGES)


def spin(seconds: float) -> int:
    end, n = time.thread_time() + seconds, 0
    while time.thread_time() < end:
        n += 1
    return n


def idle(seconds: float) -> None:
    time.sleep(seconds)


def test_a_wrapped_stage_adds_its_threads_cpu_not_its_wall_time() -> None:
    h = hook()
    this = sys.modules[__name__]
    saved = this.spin, this.idle
    try:
        h.install({"busy": (__name__, "", "spin"), "asleep": (__name__, "", "idle")})
        assert this.spin(0.05) > 0  # the wrapper returns what the stage returns
        this.idle(0.1)
    finally:
        this.spin, this.idle = saved
    assert 0.05 <= h.totals["busy"] < 0.5
    assert h.totals["asleep"] < 0.02  # sleeping costs no CPU


def test_rates_are_the_totals_differences_over_the_window() -> None:
    lines = [{"_wall": 100.0, "_process": 1.0, "parse": 0.1, "encode": 0.2},
             {"_wall": 110.0, "_process": 2.0, "parse": 0.3, "encode": 0.6, "take": 0.1},
             {"_wall": 120.0, "_process": 3.0, "parse": 0.5, "encode": 1.0, "take": 0.2}]
    got = stage_cpu.rates(lines, 99.0, 121.0)
    assert got["parse"] == pytest.approx(0.02) and got["encode"] == pytest.approx(0.04)
    assert got["take"] == pytest.approx(0.01) and got["process"] == pytest.approx(0.1)
    assert got["rest"] == pytest.approx(0.1 - 0.02 - 0.04)  # take lies inside machine
    assert got["send"] == 0
    assert stage_cpu.rates(lines, 100.0, 115.0)["parse"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="no figures"):
        stage_cpu.rates(lines, 105.0, 115.0)  # one line: no span
    assert "| encode | 0.0400 (40 %) |" in stage_cpu.table({"scrolling": got})
