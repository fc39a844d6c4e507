"""Which line of the user's code was running at any instant of the trace.

Rebuilds the stack of user frames from the line recorder's log (capture/recorder.py)
and maps trace timestamps onto it through the anchors taken around prof.step().
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

START, LINE, RETURN = 0, 1, 2


@dataclass(frozen=True, eq=False)
class LineMap:
    files: list[str]
    stacks: list[tuple[tuple[int, int], ...]]  # stack id -> ((file index, line), ...) outermost first
    times: np.ndarray  # int64 recorder ns: stack `ids[i]` holds from times[i] to times[i+1]
    ids: np.ndarray  # int32 stack id (-1: no user frame)
    offset_ns: float  # trace_ns - recorder_ns
    offset_err_ns: float  # half-width of the anchor interval

    def stack_at(self, ts_us: np.ndarray) -> np.ndarray:
        """Stack id at each trace timestamp (µs); -1 outside the recorded span."""
        rec = np.asarray(ts_us, dtype=np.float64) * 1000.0 - self.offset_ns
        j = np.searchsorted(self.times, rec, side="right") - 1
        return np.where(j >= 0, self.ids[np.clip(j, 0, None)], -1)

    def innermost(self, stack_id: int) -> tuple[str, int] | None:
        if stack_id < 0 or not self.stacks[stack_id]:
            return None
        f, line = self.stacks[stack_id][-1]
        return self.files[f], line

    def frame_in(self, stack_id: int, path: str, lines: range | None = None) -> int | None:
        """The innermost line of `path` in this stack (inside `lines` if given)."""
        if stack_id < 0:
            return None
        for f, line in reversed(self.stacks[stack_id]):
            if self.files[f] == path and (lines is None or line in lines):
                return line
        return None


# The initial stack (the user's frames when the recorder started) holds from before any event: from
# the recorder's start, which precedes the recorded steps
_BEGIN = -(1 << 62)


def _stack_timeline(initial, events):
    stack = [list(x) for x in initial]  # [code, file, line]
    interned: dict = {}
    times, ids = [], []

    def snap(t):
        key = tuple((f, ln) for _, f, ln in stack)
        sid = interned.setdefault(key, len(interned))
        if ids and ids[-1] == sid:
            return
        times.append(t)
        ids.append(sid)

    if stack:
        snap(_BEGIN)
    for t, kind, code, f, line in events:
        if kind == START:
            stack.append([code, f, line])
        elif kind == LINE:
            if stack and stack[-1][0] == code:
                stack[-1][2] = line
            else:
                # A frame unwound by an exception, or resumed: find it, else push it.
                for k in range(len(stack) - 1, -1, -1):
                    if stack[k][0] == code:
                        del stack[k + 1:]
                        stack[k][2] = line
                        break
                else:
                    stack.append([code, f, line])
        elif kind == RETURN:
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] == code:
                    del stack[k:]
                    break
        snap(t)
    stacks = [None] * len(interned)
    for key, sid in interned.items():
        stacks[sid] = key
    return stacks, np.asarray(times, np.int64), np.asarray(ids, np.int32)


def _offset(anchors, step_start: dict, step_end: dict) -> tuple[float, float]:
    lo, hi, mids = -np.inf, np.inf, []
    for num, before, after in anchors:
        for t_us in (step_start.get(num), step_end.get(num - 1)):
            if t_us is None:
                continue
            a, b = t_us * 1000.0 - after, t_us * 1000.0 - before
            lo, hi = max(lo, a), min(hi, b)
            mids.append((a + b) / 2)
    if not mids:
        raise ValueError("no anchor matches a ProfilerStep in the trace")
    if lo <= hi:
        return (lo + hi) / 2, (hi - lo) / 2
    return float(np.median(mids)), float(np.ptp(mids))  # clocks disagree a little: take the middle


def _tight_offset(tight, anchor_ts) -> tuple[float, float] | None:
    """Anchors from record_function spans bracketed by clock reads a few µs apart."""
    if not tight or len(tight) != len(anchor_ts):
        return None
    lo, hi = -np.inf, np.inf
    for (before, after), t_us in zip(tight, sorted(anchor_ts)):
        lo, hi = max(lo, t_us * 1000.0 - after), min(hi, t_us * 1000.0 - before)
    if lo > hi:
        return None
    return (lo + hi) / 2, (hi - lo) / 2


def refine_offset(times: np.ndarray, off: float, err: float, op_start_us, op_end_us) -> tuple[float, float]:
    """Narrow the anchors' offset with the ops themselves.

    An anchor pins the clocks only to within the cost of entering a record_function
    (5-100 µs), while two `.item()` lines may be 20 µs apart. But an op of the
    training thread runs inside one line: no stack change of the log may fall
    strictly inside it. Each (op, change) pair forbids the offsets that would put
    the change there; the offset kept is the middle of the widest stretch, within
    the anchors' bounds, that the fewest pairs forbid. Ops that legitimately call
    back into user code forbid the same amount at every offset and do not move it.
    """
    s = np.asarray(op_start_us, np.float64) * 1000.0
    e = np.asarray(op_end_us, np.float64) * 1000.0
    w = min(max(err, 10_000.0), 500_000.0)  # search ±w ns: at least 10 µs, at most 0.5 ms
    lo, hi = off - w, off + w
    keep = e - s > 0
    s, e = s[keep], e[keep]
    if not len(s) or len(times) < 2:
        return off, err
    # changes t (recorder ns) with s - hi < t < e - lo can land inside the op
    j0 = np.searchsorted(times, s - hi, side="right")
    j1 = np.searchsorted(times, e - lo, side="left")
    n = np.clip(j1 - j0, 0, None)
    if n.sum() == 0 or n.sum() > 5_000_000:
        return off, err
    op = np.repeat(np.arange(len(s)), n)
    t = times[np.repeat(j0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))]
    a = np.clip(s[op] - t, lo, hi)  # forbidden: a < offset < b
    b = np.clip(e[op] - t, lo, hi)
    # sweep: coverage count between consecutive edges
    edges = np.concatenate([a, b, [lo, hi]])
    delta = np.concatenate([np.ones(len(a)), -np.ones(len(b)), [0.0, 0.0]])
    order = np.lexsort((delta, edges))  # at equal points close (-1) before open (+1): open intervals
    edges, delta = edges[order], delta[order]
    cover = np.cumsum(delta)[:-1]
    width = np.diff(edges)
    ok = width > 0
    if not ok.any():
        return off, err
    best = cover[ok].min()
    cand = np.nonzero(ok & (cover == best))[0]
    # contiguous runs of candidate segments, widest first; ties: nearest the anchors' middle
    runs, start = [], cand[0]
    for prev, k in zip(cand[:-1], cand[1:]):
        if k != prev + 1:
            runs.append((start, prev))
            start = k
    runs.append((start, cand[-1]))
    spans = [(edges[i], edges[j + 1]) for i, j in runs]
    a, b = max(spans, key=lambda ab: (ab[1] - ab[0], -abs((ab[0] + ab[1]) / 2 - off)))
    return float((a + b) / 2), float((b - a) / 2)


def build_line_map(lines_doc: dict, step_start: dict, step_end: dict, anchor_ts=(), ops=None) -> LineMap | None:
    """lines_doc: lines.json; step_start/end: ProfilerStep number -> trace µs;
    anchor_ts: starts of the trainprof#anchor spans (trace µs);
    ops: (start µs, end µs) arrays of the training thread's ops, to refine the alignment."""
    events = lines_doc.get("events") or []
    initial = lines_doc.get("initial_stack") or []
    if not events and not initial:
        return None
    # No event but an initial stack: no line of the user's ran in the recorded steps, all of them
    # inside one call of theirs (`trainer.train()`, the loop a framework's): the time is that line's
    stacks, times, ids = _stack_timeline(initial, events)
    tight = _tight_offset(lines_doc.get("tight_anchors"), list(anchor_ts))
    if tight is not None:
        off, err = tight
    else:
        try:
            off, err = _offset(lines_doc.get("anchors") or [], step_start, step_end)
        except ValueError:
            return None
    if ops is not None:
        off, err = refine_offset(times, off, err, *ops)
    return LineMap(lines_doc["files"], stacks, times, ids, off, err)


