"""The production HAProxy config shipped in packaging/ is one Debian's HAProxy 2.6 accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_passes_haproxy_check(tmp_path: Path) -> None:
    text = (ROOT / "packaging" / "haproxy" / "staffroom.cfg").read_text()
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(ca), "-subj", "/CN=test CA", "-days", "1"],
                   check=True, capture_output=True)
    config = tmp_path / "haproxy.cfg"
    config.write_text(text.replace("/etc/haproxy/staffroom-ca.pem", str(ca))
                      .replace("/run/haproxy/admin.sock", str(tmp_path / "admin.sock")))
    check = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", str(config)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "mode tcp" in text and "check-ssl verify required" in text
