"""Kineto events -> columns, for one piece of a trace's event array at a time.

msgspec decodes straight into typed structs, which skips building a dict per event
(and, with gc=False, the garbage collector's work): several times faster than orjson
or json. Event args are decoded into a small struct holding only the fields the
analyses read; the rest ('Input Dims', 'Call stack', ...) is skipped unread.

A piece's columns hold its own interned names and string ids (`Piece`); `merge`
renumbers them into one table, so pieces can be decoded in any process, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

import msgspec
import numpy as np

_I64 = 2 ** 63


class _Args(msgspec.Struct, gc=False):  # no cycles: untracked by the GC (3x faster decode)
    correlation: int | str | None = -1
    external_id: int | str | None = msgspec.field(default=-1, name="External id")
    python_id: int | None = msgspec.field(default=-1, name="Python id")
    python_parent_id: int | None = msgspec.field(default=-1, name="Python parent id")
    stream: int | str | None = -1
    bytes: int | float | None = -1
    name: str | None = None  # thread/process name for 'M' events


_NO_ARGS = _Args()


class Event(msgspec.Struct, gc=False):
    ph: str = ""
    name: str = ""
    cat: str = ""
    pid: int | str = 0
    tid: int | str = 0
    ts: float = 0.0
    dur: float = 0.0
    args: _Args | None = None


class TraceFile(msgspec.Struct, gc=False):
    traceEvents: list[Event] = []
    deviceProperties: list[dict] | None = None
    baseTimeNanoseconds: int | None = None
    distributedInfo: dict | None = None
    with_stack: int | None = None
    record_shapes: int | None = None
    schemaVersion: int | None = None


whole_decoder = msgspec.json.Decoder(TraceFile)
_piece_decoder = msgspec.json.Decoder(list[Event])

INT_COLUMNS = ("corr", "ext", "py_id", "py_parent", "stream", "nbytes")
_ARG_OF = {"corr": "correlation", "ext": "external_id", "py_id": "python_id",
           "py_parent": "python_parent_id", "stream": "stream", "nbytes": "bytes"}


def _int_or(v, default=-1) -> int:
    """v as an int64 column value; default where it is absent, not a number, or out of range."""
    if v is None:
        return default
    if not isinstance(v, int):
        try:
            v = int(v)
        except (TypeError, ValueError, OverflowError):  # "abc", NaN, inf
            return default
    return v if -_I64 <= v < _I64 else default


BLOCK = 8192


def _blocks(values: list, odd_block) -> np.ndarray:
    """values as an int64 column: converted in C a block at a time; a block holding
    anything else (a null, a string, 2**64: rare) goes to odd_block(start, block, out)."""
    n = len(values)
    out = np.empty(n, dtype=np.int64)
    for s in range(0, n, BLOCK):
        blk = values[s:s + BLOCK]
        try:
            out[s:s + len(blk)] = np.fromiter(blk, dtype=np.int64, count=len(blk))
        except (TypeError, ValueError, OverflowError):
            odd_block(s, blk, out)
    return out


def _int_column(items: list, field: str) -> np.ndarray:
    def odd_block(s, blk, out):
        out[s:s + len(blk)] = [_int_or(v) for v in blk]
    return _blocks(list(map(attrgetter(field), items)), odd_block)


def _id_column(items: list, field: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """pid/tid: ints as they are; strings (and ints out of range) interned per piece. Returns
    the column (a string's entry holds its index in the piece's list), the positions of the
    strings (None: there are none) and the list."""
    local: dict[str, int] = {}
    odd: list[int] = []

    def odd_block(s, blk, out):
        for j, v in enumerate(blk):
            if v.__class__ is int and -_I64 <= v < _I64:
                out[s + j] = v
            else:
                out[s + j] = local.setdefault(str(v), len(local))
                odd.append(s + j)
    col = _blocks(list(map(attrgetter(field), items)), odd_block)
    return col, (np.array(odd, dtype=np.int64) if odd else None), list(local)


@dataclass
class Piece:
    """One piece's complete ('X') events as columns, sorted as Trace is, with its own tables."""

    names: list[str]
    cats: list[str]
    name_id: np.ndarray
    cat_id: np.ndarray
    ts: np.ndarray
    dur: np.ndarray
    ids: dict  # "pid"/"tid" -> (column, string positions or None, strings)
    ints: dict  # INT_COLUMNS -> int64 column
    thread_names: list  # (pid, tid, name) of the 'M' thread_name events, pid/tid as written


def columns(events: list[Event]) -> Piece:
    # map/attrgetter and fromiter: one C loop per column, no intermediate lists
    x = [e for e in events if e.ph == "X"]
    n = len(x)
    names: dict[str, int] = {}
    cats: dict[str, int] = {}
    nd, cd = names.setdefault, cats.setdefault
    name_id = np.array([nd(e.name, len(names)) for e in x], dtype=np.int32)
    cat_id = np.array([cd(e.cat, len(cats)) for e in x], dtype=np.int32)
    ts = np.fromiter(map(attrgetter("ts"), x), dtype=np.float64, count=n)
    dur = np.fromiter(map(attrgetter("dur"), x), dtype=np.float64, count=n)
    np.maximum(dur, 0.0, out=dur)
    ids = {"pid": _id_column(x, "pid"), "tid": _id_column(x, "tid")}
    args = [a if a is not None else _NO_ARGS for a in map(attrgetter("args"), x)]
    ints = {col: _int_column(args, field) for col, field in _ARG_OF.items()}
    thread_names = [(e.pid, e.tid, e.args.name) for e in events
                    if e.ph == "M" and e.name == "thread_name" and e.args is not None and e.args.name]
    # Sorted by start time (ties: longer first, so parents precede children), here where
    # pieces sort in parallel: merge() then only merges sorted runs.
    order = np.lexsort((-dur, ts))
    inv = np.empty(n, np.int64)
    inv[order] = np.arange(n)
    ids = {k: (narrow(col[order]), None if pos is None else inv[pos], strs) for k, (col, pos, strs) in ids.items()}
    return Piece(list(names), list(cats), name_id[order], cat_id[order], ts[order], dur[order], ids,
                 {k: narrow(v[order]) for k, v in ints.items()}, thread_names)


_I32 = np.iinfo(np.int32)


def narrow(col: np.ndarray) -> np.ndarray:
    """An int64 column as int32 where its values fit (ids, correlations, streams mostly do): half
    the memory of a large trace's columns. Pieces that do not fit stay int64; merging widens."""
    if len(col) and col.dtype == np.int64 and _I32.min <= int(col.min()) and int(col.max()) <= _I32.max:
        return col.astype(np.int32)
    return col


def decode_piece(piece: bytes | bytearray) -> Piece:
    """Columns of a JSON array of events (msgspec errors propagate)."""
    return columns(_piece_decoder.decode(piece))
