"""How the command line fails and what it passes on: one rule for every usage error (a
`trainprof: error:` line naming what was wrong, a suggestion where one is close, exit 1 as for
any input refused), the exit codes of errors.py, and cProfile's rule for a script's arguments
(everything after SCRIPT is the script's), with a note where the script gets one of ours."""

from __future__ import annotations

import difflib
import os
import sys

import click

from .errors import EXIT_BUG, EXIT_INTERRUPTED, TrainprofError, UsageError

PROG = "trainprof"


def fail(e: TrainprofError, command_path: str | None = None) -> None:
    click.echo(f"trainprof: error: {e.message}", err=True)
    if e.detail:
        click.echo(e.detail.rstrip(), err=True)
    if isinstance(e, UsageError):
        path = command_path or PROG
        click.echo(f"(`{path} --help` lists the {'commands' if path == PROG else 'options'})", err=True)
    sys.exit(e.exit_code)


def _close(word: str, choices) -> list[str]:
    return difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)


def _mean(matches: list[str]) -> str:
    return f" (did you mean {' or '.join(matches)}?)" if matches else ""


def option_names(cmd: click.Command, ctx: click.Context | None = None) -> list[str]:
    names = [o for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)]
    return names + list(ctx.help_option_names if ctx else ("-h", "--help"))


def _unknown_option(e: click.NoSuchOption) -> str:
    ctx = e.ctx
    cmd = ctx.command if ctx else None
    name = e.option_name
    near = _close(name, option_names(cmd, ctx)) if cmd else list(e.possibilities or ())
    where = ""
    if ctx and ctx.parent is not None and isinstance(ctx.parent.command, click.Group) and not near:
        # an option of another command: say which
        others = sorted(n for n, c in ctx.parent.command.commands.items()
                        if n != ctx.info_name and name.split("=")[0] in option_names(c))
        if others:
            where = f" ({name} is an option of {', '.join(f'`{PROG} {o}`' for o in others)})"
    of = f" for `{ctx.command_path}`" if ctx and ctx.parent is not None else ""
    return f"unknown option {name}{of}{_mean(near)}{where}"


def usage_message(e: click.UsageError) -> str:
    """click's usage error as one line in trainprof's words."""
    if isinstance(e, click.NoSuchOption):
        return _unknown_option(e)
    msg = e.format_message().strip().replace("\n", " ")
    if msg[:1].isupper() and msg[1:2].islower():
        msg = msg[0].lower() + msg[1:]
    return msg.rstrip(".")


class Group(click.Group):
    """The top-level group: every error becomes one line and an exit code (errors.py)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name or PROG, complete_var, standalone_mode=False, **extra)
        except TrainprofError as e:  # raised while reading the command line (resolve_command)
            fail(e)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `trainprof`: its help, not an error
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.UsageError as e:
            fail(UsageError(usage_message(e)), e.ctx.command_path if e.ctx else None)
        except click.ClickException as e:  # click's other errors (a file it could not open): one line too
            fail(TrainprofError(e.format_message()))
        except click.Abort:
            click.echo("trainprof: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(rv if isinstance(rv, int) else 0)

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if not name.startswith("-") and self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            raise UsageError(f"unknown command {name!r}{_mean(_close(name, self.commands))}; "
                             f"the commands: {', '.join(self.commands)}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TrainprofError as e:
            sub = ctx.invoked_subcommand
            fail(e, f"{ctx.command_path} {sub}" if sub else None)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:  # `trainprof rules | head`: the reader left; nothing to say
            try:
                sys.stdout = open(os.devnull, "w")
            finally:
                sys.exit(0)
        except KeyboardInterrupt:
            click.echo("trainprof: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as e:  # a bug of ours: one line, the traceback on request
            if os.environ.get("TRAINPROF_DEBUG"):
                raise
            click.echo(f"trainprof: internal error: {type(e).__name__}: {e} "
                       "(set TRAINPROF_DEBUG=1 for the traceback)", err=True)
            sys.exit(EXIT_BUG)


def script_args(args) -> list[str]:
    """A script's arguments: everything after SCRIPT (or PATCHED), as with `python -m cProfile`;
    a `--` right after it is dropped (`trainprof analyze train.py -- --lr 3e-4`)."""
    args = list(args)
    return args[1:] if args[:1] == ["--"] else args


def note_ours(args, after: str) -> None:
    """Where a script's argument is also an option of this command, say that the script gets it."""
    ctx = click.get_current_context()
    ours = set(option_names(ctx.command, ctx))
    hits = list(dict.fromkeys(a.split("=", 1)[0] for a in args if a.split("=", 1)[0] in ours))
    if hits:
        click.echo(f"trainprof: note: {', '.join(hits)} after {after} {'goes' if len(hits) == 1 else 'go'} to the "
                   f"script, as everything after {after} does; trainprof's own options go before {after}", err=True)
