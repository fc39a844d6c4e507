"""The terminal summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .breakdown import LABELS, PARTS
from .prepare import Report

SEV_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def render(rep: Report, console: Console | None = None) -> None:
    con = console or Console(highlight=False)
    a, b = rep.analysis, rep.breakdown
    un = f"{a.unprofiled_ms:.3g} ms unprofiled, " if a.unprofiled_ms else ""
    con.print(f"[bold]{a.script or a.trace_path}[/]  on {a.device}, {a.n_steps} steps recorded")
    con.print(f"step time: {un}{a.profiled_ms:.3g} ms profiled"
              + (f"; GPU busy {100 * b['gpu_busy']:.0f}%" if b.get("gpu_busy") is not None else "; no CUDA activity"))
    total = b["step_ms"] or 1.0
    parts = "  ".join(f"{LABELS[k]} {100 * b['parts'][k] / total:.0f}%" for k in PARTS)
    con.print(f"where the step goes (training thread): {parts}")
    if a.combined:
        c = a.combined
        con.print(f"all findings fixed: ~{c.new_ms:.3g} ms per step, [bold]{c.speedup:.2f}x[/] "
                  f"({c.after}) [dim]-- {c.calibration}[/]")
    if a.trial:
        t = a.trial
        con.print(f"the safe fixes together, run: measured [bold]{t['speedup']:.2f}x[/] ({t['low']:.3g}-{t['high']:.3g}x "
                  f"over {t['rounds']} rounds; {t['change']})")
    if rep.steady:
        con.print(rep.steady, style="dim", markup=False)
    for r in rep.ranks:
        con.print(f"rank {r['rank']}: compute {r['compute_ms']:.3g} ms, collectives {r['comm_ms']:.3g} ms "
                  f"({100 * r['overlap']:.0f}% overlapped), exposed {r['exposed_ms']:.3g} ms, waiting for "
                  f"other ranks {r['waited_ms']:.3g} ms, late {r['late_ms']:.3g} ms [dim](profiled, per step)[/]")
    for note in a.notes:
        con.print(f"[dim]note: {note}[/]")
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
                save, sp = f"{pre}{e.saving_ms:.3g} ms", f"{pre}{e.speedup:.2f}x"
            if f.trial is not None:  # measured beats estimated
                sp = f"{f.trial.speedup:.2f}x run"
            t.add_row(str(i), save, sp, Text(f.rule, style=SEV_STYLE.get(f.severity, "")), f"{f.path}:{f.line}")
        con.print()
        con.print(t)
        for i, f in enumerate(a.findings, 1):
            ev = "; ".join(x.text() for x in f.evidence)
            con.print(f"\n[bold]{i}. {f.rule}[/] {f.path}:{f.line}")
            con.print(f"   {f.message}", markup=False)
            con.print(f"   [dim]{ev}[/]")
            if f.hot_lines:
                con.print("   a batch's time, line by line: "
                          + "; ".join(f"{h.path}:{h.line} {h.ms:.3g} ms" for h in f.hot_lines), markup=False)
            if f.estimate:
                con.print(f"   [dim]estimate ({f.estimate.confidence} confidence): {f.estimate.basis}; {f.estimate.after}[/]")
            if f.trial is not None:
                est = f" vs ~{f.estimate.speedup:.2f}x estimated" if f.estimate else ""
                con.print(f"   trial: {f.trial.text}{est}; {f.trial.parity}", markup=False)
            if f.fix:
                safety = f.fix.safety or "advice only"
                con.print(f"   fix ({safety}): {f.fix.summary}")
    if a.not_run:
        con.print("\n[dim]not run in the recorded steps (no cost here): "
                  + "; ".join(f"{f.rule} at {f.path}:{f.line}" for f in a.not_run) + "[/]")
    if a.cheap:
        con.print("\n[dim]suspected by lint, measured and cheap here: "
                  + "; ".join(f"{r} at {p}:{ln} (the line: {ms:.2g} ms/step)" for r, p, ln, ms in a.cheap) + "[/]")
    if a.skipped:
        con.print("\n[dim]skipped: " + "; ".join(f"{r} ({why})" for r, why in a.skipped) + "[/]")
