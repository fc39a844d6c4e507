"""The command line: thin; every command calls the library."""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .cli_apply import apply, print_verified
from .cli_group import Group, note_ours, script_args
from .cli_options import output_options, selected, verify_options
from .errors import TrainprofError, UsageError


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trainprof")
def main():
    """Find what slows your PyTorch training, measured on your own run.

    Exit codes: 0 done; 1 usage or input (the command line, a file refused; `lint`: findings at
    --fail-on); 2 the script's run failed; 3 a trace or run directory unreadable; 130 Ctrl-C;
    70 a bug of ours."""


def _finish(analysis, run_dir, json_path, html_path, open_html, quiet):
    from .capture import rundir
    from .report import html, jsonout, terminal
    from .report.prepare import prepare

    if run_dir and not os.access(run_dir, os.W_OK):
        click.echo(f"trainprof: note: {run_dir} is read-only: analysis.json and report.html not written there",
                   err=True)
        run_dir = None
    rep = prepare(analysis)
    html_path = html_path or (os.path.join(run_dir, rundir.REPORT_HTML) if run_dir else None)
    run_json = os.path.join(run_dir, rundir.ANALYSIS_JSON) if run_dir else None
    for write, path in ((jsonout.write, run_json), (jsonout.write, json_path), (html.write, html_path)):
        if path:
            try:
                write(rep, path)
            except OSError as e:
                raise TrainprofError(f"cannot write {path}: {e.strerror}") from None
    if not quiet:
        terminal.render(rep)
        if run_dir:
            click.echo(f"\nrun directory: {run_dir}")
        if html_path:
            click.echo(f"report: {html_path}")
        if run_dir and any(f.fix is not None and f.fix.safety for f in analysis.findings):
            click.echo(f"apply a fix: trainprof apply {run_dir} --fix N  (N: the finding's number; "
                       "--dry-run shows the diff first)")
    if open_html and html_path:
        click.launch(os.path.abspath(html_path))


@main.command(context_settings={"allow_interspersed_args": False})
@click.argument("script", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--wait", default=5, show_default=True, type=click.IntRange(min=1),
              help="Unprofiled steps timed before profiling, at least (steady state may take more).")
@click.option("--settle", default=60.0, show_default=True, metavar="SECONDS", type=click.FloatRange(min=0),
              help="How long to look for steady state before profiling (windows of steps that agree, "
                   "a DataLoader's queue drained); 0: take the --wait steps as they come.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0),
              help="Profiler warm-up steps (discarded).")
