"""The one way trainprof writes a file, and the one way it opens one to read.

A run directory is passed around (a colleague's run, a CI artifact): any name in it may be a
symbolic link or a FIFO planted there. So an output is never written through a link nor
over anything but a regular file, and an input is read only once it is known to be a
regular file (a FIFO would block forever, /dev/zero never ends).
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import TrainprofError


class RefusedPath(TrainprofError):
    """An output where a symbolic link or something other than a regular file stands."""

    exit_code = 1


class ChangedMeanwhile(TrainprofError):
    """The file was saved by another program between reading it and replacing it."""

    exit_code = 2


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def write_atomic(path: str, data: bytes, mode: int | None = None, unchanged: bytes | None = None) -> None:
    """Write data to a temporary file in path's folder, then rename it over path.

    Refuses (RefusedPath) where path is a symbolic link or not a regular file: the folder is
    opened once and every step is relative to it, the temporary file is created with
    O_EXCL|O_NOFOLLOW, and the rename replaces the directory entry itself, so nothing is ever
    written through a link, even one planted between the check and the rename. (`apply`
    resolves a user's linked source itself, within the project, and writes the real file.)

    unchanged: what path must still hold, checked right before the rename (ChangedMeanwhile
    otherwise): an editor's save since it was read is never replaced.

    A crash at any moment leaves path as it was or as data, never half of it. Where the
    system allows (Linux, O_TMPFILE), the data goes first into an unnamed file that gets its
    temporary name only once complete, so a crash mid-write leaves no half-written file
    behind either (a named temporary one would outlive a killed process: no `finally` runs).
    """
    folder, name = os.path.split(os.path.abspath(path))
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    tmp = f"{name}.tmp{os.getpid()}"
    try:
        _refuse_odd(dfd, name, path)
        if not _write_unnamed(dfd, tmp, data, mode):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                         dir_fd=dfd)
            try:
                _fill(fd, data, mode)
            finally:
                os.close(fd)
        _refuse_odd(dfd, name, path)  # once more: planted while the data was written
        if unchanged is not None and _content(dfd, name) != unchanged:
            raise ChangedMeanwhile(f"{path} was saved by another program while trainprof wrote it: "
                                   "left as that program saved it")
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    finally:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except FileNotFoundError:
            pass
        finally:
            os.close(dfd)


def _refuse_odd(dfd: int, name: str, path: str) -> None:
    try:
        st = os.lstat(name, dir_fd=dfd)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise RefusedPath(f"{path} is {_kind(st.st_mode)}: not written (trainprof writes only regular files, "
                          "never through a link)")


def _content(dfd: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _fill(fd: int, data: bytes, mode: int | None) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if mode is not None:
        os.fchmod(fd, mode)
    os.fsync(fd)


def _write_unnamed(dfd: int, tmp: str, data: bytes, mode: int | None) -> bool:
    """Write data into an unnamed file in the folder dfd and link it as tmp once complete.

    False where that is not supported (no O_TMPFILE, a file system without it, no /proc):
    the caller then writes tmp by name, and its error, if any, is the one to report.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return False
    try:
        fd = os.open(".", flag | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=dfd)
    except OSError:
        return False
    try:
        _fill(fd, data, mode)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, dst_dir_fd=dfd)
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


def open_regular(path: str, limit: int | None = None):
    """path opened for reading in binary, once it is known to be a regular file (after
    resolving links); OSError otherwise, with a strerror that says what it is. limit: a
    larger file is refused too (the strerror says the limit).

    Opened non-blocking, so a FIFO cannot hold the open; the check is on the opened file, so
    nothing can be swapped in between."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file", path)
        if limit is not None and st.st_size > limit:
            raise OSError(errno.EFBIG, f"{st.st_size / 1e6:.0f} MB, over the {limit >> 20} MiB trainprof reads",
                          path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, limit: int | None = None) -> bytes:
    """The whole of a regular file (see open_regular); a file that grows past limit while
    read is refused as well."""
    with open_regular(path, limit) as f:
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise OSError(errno.EFBIG, f"over the {limit >> 20} MiB trainprof reads", path)
    return data
