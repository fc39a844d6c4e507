"""report: the .md, written from OUT/results.jsonl (the latest line of each measure wins) and the
environment (versions, machine, code state).

Everything but the block between `<!-- notes:begin -->` and `<!-- notes:end -->` is rewritten;
that block is kept as it is in the existing file: what the numbers show is written there by hand.
This module holds what the measures and the columns mean, and formats; no result of a past run.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import subprocess
import time
from collections import Counter

from .common import MB, ROOT, load, size_label, slurp
from .measure import PLAN, code_state, git_state, load_results

LABEL = {
    "read": "read bytes (+gunzip for .gz)",
    "orjson": "orjson.loads",
    "orjson_nogc": "orjson.loads, GC disabled",
    "json": "json.loads",
    "msgspec_dict": "msgspec.json.decode -> dicts",
    "msgspec_struct": "msgspec -> minimal Struct (gc=False)",
    "msgspec_tp": "msgspec -> trainprof's structs (decode only)",
    "ijson": "ijson.items streamed (yajl2_c)",
    "tp_load": "trainprof load_trace",
    "tp_report": "trainprof report -q (load+analysis+report)",
    "tp_report_serial": "the same, TRAINPROF_JOBS=1 (no worker processes)",
    "tp_stages": "trainprof report, staged (see below)",
    "tp_profile": "trainprof report under cProfile",
    "hta": "HTA 0.5.0 load + temporal + idle breakdown",
}
# the targets, on trainprof report: time over the fastest bare decode, HTA's time over trainprof's,
# peak RSS over the .json's size
TARGET_DECODE, TARGET_HTA, TARGET_RSS = 1.5, 20, 2
NOTES_RE = re.compile(r"<!-- notes:begin -->.*?<!-- notes:end -->", re.DOTALL)
NOTES_EMPTY = "<!-- notes:begin -->\n(findings: write them here; `report` keeps this block)\n<!-- notes:end -->"
DECODERS = ["orjson", "orjson_nogc", "json", "msgspec_dict", "msgspec_struct", "msgspec_tp", "ijson"]


def _versions(hta_python: str | None) -> dict:
    v = {"python": platform.python_version()}
    for mod in ("msgspec", "orjson", "ijson", "numpy", "trainprof", "torch"):
        try:
            m = __import__(mod)
            v[mod] = getattr(m, "__version__", "?")
        except ImportError:
            v[mod] = "not installed"
    try:
        import ijson
        v["ijson"] += f" ({ijson.backend})"
    except ImportError:
        pass
    if hta_python and os.path.exists(hta_python):
        code = ("import importlib.metadata as m, json, platform;"
                "print(json.dumps({k: m.version(k) for k in ('HolisticTraceAnalysis','pandas','numpy')} "
                "| {'python': platform.python_version()}))")
        try:
            v["hta_env"] = json.loads(subprocess.run([hta_python, "-c", code], capture_output=True, text=True,
                                                     timeout=60, check=False).stdout)
        except Exception as e:  # noqa: BLE001
            v["hta_env"] = {"error": str(e)}
    return v


def _gpus() -> str:
    """The machine's GPUs, as nvidia-smi (or the driver's /proc entries) lists them; the measures use none."""
    names: list[str] = []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=False).stdout
        names = [x.strip() for x in out.splitlines() if x.strip()]
    except (OSError, subprocess.SubprocessError):
        for p in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
            try:
                names += [x.split(":", 1)[1].strip() for x in slurp(p).splitlines() if x.startswith("Model:")]
            except OSError:
                pass
    if not names:
        return "no GPU"
    return "GPUs: " + ", ".join(f"{n} x {g}" for g, n in Counter(names).items()) + " (not used by these measures)"


def _source_device(source: str) -> str | None:
    """The GPU the source run was recorded on, from its run.json."""
    try:
        return load(os.path.join(source, "run.json")).get("device") or None
    except (OSError, ValueError):
        return None


def _machine() -> str:
    cpu = "?"
    try:
        for line in slurp("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in slurp("/proc/meminfo").splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}"


def _latest(results: list[dict]) -> dict:
    out = {}
    for r in results:
        out[(r["mb"], r["kind"], r["fmt"])] = r
    return out


def _fmt(x, nd=1) -> str:
    if x is None:
        return "-"
    return f"{x:.{nd}f}" if x < 100 else f"{x:.0f}"


def _ok(x: bool) -> str:
    return "ok" if x else "MISS"


def report(args) -> None:
    results = load_results(args.out)
    if not results:
        raise SystemExit(f"no results in {args.out}/results.jsonl: run measure first")
    by = _latest(results)
    L = ["# Large traces: trainprof against bare JSON decoders and HolisticTraceAnalysis\n",
         f"Written by `python -m bench.large_traces report` from `{args.out}/results.jsonl` "
         f"({time.strftime('%Y-%m-%d')}). Re-run: `python -m bench.large_traces all --hta-python VENV/bin/python`"
         " (see bench/large_traces/__init__.py).\n"]
    L += _setup(args, results, by)
    checks = []
    for mb in sorted({r["mb"] for r in results}):
        L += _size_section(mb, results, by, checks)
    L += _targets(checks)
    # Findings written by hand live in the .md itself, between these markers: kept as they are.
    m = NOTES_RE.search(slurp(args.md)) if os.path.isfile(args.md) else None
    L.append((m.group(0) if m else NOTES_EMPTY) + "\n")
    L += _profile_section(results, by)
    with open(args.md, "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
    print(f"wrote {args.md}")


def _setup(args, results: list[dict], by: dict) -> list[str]:
    v = _versions(args.hta_python)
    name = results[0]["name"]
    L = ["## Setup\n",
         f"- Machine: {_machine()}; {_gpus()}. Every measure ran one at a time, in a fresh process.",
         f"- Python {v['python']}: msgspec {v['msgspec']}, orjson {v['orjson']}, ijson {v['ijson']}, "
         f"numpy {v['numpy']}, torch {v['torch']}, trainprof {v['trainprof']} (`{git_state()}`)."]
    states: dict = {}
    for r in by.values():
        if r["kind"].startswith("tp_") or r["kind"] == "msgspec_tp":
            states.setdefault((r.get("git", "?"), r.get("code", "?")), []).append(r)
    for (g, c), rs in sorted(states.items(), key=lambda kv: -len(kv[1])):
        when = sorted(r["time"] for r in rs)
        kinds = ", ".join(sorted({r["kind"] for r in rs}))
        g = "not recorded" if g == "?" else f"`{g}`"
        L.append(f"- {len(rs)} trainprof rows ({kinds}) measured on git {g}, code state `{c}` (a hash of "
                 f"trainprof/, rules/, templates/: `code_state()`), {when[0]} to {when[-1]}; the code now: "
                 f"`{code_state()}`.")
    he = v.get("hta_env") or {}
    if he:
        L.append(f"- HTA: HolisticTraceAnalysis {he.get('HolisticTraceAnalysis')} in its own venv (Python "
                 f"{he.get('python')}, pandas {he.get('pandas')}, numpy {he.get('numpy')}).")
    metas = []
    for mb in sorted({r["mb"] for r in results}):
        p = os.path.join(args.out, f"{name}-{size_label(mb)}.meta.json")
        if os.path.isfile(p):
            metas.append(load(p))
    if metas:
        m0 = metas[0]
        source = args.source if os.path.basename(os.path.normpath(args.source)) == name else \
            os.path.join(ROOT, "sample_traces", name)
        device = _source_device(source)
        L.append(f"- Traces: `{os.path.relpath(source, ROOT)}` (a real {device + ' ' if device else ''}run: "
                 f"{m0['steps'] // m0['copies']} recorded steps, {m0['period_us'] / 1000:.1f} ms a copy) repeated; "
                 "see bench/large_traces/plan.py for how ids, flows, ProfilerStep numbers, run.json and lines.json "
                 "are kept consistent.\n")
        L.append("| size | copies | steps | events | .json MB | .json.gz MB |")
        L.append("|---|---|---|---|---|---|")
        for m in metas:
            L.append(f"| {size_label(m['mb'])} | {m['copies']} | {m['steps']} | {m['events']:,} | "
                     f"{m['json_bytes'] / MB:.0f} | {m['gz_bytes'] / MB:.1f} |")
        L.append("")
    L.append("Columns: **op s** is the operation's wall time inside the child (file read included, interpreter "
             "start-up and imports not); **process s** the child process's whole wall time; **peak RSS** its "
             "ru_maxrss (the largest of its processes; trainprof's loader runs worker processes on large traces, "
             "whose memory the note's process-tree PSS, sampled every 50 ms, adds in); **x JSON** the peak RSS "
             "over the .json's size; **x fastest** op s over the fastest bare "
             "decode of the same file format (for .json.gz: the minimal Struct decode of the .json.gz, gunzip "
             "included).\n")
    return L


def _size_section(mb: int, results: list[dict], by: dict, checks: list[dict]) -> list[str]:
    """The size's table of measures, its staged run, and (into checks) what the targets table needs."""
    L = [f"## {size_label(mb)}\n"]
    json_mb = next((r["json_bytes"] for r in results if r["mb"] == mb), mb * MB) / MB
    fastest = {}
    for fmt in ("json", "gz"):
        cands = [(by[(mb, k, fmt)]["op_s"], k) for k in DECODERS
                 if (mb, k, fmt) in by and by[(mb, k, fmt)].get("status") == "ok"]
        if cands:
            fastest[fmt] = min(cands)
    L.append("| measure | file | op s | process s | peak RSS MB | x JSON | x fastest | note |")
    L.append("|---|---|---|---|---|---|---|---|")
    for kind, fmts in PLAN:
        for fmt in fmts:
            r = by.get((mb, kind, fmt))
            if r is None:
                continue
            fe = ".json" if fmt == "json" else ".json.gz"
            if r["status"] != "ok":
                note = r.get("why") or (f"killed after {r['wall_s']:.0f} s" if r["status"] == "timeout"
                                        else f"failed (rc {r.get('rc')})")
                L.append(f"| {LABEL[kind]} | {fe} | {r['status']} | {_fmt(r.get('wall_s'))} | "
                         f"{_fmt(r.get('maxrss_mb'), 0)} | | | {note} |")
                continue
            ratio = r["op_s"] / fastest[fmt][0] if fmt in fastest else None
            note = ""
            if kind == "hta":
                note = f"load {r.get('load_s')} s, temporal {r.get('temporal_s')} s, idle {r.get('idle_s')} s"
            elif fastest.get(fmt, (None, None))[1] == kind:
                note = "fastest bare decode"
            elif r.get("workers_cpu_s"):
                note = (f"CPU: {r['cpu_s']} s here + {r['workers_cpu_s']} s in the loader's worker processes; "
                        f"peak PSS of the process tree {r.get('tree_pss_mb', '?')} MB")
            if r.get("runs_op_s"):
                note += f" (best of {len(r['runs_op_s'])}: {', '.join(str(x) for x in r['runs_op_s'])} s)"
            L.append(f"| {LABEL[kind]} | {fe} | {_fmt(r['op_s'], 2)} | {_fmt(r['wall_s'])} | "
                     f"{_fmt(r['maxrss_mb'], 0)} | {r['maxrss_mb'] / json_mb:.2f} | "
                     f"{'' if ratio is None else f'{ratio:.1f}x'} | {note} |")
    L.append("")
    st = by.get((mb, "tp_stages", "gz"))
    if st and st.get("stages"):
        L.append("trainprof report on the .json.gz, stage by stage (RSS after the stage; peak during it):\n")
        L.append("| stage | s | RSS MB | peak MB |")
        L.append("|---|---|---|---|")
        for s in st["stages"]:
            L.append(f"| {s['stage']} | {s['s']} | {s['rss_mb']} | {s['peak_mb']} |")
        L.append("")
        if st.get("analysis_parts"):
            L.append("Inside the analyze stage (timers around each phase, no profiler; inclusive, so nested "
                     "phases overlap; a rule's detect includes the Context properties it is first to ask for):\n")
            L.append("| phase | calls | s |")
            L.append("|---|---|---|")
            for k_, n_, t_ in st["analysis_parts"]:
                if t_ >= 0.005:
                    L.append(f"| {k_} | {n_} | {t_} |")
            L.append("")
    for fmt in ("json", "gz"):
        rep, hta = by.get((mb, "tp_report", fmt)), by.get((mb, "hta", fmt))
        if not rep or rep.get("status") != "ok" or fmt not in fastest:
            continue
        c = {"mb": mb, "fmt": fmt, "report_s": rep["op_s"], "report_proc_s": rep["wall_s"],
             "fastest_s": fastest[fmt][0], "fastest": fastest[fmt][1], "rss_mb": rep["maxrss_mb"],
             "json_mb": json_mb, "tree_mb": rep.get("tree_pss_mb")}
        if hta:
            c["hta_status"] = hta["status"]
            c["hta_s"] = hta.get("op_s") if hta["status"] == "ok" else hta.get("wall_s")
        checks.append(c)
    return L


