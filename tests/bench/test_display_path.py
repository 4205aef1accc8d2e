"""The benchmarks report the display path the measured gateways ran, read from their own logs:
a kernel edited during a run makes every gateway started since run pure Python, while the
bench's own import (its header's source, before) still said compiled."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import gateway.app
from bench.clients import display_path_of, gateway_display_path
from gateway.display import compiled
from gateway.logs import JsonFormatter


def gateway_log(tmp_path: Path, because: str | None, used: dict[str, bool],
                monkeypatch: pytest.MonkeyPatch) -> Path:
    """A gateway log as the gateway writes it: JSON lines, the display path among them."""
    path = tmp_path / "gateway-1234.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gateway.app")
    logger.addHandler(handler)
    monkeypatch.setattr(compiled, "status", lambda: used)
    monkeypatch.setattr(gateway.app, "SOURCES_BECAUSE", because)
    try:
        logger.warning("listening on 127.0.0.1:1234")
        gateway.app._log_display_build()
        logger.warning("session started")
    finally:
        logger.removeHandler(handler)
        handler.close()
    return path


def test_the_path_a_gateway_logged_is_read_back(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = gateway_log(tmp_path, "stamp_blend.c changed since the last build",
                       {"framebuffer": False, "stamp_blend": False}, monkeypatch)
    assert gateway_display_path(path) == (
        "display path: pure Python, because stamp_blend.c changed since the last build")
    assert gateway_display_path(tmp_path / "missing.log") is None
    (tmp_path / "other.log").write_text("not json\n{\"message\": 3}\n")
    assert gateway_display_path(tmp_path / "other.log") is None


def test_the_report_says_what_the_gateways_ran_and_warns_when_the_bench_differs(
        caplog: pytest.LogCaptureFixture) -> None:
    compiled_line = "display path: compiled (framebuffer, stamp_drift)"
    pure = "display path: pure Python, because stamp_blend.c changed since the last build"
    with caplog.at_level("WARNING", logger="bench"):
        assert display_path_of(compiled_line, [None, compiled_line]) == compiled_line
        assert not caplog.records
        assert display_path_of(compiled_line, [None, pure, pure]) == pure
    assert len(caplog.records) == 1 and "pure Python" in caplog.records[0].getMessage()
    assert display_path_of(compiled_line, [None]) == compiled_line  # noVNC alone logs none
