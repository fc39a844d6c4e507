"""Read a Kineto trace (.json or .json.gz) into the columnar Trace model.

The file is streamed: gunzipped chunk by chunk, cut into pieces of whole events
(split.py), each piece decoded into columns (decode.py) -- in worker processes when
the trace is large and the machine has cores to spare -- and the pieces merged. The
JSON never sits in memory whole, so peak memory is about the columns' size, and
traces larger than memory load. A file the splitter cannot read is decoded whole,
which also gives the precise error for a damaged one.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import zlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import msgspec
import numpy as np

from ..errors import TraceError
from ..files import open_regular
from .decode import _I64, INT_COLUMNS, Piece, TraceFile, columns, decode_piece, narrow, whole_decoder
from .model import Trace
from .split import NotSplittable, Splitter, TooLarge

CHUNK = 8 << 20  # bytes read (and gunzipped) at a time
PIECE = 8 << 20  # JSON bytes per piece (a worker holds about 6x that in structs while decoding it)
PARALLEL_MIN = 256 << 20  # smaller traces decode in this process: workers cost more (memory, start) than they save
MAX_WORKERS = 8
# Memory stays bounded whatever a file holds (a run directory is passed around):
GZ_RATIO = 64  # a .gz may inflate to this many times its size (real traces: 10-15x)...
GZ_FLOOR = 256 << 20  # ...or to this, whichever is more; past it, a gzip bomb is refused
WHOLE_MAX = 256 << 20  # JSON decoded whole (the fallback for a file the splitter cannot cut), at most


class _Whole(Exception):
    """Decode the whole document instead (the streamed path could not)."""


def load_trace(path: str | os.PathLike, progress=None, workers: int | None = None) -> Trace:
    """progress(phase, done, total), if given, hears of each chunk read and each phase.
    workers: processes decoding pieces (default: $TRAINPROF_JOBS, else one per core up to 8, for
    traces of 256 MB of JSON or more; 1: all in this process)."""
    path = os.fspath(path)
    try:
        return _load_streamed(path, progress, workers)
    except _Whole:
        return _load_whole(path, progress)


def _open(path: str):
    """(size, file): a regular file only -- a FIFO would block the read forever."""
    try:
        f = open_regular(path)
        return os.fstat(f.fileno()).st_size, f
    except FileNotFoundError:
        raise TraceError(f"trace not found: {path}") from None
    except IsADirectoryError:
        raise TraceError(f"cannot read trace {path}: it is a directory") from None
    except OSError as e:
        raise TraceError(f"cannot read trace {path}: {e.strerror}") from None


def _sniff(f, size: int) -> tuple[bool, int]:
    """Whether the file is gzipped, and the JSON size its trailer gives (the last member's, mod
    2**32; 0 if not gzipped). The file is left at its start."""
    gz = f.read(2) == b"\x1f\x8b"
    isize = 0
    if gz:
        f.seek(max(size - 4, 0))
        isize = int.from_bytes(f.read(4), "little")
    f.seek(0)
    return gz, isize


def _pool(json_bytes: int, workers: int | None) -> tuple[ProcessPoolExecutor | None, int]:
    """The worker processes to decode pieces in, and how many (None, 1: decode in this process)."""
    if workers is None and os.environ.get("TRAINPROF_JOBS", "").strip().isdigit():
        workers = int(os.environ["TRAINPROF_JOBS"])
    n = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
    if n < 2 or (workers is None and json_bytes < PARALLEL_MIN):
        return None, 1
    # fork: the workers start in milliseconds and need nothing re-imported. Not from a
    # process with other threads running (a forked lock could be held).
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return None, 1
    return ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork")), n


def _load_streamed(path: str, progress, workers: int | None) -> Trace:
    size, f = _open(path)
    with f:
        gz, isize = _sniff(f, size)
        pool, n_workers = _pool(max(size, isize), workers)
        sp = Splitter(PIECE)
        done: list[Piece] = []
        pending: deque = deque()
        limit = 2 * n_workers  # pieces in flight: memory stays bounded

        def submit(piece):
            if pool is None:
                done.append(_or_whole(decode_piece, piece))
                return
            pending.append(pool.submit(decode_piece, piece))
            while len(pending) > limit:  # bounded: the reader waits for the decoders
                done.append(_or_whole(pending.popleft().result))

        try:
            try:
                for chunk in _stream(f, size, gz, progress, path):
                    for piece in sp.feed(chunk):
                        submit(piece)
                last, rest = sp.finish()
            except NotSplittable:
                raise _Whole from None
            while pending:
                done.append(_or_whole(pending.popleft().result))
            if last is not None:
                done.append(last)
        except BrokenProcessPool:  # a worker died (killed for memory?): once more, in this process
            return _load_streamed(path, progress, 1)
        except TooLarge as e:
            raise TraceError(f"{path}: not read: {e} (memory would grow without bound)") from None
        except RecursionError:  # msgspec's own depth limit: decoding it whole would meet it too
            raise TraceError(f"{path}: not a Kineto trace (nested too deeply)") from None
        finally:
            if pool is not None:
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
    if progress:
        progress("building", 0, 0)
    return merge(path, done, rest)


def _or_whole(call, *args) -> Piece:
    """call(*args); a piece that does not decode means: decode the whole document instead."""
    try:
        return call(*args)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise _Whole from None


def _stream(f, size: int, gz: bool, progress, path: str):
    """The file's JSON bytes, chunk by chunk (gunzipped if need be)."""
    mb = size / 1e6
    cap = max(GZ_FLOOR, GZ_RATIO * size)  # JSON bytes a .gz may give
    out = 0
    try:
        if not gz:
            read = 0
            while chunk := f.read(CHUNK):
                read += len(chunk)
                if progress:
                    progress("reading", read / 1e6, mb)
                yield chunk
            return
        read = 0
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fresh = True  # d has seen no input yet (a member may end exactly at the file's end)
        while chunk := f.read(CHUNK):
            read += len(chunk)
            while chunk:
                fresh = False
                data = d.decompress(chunk, CHUNK)  # at most CHUNK bytes out at a time: no large temporaries
                out += len(data)
                if out > cap:
                    raise TraceError(f"{path}: a gzip bomb? it inflates past {cap >> 20} MiB, more than "
                                     f"{GZ_RATIO} times its size (traces inflate 10-15x): not read")
                if data:
                    yield data
                chunk = d.unconsumed_tail
                if d.eof:  # another gzip member may follow
                    chunk = d.unused_data.lstrip(b"\x00")
                    d, fresh = zlib.decompressobj(16 + zlib.MAX_WBITS), True
            if progress:
                progress("reading", read / 1e6, mb)
        if not fresh:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
    except OSError as e:
        raise TraceError(f"cannot read trace {path}: {e.strerror or e}") from None
    except (EOFError, zlib.error) as e:
        raise TraceError(f"{path}: truncated or corrupt gzip ({e})") from None