def unprofiled_line_costs(lines_doc: dict, clean_step_us: float | None = None) -> dict[tuple[str, int], float] | None:
    """Innermost user line -> µs per step, from the line log of the unprofiled steps
    (capture/child.py records the last wait steps too, without the profiler).

    The recorder costs a little per event it logs (a Python callback); given the step
    time without it (clean_step_us), that cost is measured -- the logged steps' excess
    over clean ones, per logged event -- and taken out of each line by its own events.
    """
    part = (lines_doc or {}).get("unprofiled")
    if not part or not (part.get("events") or part.get("initial_stack")):
        return None
    return line_costs(part, lines_doc["files"], clean_step_us)


def line_costs(part: dict, files: list[str], clean_step_us: float | None = None) -> dict[tuple[str, int], float]:
    """Innermost user line -> µs per step (part["steps"] of them) of a line log's part."""
    events = part["events"]
    stacks, times, ids = _stack_timeline(part.get("initial_stack") or [], events)
    w0, w1 = float(part["start"]), float(part["end"])
    steps = max(part.get("steps") or 1, 1)
    init = part.get("initial_stack") or []
    # Segments: the initial stack until the first event, then each stack until the next.
    seg_t = np.concatenate([[-np.inf], times.astype(np.float64)])
    seg_key = [(files[init[-1][1]], init[-1][2]) if init else None]
    seg_key += [(files[stacks[sid][-1][0]], stacks[sid][-1][1]) if stacks[sid] else None for sid in ids.tolist()]
    a = np.clip(seg_t, w0, w1)
    b = np.clip(np.append(seg_t[1:], w1), w0, w1)
    dur = np.clip(b - a, 0, None)
    ev_t = np.fromiter((e[0] for e in events), np.float64, len(events))
    ev_t = ev_t[(ev_t >= w0) & (ev_t < w1)]
    n_ev = np.bincount(np.searchsorted(seg_t, ev_t, side="right") - 1, minlength=len(seg_t))
    per_event = 0.0
    if clean_step_us and len(ev_t):
        per_event = max(0.0, ((w1 - w0) / steps / 1000.0 - clean_step_us) / (len(ev_t) / steps)) * 1000.0  # ns
    out: dict = {}
    for key, d, n in zip(seg_key, dur.tolist(), n_ev.tolist()):
        if key is not None and (d or n):
            out[key] = out.get(key, 0.0) + (d - per_event * n) / 1000.0 / steps
    return {k: max(v, 0.0) for k, v in out.items()}
