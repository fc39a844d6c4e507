"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os


def write_atomic(path: str, data: bytes, mode: int | None = None) -> None:
    """Write data to a temporary file beside path, then rename it over path.

    A crash at any moment leaves path as it was or as data, never half of it. Where the
    system allows (Linux, O_TMPFILE), the data goes first into an unnamed file that gets its
    temporary name only once complete, so a crash mid-write leaves no half-written file
    behind either (a named temporary one would outlive a killed process: no `finally` runs).
    """
    # Through a symlink, as editors do: renaming over the link would replace it with a
    # regular file and leave the file it points to as it was.
    path = os.path.realpath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        if not _write_unnamed(path, tmp, data, mode):
            with open(tmp, "wb") as f:
                _fill(f.fileno(), data, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _fill(fd: int, data: bytes, mode: int | None) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if mode is not None:
        os.fchmod(fd, mode)
    os.fsync(fd)


def _write_unnamed(path: str, tmp: str, data: bytes, mode: int | None) -> bool:
    """Write data into an unnamed file in path's folder and link it as tmp once complete.

    False where that is not supported (no O_TMPFILE, a file system without it, no /proc):
    the caller then writes tmp by name, and its error, if any, is the one to report.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return False
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), flag | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError:
        return False
    try:
        _fill(fd, data, mode)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp)
        except OSError:
            return False
        return True
    finally:
        os.close(fd)
