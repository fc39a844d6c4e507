"""Cut a trace's JSON, as it streams in, into pieces of whole events.

Kineto writes `{"schemaVersion": ..., ..., "traceEvents": [ {...}, {...}, ... ], "traceName": ...}`.
The splitter finds the event array, cuts it after an event's closing brace, and wraps
each piece in brackets, so each decodes on its own as a JSON array of events, in any
process. A cut is only a guess (a `}, {` can sit inside a string), but a guess that
is wrong leaves a piece that is not valid JSON, and the caller then decodes the whole
document instead: a piece that decodes is exactly the events the whole would give.
"""

from __future__ import annotations

import re

import msgspec

from .decode import Piece, TraceFile, decode_piece, whole_decoder

_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_BETWEEN = re.compile(rb"\}\s*,\s*(?=\{)")  # between two events
_END = re.compile(rb"\}\s*\]")  # the last event and the array's end
HEAD_MAX = 64 << 20  # metadata before the events, at most
EVENT_MAX = 64 << 20  # one event, or the blanks between two, at most (a real one is under 1 MB)
DENSE = 16  # JSON bytes per '{' in a full piece, at least (a Kineto event has ~100 a brace)
WINDOW = 1 << 16  # where the last cut is looked for first, from the buffer's end
END_TRIES = 8


class NotSplittable(Exception):
    """The bytes are not laid out as this reader expects (or not valid): decode the whole."""


class TooLarge(Exception):
    """The bytes would take unbounded memory (one giant event, a run of blanks, a flood of
    empty events): refused, not decoded whole."""


class Splitter:
    """feed() the bytes as they come, then finish(). The bytes are held as the chunks they
    came in, and a piece is joined from them in one copy."""

    def __init__(self, piece_bytes: int):
        self.piece = piece_bytes
        self.chunks: list = []
        self.have = 0
        self.head: bytes | None = None  # the document up to and including the array's '['

    def feed(self, data) -> list[bytes]:
        """Take the next bytes; return the pieces they complete."""
        if not data:
            return []
        if self.head is None:
            buf = b"".join(self.chunks) + data
            m = _KEY.search(buf)
            if m is None:
                if len(buf) > HEAD_MAX:
                    raise NotSplittable("no event array near the start")
                self.chunks = [buf]
                return []
            self.head, data = buf[:m.end()], buf[m.end():]
            self.chunks = []
        self.chunks.append(data)
        self.have += len(data)
        if self.have < self.piece:
            return []
        m = _last_cut(data)
        if m is None:  # no cut in this chunk: one long event; read on, up to a point
            if self.have > self.piece + EVENT_MAX:
                raise TooLarge(f"an event (or the blanks between two) longer than {EVENT_MAX >> 20} MiB")
            return []
        last = self.chunks.pop()
        with memoryview(last) as mv:
            piece = b"".join([b"[", *self.chunks, mv[:m.start() + 1], b"]"])
        rest = last[m.end():]
        self.chunks, self.have = [rest], len(rest)
        if piece.count(b"{") * DENSE > len(piece):  # millions of `{},`: columns many times the JSON's size
            raise TooLarge(f"events of under {DENSE} bytes each, by the million: not a Kineto trace")
        return [piece]

    def finish(self) -> tuple[Piece | None, TraceFile]:
        """At the end of the input: the last piece, decoded (None if the array ended with the
        last cut), and the document without its events. The array's end is the `}]` where both
        the last piece and the rest decode: the parser is then inside the array, after an
        event, at its closing bracket -- the end, whatever the strings around it hold."""
        if self.head is None:
            raise NotSplittable("no event array")
        buf = b"".join(self.chunks)
        self.chunks = []
        rest = buf.lstrip()
        if rest.startswith(b"]"):  # an empty array
            return None, self._rest(rest[1:])
        ends = list(_END.finditer(buf))
        for m in reversed(ends[-END_TRIES:]):  # the last `}]`, but in odd files
            try:
                doc = self._rest(buf[m.end():])
                last = decode_piece(b"".join([b"[", memoryview(buf)[:m.start() + 1], b"]"]))
            except (NotSplittable, msgspec.DecodeError, UnicodeDecodeError):
                continue
            return last, doc
        raise NotSplittable("the event array does not end")

    def _rest(self, tail: bytes) -> TraceFile:
        try:
            doc = whole_decoder.decode(self.head + b"]" + tail)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise NotSplittable(str(e)) from None
        if doc.traceEvents:
            raise NotSplittable("events outside the array")
        return doc


def _last_cut(data):
    """The last place between two events in data (looked for near its end first)."""
    for start in (max(0, len(data) - WINDOW), 0):
        last = None
        for last in _BETWEEN.finditer(data, start):
            pass
        if last is not None or start == 0:
            return last
    return None
