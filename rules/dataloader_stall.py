"""The training loop waits on the DataLoader.

## What it does
Measures the time the training thread spends in the DataLoader's `__next__` each
step, says what binds -- loading on the training thread itself (`num_workers=0`)
or workers that cannot keep up -- and shows the loader's configuration.

## Why it is slow
With `num_workers=0` every batch is loaded, decoded and collated on the training
thread, in series with the step. With too few workers, or expensive per-sample
work, the step waits for the next batch while the GPU idles.

## Example
```python
loader = DataLoader(ds, batch_size=64, shuffle=True)   # num_workers=0
```

## Use instead
```python
loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=8,
                    pin_memory=True, persistent_workers=True, prefetch_factor=4)
```

## When not to fix
When the machine has no spare cores (workers would compete with the training
thread), or when the per-sample work itself is the cost: then make
`__getitem__` cheaper (pre-decode, cache) rather than add workers. The estimate
counts the cores this run had.
"""

from __future__ import annotations

import libcst as cst
from libcst import matchers as m

from trainprof.capture.cores import LOADER_SHARE, available
from trainprof.estimate import Change, Measured, WhatIf
from trainprof.estimate.producer import Producer, capacity_us, cores_of, parallel_of
from trainprof.finding import STATIC, Evidence, Finding, Fix, HotLine
from trainprof.fix.codemod import Codemod, Site, is_true, kwarg, replace, with_kwarg
from trainprof.fix.workers_safe import function_of as _function_of
from trainprof.fix.workers_safe import why_not_workers
from trainprof.rule import Rule
from trainprof.source import frameworks as F
from trainprof.source.loaders import loader_loops, workers_of
from trainprof.trace import measures as M

ID = "dataloader-stall"