@click.option("--active", default=3, show_default=True, type=click.IntRange(min=1), help="Steps recorded.")
@click.option("--timeout", default=300.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds before giving up on the script.")
@click.option("--step-marker", type=click.Choice(["optimizer", "backward"]), default="optimizer", show_default=True,
              help="What ends a training step.")
@click.option("--logdir", default="trainprof_runs", show_default=True, help="Where run directories go.")
@click.option("--run-dir", default=None, help="Exact run directory (default: LOGDIR/<script>-<time>).")
@click.option("--no-stack", is_flag=True, help="Record without Python stacks (less overhead, coarser attribution).")
@click.option("--full-run", is_flag=True, help="Let the script finish instead of stopping after the trace.")
@click.option("--show-output", is_flag=True, help="Show the script's output instead of saving it to output.log.")
@click.option("--nproc-per-node", "nproc", type=click.IntRange(min=1), default=None,
              help="Run SCRIPT on N ranks through torchrun (one trace per rank).")
@click.option("--source-root", "source_roots", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help="A folder whose code is yours (repeatable): lines are followed there only. Default: the "
                   "script's folder and any imported code outside site-packages and the standard library.")
@click.option("--trials", "do_trials", is_flag=True,
              help="Then run the top fixes (patched copies, unprofiled, interleaved with the original) and measure them.")
@click.option("--trial-budget", default=180.0, show_default=True, metavar="SECONDS", type=click.FloatRange(min=0),
              help="About how long the trials may take (two rounds at least).")
@output_options
def analyze(script, args, wait, settle, warmup, active, timeout, step_marker, logdir, run_dir, no_stack,
            full_run, show_output, nproc, source_roots, do_trials, trial_budget, select, json_path, html_path, open_html,
            quiet):
    """Run SCRIPT [ARGS] under the profiler for a few steps and report what slows it.

    trainprof's options go before SCRIPT; everything after SCRIPT is the script's (as with
    `python -m cProfile`; a `--` right after SCRIPT is dropped), and a note says so where the
    script gets one of trainprof's option names:

    \b
        trainprof analyze --trials --run-dir out train.py --lr 3e-4

    The script runs unmodified in a child process; trainprof stops it once the
    trace is written. A distributed run: `--nproc-per-node N SCRIPT`, or
    `trainprof analyze -- torchrun [OPTIONS] SCRIPT [ARGS]`.
    """
    from .capture import CaptureOptions, capture, launch, rundir
    from .engine import analyze as run_analysis
    from .errors import Interrupted
    from .report.progress import Progress

    only = selected(select)
    spec = launch.parse(script, script_args(args), nproc)
    if spec is not None:
        script, args = spec.script, spec.args
    else:
        args = script_args(args)
    if not os.path.isfile(script):
        raise UsageError(f"script not found: {script}")
    note_ours(args, "SCRIPT")
    out = run_dir or rundir.new_run_dir(script, logdir)
    os.makedirs(out, exist_ok=True)
    opts = CaptureOptions(wait=wait, warmup=warmup, active=active, settle=settle, timeout=timeout, step_marker=step_marker,
                          with_stack=not no_stack, full_run=full_run, show_output=show_output,
                          launcher=spec.launcher if spec is not None else None,
                          source_roots=list(source_roots) or None)
    with Progress(enabled=not quiet and not show_output) as progress:
        capture(script, list(args), out, opts, progress=progress.update)
        progress.update("analyzing", 0, 0)
        try:
            analysis = run_analysis(out, script=script, only=only, progress=progress.update)
        except KeyboardInterrupt:  # the run itself is complete: say how to analyze it later
            raise Interrupted(f"interrupted while analyzing; the run is saved (`trainprof report {out}` "
                              "analyzes it)") from None
    if do_trials:
        analysis = _trials(analysis, out, trial_budget, only, quiet)
    _finish(analysis, out, json_path, html_path, open_html, quiet)


def _trials(analysis, run_dir, budget, only, quiet):
    """Write the analysis, run the trials of its top fixes, and analyze again (with them)."""
    from .capture import rundir
    from .engine import analyze as run_analysis
    from .fix.trials import run_trials
    from .report import jsonout
    from .report.prepare import prepare

    jsonout.write(prepare(analysis), os.path.join(run_dir, rundir.ANALYSIS_JSON))
    say = (lambda s: click.echo(f"trial: {s}", err=True)) if not quiet else None
    run_trials(run_dir, budget, progress=say)
    return run_analysis(run_dir, script=analysis.script, only=only)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--trial-budget", default=180.0, show_default=True, metavar="SECONDS",
              help="About how long the trials may take (two rounds at least).")
@click.option("--script", default=None, type=click.Path(dir_okay=False), help="The script (if outside RUN_DIR).")
@output_options
def trials(run_dir, trial_budget, script, select, json_path, html_path, open_html, quiet):
    """Run the top fixes of RUN_DIR's analysis and measure them: patched copies of the script,
    unprofiled, in fresh processes interleaved with the original; knobs set at run time (num_workers
    swept, TF32, fused optimizers, torch.compile for a launch-bound step).
    The user's files are never touched; results go to RUN_DIR/trials.json and the report."""
    from .engine import analyze as run_analysis

    if not os.path.isfile(os.path.join(run_dir, "run.json")):
        raise TrainprofError(f"{run_dir}: not a run directory (no run.json)")
    only = selected(select)
    analysis = _trials(run_analysis(run_dir, script=script, only=only), run_dir, trial_budget, only, quiet)
    _finish(analysis, run_dir, json_path, html_path, open_html, quiet)


@main.command()
@click.argument("target", type=click.Path())
@click.option("--script", default=None, type=click.Path(dir_okay=False),
              help="The script the trace came from; its folder's .py files may be read (default: only RUN_DIR's).")
@output_options
def report(target, script, select, json_path, html_path, open_html, quiet):
    """Re-analyze a saved run (RUN_DIR) or a bare .pt.trace.json[.gz], running nothing."""
    from .engine import analyze as run_analysis
    from .report.progress import Progress

    with Progress(enabled=not quiet) as progress:  # shown on a terminal only
        analysis = run_analysis(target, script=script, only=selected(select), progress=progress.update)
    _finish(analysis, analysis.run_dir, json_path, html_path, open_html, quiet)


main.add_command(apply)


