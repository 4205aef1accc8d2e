"""The display modules mypyc compiles (gateway.display.compiled): the compiled copy does what its
source does, CI runs the compiled copy, and a stale one is never used."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.machinery
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway.app
from gateway.display import compiled, framebuffer
from gateway.display.framebuffer import CopyOp, Framebuffer
from gateway.display.stamp_drift import StampDrift
from tests.display.sources import source_module
from tests.display.test_stamp_drift import H, T, W, layer, random_frames

COMPILED = all(compiled.status().values())
needs_compiled = pytest.mark.skipif(not COMPILED, reason="the display path is not compiled here")


def test_ci_runs_the_compiled_display_path() -> None:
    """.ci/test sets STAFFROOM_EXPECT_COMPILED: there, a missing compiler or a build that failed
    (each extension is optional, so the install itself would pass) fails here."""
    if not os.environ.get("STAFFROOM_EXPECT_COMPILED"):
        pytest.skip("STAFFROOM_EXPECT_COMPILED is not set (only .ci/test sets it)")
    assert compiled.status() == {name: True for name in compiled.COMPILED + compiled.NATIVE}, \
        "the display path runs from source: was `pip install -e .` run with gcc and python3-dev?"


def test_setup_compiles_the_modules_the_gateway_looks_for() -> None:
    tree = ast.parse((Path(__file__).parents[2] / "setup.py").read_text())
    values = {t.id: ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert values["COMPILED"] == [f"gateway/display/{n}.py" for n in compiled.COMPILED]
    assert values["NATIVE"] == [f"gateway/display/{n}.c" for n in compiled.NATIVE]
    assert values["RECORD"] == compiled.RECORD


@needs_compiled
@pytest.mark.parametrize("seed", range(6))
def test_compiled_stamp_drift_does_what_its_source_does(seed: int) -> None:
    lay, rng = layer(), random.Random(seed)
    ours, source = StampDrift(W, H, T, lay.pitch), source_module("stamp_drift").StampDrift(
        W, H, T, lay.pitch)
    copies: list[CopyOp] = []  # since the last settle
    for ops, damage in random_frames(rng):
        # One copy may be a scroll the gateway found (re-sent pixels in its span, and whole
        # tiles, join it); others are the desktop's (one vector: all of it joins its drift).
        copies += ops
        detected = len(copies) == 1 and rng.random() < 0.4
        if damage is not None and detected:
            damage |= {(tx, ty): (tx * T, ty * T, tx * T + T, min(H, ty * T + T))
                       for tx, ty in rng.sample([(a, b) for a in range(W // T)
                                                 for b in range(-(-H // T))], 6)}  # fmt: skip
        for op in ops:
            assert ours.copy(op) == source.copy(op)
            assert (ours.drift, ours.parts, ours.moved) == (source.drift, source.parts,
                                                           source.moved)
        if damage is not None:
            assert ours.settle(lay, damage, copies, detected) == source.settle(
                lay, damage, copies, detected)
            copies = []
            assert (ours.drift, ours.parts) == (source.drift, source.parts)
    assert ours.drifted() == source.drifted()
    assert ours.shown_ink(lay) == source.shown_ink(lay)
    rects = [(0, 0, 17, 9), (100, 40, 300, 200)]
    assert ours.shown(rects) == source.shown(rects)


def _taken(fb: object) -> tuple[object, ...]:
    parts = {t: list(boxes) for t, boxes in fb.parts.items()}  # type: ignore[attr-defined]
    copies, damage, resized = fb.take()  # type: ignore[attr-defined]
    return [dataclasses.astuple(c) for c in copies], damage, parts, resized


@needs_compiled
@pytest.mark.parametrize("seed", range(4))
def test_compiled_framebuffer_does_what_its_source_does(seed: int) -> None:
    """Random fills, blits (bytes and views of a bigger buffer, some past the edges), copies
    (sometimes more than a frame keeps) and cursors, frame after frame: the same pixels, damage,
    copies and touched tiles."""
    rng = random.Random(seed)
    ours, source = Framebuffer(W, H), source_module("framebuffer").Framebuffer(W, H)
    copied: list[tuple[int, ...]] = []
    split = 0
    ours.on_copy = lambda op: copied.append(dataclasses.astuple(op))
    assert _taken(ours) == _taken(source)
    for _ in range(30):
        for _ in range(rng.randint(1, 90)):
            kind = rng.random()
            w, h = rng.randint(1, 150), rng.randint(1, 150)
            x, y = rng.randint(-40, W), rng.randint(-40, H)
            if kind < 0.3:
                data = rng.randbytes(w * h * 4 + 8)
                args = (x, y, w, h, memoryview(data)[8:] if kind < 0.15 else data[8:])
                ours.blit(*args)
                source.blit(*args)
            elif kind < 0.4:
                pixel = rng.randbytes(4)
                ours.fill(x, y, w, h, pixel)
                source.fill(x, y, w, h, pixel)
            elif kind < 0.95:
                a = (rng.randint(-5, W), rng.randint(-5, H), rng.randint(0, W), rng.randint(0, H),
                     w, h)
                ours.copy(*a)
                source.copy(*a)
            else:
                cw, ch = rng.randint(0, 20), rng.randint(0, 20)
                pixels, mask = rng.randbytes(cw * ch * 4), rng.randbytes((cw + 7) // 8 * ch)
                ours.set_cursor(3, 4, cw, ch, pixels, mask)
                source.set_cursor(3, 4, cw, ch, pixels, mask)
                assert dataclasses.astuple(ours.cursor) == dataclasses.astuple(source.cursor)
        assert ours.touched == source.touched
        split += bool(ours.parts)
        assert _taken(ours) == _taken(source)
        assert ours.pixels == source.pixels
    assert copied  # the hook ran
    assert split  # some tiles kept their damage in parts
    with pytest.raises(ValueError, match="size"):
        ours.blit(0, 0, 2, 2, b"\0" * 15)


@pytest.fixture
def package(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A package ``stalepkg`` with one module ``mod`` whose "extension" is not loadable (any
    import of it instead of the source fails) and a build record that matches its source."""
    folder = tmp_path / "stalepkg"
    folder.mkdir()
    (folder / "mod.py").write_text('WHERE = "source"\n')
    (folder / f"mod{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"not an .so")
    record(folder, "mod")
    yield folder, "stalepkg"
    sys.modules.pop("stalepkg.mod", None)


def record(folder: Path, name: str) -> None:
    """What setup.py writes once it has compiled ``name``."""
    digest = hashlib.sha256((folder / f"{name}.py").read_bytes()).hexdigest()
    (folder / compiled.RECORD).write_text(json.dumps({name: digest}))


def test_a_source_changed_since_the_build_is_used_instead(package: tuple[Path, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder, name = package
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    (folder / "mod.py").write_text('WHERE = "source"  # edited\n')
    why = compiled.use_sources(folder, name, ("mod",))
    assert why is not None and "mod.py changed since the last build" in why
    assert sys.modules["stalepkg.mod"].WHERE == "source"


def test_no_build_record_means_the_source(package: tuple[Path, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder, name = package
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    (folder / compiled.RECORD).write_text("{not json")
    assert compiled.use_sources(folder, name, ("mod",)) is not None
    assert sys.modules["stalepkg.mod"].WHERE == "source"


def test_the_extension_built_from_this_source_is_left_to_the_import_system(
        package: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Also when the source is the newer file, as an installer that writes both in one instant
    leaves it."""
    folder, name = package
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    ext = folder / f"mod{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    os.utime(ext, (1_000_000, 1_000_000))
    assert compiled.use_sources(folder, name, ("mod",)) is None
    assert "stalepkg.mod" not in sys.modules


def test_staffroom_pure_python_loads_the_sources(package: tuple[Path, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder, name = package
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert compiled.use_sources(folder, name, ("mod",)) == f"{compiled.PURE_ENV} is set"
    assert sys.modules["stalepkg.mod"].WHERE == "source"


@pytest.fixture
def kernel_package(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A package ``kernelpkg`` with a C kernel ``kern`` (a ``.c``, no ``.py``) whose
    "extension" is not loadable, and a build record that matches its source."""
    folder = tmp_path / "kernelpkg"
    folder.mkdir()
    (folder / "kern.c").write_text("/* the kernel */\n")
    (folder / f"kern{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"not an .so")
    digest = hashlib.sha256((folder / "kern.c").read_bytes()).hexdigest()
    (folder / compiled.RECORD).write_text(json.dumps({"kern": digest}))
    yield folder, "kernelpkg"
    sys.modules.pop("kernelpkg.kern", None)


@pytest.mark.parametrize("why", ["pure", "edited"])
def test_a_c_kernel_is_not_imported_when_pure_python_is_asked_or_its_source_changed(
        kernel_package: tuple[Path, str], why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The module that calls the kernel then takes its numpy path (ImportError)."""
    folder, name = kernel_package
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    if why == "pure":
        monkeypatch.setenv(compiled.PURE_ENV, "1")
    else:
        (folder / "kern.c").write_text("/* the kernel, edited */\n")
    said = compiled.use_sources(folder, name, ("kern",))
    assert said == (f"{compiled.PURE_ENV} is set" if why == "pure"
                    else "kern.c changed since the last build (pip install -e . compiles it again)")
    assert sys.modules["kernelpkg.kern"] is None  # what makes `import kernelpkg.kern` fail


def test_a_module_loaded_from_source_never_sees_a_blocked_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pure Python asked: a module run from its source that imports a kernel gets ImportError,
    even when the kernel's extension is built and loadable (the kernels are blocked first)."""
    built = framebuffer._ROW_COPY
    if built is None:
        pytest.skip("needs the built row_copy kernel")
    folder = tmp_path / "orderpkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "mod.py").write_text("try:\n    from orderpkg import row_copy as K\n"
                                   "except ImportError:\n    K = None\n")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (folder / f"mod{suffix}").write_bytes(b"not an .so")
    (folder / f"row_copy{suffix}").write_bytes(Path(built.__file__).read_bytes())
    (folder / "row_copy.c").write_text("/* the kernel */\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    try:
        assert compiled.use_sources(folder, "orderpkg", ("mod", "row_copy")) is not None
        assert sys.modules["orderpkg.mod"].K is None
        del sys.modules["orderpkg.row_copy"]  # unblocked, the same extension loads
        assert hasattr(importlib.import_module("orderpkg.row_copy"), "move")
    finally:
        for name in ("orderpkg.mod", "orderpkg.row_copy", "orderpkg"):
            sys.modules.pop(name, None)


def test_a_c_kernel_built_from_its_source_or_installed_without_it_is_used(
        kernel_package: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, name = kernel_package
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    assert compiled.use_sources(folder, name, ("kern",)) is None
    (folder / "kern.c").unlink()  # as a wheel installs it: the extension alone
    assert compiled.use_sources(folder, name, ("kern",)) is None
    assert "kernelpkg.kern" not in sys.modules


@pytest.mark.parametrize(("used", "because", "said"), [
    ({"framebuffer": True, "stamp_drift": True}, None,
     "display path: compiled (framebuffer, stamp_drift)"),
    ({"framebuffer": False, "stamp_drift": False}, "STAFFROOM_PURE_PYTHON is set",
     "display path: pure Python, because STAFFROOM_PURE_PYTHON is set"),
    ({"framebuffer": False, "stamp_drift": False}, None,
     "display path: pure Python (not compiled at install"),
])
def test_the_gateway_says_at_start_whether_its_display_path_is_compiled(
        used: dict[str, bool], because: str | None, said: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(compiled, "status", lambda: used)
    monkeypatch.setattr(gateway.app, "SOURCES_BECAUSE", because)
    assert compiled.describe(because)[1].startswith(said)  # what the benchmarks record
    with caplog.at_level("INFO", logger="gateway.app"):
        gateway.app._log_display_build()
    assert [r.getMessage()[:len(said)] for r in caplog.records] == [said]
    assert caplog.records[0].levelname == ("INFO" if because is None and all(used.values())
                                           else "WARNING")