def detect(run):
    tr, n = run.trace, run.n_steps
    spans = M.dataloader_spans(tr, run.steps)
    if not len(spans):
        return
    wait_us = float(tr.dur[spans].sum()) / n
    # the wait as timed over the steady windows (unprofiled, throughput), where the capture has
    # it: a few recorded steps of a bursty loader can hold far more or far less of its waits
    steady_wait = (run.info.get("steady") or {}).get("loader_wait_ms")
    recorded_ms = run.unprofiled_ms(wait_us)
    wait_ms = steady_wait if steady_wait is not None else recorded_ms
    share = wait_ms / (run.base_step_us / 1000) if run.base_step_us else 0.0
    if share < LOADER_SHARE:
        return
    multi = any("MultiProcessing" in tr.name(int(i)) for i in spans)
    call = run.loader_call
    kw = call.keywords if call else {}
    workers = kw.get("num_workers", 0 if call else None)
    workers = workers if isinstance(workers, int) else None  # not a literal: unknown
    seen = [ld for ld in run.info.get("loaders") or [] if bool(ld.get("num_workers")) == multi]
    if seen:  # the configuration the capture saw the loader run with beats the source's literal
        workers = seen[0]["num_workers"]
    prod = run.producer
    cores = prod.cores if prod else cores_of(run.info)
    parallel = parallel_of(run.info)  # what cores - 1 processes were measured to get done side by side
    spare = max(1, cores - 1)  # one core stays with the training thread
    unprof_step = run.base_step_us
    # the step without its wait for batches, unprofiled: what the loader has to keep up with (the
    # steady windows' wait, which a few recorded steps of a bursty loader can miss by far; at most
    # the recorded steps' time outside the loader: the windows can hold fewer of its waits too)
    own_us = 1000 * run.cpu_ms(M.outside(tr, run.steps, spans))
    train_us = max(min(unprof_step - 1000 * wait_ms, own_us or unprof_step), 0.05 * unprof_step)
    measured = ""
    batch_us = None  # one batch's time as measured where it is made (to share out among the Dataset's lines)
    if not multi:
        main = (run.info.get("fetches") or {}).get("main") or {}
        if main.get("batches"):
            # Each batch took this on the training thread; W workers make them in parallel with the step.
            made = Producer(1, 1000 * main["wall_ms"] / main["batches"], 1000 * main["cpu_ms"] / main["batches"], cores,
                            parallel=parallel)
            batch_us = made.batch_wall_us
            new_workers = min(made.workers_for(train_us), 8 if not made.cpu_bound else spare)
            floor = made.period_us(new_workers)
            measured = f"; a batch takes {made.batch_wall_us / 1000:.3g} ms to make ({made.cpu_share} of it on a CPU)"
        else:
            load_us = sum(run.calibration.cpu_us(float(tr.ts[i]), float(tr.end[i])) for i in spans) / n
            new_workers = min(spare, 8)
            floor = load_us / new_workers
        binds = "loading runs on the training thread (num_workers=0)"
    else:
        w = workers if isinstance(workers, int) and workers > 0 else 1
        if prod is not None:
            batch_us = prod.batch_wall_us
            if prod.period_us() <= train_us:
                # the workers keep up: the wait is the batch's hand-over (IPC, the main process's
                # share), not their pace -- more workers would gain nothing (the breakdown shows it)
                return
            # the workers' measured pace: the step can go down to the training's own time, if
            # enough workers (and cores, for what of a batch is CPU time) make batches that fast
            new_workers = max(w, prod.workers_for(train_us))
            floor = prod.period_us(new_workers)
            measured = (f"; each batch takes {prod.batch_wall_us / 1000:.3g} ms in a worker ({prod.cpu_share} of it "
                        f"on a CPU): {w} deliver one step's batches every {prod.period_us() / 1000:.3g} ms")
        else:  # no pace measured (an older run): each worker produces a batch every ~W steps
            per_batch = w * unprof_step
            new_workers = max(w, min(spare, 2 * w))
            floor = per_batch / new_workers
        binds = f"the {w} worker process{'es' if w != 1 else ''} cannot keep up"
        if new_workers == w:
            binds += (f", and more would not help on {cores} cores: make __getitem__ cheaper" if prod is None or
                      prod.cpu_bound else ": their pace is what the step waits for")
    busy = capacity_us(run.info, prod, multi, cores)
    full = busy is not None and busy >= floor  # the cores bind: workers would take them from the training
    if full:
        floor, binds = busy, binds + f"; the step's CPU work ({busy * cores / 1000:.3g} ms) already fills the {cores} cores"
    line = run.script_line(int(spans[0]))
    if call is not None and F.uses_framework_loop(run.index):
        line = call.line  # the framework's loop fetches the batches: the fix is at the DataLoader it was given
    line = line if line is not None else run.index.loops[0].line if run.index and run.index.loops else 1
    keys = ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor")
    if seen:
        cfg = ", ".join(f"{k}={seen[0][k]!r}" for k in keys if seen[0].get(k) is not None) + " (as run)"
    else:
        cfg = ", ".join(f"{k}={kw[k]!r}" for k in keys if k in kw and kw[k] is not ...) or (
            "defaults (num_workers=0)" if call else "not found in the script")
    hot = hot_lines(run, batch_us)
    if hot:
        measured += (f"; making a batch, the costliest line is {hot[0].path}:{hot[0].line} "
                     f"({hot[0].ms:.3g} ms{f' of {batch_us / 1000:.3g}' if batch_us else ''})")
    yield Finding(
        rule=ID,
        title="Training loop waits on the data loader",
        hot_lines=hot,
        path=run.relpath(),
        line=line,
        severity="medium",
        message=f"The training thread waits {wait_ms:.3g} ms per step on the DataLoader "
                f"({100 * share:.0f}% of the step): {binds}{measured}.",
        evidence=(
            Evidence("loader wait per step", wait_ms, "ms"),
            Evidence("share of the step", 100 * share, "%"),
            Evidence("loader", "multi-process" if multi else "single-process"),
            Evidence("configuration", cfg),
            Evidence("CPU cores", cores),
            *((Evidence(f"{cores - 1} processes side by side did", parallel, "processes' work"),) if parallel else ()),
            *((Evidence("batch time in a worker", prod.batch_wall_us / 1000, "ms"),
               Evidence("workers' pace", prod.period_us() / 1000, "ms/step")) if multi and prod else ()),
        ),
        saving=_saving(tr, spans, floor, new_workers, _cores(cores, parallel), wait_ms, recorded_ms, steady_wait is not None,
                       unprof_step, train_us, full),
        # more workers only where there are cores for them; else the fix is in __getitem__ (advice)
        fix=FIX.fix(f"num_workers={new_workers}, persistent_workers=True"
                    + (", pin_memory=True" if tr.has_cuda else ""),  # pinned pages serve copies to a GPU only
                    workers=new_workers, was=workers or 0, pin=tr.has_cuda)
        if not multi or new_workers > (workers or 0)
        else Fix(ID, None, "make __getitem__ cheaper (pre-decode, cache, vectorize collate)"),
    )


