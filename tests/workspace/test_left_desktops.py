"""The test gateways' teardown ends every desktop they leave, also when their registry is gone.

At stop 38 a fresh-Debian run failed because desktops of an earlier test (whose PostgreSQL
had stopped before its gateway's teardown read the registry) kept running: they took CPU and
display numbers from the later tests. The teardown now also ends whatever still runs under
the stopped gateway's own desktop_uids range, and nothing outside it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.datadir import DEFAULT_DESKTOP_UIDS
from tests.fixtures.gateway import end_desktops_of, free_port
from tests.fixtures.workspace import random_uid_range

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs processes as other uids (root)")


def _as_uid(uid: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                             "sleep", "120"], start_new_session=True)


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(5)


def test_desktops_a_gateway_without_its_registry_left_are_ended_and_only_they(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    uids = random_uid_range()
    first, last = (int(n) for n in uids.split("-"))
    # The registry is a PostgreSQL that no longer answers (a closed port).
    (tmp_path / "gateway.json").write_text(json.dumps({
        "hostnames": ["localhost"], "public_url": "https://localhost:8443",
        "desktop_uids": uids,
        "database": f"postgresql://staffroom@127.0.0.1:{free_port()}/staffroom",
    }))
    inside = [_as_uid(first), _as_uid(last)]
    outside = [_as_uid(first - 1), _as_uid(last + 1)]  # another gateway's teachers
    sleepers += inside + outside

    ended = end_desktops_of(tmp_path)

    assert sorted(ended) == sorted(f"uid {u}" for u in (first, last))
    for proc in inside:
        assert proc.wait(10) is not None
    assert all(proc.poll() is None for proc in outside)


@pytest.mark.parametrize("uids", [None, DEFAULT_DESKTOP_UIDS])
def test_no_range_of_its_own_no_process_ended_by_uid(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]], uids: str | None) -> None:
    """Without a range, or with the default one (the demo's, which another gateway on this
    machine may share), nothing is ended by uid."""
    config = {"hostnames": ["localhost"], "public_url": "https://localhost:8443",
              "database": f"postgresql://staffroom@127.0.0.1:{free_port()}/staffroom"}
    if uids is not None:
        config["desktop_uids"] = uids
    (tmp_path / "gateway.json").write_text(json.dumps(config))
    first = int(DEFAULT_DESKTOP_UIDS.split("-")[0])
    sleepers.append(_as_uid(first))
    assert end_desktops_of(tmp_path) == []
    assert sleepers[0].poll() is None
