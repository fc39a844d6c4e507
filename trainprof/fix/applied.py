"""applied.json: what `apply` wrote from one analysis, so that fixes chain.

    {"<path>": {"sha256": "<the file as apply left it>", "fixes": ["item-sync", ...],
                "backup": "<the backup holding the file as analysed>"}}

A second apply of the same analysis finds the file as the first left it (its sha256): the
fixes already made are said so, and the others apply to the patched file, at the analysed
lines carried across the earlier edit -- where those lines are unchanged; a line an earlier
fix rewrote is left, and said so. (An older applied.json held the sha256 alone: every fix
then counts as made.)
"""

from __future__ import annotations

import difflib
import hashlib
import os

import msgspec

from ..capture import rundir
from ..files import read_regular

APPLIED_JSON = "applied.json"  # in the run directory


class Entry(msgspec.Struct):
    sha256: str
    fixes: list[str] | None = None  # None: an older record, which fixes is not known
    backup: str | None = None


def read(run_dir: str) -> dict[str, Entry]:
    doc = rundir.read_json(os.path.join(run_dir, APPLIED_JSON), dict[str, str | Entry]) or {}
    return {p: Entry(v) if isinstance(v, str) else msgspec.convert(v, Entry) for p, v in doc.items()}


def record(run_dir: str, entries: dict[str, Entry]) -> bytes:
    """applied.json's new content: what was there, with entries over it."""
    now = read(run_dir)
    now.update(entries)
    return msgspec.json.format(msgspec.json.encode(now), indent=1)


def original(entry: Entry, analysed_sha: str) -> str | None:
    """The file as analysed, from the backup the first apply made (None: gone or changed)."""
    if not entry.backup:
        return None
    try:
        data = read_regular(entry.backup)
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != analysed_sha:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def carried(before: str, after: str, lines: dict[int, dict]) -> tuple[dict[int, dict], list[int]]:
    """(the analysed lines' params at their lines in `after`, the lines an earlier edit changed)."""
    sm = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    same = {}
    for tag, i1, i2, j1, _ in sm.get_opcodes():
        if tag == "equal":
            same.update({i1 + k + 1: j1 + k + 1 for k in range(i2 - i1)})
    return {same[ln]: p for ln, p in lines.items() if ln in same}, sorted(ln for ln in lines if ln not in same)
