"""The options several commands share, and reading --select (cli.py stays thin)."""

from __future__ import annotations

import click


def output_options(f):
    f = click.option("-q", "--quiet", is_flag=True, help="Print nothing; write the files.")(f)
    f = click.option("--open", "open_html", is_flag=True, help="Open the HTML report when done.")(f)
    f = click.option("--html", "html_path", default=None, help="Write the HTML report here (default: RUN_DIR/report.html).")(f)
    f = click.option("--json", "json_path", default=None, help="Also write analysis.json here.")(f)
    f = click.option("--select", default=None, metavar="RULE[,RULE]",
                     help="Run only these rules (the combined estimate then covers their fixes alone).")(f)
    return f


def selected(select):
    if not select:
        return None
    from .rule import rule_for

    found = {w: rule_for(w) for w in (s.strip() for s in select.split(",")) if w}
    unknown = sorted(w for w, r in found.items() if r is None)
    if unknown:
        raise click.UsageError(f"unknown rule {', '.join(unknown)} (see `trainprof rules`)")
    return {r.id for r in found.values()}


def verify_options(f):
    f = click.option("--timeout", default=600.0, show_default=True, help="Seconds per run before giving up.")(f)
    f = click.option("--parity-steps", default=20, show_default=True,
                     help="Seeded steps whose losses must match bit for bit (0: skip).")(f)
    f = click.option("--rounds", default=3, show_default=True, help="Interleaved timing rounds.")(f)
    f = click.option("--steps", default=20, show_default=True, help="Steps timed per run.")(f)
    f = click.option("--skip", default=10, show_default=True, help="Steps run before timing (warm-up).")(f)
    return f
