"""bench/corpus.py's scoring: its records (OUT/corpus.jsonl) against trainprof's estimates, as
the corpus table of bench/ESTIMATES.md (`python bench/corpus.py report OUT...`; what is scored:
bench/corpus.py's docstring)."""

from __future__ import annotations

import json
import math
import os

from estimates import report_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _reanalyze(run: str, select: list[str] | None = None) -> dict | None:
    """estimates.report_json, None where the run cannot be read (its trace was too large to
    bring back)."""
    try:
        return report_json(run, select)
    except (RuntimeError, OSError, ValueError):
        return None


def _from_analysis(a: dict) -> dict:
    return {"base_ms": a["steps"]["unprofiled_ms"], "combined": (a.get("estimate") or {}).get("combined_speedup"),
            "findings": [{k: f.get(k) for k in ("rule", "line", "speedup", "severity")}
                         | {"trial": (f.get("trial") or {}).get("speedup"),
                            "bound": (f.get("estimate") or {}).get("upper_bound")} for f in a["findings"][:5]]}


def _rounds(orig: list, ms: list) -> list[float]:
    """A variant's speedup in each round where both it and the original were timed."""
    return [o / m for o, m in zip(orig, ms) if o and m]


def _ok(pred, meas, tol=0.25) -> bool:
    return bool(pred and meas) and abs(math.log(pred / meas)) <= math.log(1 + tol)


def _spread(rec: dict, key) -> tuple[float, float] | None:
    """The per-round speedups of the measured variant `key` (rule, line), lowest and highest: where
    they are further apart than the tolerance, the host's noise alone can make a row miss (or hit)."""
    m = next((m for m in rec.get("measured") or [] if (m["rule"], m["line"]) == key), None)
    sp = _rounds(rec.get("original_ms") or [], m["ms"]) if m else []
    return (min(sp), max(sp)) if len(sp) > 1 else None


def score(rec: dict) -> dict:
    meas = {(m["rule"], m["line"]): m["speedup"] for m in rec.get("measured") or [] if m["speedup"]}
    fixes = {k: v for k, v in meas.items() if k[0] not in ("combined-safe", "fixed", "proposed")}
    top = (rec.get("findings") or [{}])[0]
    best = max(fixes.items(), key=lambda kv: kv[1]) if fixes else None
    fixed = meas.get(("fixed", None))
    if fixed:
        # an example: the truth is its own .fixed.py, against the estimate of the rules it applies;
        # where that fix gains, it must be what trainprof named first
        # (trainprof's own fix of those rules where it was timed: the values the estimate is of)
        key = ("proposed", None) if meas.get(("proposed", None)) else ("fixed", None)
        pred = rec.get("fixed_pred")
        dominant = (top.get("rule") in rec["select"]) if fixed >= 1.1 else \
            not ((top.get("rule") in rec["select"]) and (top.get("speedup") or 1) >= 1.1)
    elif "combined-safe" in {k[0] for k in meas}:
        key, pred = next(k for k in meas if k[0] == "combined-safe"), rec.get("combined")
    else:
        key, pred = (top.get("rule"), top.get("line")), top.get("speedup")
    truth = meas.get(key)
    if fixed:
        pass
    elif best and best[1] >= 1.1:
        dominant = best[0] == (top.get("rule"), top.get("line"))
    elif best:  # fixes were run and none gains: the first finding must not promise a gain either
        dominant = not (top.get("speedup") or 1) >= 1.1 or bool(top.get("bound"))
    else:
        dominant = None  # nothing was run: not scored
    trials = [(m["trial"], m["speedup"]) for m in rec.get("measured") or [] if m["trial"] and m["speedup"]]
    return {"pred": pred, "truth": truth, "within": _ok(pred, truth) if truth else None, "best": best,
            "own": key == ("proposed", None),
            "spread": _spread(rec, key) if truth else None,
            "dominant": dominant, "trials": trials, "trials_ok": all(_ok(t, m, 0.10) for t, m in trials)}


def _range(spread) -> str:
    return f" ({spread[0]:.3g}-{spread[1]:.3g})" if spread and not _ok(*spread) else ""


