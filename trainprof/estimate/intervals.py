"""Interval arithmetic on the training thread's clock, for the replay: CPU time removed
or shrunk by a fix (Removal), and the per-line profiler correction (Warp)."""

from __future__ import annotations

import numpy as np


class Removal:
    """Removed CPU time: intervals (start, end) removed whole, or (start, end, keep)
    shrunk to `keep` of their length (a log line run every 100th step keeps 1/100).
    Where intervals overlap the larger removal wins, so a saving is counted once."""

    def __init__(self, intervals):
        pts = []
        for iv in intervals:
            a, b = float(iv[0]), float(iv[1])
            r = 1.0 - (float(iv[2]) if len(iv) > 2 else 0.0)
            if b > a and r > 0:
                pts.append((a, 1, r))
                pts.append((b, -1, r))
        pts.sort(key=lambda p: (p[0], p[1]))
        s, e, rr = [], [], []
        active: dict = {}
        prev = None
        for t, kind, r in pts:
            if prev is not None and t > prev and active:
                top = max(active)
                if rr and rr[-1] == top and e[-1] == prev:
                    e[-1] = t
                else:
                    s.append(prev), e.append(t), rr.append(top)
            if kind == 1:
                active[r] = active.get(r, 0) + 1
            else:
                active[r] -= 1
                if not active[r]:
                    del active[r]
            prev = t
        self.s, self.e, self.r = np.array(s), np.array(e), np.array(rr)
        self._acc = 0.0  # drops_v(): launches owed to shrunk time so far
        self.cum = np.concatenate([[0.0], np.cumsum((self.e - self.s) * self.r)]) if s else np.zeros(1)

    def before_v(self, t: np.ndarray) -> np.ndarray:
        """Removed time before each instant of t."""
        if not len(self.s):
            return np.zeros(len(t))
        k = np.searchsorted(self.s, t, side="right")
        km = np.maximum(k - 1, 0)
        return np.where(k > 0, self.cum[k] - self.r[km] * np.maximum(0.0, self.e[km] - t), 0.0)

    def before_wv(self, t: np.ndarray, warp) -> np.ndarray:
        """Removed time before each instant of t, on the warp's corrected clock."""
        if not len(self.s):
            return np.zeros(len(t))
        if getattr(self, "_warp", None) is not warp:
            self._warp = warp
            self._ws, self._we = warp.at(self.s), warp.at(self.e)
            self._wcum = np.concatenate([[0.0], np.cumsum((self._we - self._ws) * self.r)])
        k = np.searchsorted(self.s, t, side="right")
        km = np.maximum(k - 1, 0)
        return np.where(k > 0, self._wcum[k] - self.r[km] * np.maximum(0.0, self._we[km] - warp.at(t)), 0.0)

    def drops_v(self, t: np.ndarray) -> np.ndarray:
        """Whether work issued at each instant of t (in order) is dropped: all of it in removed
        time, and in shrunk time all but `keep` of it (every 1/keep-th launch stays, counted
        across intervals)."""
        if not len(self.s):
            return np.zeros(len(t), dtype=bool)
        k = np.searchsorted(self.s, t, side="right") - 1
        km = np.maximum(k, 0)
        inside = (k >= 0) & (t < self.e[km])
        keep = np.where(inside, 1.0 - self.r[km], 0.0)
        shrunk = inside & (keep > 0)
        out = inside.copy()
        if shrunk.any():
            # the running sum of `keep` crosses an integer at each launch that stays
            c = np.cumsum(keep[shrunk]) + self._acc + 1e-9
            whole = np.floor(c)
            prev = np.concatenate([[np.floor(self._acc + 1e-9)], whole[:-1]])
            out[np.flatnonzero(shrunk)] = whole <= prev
            self._acc = float(c[-1] - whole[-1])
        return out

    def kept(self, t: np.ndarray) -> np.ndarray:
        """The share of recorded work at each instant of t that stays (0 where removed whole)."""
        t = np.asarray(t, dtype=np.float64)
        if not len(self.s):
            return np.ones(len(t))
        k = np.searchsorted(self.s, t, side="right") - 1
        inside = (k >= 0) & (t < self.e[np.clip(k, 0, None)])
        return np.where(inside, 1.0 - self.r[np.clip(k, 0, None)], 1.0)



class Warp:
    """Per-line profiler correction of the training thread's clock: each stretch of time
    counts `factor` of its profiled length (the line's unprofiled/profiled time, measured
    by the line recorder in unprofiled steps), `default` where no line was measured."""

    def __init__(self, lo: float, hi: float, spans, default: float):
        pts, f = [lo], []
        for a, b, fac in sorted(spans):
            a, b = max(a, pts[-1]), min(b, hi)
            if b <= a:
                continue
            if a > pts[-1]:
                f.append(default)
                pts.append(a)
            f.append(fac)
            pts.append(b)
        if pts[-1] < hi:
            f.append(default)
            pts.append(hi)
        self.s = np.array(pts[:-1])
        self.f = np.array(f)
        self.cum = np.concatenate([[0.0], np.cumsum(np.diff(pts) * self.f)])
        self.lo, self.hi, self.default = lo, hi, default
        # the lines' own work, where some waited (calibration.make_warp): the waits shrink
        # with the work a change leaves
        self.own: Warp | None = None

    def at(self, t: np.ndarray) -> np.ndarray:
        """__call__ at every instant of t."""
        t = np.asarray(t, dtype=np.float64)
        k = np.clip(np.searchsorted(self.s, t, side="right") - 1, 0, len(self.s) - 1)
        mid = self.cum[k] + self.f[k] * (t - self.s[k])
        return np.where(t <= self.lo, (t - self.lo) * self.default,
                        np.where(t >= self.hi, float(self.cum[-1]) + (t - self.hi) * self.default, mid))

    def __call__(self, t: float) -> float:
        """Corrected time elapsed from lo to t."""
        if t <= self.lo:
            return (t - self.lo) * self.default
        if t >= self.hi:
            return float(self.cum[-1]) + (t - self.hi) * self.default
        k = int(np.searchsorted(self.s, t, side="right")) - 1
        return float(self.cum[k] + self.f[k] * (t - self.s[k]))
