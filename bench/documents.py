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


MARKS_TITLE = "Marks 3-2"  # the page's title: its window's name


def write_marks_page(path: Path, pupils: int = 600) -> Path:
    """A long, deterministic page of the school-affairs kind: ``pupils`` rows of marks per
    subject, with the term and a note, striped, as a web suite shows them."""
    subjects = ("Japanese", "Mathematics", "Science", "Social studies", "English", "Music")
    words = PARAGRAPH.split()
    rows = []
    for n in range(pupils):
        marks = "".join(f"<td>{(n * 37 + k * 11) % 61 + 40}</td>" for k in range(len(subjects)))
        note = " ".join(words[(n * 5) % 40:(n * 5) % 40 + 6])
        rows.append(f"<tr><td>{n + 1}</td><td>Pupil {n + 1:03d}</td><td>Term {n % 3 + 1}</td>"
                    f"{marks}<td>{note}</td></tr>")
    head = "".join(f"<th>{s}</th>" for s in ("No.", "Name", "Term", *subjects, "Note"))
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{MARKS_TITLE}</title><style>"
        "body{font:15px sans-serif;margin:16px}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #bbb;padding:3px 8px}tr:nth-child(even){background:#eef3fa}"
        f"</style></head><body><h1>{MARKS_TITLE}</h1><table><tr>{head}</tr>{''.join(rows)}"
        "</table></body></html>")
    return path