def _saving(tr, spans, floor, new_workers, cores, wait_ms, recorded_ms, steady, step_us, train_us, full=False):
    """The wait replayed away, the step no faster than the loader then delivers (full: its CPU work
    over the cores); or, where the recorded steps held under half the steady windows' wait (they fell
    between a bursty loader's waits), measured: the steady step less its wait, no faster than that."""
    pace = (f"the step can be no faster than its CPU work over the {cores} ({floor / 1000:.3g} ms)" if full else
            f"the step can be no faster than one batch per {floor / 1000:.3g} ms ({new_workers} "
            f"worker{'s' if new_workers != 1 else ''} on {cores})")
    if steady and recorded_ms < 0.5 * wait_ms:
        return Measured(max(0.0, step_us - max(train_us, floor)) / 1000,
                        basis=f"the loader wait timed over the steady windows ({wait_ms:.3g} ms a step, unprofiled; "
                              f"the recorded steps held {recorded_ms:.3g} ms) taken off the step; {pace}")
    return WhatIf(Change(remove_cpu=tuple(zip(tr.ts[spans].tolist(), tr.end[spans].tolist())), floor_us=floor),
                  basis=f"loader wait measured on the training thread, replayed away; {pace}", confidence="medium")


def _cores(cores: int, parallel: float) -> str:
    """The cores, as the estimate says them: with the measured side-by-side throughput where it
    falls short of them."""
    if parallel and parallel < 0.9 * max(1, cores - 1):
        return f"{cores} cores, where {cores - 1} processes side by side were measured to do {parallel:.3g} processes' work"
    return f"{cores} cores"


HOT = 5  # lines shown
HOT_SHARE = 0.02  # ... each holding at least this share of a batch


def hot_lines(run, batch_us: float | None) -> tuple[HotLine, ...]:
    """The user's lines that make a batch (Dataset, transforms, collate), costliest first, from
    the batches made again after the trace (capture/loader_lines.py); their times shared out of
    the batch time measured where batches are made, so that the line recorder's own cost drops out."""
    costs = run.loader_lines
    total = sum(costs.values()) if costs else 0.0
    if not total:
        return ()
    scale = batch_us / total if batch_us else 1.0
    top = sorted(costs.items(), key=lambda kv: -kv[1])[:HOT]
    return tuple(HotLine(run.relpath(p), ln, us * scale / 1000) for (p, ln), us in top if us >= HOT_SHARE * total)


# -- the codemod ------------------------------------------------------------------------
def _default_workers() -> int:
    """--static: what the detector would propose on this machine (one core stays with training;
    the cores this process may use, as a run counts them: a container's quota, not the host's)."""
    return max(1, min(8, available() - 1))


def _is_loader(site: Site, node) -> bool:
    q = site.qualname(node) if isinstance(node, cst.Call) else None
    return q is not None and (q == "torch.utils.data.DataLoader" or q.endswith(".DataLoader"))


def _construction(site: Site, loop: cst.For):
    """(what the loop iterates, less enumerate/iter/tqdm; the DataLoader(...) call it is or
    a name is bound to, in the loop's function, else at module level, or None)."""
    it = loop.iter
    while isinstance(it, cst.Call) and it.args and (site.qualname(it) in ("enumerate", "iter")
                                                    or (site.qualname(it) or "").startswith("tqdm.")):
        it = it.args[0].value
    if _is_loader(site, it):
        return it, it
    if not isinstance(it, cst.Name):
        return it, None
    calls = [a.value for a in site.assignments(it.value) if isinstance(a, cst.Assign) and _is_loader(site, a.value)]
    fn = _function_of(site, loop)
    pick = [c for c in calls if _function_of(site, c) is fn] or [c for c in calls if _function_of(site, c) is None]
    return it, pick[0] if len(pick) == 1 else None


def _cuda_batches(site: Site, loop) -> bool:
    """Whether the loop moves its batches to a CUDA-capable device (pinned memory helps then)."""
    for c in m.findall(loop.body, m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))):
        if c.func.attr.value == "cuda":
            return True
        dev = kwarg(c, "device") or (c.args[0] if c.args and c.args[0].keyword is None else None)
        if dev is not None and site.device_kind(dev.value) in ("cuda", "cuda-or-cpu"):
            return True
    return False


def _configure(site: Site, at, call: cst.Call, cuda: bool):
    """(new call, what changed) or (None, why left alone); `at`: the node the finding's
    parameters are read at (the loop's iterable, or the call)."""
    why = why_not_workers(site, call)
    if why:
        return None, f"{why}; left alone"
    if any(a.star for a in call.args):
        return None, "takes *args or **kwargs: its num_workers is unknown; left alone"
    if len([a for a in call.args if a.keyword is None]) > 5:
        return None, "num_workers is given by position; left alone"
    given = kwarg(call, "num_workers")
    try:
        now = 0 if given is None else int(site.code(given.value), 0)
    except ValueError:
        return None, f"num_workers={site.code(given.value)} is not a literal; left alone"
    want = site.param(at, "workers", None)
    n, new, did = now, call, []
    if now == 0 or (want is not None and want > now):  # --static keeps a worker count already chosen
        n = want if want is not None else _default_workers()
        new, did = with_kwarg(new, "num_workers", str(n)), [f"num_workers={n}"]
    if n > 0 and kwarg(new, "persistent_workers") is None:  # workers outlive the epoch: no restart cost
        new, did = with_kwarg(new, "persistent_workers", "True"), did + ["persistent_workers=True"]
    if cuda:
        if kwarg(new, "pin_memory") is None:
            new, did = with_kwarg(new, "pin_memory", "True"), did + ["pin_memory=True"]
        elif not is_true(kwarg(new, "pin_memory")):
            did.append(f"pin_memory={site.code(kwarg(new, 'pin_memory').value)} kept as given")
    if new is call:
        return None, "already configured: nothing to do" + (f" ({did[0]})" if did else "")
    return new, ", ".join(did)


