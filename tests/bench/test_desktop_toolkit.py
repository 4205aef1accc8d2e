"""The bench's desktop starts GTK apps as a teacher's desktop does (gateway.workspace.
toolkit_defaults): no animations unless a run asks for them (--desktop-animations)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bench.desktop import Desktop, DesktopConfig

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvnc") and shutil.which("gtk-query-settings")),
    reason="needs TigerVNC's Xvnc and GTK's gtk-query-settings (.ci/apt-packages.txt)")


@pytest.mark.parametrize(("animations", "shown"), [(False, "FALSE"), (True, "TRUE")])
def test_gtk_animations_follow_the_desktop_config(animations: bool, shown: str) -> None:
    desktop = Desktop(DesktopConfig(width=320, height=240, animations=animations))
    try:
        desktop.start()
        for name, value in (("enable-animations", shown), ("cursor-blink", "FALSE")):
            done = subprocess.run(["gtk-query-settings", name], env=desktop.env,
                                  capture_output=True, text=True, timeout=20, check=False)
            assert done.returncode == 0, done.stderr
            assert f"gtk-{name}: {value}" in done.stdout.splitlines()[0]
    finally:
        desktop.stop()