def report(paths: list[str]) -> str:
    recs, rescored = {}, set()
    for p in paths:
        runs = os.path.join(p, "runs") if os.path.isdir(p) else os.environ.get("RUNS")
        p = os.path.join(p, "corpus.jsonl") if os.path.isdir(p) else p
        for line in open(p):
            r = json.loads(line)
            recs[r["name"]] = r  # the latest run of a script
            # the run's own files, where they came back: scored by the trainprof of now
            run = os.path.join(runs, r["name"]) if runs else None
            if run and not r.get("error") and os.path.isfile(os.path.join(run, "run.json")):
                a = _reanalyze(run)
                if a is not None:
                    r.update(_from_analysis(a))
                    if r.get("select"):
                        sel = _reanalyze(run, r["select"])
                        r["fixed_pred"] = (sel.get("estimate") or {}).get("combined_speedup") if sel else None
                    rescored.add(r["name"])
    rows = ["| script | base ms | top finding | estimate | trial | measured (its fix) | combined est. / measured | "
            "dominant named | trials within 10% | trial cost s |", "|---|---|---|---|---|---|---|---|---|---|"]
    n = within = dom = dom_n = tri = tri_n = noisy = 0
    for name, r in sorted(recs.items()):
        if r.get("error") or r.get("base_ms") is None:
            why = f"failed: {r['error'][:80]}" if r.get("error") else "stopped (its time limit) before the analysis ended"
            rows.append(f"| {name} | {why} | | | | | | | | |")
            continue
        s, top = score(r), (r.get("findings") or [{}])[0]
        own = next((m["speedup"] for m in r.get("measured") or [] if (m["rule"], m["line"]) == (top.get("rule"), top.get("line"))), None)
        fmt = lambda x: f"{x:.3g}x" if x else "-"  # noqa: E731
        n += s["truth"] is not None
        noisy += bool(_range(s["spread"])) and not s["within"]
        within += bool(s["within"])
        dom_n += s["dominant"] is not None
        dom += bool(s["dominant"])
        tri += sum(_ok(t, m, 0.10) for t, m in s["trials"])
        tri_n += len(s["trials"])
        rows.append(f"| {name} | {r['base_ms']:.3g} | {top.get('rule', '-')}:{top.get('line', '')} | {fmt(top.get('speedup'))}"
                    f"{' (bound)' if top.get('bound') else ''} | {fmt(top.get('trial'))} | {fmt(own)} | "
                    f"{fmt(s['pred'])} / {fmt(s['truth'])}{_range(s['spread'])}{' (its own fix)' if s['own'] else ''} "
                    f"{'ok' if s['within'] else 'MISS' if s['truth'] else ''} | "
                    f"{'-' if s['dominant'] is None else 'yes' if s['dominant'] else 'NO'} | {sum(_ok(t, m, 0.10) for t, m in s['trials'])}/{len(s['trials'])} | "
                    f"{r.get('trial_s') or '-'} |")
    dev = next((r.get("device") for r in recs.values() if r.get("device")), "?")
    rows.append("")
    rows.append(f"On {dev}, {len(recs)} scripts: estimate within 25% of measured on {within} of the {n} with a "
                f"measured fix; dominant named on {dom} of the {dom_n} where fixes ran; trials within 10% of the "
                f"independent measurement: {tri} of {tri_n}. '-': nothing measured (no fix of the script's own was tried)."
                + (f" {noisy} of the misses have a measured speedup whose rounds lie further apart than 25% (in"
                   " brackets): the host's noise, not only the estimate." if noisy else "")
                + (" '(its own fix)': an example timed with trainprof's own codemod of its rules (the values"
                   " it chose: a worker count), not the example's .fixed.py." if any(score(r)["own"] for r in recs.values()
                                                                                      if r.get("base_ms") is not None and not r.get("error")) else "")
                + (f" Estimates of {len(rescored & set(recs))} scripts re-read from their saved runs by this trainprof."
                   if rescored else ""))
    return "\n".join(rows)


def write_report(paths: list[str]) -> None:
    md = os.path.join(ROOT, "bench", "ESTIMATES.md")
    text = open(md).read() if os.path.exists(md) else ""
    block = f"<!-- corpus:begin -->\n{report(paths)}\n<!-- corpus:end -->"
    if "<!-- corpus:begin -->" in text:
        a, rest = text.split("<!-- corpus:begin -->", 1)
        text = a + block + rest.split("<!-- corpus:end -->", 1)[1]
    else:
        text += "\n## Real scripts (bench/corpus.py)\n\n" + block + "\n"
    open(md, "w").write(text)
    print(report(paths))
