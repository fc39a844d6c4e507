"""The children: one measure each, in a fresh process (`_child KIND TARGET`), printing one JSON line.

The operation's wall time is taken inside the child (op_s: after the imports); measure.py adds the
whole process's wall time and peak memory. Kinds:

  read           read the bytes (gunzip included for .gz): the floor under every decoder
  orjson         orjson.loads(bytes)
  orjson_nogc    the same with the garbage collector disabled
  json           json.loads(bytes)
  msgspec_dict   msgspec.json.decode(bytes) into dicts and lists
  msgspec_struct msgspec into a minimal typed Struct (gc=False) with the fields trainprof reads;
                 the baseline of every ratio: best of 3 runs
  msgspec_tp     msgspec into trainprof's own structs (trainprof.trace.decode.whole_decoder): decode only
  ijson          ijson.items(f, "traceEvents.item") streamed (yajl2_c), counting events
  tp_load        trainprof.trace.load.load_trace(path)
  tp_report      trainprof report RUN_DIR -q (load + full analysis + analysis.json + report.html)
  tp_report_serial  the same with TRAINPROF_JOBS=1 (no worker processes)
  tp_stages      the same, stage by stage: time, RSS and peak RSS after each stage
  tp_profile     cProfile of tp_report, top 25 by cumulative and 15 by own time (--profile-sizes;
                 default the smallest size)
  hta            HolisticTraceAnalysis: TraceAnalysis(trace_dir) + get_temporal_breakdown()
                 + get_idle_time_breakdown(), run by --hta-python (a venv with
                 `pip install HolisticTraceAnalysis==0.5.0`), killed after --hta-timeout seconds

Only the standard library is imported at module level: the hta child runs in HTA's own venv.
"""

from __future__ import annotations

import gzip
import json
import os
import time

from .common import ROOT, find_trace, read_bytes


def _proc_status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return out


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _min_decoder():
    """The fastest typed decode: a minimal Struct with the fields trainprof reads, untracked by the GC."""
    import msgspec

    f = msgspec.field
    args = msgspec.defstruct("Args", [
        ("correlation", int | str | None, None),
        ("external_id", int | str | None, f(default=None, name="External id")),
        ("python_id", int | None, f(default=None, name="Python id")),
        ("python_parent_id", int | None, f(default=None, name="Python parent id")),
        ("stream", int | str | None, None),
        ("bytes", int | float | None, None),
        ("name", str | None, None),
        ("input_dims", msgspec.Raw, f(default_factory=msgspec.Raw, name="Input Dims")),
    ], gc=False)
    event = msgspec.defstruct("Event", [
        ("ph", str, ""), ("name", str, ""), ("cat", str, ""), ("pid", int | str, 0), ("tid", int | str, 0),
        ("ts", float, 0.0), ("dur", float, 0.0), ("args", args | None, None),
    ], gc=False)
    trace_file = msgspec.defstruct("File", [("traceEvents", list[event], f(default_factory=list))], gc=False)
    return msgspec.json.Decoder(trace_file)


def _time_analysis_parts(engine) -> dict:
    """Wrap the analysis' phases in timers (in this process only; trainprof is not changed):
    name -> [calls, inclusive seconds]. The Run's parts are computed once, before the rules."""
    acc: dict = {}

    def wrap(obj, attr, key, setter=setattr, consume=False):
        f = getattr(obj, attr)
        acc.setdefault(key, [0, 0.0])

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return list(f(*a, **k)) if consume else f(*a, **k)  # detect may be a generator
            finally:
                acc[key][0] += 1
                acc[key][1] += time.perf_counter() - t
        setter(obj, attr, timed)

    from trainprof.estimate import estimates
    from trainprof.report import prepare

    wrap(estimates, "replay", "estimate.replay.replay (the estimates' what-if replays)")
    wrap(engine, "replay", "estimate.replay.replay (the profiled steady step)")
    wrap(engine, "calibration", "estimate.calibration.calibration (profiler-overhead calibration)")
    wrap(engine, "build_timeline", "estimate.timeline.build_timeline")
    wrap(engine, "launch_join", "trace.launches.launches")
    wrap(engine, "sync_waits", "trace.syncs.sync_waits")
    wrap(engine, "line_times", "trace.line_times.line_times")
    wrap(engine, "estimate_all", "estimate.estimates.estimate_all (all estimates)")
    wrap(engine, "build_line_map", "trace.lines.build_line_map (line attribution)")
    wrap(engine, "unprofiled_line_costs", "trace.lines.unprofiled_line_costs")
    wrap(prepare, "breakdown", "report.breakdown.breakdown")
    wrap(prepare, "step_view", "report.step_view.step_view")
    wrap(prepare, "_previews", "report.prepare (fix previews)")
    wrap(engine, "index_source", "source.index_source")
    wrap(engine.M, "steps", "trace.measures.steps")
    for rule in engine.all_rules():
        wrap(rule, "detect", f"rules: {rule.id}.detect", setter=object.__setattr__, consume=True)
    return acc


