"""One machine needs no PostgreSQL: with psycopg made unimportable, `staffroom init` and the
gateway's start (SQLite state, file audit log, polled node bus) still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
for name in ("psycopg", "psycopg_pool", "psycopg_binary"):
    sys.modules[name] = None  # `import psycopg` now raises ImportError
from pathlib import Path
from gateway.setup import init_data_dir
from gateway.app import open_context
from gateway.cluster.open import open_bus
root = Path(sys.argv[1])
init_data_dir(root, ["localhost"])
context = open_context(root, node="solo")
print(type(context.store).__name__, type(context.audit).__name__,
      type(open_bus(context.data, context.config, "solo")).__name__)
"""


def test_one_machine_runs_without_psycopg(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["SqliteStore", "AuditLog", "SqliteBus"]
