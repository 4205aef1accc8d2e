"""The text the bench's workloads type and show: a school letter (``PARAGRAPH``), and long
office-looking documents made from it (``write_document``)."""

from __future__ import annotations

from pathlib import Path

PARAGRAPH = (
    "Dear parents and guardians, the autumn sports day will take place on Saturday the "
    "twelfth. Pupils should arrive by half past eight in their gym clothes and bring a water "
    "bottle, a hat and a packed lunch. If it rains, the event moves to the following Monday "
    "and lessons run as usual. Please return the attached form to the class teacher by "
    "Wednesday. Thank you for your continued support.\n"
)


def write_document(path: Path, lines: int) -> Path:
    """A long, deterministic, office-looking text document."""
    words = PARAGRAPH.split()
    with path.open("w") as f:
        for n in range(lines):
            start = (n * 7) % len(words)
            f.write(f"{n + 1:5d}  " + " ".join((words * 2)[start:start + 9 + n % 5]) + "\n")
    return path
