"""`trainprof apply` (cli.py registers it): which run, which findings, the diff, the write, the
measurement -- each by the library; this only reads the command line and prints."""

from __future__ import annotations

import os

import click

from .cli_options import verify_options
from .errors import UsageError


def print_verified(v, estimate):
    from .fix.verify import summary

    for line in summary(v, estimate):
        click.echo(line)


@click.command()
@click.argument("target", required=False)
@click.option("--fix", "fixes", default=None, metavar="WHAT[,WHAT]",
              help="Fixes to apply: a fix or rule id (`trainprof rules` lists them; at each of its findings), "
                   "a finding's number as the reports show it (`--fix 3`), or ID@LINE (`--fix item-sync@42`).")
@click.option("--all-safe", is_flag=True, help="Every safe fix: results stay bit-identical.")
@click.option("--dry-run", is_flag=True, help="Print the findings it would fix (with their numbers) and the diff; write nothing.")
@click.option("--static", is_flag=True, help="TARGET is a script: fix the patterns wherever they are, without a run.")
@click.option("--root", "project", default=None, type=click.Path(file_okay=False),
              help="The project it may rewrite (default: the script's folder, if under RUN_DIR or here).")
@click.option("--logdir", default="trainprof_runs", show_default=True, help="Where to look for runs.")
@click.option("--verify", "do_verify", is_flag=True, help="Then time the original against the patched script.")
@click.option("--args", "run_args", default=None, metavar="'ARGS'",
              help="With --verify: the script's arguments (default: those of the analysed run).")
@verify_options
def apply(target, fixes, all_safe, dry_run, static, project, logdir, do_verify, run_args, skip, steps, rounds,
          parity_steps, timeout):
    """Apply fixes where the analysis of a run found them.

    TARGET: a RUN_DIR; a SCRIPT (its newest run under --logdir); or nothing (the newest run
    there, of whichever script). The first line names the run and its script. Keeps a backup
    beside each file, refuses one changed since the analysis; --verify measures the fix.
    """
    import contextlib
    import shlex

    from .capture import rundir
    from .fix import apply as A
    from .fix import choose as C

    words = [x.strip() for x in fixes.split(",") if x.strip()] if fixes else []
    C.check(words)
    run_dir = None
    with contextlib.ExitStack() as held:
        if static:
            if not target:
                raise UsageError("--static needs the script to fix")
            plan = A.plan_static(target, C.choose(words, all_safe).everywhere)
        else:
            run_dir, how = C.find_run(target, logdir)
            a = rundir.read_analysis(run_dir)
            if a is None:
                raise A.FixError(f"{run_dir}: no analysis.json (run `trainprof report {run_dir}` first)")
            click.echo(C.describe(run_dir, how, a))
            chosen = C.choose(words, all_safe, a.get("findings") or [])
            # applies of one analysis take turns from reading what was applied to recording
            # it: the next one then finds the fix made ("already applied"), not a changed file
            held.enter_context(A.run_locked(run_dir))
            plan = A.plan_from_analysis(run_dir, chosen.everywhere, project, chosen.picked, a)
        known = A.all_codemods()
        for ff in plan:  # the findings acted on, by the numbers the reports show
            by_n: dict = {}
            for n, rule, line, fid in ff.found:
                by_n.setdefault((n, rule, line), []).append(f"{fid} ({known[fid][1].safety})")
            for (n, rule, line), fids in sorted(by_n.items()):
                click.echo(f"#{n:<3} {rule} at {os.path.relpath(ff.path)}:{line}: fix {', '.join(fids)}")
        for ff in plan:
            for fid, n in sorted(ff.notes, key=lambda x: x[1].line):
                where = f"{os.path.relpath(ff.path)}:{n.line}" if n.line else os.path.relpath(ff.path)
                click.echo(f"{'fixed' if n.applied else 'left':6} {fid:18} {where}: {n.text}")
        changed = [ff for ff in plan if ff.changed]
        if not changed:
            click.echo("nothing to change")
            return
        if dry_run:
            for ff in changed:
                click.echo(ff.diff(), nl=False)
            return
        estimate = None
        if do_verify and run_dir:
            from .fix.verify import estimate_for, period_of

            estimate = estimate_for(run_dir, {c.id for ff in changed for c in ff.used})
            period = period_of(run_dir, {c.id for ff in changed for c in ff.used})
            if period > 1 and steps % period:
                # a throttled log/save runs once per `period` steps: time whole periods, so its
                # cost is in the measurement, amortized, as it is in the estimate
                steps = period * -(-steps // period)
                click.echo(f"timing {steps} steps: whole periods of the `step % {period}` guard")
        written = A.write(changed, run_dir)
    for path, bak in written:
        click.echo(f"wrote {os.path.relpath(path)} (backup: {os.path.relpath(bak)})")
    if do_verify:
        from .fix.verify import verify_written

        args = shlex.split(run_args) if run_args is not None else None
        for path, v in verify_written(written, run_dir, args, skip, steps, rounds, parity_steps, timeout,
                                      say=click.echo):
            print_verified(v, estimate)
