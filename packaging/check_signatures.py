#!/usr/bin/env python3
"""Refuse a Windows payload with any unsigned PE file: `osslsigncode verify` on every EXE, DLL,
PYD (any file that is a PE image, whatever its name) and MSI in a folder.

    python3 packaging/check_signatures.py FOLDER [--ca BOARD-CA-CHAIN.pem]

Exit 0 when every one verifies against the CA file (default: the system's trust store), 1 with
one line per refused file otherwise, 2 on a usage error. Files are read, never run; a file that
is not PE or MSI is skipped. osslsigncode is told not to fetch CRLs (-ignore-cdp): this is a
build gate run offline; Windows checks revocation when the teacher runs the program.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

MSI_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # OLE compound file, as MSI packages are
MAX_HEADER = 4096


def is_signable(path: Path) -> bool:
    """A PE image (MZ, then "PE\\0\\0" at e_lfanew) or an MSI (OLE file named .msi)."""
    try:
        with path.open("rb") as f:
            head = f.read(MAX_HEADER)
    except OSError:
        return False
    if head.startswith(MSI_MAGIC):
        return path.suffix.lower() == ".msi"
    if len(head) < 0x40 or not head.startswith(b"MZ"):
        return False
    offset = int.from_bytes(head[0x3C:0x40], "little")
    return head[offset:offset + 4] == b"PE\0\0" if offset + 4 <= len(head) else False


def signables(folder: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(folder):
        for name in sorted(files):
            path = Path(dirpath) / name
            if not path.is_symlink() and is_signable(path):
                yield path


@functools.cache
def _ignore_cdp() -> list[str]:
    """`-ignore-cdp` where osslsigncode has it (2.6 and later fetch CRLs from the certificate's
    distribution points unless told not to; Debian 12's 2.5 never fetches and has no such flag)."""
    out = subprocess.run(["osslsigncode", "--help"], capture_output=True, text=True, timeout=30,
                         check=False)
    return ["-ignore-cdp"] if "-ignore-cdp" in out.stdout + out.stderr else []


def verify(path: Path, ca: Path | None) -> tuple[bool, str]:
    cmd = ["osslsigncode", "verify", *_ignore_cdp(), "-in", str(path)]
    if ca is not None:
        cmd += ["-CAfile", str(ca)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    text = out.stdout + out.stderr
    if out.returncode == 0 and "Signature verification: ok" in text:
        return True, "signed"
    if "No signature found" in text or "does not have a signature" in text.lower():
        return False, "not signed"
    lines = [line.strip() for line in text.splitlines() if "fail" in line.lower()
             or "mismatch" in line.lower() or "error" in line.lower()]
    return False, "signature does not verify" + (f" ({lines[0]})" if lines else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ca", type=Path,
                        help="CA certificates (PEM) the signatures must chain to")
    args = parser.parse_args(argv)
    if shutil.which("osslsigncode") is None:
        print("check-signatures: osslsigncode is not installed: apt-get install osslsigncode.",
              file=sys.stderr)
        return 2
    if not args.folder.is_dir():
        print(f"check-signatures: {args.folder} is not a folder.", file=sys.stderr)
        return 2
    refused, total = [], 0
    for path in signables(args.folder):
        total += 1
        ok, why = verify(path, args.ca)
        if not ok:
            refused.append(f"{path.relative_to(args.folder)}: {why}")
    if total == 0:
        print(f"check-signatures: no EXE, DLL, PYD or MSI file in {args.folder}.",
              file=sys.stderr)
        return 1
    for line in refused:
        print(f"REFUSED {line}")
    if refused:
        print(f"check-signatures: {len(refused)} of {total} Windows files are not validly "
              "signed: sign them with the board's code-signing key (docs/AGENT-PACKAGING.md) "
              "and check again.", file=sys.stderr)
        return 1
    print(f"All {total} Windows files are signed and verify.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
