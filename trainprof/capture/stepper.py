"""The step marker inside the child: marks each training step (by the optimizer, or after
each backward), drives torch.profiler's schedule, times the unprofiled steps with a device
sync at the window edges only, writes the trace and the line log, and tells the parent.

Steps are marked by the optimizer (a global step post-hook, then a wrapper on that optimizer
instance so that the marker runs after its `Optimizer.step#` span closes and ProfilerStep
spans nest cleanly), or after each backward. Progress goes to the parent as JSON datagrams on
the socket it named. Under torchrun every rank runs the child: each writes its own trace (and
line log) into the run directory and tags its messages with its rank.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import time

from ..files import write_atomic
from . import loader_lines, rundir
from .cores import available as available_cores
from .coverage import Coverage
from .probes import devices, memory, new_profiler, queued_batches, together, watch_fetches, watch_loaders, watch_waits
from .recorder import LineRecorder
from .roots import Roots
from .steady import MIN_WINDOW, Settle, SpikeWatch, Window

_clock = time.perf_counter_ns
ANCHOR = "trainprof#anchor"
MAX_SETTLE_STEPS = 2000  # the search for steady state ends here, budget or not


class Capture:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.wait, self.warmup, self.active = cfg["wait"], cfg["warmup"], cfg["active"]
        self.run_dir = cfg["run_dir"]
        self.msg_path = cfg.get("msg_path")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self.msg_path else None
        # torchrun's environment; a single run is rank 0 of 1
        self.rank = int(os.environ.get("RANK", "0")) if cfg.get("distributed") else 0
        self.world = int(os.environ.get("WORLD_SIZE", "1")) if cfg.get("distributed") else 1
        self.boundaries: list[int] = []  # perf_counter_ns at each step boundary
        self.sync_edges: dict[str, int] = {}
        # Unprofiled steps until steady state (steady.py), then the line recorder's unprofiled
        # steps, then the profiler. Ranks settle alike only on a fixed count: a distributed
        # run times --wait steps.
        budget = float(cfg.get("settle_s", 60.0)) if self.world == 1 else 0.0
        self.settle = Settle(min_steps=max(self.wait, 1), budget_s=budget)
        self.win: tuple[int, int] = (0, max(self.wait, 1) if budget <= 0 else MIN_WINDOW)  # (first step, steps)
        self.phase = "settle"
        self.hold = False  # steady, waiting out a periodic spike before recording
        self.watch: SpikeWatch | None = None  # after the trace: steps watched for periodic spikes
        self.watch_t = 0
        self.lines_at = self.prof_at = -1  # the steps the line recorder's steps and the profiler began at
        self.steady: dict | None = None
        self.win_cpu = 0.0  # the process's CPU time at the current window's start
        self.anchors: list[tuple[int, int, int]] = []  # (ProfilerStep number started/ended, before, after)
        self.prof = None
        self.pacer = None  # the optimizer whose steps mark the training step
        self.done = False
        self.trace_path = None
        roots = cfg.get("source_roots")
        self.recorder = LineRecorder(cfg["user_files"], Roots(roots["roots"], roots["anywhere"]) if roots else None)
        # Steps that run the line recorder, still unprofiled: each line's own unprofiled time,
        # against which its profiled time is corrected. The first is not kept: on 3.12 every
        # library code location costs one callback there, once.
        lines_ok = not cfg.get("no_unprofiled_lines")
        self.line_warm = 1 if lines_ok else 0
        self.line_steps = 2 if lines_ok else 0
        self.unprof_rec = LineRecorder(cfg["user_files"], share=self.recorder)
        self.coverage = Coverage(self.recorder.file_of)
        self.cuda = False
        self.post_n, self.post_t0 = -1, 0
        self.tight_anchors: list[tuple[int, int]] = []
        self.loaders: dict[int, dict] = {}  # id(DataLoader) -> its configuration, as iterated
        self.iters: dict = {}  # id(DataLoader) -> a weak reference to its latest iterator
        self.waits: dict = {"s": 0.0}  # seconds the training thread spent in DataLoaders' __next__
        self.wait_at: dict[int, float] = {}  # the training thread's loader wait so far, at each step boundary

    # -- messages to the parent -------------------------------------------------------
    def send(self, **msg) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(json.dumps(dict(msg, rank=self.rank)).encode(), self.msg_path)
        except OSError:  # trainprof is gone: the run goes on without an audience
            pass

    def _name(self, stem: str) -> str:
        """A per-rank file name: rank 0 keeps the single run's names."""
        return stem if self.rank == 0 else f"{stem}.rank{self.rank}"

    # -- step marking -------------------------------------------------------------------
    def install(self) -> None:
        import torch

        mode = self.cfg.get("step_marker", "optimizer")
        if mode == "optimizer":
            from torch.optim.optimizer import register_optimizer_step_post_hook

            register_optimizer_step_post_hook(self._on_optimizer_step)
        elif mode == "backward":
            orig = torch.autograd.backward

            def backward(*a, **k):
                out = orig(*a, **k)
                self.mark()
                return out

            torch.autograd.backward = backward
        else:
            raise ValueError(f"unknown step marker {mode!r}")
        watch_loaders(torch, self.loaders, lambda: len(self.boundaries), self.iters)
        watch_waits(torch, self.waits)
        watch_fetches(torch, lambda totals: self.send(event="fetch", **totals))

    def _on_optimizer_step(self, optimizer, args, kwargs) -> None:
        if self.pacer is None:
            self.pacer = optimizer
            self._wrap(optimizer)
            self.mark()  # the first step: nothing is profiled yet, so nesting does not matter
        elif optimizer is self.pacer and not getattr(optimizer, "_trainprof_wrapped", False):
            self.mark()

    def _wrap(self, optimizer) -> None:
        step = optimizer.step

        def step_then_mark(*a, **k):
            out = step(*a, **k)
            self.mark()
            return out

        try:
            optimizer.step = step_then_mark
            optimizer._trainprof_wrapped = True
        except (AttributeError, TypeError):
            pass  # slotted or frozen optimizer: fall back to marking from the hook

    def _sync(self) -> None:
        if self.cuda:
            import torch

            for d in devices(torch):
                torch.cuda.synchronize(d)

    @property
    def device(self) -> int:
        """The GPU this process uses most (its memory and name go into run.json)."""
        import torch

        return max(devices(torch), key=lambda d: torch.cuda.memory_reserved(d))

    def mark(self) -> None:
        """Called at the end of every training step."""
        if self.done:
            self._post_mark()
            return
        import torch

        k = len(self.boundaries)  # steps completed before this one
        if k == 0:
            self.coverage.end_setup()
            self.cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
            self._sync()
            self.boundaries.append(_clock())
            self.win_cpu, self.wait_at = time.process_time(), {0: self.waits["s"]}
            self.send(event="phase", phase="wait", step=1, total=self.total)
            return
        if self.phase == "settle":
            self._settle_mark(k)
            return
        lines_end = k == self.prof_at and self.line_steps
        if lines_end:
            self._sync()  # one sync at each edge of the unprofiled windows only
        self.boundaries.append(_clock())
        if lines_end:
            self.unprof_rec.stop()
            self.sync_edges["lines_end"] = self.boundaries[-1]
        if k == self.lines_at + self.line_warm and self.line_steps:
            self.sync_edges["lines_start"] = self.boundaries[-1]
        if k >= self.prof_at:
            self._profiled_mark(k, torch)
        if k < self.total:
            q = k - self.prof_at
            phase = "wait" if q < 0 else "warmup" if q < self.warmup else "active"
            self.send(event="phase", phase=phase, step=k + 1, total=self.total)
        if self.trace_path is not None:
            self.finish()

    def _settle_mark(self, k: int) -> None:
        """A step of the search for steady state: windows synced at their edges only."""
        first, size = self.win
        end = k == first + size
        if end:
            self._sync()
        self.boundaries.append(_clock())
        self.wait_at[k] = self.waits["s"]  # each step's wait for batches: spikes' waits left out of the steady one
        if not end:
            self.send(event="phase", phase="wait", step=k + 1, total=self.total)
            return
        if self.hold:  # waited past a periodic spike: record now
            self.hold = False
            self._start_recording(k)
            self.send(event="phase", phase="wait", step=k + 1, total=self.total)
            return
        b, wait = self.boundaries, self.wait_at
        cpu, self.win_cpu = self.win_cpu, time.process_time()
        w = Window(first, size, (b[k] - b[first]) / 1e9, tuple((b[i + 1] - b[i]) / 1e9 for i in range(first, k)),
                   self.win_cpu - cpu, queued_batches(self.iters),
                   tuple(wait.get(i + 1, 0.0) - wait.get(i, 0.0) for i in range(first, k)))
        queued = self.settle.see_loaders(self.loaders.values())
        searched = self.settle.budget_s > 0
        if not searched or self.settle.add(w, queued) or self.settle.over_budget or k >= MAX_SETTLE_STEPS:
            if not searched:
                self.settle.windows.append(w)
            self.steady = dict(self.settle.result(), searched=searched)
            # a loader's workers deliver in bursts of theirs: record whole bursts, two where it
            # costs no more than 8 steps (the first recorded step is set aside as the profiler's start-up)
            q = self.settle.quantum
            self.active = max(self.active, min(2 * q, 8) + 1) if q > 1 else self.active
            # the recorded steps are the steady ones: wait out a periodic spike (an eval, a
            # checkpoint) due within them rather than record it
            wait = self.settle.clear_of_spikes(k, self.line_warm + self.line_steps + self.warmup + self.active + 1)
            if wait:
                self.hold, self.win = True, (k, wait)
            else:
                self._start_recording(k)
        else:
            self.win = (k, self.settle.next_size(w.per_step))
        self.send(event="phase", phase="wait", step=k + 1, total=self.total)

    def _start_recording(self, k: int) -> None:
        """Steady from step k: the line recorder's steps, then the profiler's."""
        self.phase = "profile"
        self.lines_at, self.prof_at = k, k + self.line_warm + self.line_steps
        if self.line_steps:
            self.unprof_rec.start()
        else:
            import torch

            self._profiled_mark(k, torch)

    @property
    def total(self) -> int:
        """The steps the capture takes, once known (0: still searching for steady state)."""
        if self.prof_at >= 0:
            return self.prof_at + self.warmup + self.active
        if self.settle.budget_s <= 0:
            return self.win[1] + self.line_warm + self.line_steps + self.warmup + self.active
        return 0

    def _profiled_mark(self, k: int, torch) -> None:
        """A step from the profiler's start on: the profiler starts, or its schedule steps on;
        the anchors that align the line log with the trace; the line recorder over the
        recorded steps."""
        q = k - self.prof_at  # the profiler's step number
        if self.recorder.active and q == self.warmup + self.active:
            self.recorder.stop()
        before = _clock()
        if q == 0:
            self._start_profiler()  # ProfilerStep#0 begins in it
        else:
            self.prof.step()
        after = _clock()
        if q >= self.warmup:
            # ProfilerStep#(step_num-1) ended and #step_num began inside prof.step()
            self.anchors.append((self.prof.step_num, before, after))
        if q == max(self.warmup - 1, 0) and not self.recorder.active:
            # From the last warm-up step: the recorder's one-off cost (3.12: one callback per
            # library code location) lands there, not in a recorded step.
            self.recorder.start()
        if self.recorder.active and q >= self.warmup:
            # A tight anchor: the span's start lies between two clock reads µs apart.
            b = _clock()
            with torch.profiler.record_function(ANCHOR):
                a = _clock()
            self.tight_anchors.append((b, a))

    # -- profiler ---------------------------------------------------------------------------
    def _start_profiler(self) -> None:
        self.prof = new_profiler(self.cuda, self.warmup, self.active, self._on_trace_ready, self.cfg)
        self.prof.start()

    def _on_trace_ready(self, prof) -> None:
        self.send(event="phase", phase="writing", step=self.total, total=self.total)
        worker = f"{socket.gethostname()}_{os.getpid()}"
        if self.world > 1:  # TensorBoard shows one worker per file: name it by its rank
            worker = f"rank{self.rank}_{worker}"
        path = os.path.join(self.run_dir, f"{worker}.pt.trace.json")
        prof.export_chrome_trace(path)
        with open(path, "rb") as src, gzip.open(path + ".gz", "wb", compresslevel=3) as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        os.unlink(path)
        self.trace_path = path + ".gz"

    def finish(self) -> None:
        import torch

        self.done = True
        self.recorder.stop()
        self.prof.stop()
        w = self.boundaries
        per_step = [(b - a) / 1e6 for a, b in zip(w, w[1:])]
        first = self.prof_at + self.warmup
        last = self.settle.windows[-2:]
        edges = self.sync_edges
        info = {
            "trace": os.path.basename(self.trace_path),
            "lines": self._name("lines") + ".json",
            "host": socket.gethostname(),
            "active_steps": [a[0] for a in self.anchors[:-1]],
            "steady": self.steady,
            "unprofiled_pre_ms": self.steady["step_ms"],
            "unprofiled_step_ms": [1000 * s for x in last for s in x.step_s],
            "profiled_step_ms": per_step[first:first + self.active],
            "profiled_from": first,  # the step (counted from the first) the recorded ones start at
            "post_steps": self.post_steps,
            "step_marker": self.cfg.get("step_marker", "optimizer"),
            "cuda": self.cuda,
            "device": torch.cuda.get_device_name(self.device) if self.cuda else "cpu",
            "torch": torch.__version__,
            "cuda_version": torch.version.cuda,
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "cores": available_cores(),  # affinity, within a container's CPU quota
            "loaders": list(self.loaders.values()),
            "memory": memory(torch, self.device) if self.cuda else None,
        }
        self.coverage.stop()
        lines = self.recorder.to_json()
        lines["covered"] = self.coverage.to_json()
        lines["anchors"] = self.anchors
        lines["tight_anchors"] = self.tight_anchors
        if self.line_steps and "lines_end" in edges:
            u = self.unprof_rec.to_json()
            lines["unprofiled"] = {"steps": self.line_steps, "initial_stack": u["initial_stack"],
                                   "events": u["events"], "start": edges["lines_start"], "end": edges["lines_end"]}
        write_atomic(os.path.join(self.run_dir, info["lines"]), json.dumps(lines).encode())
        self.send(event="done", **info)
        # Time as many steps again after the trace, past the warm-up effects of the
        # first steps (allocator growth, autotuning, lazy init); sync at the edges only.
        # Ranks start that window together: one that starts while a peer still writes its
        # trace would time the wait for it (seen: 20 ms against its peer's 11 ms, lockstep).
        if self.world > 1:
            together(self.world, "trainprof/timing")
        self._sync()
        self.post_n, self.post_t0 = 0, _clock()

    @property
    def post_steps(self) -> int:
        """Steps timed after the trace: as many as the steady step was measured over."""
        return max(self.wait, sum(x.steps for x in self.settle.windows[-2:]))

    def _post_mark(self) -> None:
        if self.watch is not None:
            t, self.watch_t = self.watch_t, _clock()
            if self.watch.add((self.watch_t - t) / 1e9):
                self.send(event="periodic", **self.watch.result())
                self.exit()
            return
        if self.post_n < 0:
            return
        self.post_n += 1
        if self.post_n == self.post_steps:
            self._sync()
            ms = (_clock() - self.post_t0) / 1e6 / self.post_steps
            self.post_n = -1
            self.send(event="post", unprofiled_post_ms=ms)
            if self.cuda and self.world == 1 and self.prof is not None:
                # the run is timed: what bf16/TF32 would do to its own heaviest shapes, on this device
                import torch

                from .precision import calibrate

                calibrate(torch, self.prof, self.device, self.run_dir)
            if self.cfg.get("full_run"):
                return
            if self.loaders and self.world == 1:
                # inside the loader: the Dataset's lines, timed making a few batches here
                import torch

                loader_lines.sample(self.iters, self.recorder, os.path.join(self.run_dir, rundir.LOADER_LINES_JSON), torch)
            if self.cfg.get("watch_s") and self.settle.periodic is None and self.world == 1:
                # the loop has work every N steps (`if step % N`) that the search did not see twice
                self.watch, self.watch_t = SpikeWatch(float(self.cfg["watch_s"])), _clock()
                return
            self.exit()

    def exit(self) -> None:
        if self.world > 1:
            together(self.world, "trainprof/leaving")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip the rest of training, and worker joins that could hang
