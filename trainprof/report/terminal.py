"""The terminal summary: wrapped to the terminal's width on a terminal, whole lines when piped
(a file, `grep`, a CI log); numbers as people write them (`1,205 ms`, never `1.2e+03`)."""

from __future__ import annotations

import os
import re
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..finding import fmt_num
from .breakdown import LABELS, PARTS
from .prepare import Report

SEV_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
PIPED_WIDTH = 100_000  # no wrapping: a line is as long as its text
_EXP = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?e[+-]\d+)(?![\w.])")


def n(v) -> str:
    return fmt_num(float(v))


def plain(text: str) -> str:
    """A text made elsewhere (a rule's message, an estimate's basis), its numbers in `%.3g`
    written out: `1.2e+03 ms` as `1,200 ms`; code quoted in backticks is left as it is."""
    parts = text.split("`")
    return "`".join(p if k % 2 else _EXP.sub(lambda m: fmt_num(float(m[1])), p) for k, p in enumerate(parts))


def _console() -> Console:
    """stdout's console; where stdout is not a terminal and COLUMNS is unset, lines are not wrapped."""
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def render(rep: Report, console: Console | None = None) -> None:
    con = console or _console()
    a, b = rep.analysis, rep.breakdown
    un = f"{n(a.unprofiled_ms)} ms unprofiled, " if a.unprofiled_ms else ""
    con.print(f"[bold]{a.script or a.trace_path}[/]  on {a.device}, {a.n_steps} steps recorded")
    con.print(f"step time: {un}{n(a.profiled_ms)} ms profiled"
              + (f"; GPU busy {100 * b['gpu_busy']:.0f}%" if b.get("gpu_busy") is not None else "; no CUDA activity"))
    total = b["step_ms"] or 1.0
    parts = "  ".join(f"{LABELS[k]} {100 * b['parts'][k] / total:.0f}%" for k in PARTS)
    con.print(f"where the step goes (training thread): {parts}")
    if a.combined:
        c = a.combined
        con.print(f"all findings fixed: ~{n(c.new_ms)} ms per step, [bold]{c.speedup:.2f}x[/] "
                  f"({plain(c.after)}) [dim]-- {plain(c.calibration)}[/]")
    if a.trial:
        t = a.trial
        con.print(f"the safe fixes together, run: measured [bold]{t['speedup']:.2f}x[/] ({n(t['low'])}-{n(t['high'])}x "
                  f"over {t['rounds']} rounds; {t['change']})")
    if rep.steady:
        con.print(plain(rep.steady), style="dim", markup=False)
    for r in rep.ranks:
        con.print(f"rank {r['rank']}: compute {n(r['compute_ms'])} ms, collectives {n(r['comm_ms'])} ms "
                  f"({100 * r['overlap']:.0f}% overlapped), exposed {n(r['exposed_ms'])} ms, waiting for "
                  f"other ranks {n(r['waited_ms'])} ms, late {n(r['late_ms'])} ms [dim](profiled, per step)[/]")
    for note in a.notes:
        con.print(f"[dim]note: {plain(note)}[/]")
    if not a.findings:
        con.print("\n[green]no findings[/]")
    else:
        t = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
        t.add_column("#", justify="right")
        t.add_column("saves/step", justify="right")
        t.add_column("speedup", justify="right")
        t.add_column("rule")
        t.add_column("where", overflow="fold")
        for i, f in enumerate(a.findings, 1):
            e = f.estimate
            if e is None:
                save, sp = "-", "-"
            else:
                pre = "<=" if e.bound else "~"
                save, sp = f"{pre}{n(e.saving_ms)} ms", f"{pre}{e.speedup:.2f}x"
            if f.trial is not None:  # measured beats estimated (rounds that disagree: their least)
                sp = f"{f.trial.speedup:.2f}x run" if f.trial.agrees else f">={f.trial.low:.2f}x run"
            t.add_row(str(i), save, sp, Text(f.rule, style=SEV_STYLE.get(f.severity, "")), f"{f.path}:{f.line}")
        con.print()
        con.print(t)
        for i, f in enumerate(a.findings, 1):
            ev = "; ".join(x.text() for x in f.evidence)
            con.print(f"\n[bold]{i}. {f.rule}[/] {f.path}:{f.line}")
            con.print(f"   {plain(f.message)}", markup=False)
            if ev:
                con.print(f"   [dim]{ev}[/]")
            if f.hot_lines:
                con.print("   a batch's time, line by line: "
                          + "; ".join(f"{h.path}:{h.line} {n(h.ms)} ms" for h in f.hot_lines), markup=False)
            if f.estimate:
                con.print(f"   [dim]estimate ({f.estimate.confidence} confidence): {plain(f.estimate.basis)}; "
                          f"{plain(f.estimate.after)}[/]")
            if f.trial is not None:
                est = f" vs ~{f.estimate.speedup:.2f}x estimated" if f.estimate else ""
                con.print(f"   trial: {plain(f.trial.text)}{est}; {plain(f.trial.parity)}", markup=False)
            if f.fix:
                safety = f.fix.safety or "advice only"
                con.print(f"   fix ({safety}): {f.fix.summary}")
    if a.not_run:
        con.print("\n[dim]not run in the recorded steps (no cost here): "
                  + "; ".join(f"{f.rule} at {f.path}:{f.line}" for f in a.not_run) + "[/]")
    if a.cheap:
        con.print("\n[dim]suspected by lint, measured and cheap here: "
                  + "; ".join(f"{r} at {p}:{ln}" + (f" (the line: {ms:.2g} ms/step)" if ms is not None else "")
                             for r, p, ln, ms in a.cheap) + "[/]")
    if a.skipped:
        con.print("\n[dim]skipped: " + "; ".join(f"{r} ({why})" for r, why in a.skipped) + "[/]")
