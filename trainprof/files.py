"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os


def write_atomic(path: str, data: bytes) -> None:
    """Write data to a temporary file beside path, then rename it over path."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