def _targets(checks: list[dict]) -> list[str]:
    L = ["## The issue's targets, checked\n",
         f"| size | file | trainprof report s | fastest bare decode s | ratio (target <= {TARGET_DECODE}x) | HTA s | "
         f"HTA / trainprof (target >= {TARGET_HTA}x) | peak RSS / JSON size (target <= {TARGET_RSS}x) |",
         "|---|---|---|---|---|---|---|---|"]
    for c in checks:
        ratio = c["report_s"] / c["fastest_s"]
        if c.get("hta_status") == "ok":
            hr = c["hta_s"] / c["report_s"]
            h, hr = f"{c['hta_s']:.1f}", f"{hr:.1f}x {_ok(hr >= TARGET_HTA)}"
        elif c.get("hta_status") == "timeout":
            h, hr = f"> {c['hta_s']:.0f} (timeout)", f"> {c['hta_s'] / c['report_s']:.1f}x"
        elif c.get("hta_status"):
            h, hr = c["hta_status"], ""
        else:
            h, hr = "-", ""
        rr = c["rss_mb"] / c["json_mb"]
        tree = (f"; the process tree's peak PSS {c['tree_mb'] / c['json_mb']:.2f}x"
                f" {_ok(c['tree_mb'] / c['json_mb'] <= TARGET_RSS)}") if c.get("tree_mb") else ""
        L.append(f"| {size_label(c['mb'])} | {'.json' if c['fmt'] == 'json' else '.json.gz'} | {c['report_s']:.1f} | "
                 f"{c['fastest_s']:.2f} ({c['fastest']}) | {ratio:.1f}x {_ok(ratio <= TARGET_DECODE)} | {h} | {hr} | "
                 f"main process {rr:.2f}x {_ok(rr <= TARGET_RSS)}{tree} |")
    L.append("")
    return L


