"""build: the synthetic traces at each size (see plan.py for how they are made); check: their consistency.

Each size gets two run directories (OUT/<source>-<size>mb-json/, -gz/), each holding its trace,
the script copy, a run.json and a lines.json (plan.py), and OUT/<source>-<size>mb.meta.json
(copies, steps, events, bytes, period: what the report's trace table shows).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time

from .common import GPU_CATS, MB, STEP_RE, end, load, read_json, run_dirs, size_label
from .plan import Plan


def check(path: str) -> list[str]:
    """Consistency of a built trace: ids unique per copy, every launch's GPU work and flows linked
    within one copy, one ProfilerStep#N per number, no overlap on a GPU stream."""
    doc = read_json(path)
    ev = doc["traceEvents"]
    problems = []
    X = [e for e in ev if e.get("ph") == "X"]
    gpu = [e for e in X if e.get("cat") in GPU_CATS - {"gpu_user_annotation"}]
    rt = [e for e in X if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in (e.get("args") or {})]
    rt_corr = {}
    for e in rt:
        c = e["args"]["correlation"]
        if c in rt_corr:
            problems.append(f"correlation {c} on two runtime calls")
        rt_corr[c] = e
    orphans = sum(1 for g in gpu if g["args"].get("correlation") not in rt_corr)
    late = sum(1 for g in gpu if g["args"].get("correlation") in rt_corr and g["ts"] < rt_corr[g["args"]["correlation"]]["ts"])
    if late:
        problems.append(f"{late} GPU events start before their launch")
    pyids = [e["args"]["Python id"] for e in X if e.get("cat") == "python_function"]
    if len(pyids) != len(set(pyids)):
        problems.append("duplicate Python ids")
    ext = [e["args"]["External id"] for e in X if e.get("cat") == "cpu_op"]
    if len(ext) != len(set(ext)):
        problems.append("duplicate External ids among cpu_ops")
    steps = [int(STEP_RE.match(e["name"]).group(1)) for e in X if e.get("cat") == "user_annotation" and STEP_RE.match(e["name"])]
    if sorted(steps) != list(range(min(steps), max(steps) + 1)):
        problems.append("ProfilerStep numbers are not one each, contiguous")
    flows: dict = {}
    for e in ev:
        if e.get("ph") in ("s", "f"):
            flows.setdefault((e.get("cat"), e.get("id")), []).append(e["ph"])
    bad = sum(1 for v in flows.values() if sorted(v) != ["f", "s"])
    by_stream: dict = {}
    for g in gpu:
        by_stream.setdefault((g.get("pid"), g.get("tid")), []).append((g["ts"], end(g)))
    overlap = 0
    for iv in by_stream.values():
        iv.sort()
        overlap += sum(1 for a, b in itertools.pairwise(iv) if b[0] < a[1] - 0.01)
    if overlap:
        problems.append(f"{overlap} overlapping GPU events on one stream")
    print(f"{path}: {len(ev)} events, {len(steps)} ProfilerSteps, {len(gpu)} GPU events ({orphans} with no launch "
          f"in the trace: the warm-up's tail), {len(flows)} flows ({bad} not one s + one f)")
    for p in problems:
        print("  PROBLEM:", p)
    return problems


def build(args) -> None:
    plan = Plan(args.source)
    name = os.path.basename(os.path.normpath(args.source))
    per_copy = plan.copy_bytes()
    fixed = len(plan.header()) + len(plan.trailer())
    print(f"{name}: {len(plan.doc['traceEvents'])} events, {len(plan.copied)} copied per step window "
          f"({plan.n_steps} steps from #{plan.first_step}), period {plan.period / 1000:.1f} ms, "
          f"~{per_copy / MB:.2f} MB a copy", flush=True)
    script = load(os.path.join(args.source, "run.json")).get("script") or ""
    script_copy = os.path.join(args.source, os.path.basename(script)) if script else None
    trace_base = os.path.basename(plan.trace_path)
    trace_base = trace_base.removesuffix(".gz")
    for mb in args.sizes:
        n = max(1, round((mb * MB - fixed) / per_copy))
        dj, dz = run_dirs(args.out, name, mb)
        for d in (dj, dz):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        t = time.perf_counter()
        size = plan.write(n, os.path.join(dj, trace_base), os.path.join(dz, trace_base + ".gz"))
        gz_size = os.path.getsize(os.path.join(dz, trace_base + ".gz"))
        lines = plan.lines_json(n)
        for d, fname in ((dj, trace_base), (dz, trace_base + ".gz")):
            with open(os.path.join(d, "run.json"), "w") as f:
                json.dump(plan.run_json(n, fname), f, indent=1)
            if lines is not None:
                with open(os.path.join(d, "lines.json"), "w") as f:
                    json.dump(lines, f)
            if script_copy and os.path.isfile(script_copy):
                shutil.copy(script_copy, d)
        meta = {"name": name, "mb": mb, "copies": n, "steps": n * plan.n_steps, "json_bytes": size,
                "gz_bytes": gz_size, "period_us": plan.period, "build_s": round(time.perf_counter() - t, 1),
                "events": n * len(plan.copied) + len(plan.doc["traceEvents"]) - len(plan.copied)}
        with open(os.path.join(args.out, f"{name}-{size_label(mb)}.meta.json"), "w") as f:
            json.dump(meta, f)
        print(f"  {size_label(mb)}: {n} copies, {n * plan.n_steps} steps, {meta['events']} events, "
              f"{size / MB:.0f} MB json, {gz_size / MB:.0f} MB gz, {meta['build_s']} s", flush=True)
