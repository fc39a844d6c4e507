"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os


def write_atomic(path: str, data: bytes, mode: int | None = None) -> None:
    """Write data to a temporary file beside path, then rename it over path."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
