"""measure: every measure in a fresh subprocess (children.py), one at a time; results.jsonl.

Wall time is taken around the operation inside the child (op s: after the imports) and around the
whole process (process s); peak RSS is the child's own ru_maxrss (os.wait4), and the peak of its
process tree's PSS is sampled every 50 ms (the loader's worker processes included). Results go to
OUT/results.jsonl (one line per run; a re-run of a measure replaces its line in the report).

Kinds whose time grows past their budget (ijson: --ijson-max-s, hta: --hta-timeout) are skipped at
larger sizes when the smaller size's rate says they would exceed it; the skip is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from .common import PKG_DIR, ROOT, find_trace, load, run_dirs, size_label, slurp

BARE = ["read", "orjson", "orjson_nogc", "json", "msgspec_dict", "msgspec_struct", "msgspec_tp", "ijson"]
# (kind, formats): what runs on the .json, what on the .json.gz
PLAN = [("read", ("json", "gz")), ("orjson", ("json",)), ("orjson_nogc", ("json",)), ("json", ("json",)),
        ("msgspec_dict", ("json",)), ("msgspec_struct", ("json", "gz")), ("msgspec_tp", ("json",)), ("ijson", ("json",)),
        ("tp_load", ("json", "gz")), ("tp_report", ("json", "gz")), ("tp_report_serial", ("json", "gz")),
        ("tp_stages", ("gz",)), ("tp_profile", ("gz",)), ("hta", ("gz",))]
PROFILE_KINDS = ("tp_profile",)
# The baseline every ratio divides by, and trainprof report against it: best of 3 fresh processes (a
# single run is noisy; how noisy, on which host, is in the notes of bench/LARGE_TRACES.md).
REPEAT = {"msgspec_struct": 3, "msgspec_tp": 3, "tp_report": 3}


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of pid and its child processes (the loader's workers): pages shared
    between them (a forked worker's copy of its parent) are counted once, split among them."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in slurp(f"/proc/{p}/smaps_rollup").splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024.0
                    break
            todo += [int(c) for c in slurp(f"/proc/{p}/task/{p}/children").split()]
        except (OSError, ValueError):
            pass
    return total


def spawn_rusage(cmd: list[str], timeout: float | None, log: str) -> dict:
    """Run cmd; wall time, the child's own peak RSS from os.wait4, and the peak of its process
    tree's PSS, sampled every 50 ms (the loader's worker processes included)."""
    t = time.perf_counter()
    out_path = log + ".out"
    with open(log, "w") as err, open(out_path, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, start_new_session=True)
        status, rus, rc = "ok", None, None
        deadline = None if timeout is None else t + timeout
        tree_peak = 0.0
        while True:
            tree_peak = max(tree_peak, _tree_pss_mb(p.pid))
            pid, st, rus = os.wait4(p.pid, os.WNOHANG)
            if pid:
                rc = os.waitstatus_to_exitcode(st)
                break
            if deadline is not None and time.perf_counter() > deadline:
                os.killpg(p.pid, 9)
                _, st, rus = os.wait4(p.pid, 0)
                rc, status = os.waitstatus_to_exitcode(st), "timeout"
                break
            time.sleep(0.05)
        p.returncode = rc
    wall = time.perf_counter() - t
    res = {"status": status if rc == 0 or status == "timeout" else "error", "rc": rc, "wall_s": round(wall, 2),
           "maxrss_mb": round(rus.ru_maxrss / 1024.0, 1), "tree_pss_mb": round(tree_peak, 1)}
    text = slurp(out_path).strip().splitlines()
    if status == "ok" and rc == 0 and text:
        try:
            res.update(json.loads(text[-1]))
        except json.JSONDecodeError:
            res["stdout"] = text[-1][:500]
    elif rc:
        res["stderr_tail"] = slurp(log)[-1500:]
    return res


def code_state() -> str:
    """A hash of trainprof's code as it is now (the package, rules/, templates/): other work may change
    it between two measures; the report says which measures ran on which state."""
    import hashlib

    h = hashlib.sha1()
    for top in ("trainprof", "rules", "templates"):
        for d, dirs, files in sorted(os.walk(os.path.join(ROOT, top))):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for f in sorted(files):
                if f.endswith((".py", ".j2", ".html", ".js", ".css", ".toml", ".json")):
                    h.update(f.encode())
                    h.update(slurp(os.path.join(d, f), "rb"))
    return h.hexdigest()[:10]


def load_results(out: str) -> list[dict]:
    p = os.path.join(out, "results.jsonl")
    if not os.path.isfile(p):
        return []
    return [json.loads(x) for x in open(p) if x.strip()]


def hta_dir(out: str, rd: str, fmt: str) -> str:
    d = os.path.join(out, "hta", os.path.basename(rd))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    trace = find_trace(rd)
    os.symlink(trace, os.path.join(d, "rank-0.pt.trace.json" + (".gz" if fmt == "gz" else "")))
    return d


def measure(args) -> None:
    name = os.path.basename(os.path.normpath(args.source))
    res_path = os.path.join(args.out, "results.jsonl")
    logs = os.path.join(args.out, "logs")
    os.makedirs(logs, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    profile_sizes = set(args.profile_sizes or [min(args.sizes)])
    rate: dict = {}  # kind -> seconds per MB, from the last size measured
    for prev in load_results(args.out):
        if prev.get("status") == "ok" and prev.get("op_s"):
            rate[prev["kind"]] = max(rate.get(prev["kind"], 0), prev["op_s"] / prev["mb"])
    for mb in sorted(args.sizes):
        meta = load(os.path.join(args.out, f"{name}-{size_label(mb)}.meta.json"))
        dj, dz = run_dirs(args.out, name, mb)
        for kind, fmts in PLAN:
            if only and kind not in only:
                continue
            if kind in PROFILE_KINDS and mb not in profile_sizes:
                continue
            for fmt in fmts:
                if args.formats and fmt not in args.formats:
                    continue
                rd = dj if fmt == "json" else dz
                rec = {"name": name, "mb": mb, "kind": kind, "fmt": fmt, "json_bytes": meta["json_bytes"],
                       "gz_bytes": meta["gz_bytes"], "events": meta["events"], "steps": meta["steps"],
                       "time": time.strftime("%Y-%m-%d %H:%M:%S"), "code": code_state(), "git": git_state()}
                budget = {"ijson": args.ijson_max_s, "hta": args.hta_timeout}.get(kind)
                if budget and kind in rate and rate[kind] * mb > budget:
                    rec.update(status="skipped", why=f"the previous size's rate says ~{rate[kind] * mb:.0f} s, "
                                                     f"over the {budget:.0f} s budget")
                    print(f"{size_label(mb)} {fmt:4} {kind:15} skipped ({rec['why']})", flush=True)
                else:
                    py = args.hta_python if kind == "hta" else sys.executable
                    target = hta_dir(args.out, rd, fmt) if kind == "hta" else rd
                    if kind in BARE or kind == "tp_load":
                        target = find_trace(rd)
                    log = os.path.join(logs, f"{size_label(mb)}-{fmt}-{kind}.log")
                    runs = []
                    for _ in range(REPEAT.get(kind, 1)):
                        runs.append(spawn_rusage([py, PKG_DIR, "_child", kind, target],
                                                 args.hta_timeout if kind == "hta" else args.timeout, log))
                    ok = [x for x in runs if x["status"] == "ok" and x.get("op_s") is not None]
                    r = min(ok, key=lambda x: x["op_s"]) if ok else runs[-1]
                    if len(runs) > 1:
                        r["runs_op_s"] = [x.get("op_s") for x in runs]
                    rec.update(r)
                    if rec["status"] == "ok" and rec.get("op_s"):
                        rate[kind] = rec["op_s"] / mb
                    elif rec["status"] == "timeout":
                        rate[kind] = rec["wall_s"] / mb
                    print(f"{size_label(mb)} {fmt:4} {kind:15} {rec['status']:7} op {rec.get('op_s', '-')!s:>8} s  "
                          f"process {rec['wall_s']:8.1f} s  peak {rec['maxrss_mb']:8.0f} MB", flush=True)
                with open(res_path, "a") as f:
                    f.write(json.dumps(rec, default=str) + "\n")


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "trainprof", "rules"], cwd=ROOT, capture_output=True,
                               text=True, check=False).stdout.strip()
        return head + (" + uncommitted changes to trainprof/ and rules/" if dirty else "")
    except OSError:
        return "?"

