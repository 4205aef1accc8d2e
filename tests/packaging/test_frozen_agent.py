"""The frozen agent where no Python is installed: a Debian minbase root (debootstrap), the bundle
in /opt, SoftHSM2's library copied in as a driver installer would put it. In that root the bundle
answers --version, checks posture and the key, connects to a real gateway with the key, and
serves the viewer page; and its module list holds no gateway module but gateway.wire.

Slow (one PyInstaller build per session, ~1 min; the root is cached under /var/cache)."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.agent import freshclam_conf, viewer_url_from
from tests.fixtures.gateway import World, running_world
from tests.fixtures.packaging import BUNDLE_NAME, NoPythonRoot, libs_of
from tests.fixtures.softhsm import softhsm_module

pytestmark = pytest.mark.slow
AGENT = f"/opt/{BUNDLE_NAME}/{BUNDLE_NAME}"
PATH = "/usr/local/bin:/usr/bin:/bin"


def bundle_modules(bundle: Path) -> list[str]:
    """Every module frozen into the bundle, read from its archive by PyInstaller's viewer."""
    from tests.fixtures.packaging import CACHE

    viewer = CACHE / "agent-build-venv" / "bin" / "pyi-archive_viewer"
    out = subprocess.run([str(viewer), "-r", "-b", str(bundle / BUNDLE_NAME)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.startswith(" ")]


def test_bundle_holds_the_agent_and_gateway_wire_only(agent_bundle: Path) -> None:
    modules = bundle_modules(agent_bundle)
    assert {"agent.main", "agent.connect", "agent.token", "agent.posture.windows",
            "gateway.wire.login", "gateway.wire.posture", "pkcs11", "aiohttp",
            "websockets"} <= set(modules)
    ours = [m for m in modules if m.split(".")[0] == "gateway"]
    assert ours and all(m in ("gateway", "gateway.wire") or m.startswith("gateway.wire.")
                        for m in ours), ours
    assert not [m for m in modules if m.startswith(("agent.operator", "PIL", "qrcode", "pyotp"))]
    internal = agent_bundle / "_internal"
    assert (internal / "viewer" / "index.html").is_file()
    assert (internal / "agent" / "pkcs11_drivers.toml").is_file()


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_world(tmp_path) as w:
        yield w


def test_frozen_agent_in_a_root_without_python(agent_bundle: Path, minbase_root: Path,
                                                world: World, tmp_path: Path) -> None:
    assert not list((minbase_root / "usr" / "bin").glob("python*"))
    assert not (minbase_root / "usr" / "lib" / "python3").exists()
    teacher = world.add_teacher("t.frozen", name="凍結 花子")
    token = teacher.token
    conf = freshclam_conf(tmp_path, 0.5)
    # The installed config next to the program, as the MSI writes it: no module named, so the
    # agent must find SoftHSM2 through its probe list.
    config = (f'gateway = "{world.gateway.url}"\nca = "{world.gateway.ca}"\n'
              f'token_label = "{token.label}"\n')  # type: ignore[attr-defined]
    root = NoPythonRoot(minbase_root, agent_bundle, tmp_path / "roots", (tmp_path,),
                        host_libs=libs_of(softhsm_module()),
                        files=((f"/opt/{BUNDLE_NAME}/staffroom-agent.toml", config),))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8",
           "SOFTHSM2_CONF": str(token.conf),  # type: ignore[attr-defined]
           "STAFFROOM_FRESHCLAM_CONF": str(conf),
           # The launch file lands in a folder the root shares with the host, to be read here.
           "XDG_RUNTIME_DIR": str(runtime)}

    done = root.run(["/bin/sh", "-c", "command -v python3 python || echo no-python"], env)
    assert done.stdout.strip() == "no-python", done.stdout + done.stderr
    done = root.run([AGENT, "--version"], env)
    assert done.returncode == 0 and "staffroom-agent 0.1.0 (frozen" in done.stdout, done.stderr

    done = root.run([AGENT, "check"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✔ Antivirus" in done.stdout and "✔ Antivirus definitions" in done.stdout
    assert "/usr/lib/softhsm/libsofthsm2.so (found the SoftHSM2 driver)" in done.stdout
    assert "t.frozen" in done.stdout  # the key certificate's subject

    agent = root.popen([AGENT, "connect", "--no-browser", "--pin-file", str(teacher.pin_file),
                        "--password-file", str(teacher.password_file)], env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert agent.stdout is not None
        line = agent.stdout.readline()
        assert line.startswith(f"Viewer: {runtime}/"), line + _drain(agent)
        url = viewer_url_from(Path(line.removeprefix("Viewer: ").strip()))
        assert url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(url, timeout=10) as page:
            html = page.read().decode("utf-8")
            assert page.status == 200 and "<canvas" in html
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    finally:
        err = _drain(agent)
    assert "Key driver: /usr/lib/softhsm/libsofthsm2.so (found the SoftHSM2 driver)." in err
    assert "Connected as 凍結 花子 (t.frozen" in err


def _drain(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""