def child(kind: str, target: str) -> None:
    t_imp = time.perf_counter()
    extra: dict = {}
    trace = target if not os.path.isdir(target) else None if kind == "hta" else find_trace(target)
    if kind == "read":
        t0 = time.perf_counter()
        data = read_bytes(trace)
        extra["bytes"] = len(data)
    elif kind == "orjson":
        import orjson
        t0 = time.perf_counter()
        doc = orjson.loads(read_bytes(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "orjson_nogc":
        import gc

        import orjson
        t0 = time.perf_counter()
        gc.disable()
        doc = orjson.loads(read_bytes(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "json":
        t0 = time.perf_counter()
        doc = json.loads(read_bytes(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "msgspec_dict":
        import msgspec
        t0 = time.perf_counter()
        doc = msgspec.json.decode(read_bytes(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "msgspec_struct":
        dec = _min_decoder()
        t0 = time.perf_counter()
        doc = dec.decode(read_bytes(trace))
        extra["events"] = len(doc.traceEvents)
    elif kind == "msgspec_tp":
        from trainprof.trace.decode import whole_decoder
        t0 = time.perf_counter()
        doc = whole_decoder.decode(read_bytes(trace))
        extra["events"] = len(doc.traceEvents)
    elif kind == "ijson":
        import ijson
        t0 = time.perf_counter()
        n = 0
        with (gzip.open(trace, "rb") if trace.endswith(".gz") else open(trace, "rb")) as f:
            for _ in ijson.items(f, "traceEvents.item", use_float=True):
                n += 1
        extra["events"] = n
        extra["backend"] = ijson.backend
    elif kind == "tp_load":
        from trainprof.trace.load import load_trace
        t0 = time.perf_counter()
        tr = load_trace(trace)
        extra["events"] = len(tr)
    elif kind in ("tp_report", "tp_report_serial"):
        if kind == "tp_report_serial":
            os.environ["TRAINPROF_JOBS"] = "1"  # the streamed load, all in this one process
        from trainprof.cli import main
        t0 = time.perf_counter()
        try:
            main(["report", target, "-q"], standalone_mode=False)
        except SystemExit as e:
            if e.code:
                raise
    elif kind == "tp_profile":
        import cProfile
        import io
        import pstats

        from trainprof.cli import main
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        main(["report", target, "-q"], standalone_mode=False)
        prof.disable()
        s = io.StringIO()
        st = pstats.Stats(prof, stream=s)
        st.sort_stats("cumulative").print_stats(25)
        extra["cumulative"] = s.getvalue()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        extra["tottime"] = s.getvalue()
        # trainprof's own phases, each with its cumulative time: where the analysis goes
        phases = {"read_bytes", "merge", "load_trace", "steps", "build_line_map", "refine_offset", "build_run",
                  "unprofiled_line_costs", "index_source", "detect", "estimate_all", "calibrate", "_solve",
                  "build_timeline", "launches", "sync_waits", "line_times", "replay", "prepare", "breakdown",
                  "step_view", "_finish", "write", "render"}
        rows = []
        for (fname, line, func), (cc, nc, tt, ct, _) in st.stats.items():
            rel = os.path.relpath(fname, ROOT) if fname.startswith(ROOT) else fname
            if func in phases and rel.startswith(("trainprof", "rules")):
                rows.append([f"{rel}:{line}({func})", nc, round(tt, 3), round(ct, 3)])
        extra["phases"] = sorted(rows, key=lambda r: -r[3])
    elif kind == "tp_stages":
        import gc

        from trainprof import engine
        from trainprof.cli import _finish
        from trainprof.trace import load as L
        stages = []

        def mark(name, t):
            st = _proc_status()
            stages.append({"stage": name, "s": round(time.perf_counter() - t, 3), "rss_mb": round(st["VmRSS"]),
                           "peak_mb": round(st["VmHWM"])})
            _reset_peak()
            return time.perf_counter()

        t0 = t = time.perf_counter()
        _reset_peak()
        tr = L.load_trace(trace)
        t = mark("load_trace: read, gunzip, cut into pieces, decode (in worker processes), merge", t)
        gc.collect()
        t = mark("gc.collect()", t)
        parts = _time_analysis_parts(engine)
        orig = engine.load_trace
        engine.load_trace = lambda *a, **k: tr
        try:
            an = engine.analyze(target)
        finally:
            engine.load_trace = orig
        t = mark("analyze: steps, line map, rules, estimates (trace already loaded)", t)
        _finish(an, an.run_dir, None, None, False, True)
        t = mark("write analysis.json + report.html", t)
        extra["stages"] = stages
        extra["analysis_parts"] = sorted(([k, n, round(t, 3)] for k, (n, t) in parts.items() if n),
                                         key=lambda r: -r[2])
    elif kind == "hta":
        from hta.trace_analysis import TraceAnalysis
        t0 = time.perf_counter()
        an = TraceAnalysis(trace_dir=target)
        t1 = time.perf_counter()
        tb = an.get_temporal_breakdown(visualize=False)
        t2 = time.perf_counter()
        idle = an.get_idle_time_breakdown(visualize=False)
        t3 = time.perf_counter()
        extra.update(load_s=round(t1 - t0, 3), temporal_s=round(t2 - t1, 3), idle_s=round(t3 - t2, 3),
                     temporal=tb.to_dict("records"), idle=idle[0].to_dict("records"))
    else:
        raise SystemExit(f"unknown kind {kind}")
    t1 = time.perf_counter()
    if kind.startswith("tp_"):  # the loader's worker processes, if it started any (joined by now)
        import resource
        me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        extra.update(cpu_s=round(me.ru_utime + me.ru_stime, 2), workers_cpu_s=round(ch.ru_utime + ch.ru_stime, 2),
                     workers_peak_mb=round(ch.ru_maxrss / 1024), jobs=os.environ.get("TRAINPROF_JOBS", "auto"))
        if ch.ru_maxrss:
            from trainprof.trace.load import MAX_WORKERS
            extra["workers_n"] = int(os.environ.get("TRAINPROF_JOBS") or min(os.cpu_count() or 1, MAX_WORKERS))
    print(json.dumps({"op_s": round(t1 - t0, 3), "import_s": round(t0 - t_imp, 3), **extra}, default=str))