def read_bytes(path: str, progress=None) -> bytes | bytearray:
    """The trace's JSON bytes, whole, gunzipped if need be. A gzip member's trailer gives its
    size: the buffer is allocated once, so a large trace never sits in memory twice."""
    size, f = _open(path)
    with f:
        gz, isize = _sniff(f, size)
        cap = size if not gz else isize if isize > size else 0  # a plausible size: allocate once, fill in place
        cap = min(cap, WHOLE_MAX)  # the trailer is the file's word, not a fact
        buf = bytearray(cap)
        pos = 0
        for data in _stream(f, size, gz, progress, path):
            if pos + len(data) > WHOLE_MAX:
                raise TraceError(f"{path}: not read: over {WHOLE_MAX >> 20} MiB of JSON that is not laid out as "
                                 "a Kineto trace (no event array to read piece by piece)")
            if pos + len(data) <= cap:
                buf[pos:pos + len(data)] = data
            else:
                if cap:  # the trailer's size was not the total (several members, or over 4 GB)
                    del buf[pos:]
                    cap = 0
                buf += data
            pos += len(data)
        if pos < len(buf):
            del buf[pos:]
        return buf


def _load_whole(path: str, progress) -> Trace:
    data = read_bytes(path, progress)
    if progress:
        progress("decoding", 0, 0)
    if not re.search(rb"\S", data):
        raise TraceError(f"{path}: empty trace file")
    try:
        doc = whole_decoder.decode(data)
    except RecursionError:
        raise TraceError(f"{path}: not a Kineto trace (nested too deeply)") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:  # msgspec raises the latter on some bad UTF-8
        doc = _without_lone_surrogates(data) if isinstance(e, msgspec.DecodeError) else None
        if doc is None:
            msg = str(e)
            if "truncated" in msg.lower() or "unexpected end" in msg.lower():
                raise TraceError(f"{path}: truncated JSON ({msg})") from None
            raise TraceError(f"{path}: not a Kineto trace ({msg})") from None
    del data
    if progress:
        progress("building", 0, 0)
    return merge(path, [columns(doc.traceEvents)], doc)


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _without_lone_surrogates(data) -> TraceFile | None:
    """msgspec refuses a lone UTF-16 surrogate escape (a name cut mid-character; it says
    "truncated"): decode again with every surrogate escape as U+FFFD, or None."""
    if not _SURROGATE.search(data):
        return None
    try:
        return whole_decoder.decode(_SURROGATE.sub(rb"\\ufffd", data))
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def merge(path: str, pieces: list[Piece], doc: TraceFile) -> Trace:
    """One Trace from the pieces' columns (in file order) and the document's metadata."""
    names: dict[str, int] = {}
    cats: dict[str, int] = {}
    strs: dict[str, int] = {}  # string pid/tid -> k, the id -1 - k

    def table(t: dict, local: list) -> np.ndarray:
        return np.array([t.setdefault(s, len(t)) for s in local], dtype=np.int32)

    def ids(col, pos, local):
        if pos is None:
            return col
        g = np.array([-1 - strs.setdefault(s, len(strs)) for s in local], dtype=np.int64)
        col = col.copy()
        col[pos] = g[col[pos]]
        return col

    # Column by column, each piece's part let go as soon as it is placed, each straight into its
    # sorted position: the pieces and the trace are never both whole in memory (a 10M-event
    # trace peaked at 2.95 GB when they were; malloc_trim gives the freed parts back).
    _trim()  # what decoding the pieces left free
    sizes = [len(p.ts) for p in pieces]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    ts = np.concatenate([_drop(p, "ts") for p in pieces]) if pieces else np.empty(0)
    dur = np.concatenate([_drop(p, "dur") for p in pieces]) if pieces else np.empty(0)
    _trim()
    # Each piece is sorted: a stable sort merges the runs in a few ms. Equal starts in
    # different pieces must still put the longer first (parents before children).
    order = np.argsort(ts, kind="stable")
    ts = ts[order]  # one column copied at a time
    dur = dur[order]
    if ((ts[1:] == ts[:-1]) & (dur[1:] > dur[:-1])).any():
        again = np.lexsort((-dur, ts))
        ts = ts[again]
        dur = dur[again]
        order = order[again]
    where = np.empty(n, np.int32 if n < 2 ** 31 else np.int64)  # each event's place in the trace
    where[order] = np.arange(n, dtype=where.dtype)
    del order

    def place(get, dtype) -> np.ndarray:
        parts = [get(p) for p in pieces]  # each piece gives its part up here
        dt = np.result_type(*parts) if parts else dtype
        out = np.empty(n, dt)
        for k, part in enumerate(parts):
            out[where[starts[k]:starts[k + 1]]] = part
            parts[k] = None
        _trim()
        return out

    cols = {"name_id": place(lambda p: table(names, p.names)[_drop(p, "name_id")], np.int32),
            "cat_id": place(lambda p: table(cats, p.cats)[_drop(p, "cat_id")], np.int32)}
    for key in ("pid", "tid"):
        cols[key] = narrow(place(lambda p: ids(*p.ids.pop(key)), np.int64))
    for c in INT_COLUMNS:
        cols[c] = narrow(place(lambda p: p.ints.pop(c), np.int64))
    del where

    def sid(v) -> int:
        if isinstance(v, int) and -_I64 <= v < _I64:
            return v
        return -1 - strs.setdefault(str(v), len(strs))

    thread_names = {(sid(p_), sid(t_)): name for p in pieces for p_, t_, name in p.thread_names}
    pieces.clear()  # the caller's list: nothing of the pieces outlives the merge
    meta = {
        "deviceProperties": doc.deviceProperties or [],
        "baseTimeNanoseconds": doc.baseTimeNanoseconds,
        "distributedInfo": doc.distributedInfo,
        "with_stack": bool(doc.with_stack),
        "record_shapes": bool(doc.record_shapes),
    }
    return Trace(path=path, names=list(names), cats=list(cats), ts=ts, dur=dur, meta=meta,
                 thread_names=thread_names, **cols)


def _trim() -> None:
    """Give the memory of the pieces' columns just freed back to the system: each is under
    glibc's mmap threshold, so it sits in the heap, which does not shrink by itself (the RSS of
    a 10M-event trace held both the pieces and the trace)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    try:
        import ctypes

        lib = ctypes.CDLL(None)
        return lib if hasattr(lib, "malloc_trim") else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


_LIBC = _libc()


def _drop(p: Piece, field: str) -> np.ndarray:
    """A piece's column, let go by the piece."""
    col = getattr(p, field)
    setattr(p, field, None)
    return col


