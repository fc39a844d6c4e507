"""Which source files an analysis may read into its outputs (excerpts, diffs, the hashes
`apply` checks). A run directory is passed around and run.json is its word: a path it names is
read only under the run's own folder or --script's, or where it is the very file the run ran."""

from __future__ import annotations

import os

from .errors import TrainprofError


def why_not_read(path: str, roots) -> str | None:
    """None where a source may be read for a report: a .py file under one of roots (links
    resolved); else why not."""
    if not path.endswith(".py"):
        return "not a .py file"
    real = os.path.realpath(path)
    if not any(os.path.commonpath([real, r]) == r for r in roots):
        return "outside the run directory and the --script folder"
    return None


MAX_SOURCE_BYTES = 16 << 20  # a script larger than this is not hashed to be recognised


def ran_this(path: str, recorded) -> bool:
    """Whether path is a .py file (regular, of a source's size) whose sha256 is `recorded`."""
    from .capture.runner import sha256

    if not isinstance(recorded, str) or not path.endswith(".py"):
        return False
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_SOURCE_BYTES:
            return False
        return sha256(path) == recorded
    except (OSError, TrainprofError):
        return False


def source_roots(run_dir: str | None, script: str | None) -> tuple[str, ...]:
    return tuple(os.path.realpath(d) for d in (run_dir, os.path.dirname(os.path.abspath(script)) if script else None)
                 if d)