def _transform(site: Site) -> cst.Module:
    edits, done, covered = {}, set(), set()
    # at a finding: the loop there (its step may be in a function it calls); --static: loops that step
    loops = site.nodes(cst.For) if site.lines is not None else site.training_loops()
    for loop in loops:
        if not isinstance(loop, cst.For) or not site.wanted(loop.iter):
            continue
        covered.add(site.line(loop))
        it, call = _construction(site, loop)
        if call is None:
            if site.lines is not None or isinstance(it, cst.Name):
                site.note(loop, False, f"`{site.code(it)}` is not bound to one DataLoader(...) built in this "
                                       "file (a parameter?); left alone")
            continue
        if call in done:
            continue
        done.add(call)
        pin = site.param(loop.iter, "pin", None)  # the run's word (a GPU ran), else the source's
        new, what = _configure(site, loop.iter, call, _cuda_batches(site, loop) if pin is None else pin)
        if new is None:
            site.note(call, False, f"DataLoader of the loop at line {site.line(loop)}: {what}")
        else:
            edits[call] = new
            site.note(call, True, f"DataLoader of the loop at line {site.line(loop)}: {what}")
    # a finding at the DataLoader itself (a framework's loop fetches its batches)
    for call in site.nodes(cst.Call) if site.lines is not None else ():
        if call not in done and _is_loader(site, call) and site.wanted(call) and site.line(call) not in covered:
            done.add(call)
            covered.add(site.line(call))
            new, what = _configure(site, call, call, bool(site.param(call, "pin", False)))
            site.note(call, new is not None, f"DataLoader: {what}")
            if new is not None:
                edits[call] = new
    for ln in sorted((site.lines or set()) - covered):
        site.note(ln, False, "no `for ... in loader` training loop starts here; left alone")
    return replace(site.module, edits)


FIX = Codemod(
    "dataloader-config", "unsafe",
    "DataLoader feeding the training loop: num_workers=N, persistent_workers=True, pin_memory=True",
    "worker processes change how samples are produced: random augmentations must be seeded per worker "
    "(worker_init_fn / torch.initial_seed(), not a global numpy seed), the dataset and collate_fn must "
    "pickle, scripts on macOS/Windows (spawn) need their training under `if __name__ == \"__main__\":`, "
    "and each worker holds its own copy of the dataset in memory (times N, plus prefetched batches)",
    _transform,
)


# -- static detection (`trainprof lint`) ------------------------------------------------
def lint(index):
    """Static: the training loop's DataLoader loads batches on the training thread, or
    restarts its workers every epoch."""
    site_of = {c.node: c for c in index.calls}
    done = set()
    for loop, call, _ in loader_loops(index):
        if call in done:
            continue
        done.add(call)
        c = site_of[call]
        workers = workers_of(call, c.keywords)
        if workers == 0:
            n = _default_workers()
            yield Finding(
                rule=ID, title="Training loop waits on the data loader", path=index.path, line=c.line,
                end_line=c.end_line, severity="medium",
                message=f"`{c.text[:60]}` feeds the training loop at line {index.line(loop)} with num_workers=0: every "
                        f"batch is loaded on the training thread while the GPU waits ({STATIC}).",
                fix=FIX.fix(f"num_workers={n}, persistent_workers=True, pin_memory=True", workers=n),
            )
        elif workers is not None and workers > 0 and c.keywords.get("persistent_workers") is not True:
            yield Finding(
                rule=ID, title="Training loop waits on the data loader", path=index.path, line=c.line,
                end_line=c.end_line, severity="info",
                message=f"`{c.text[:60]}` has {workers} workers without persistent_workers=True: they are "
                        f"started again at every epoch ({STATIC}).",
                fix=FIX.fix("persistent_workers=True"),
            )


RULE = Rule(ID, "Training loop waits on the data loader", "data", detect, __doc__, needs=("trace",), codemods=(FIX,),
            lint=lint, aliases=('dataloader-config',))