def _profile_section(results: list[dict], by: dict) -> list[str]:
    prof = [r for r in results if r["kind"] == "tp_profile" and r.get("status") == "ok"]
    if not prof:
        return []
    p = prof[-1]
    L = [f"## cProfile of `trainprof report` on the {size_label(p['mb'])} .json.gz\n",
         f"(cProfile's own overhead inflates per-call Python work: {p['op_s']:.1f} s under the profiler "
         f"against {by.get((p['mb'], 'tp_report', 'gz'), {}).get('op_s', '?')} s without.) "
         "Top 25 by cumulative time:\n",
         "```", _trim_pstats(p["cumulative"]), "```\n"]
    if p.get("phases"):
        L.append("trainprof's phases (cumulative s under cProfile; a rule's `detect` includes the context "
                 "properties it is first to ask for, such as the replay timeline and its calibration):\n")
        L.append("| function | calls | own s | cumulative s |")
        L.append("|---|---|---|---|")
        for name_, nc, tt, ct in p["phases"]:
            if ct >= 0.01:
                L.append(f"| `{name_}` | {nc} | {tt} | {ct} |")
        L.append("")
    L += ["Top 15 by own time:\n", "```", _trim_pstats(p["tottime"]), "```\n"]
    return L


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    i = next((k for k, x in enumerate(lines) if x.strip().startswith("ncalls")), 0)
    out = []
    for x in lines[i:]:
        if not x.strip():
            continue
        x = x.replace(ROOT + "/", "")
        x = re.sub(r"/\S*/lib/python3\.\d+/(site-packages/)?", "", x)
        out.append(x[:170])
    return "\n".join(out)