@main.command(context_settings={"allow_interspersed_args": False})
@click.argument("original", type=click.Path(dir_okay=False))
@click.argument("patched", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verify_options
def verify(original, patched, args, skip, steps, rounds, parity_steps, timeout):
    """Time ORIGINAL against PATCHED [ARGS], unprofiled, in interleaved rounds, and
    check that their first losses match bit for bit.

    trainprof's options go before ORIGINAL; everything after PATCHED is the scripts' (a `--`
    right after it is dropped)."""
    from .fix.verify import verify as run_verify

    args = script_args(args)
    for s in (original, patched):
        if not os.path.isfile(s):
            raise UsageError(f"script not found: {s}")
    note_ours(args, "PATCHED")
    v = run_verify(original, patched, args, skip, steps, rounds, parity_steps, timeout)
    print_verified(v, None)


@main.command()
@click.argument("scripts", nargs=-1, required=True, type=click.Path())
@click.option("--format", "--output-format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True)
@click.option("--fail-on", type=click.Choice(["info", "low", "medium", "high", "never"]), default="medium",
              show_default=True, help="Exit 1 when a finding is at least this severe.")
@click.option("--select", default=None, metavar="RULE[,RULE]",
              help="Run only these rules (over [tool.trainprof] select in pyproject.toml).")
@click.option("--ignore", default=None, metavar="RULE[,RULE]", help="Leave these rules out (added to the file's).")
@click.option("--config", "config", default=None, type=click.Path(dir_okay=False),
              help="This pyproject.toml's [tool.trainprof] (default: the nearest one above each file).")
@click.option("--statistics", is_flag=True, help="Count the findings by rule instead of listing them.")
@click.option("-o", "--output", default=None, help="Write the report here instead of printing it.")
def lint(scripts, fmt, fail_on, select, ignore, config, statistics, output):
    """Static checks of SCRIPTS (files, or folders of *.py): no run, no GPU (for CI).
    What they find is suspected, not measured; `trainprof analyze` measures it. `# noqa` or
    `# noqa: RULE` on a line leaves its findings out."""
    from .lint import at_least, lint_paths, render
    from .lint import statistics as stats

    linted, errors = lint_paths(scripts, selected(select), selected(ignore), config)
    for e in errors:
        click.echo(f"trainprof: error: {e}", err=True)
    found = [f for lt in linted for f in lt.findings]
    text = stats(linted) if statistics else render(linted, fmt)
    if output:
        from .files import write_atomic

        write_atomic(output, text.encode())
    else:
        click.echo(text, nl=False)
    if errors or (fail_on != "never" and at_least(found, fail_on)):
        sys.exit(1)


@main.command("tensorboard")
@click.argument("target", required=False)
@click.option("--port", type=int, default=None, help="Port (default: a free one).")
def tensorboard_cmd(target, port):
    """Open RUN_DIR, or every run under LOGDIR (default ./trainprof_runs), in TensorBoard's
    PyTorch Profiler plugin on 127.0.0.1; Ctrl-C stops it."""
    import multiprocessing
    import signal
    import time

    from .report.tensorboard import launch

    url = launch(target, port)
    click.echo(f"TensorBoard: {url}   (Ctrl-C stops it; from another machine: ssh -L PORT:127.0.0.1:PORT this-host)")

    def stop(signum, frame):  # SIGTERM, SIGHUP: as Ctrl-C
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        # The plugin parses traces in processes of its own: they would outlive the server.
        for child in multiprocessing.active_children():
            child.terminate()


@main.command("rules")
@click.argument("rule_id", required=False)
def rules_cmd(rule_id):
    """List the rules, or print one rule's documentation."""
    from .rule import all_rules

    rules = all_rules()
    if rule_id:
        from .rule import rule_for

        r = rule_for(rule_id)
        if r is not None:
            if rule_id != r.id:
                click.echo(f"({rule_id} is part of {r.id})\n")
            click.echo(f"{r.id}: {r.title}\n")
            click.echo(r.doc.strip())
            for c in r.codemods:
                click.echo(f"\n## Fix `{c.id}` ({c.safety})\n{c.summary}\n"
                           f"{'Check' if c.safety == 'unsafe' else 'Why safe'}: {c.check}")
            return
        raise UsageError(f"no rule {rule_id!r} (trainprof rules lists them)")
    for r in rules:
        click.echo(f"{r.id:20} {r.category:8} {r.fix_safety or 'advice':7} {r.title}"
                   + (f"  (covers {', '.join(r.aliases)})" if r.aliases else ""))
        for c in r.codemods:
            click.echo(f"  --fix {c.id:18} {c.safety:7} {c.summary}")
        if not r.codemods:
            click.echo("  (advice only)")


if __name__ == "__main__":
    main()
