"""The viewer's one-time link, handed to the browser in a private local file (as Jupyter does)
rather than on the browser's command line, where every local user could read it in /proc.

Attacker-controlled here: nothing — but other accounts on this PC are not trusted: the file is
created 0600 inside a fresh 0700 directory (O_EXCL, no window with looser modes) and removed
when the agent ends. It only redirects the browser to the loopback viewer URL.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from pathlib import Path

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={attr}">
<title>Staffroom</title></head>
<body><script>window.location.replace({js});</script>
<p>Opening your school desktop… If nothing happens, <a href="{attr}">click here</a>.</p>
</body></html>
"""


def write_launch_file(url: str, parent: Path | None = None) -> Path:
    """A new 0600 HTML file that sends the browser to `url`; remove it with remove_launch_file."""
    base = parent or _runtime_dir()
    directory = Path(tempfile.mkdtemp(prefix="staffroom-viewer-", dir=base))  # 0700
    path = directory / "open-viewer.html"
    attr = html.escape(url, quote=True)
    data = _PAGE.format(attr=attr, js=json.dumps(url).replace("<", "\\u003c")).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def remove_launch_file(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


def _runtime_dir() -> Path | None:
    """$XDG_RUNTIME_DIR (a per-user 0700 directory) when there is one, else the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir() and os.access(runtime, os.W_OK):
        return Path(runtime)
    return None
