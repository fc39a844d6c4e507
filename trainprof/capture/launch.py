"""How a distributed run is launched: torchrun's own options, read with torchrun's own parser.

`trainprof analyze --nproc-per-node N train.py ARGS` and `trainprof analyze -- torchrun
[OPTS] train.py ARGS` (or `python -m torch.distributed.run ...`) both come out as the
launcher options torchrun gets, the script and its arguments. The runner then starts
`torchrun OPTS --no-python <python> -c <trainprof's child> CONFIG`: every rank runs the
script under trainprof's profiler, as a single run does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import CaptureError, UsageError

_LAUNCHERS = ("torchrun",)
_MODULES = ("torch.distributed.run", "torch.distributed.launch")


@dataclass(frozen=True)
class Launch:
    script: str
    args: list[str]
    launcher: list[str]  # torchrun's options, before the script


def _launcher_argv(script: str, args: list[str]) -> list[str] | None:
    """torchrun's argv (after the program name) where SCRIPT ARGS is a torchrun command line."""
    if os.path.basename(script) in _LAUNCHERS and not os.path.isfile(script):
        return list(args)
    if os.path.basename(script).startswith("python") and len(args) >= 2 and args[0] == "-m" and args[1] in _MODULES:
        return list(args[2:])
    return None


def parse(script: str, args: list[str], nproc: int | None = None) -> Launch | None:
    """The distributed launch that SCRIPT ARGS (with --nproc-per-node N) asks for, or None
    for a single-process run."""
    argv = _launcher_argv(script, args)
    if argv is None:
        if nproc is None:
            return None
        if nproc < 1:
            raise UsageError("--nproc-per-node must be at least 1")
        # --standalone: a rendezvous on a free local port, so two runs on one host do not collide
        return Launch(script, list(args), ["--standalone", "--nproc-per-node", str(nproc)])
    if nproc is not None:
        raise UsageError("give --nproc-per-node to torchrun, not to trainprof, when trainprof runs torchrun")
    try:
        from torch.distributed.run import get_args_parser
    except ImportError as e:
        raise CaptureError(f"cannot read torchrun's options: {e}") from None
    try:
        ns = get_args_parser().parse_args(argv)
    except SystemExit:  # argparse has printed its usage line
        raise UsageError(f"torchrun's options do not parse: {' '.join(argv)}") from None
    if ns.no_python or ns.module:
        raise UsageError("trainprof runs a Python script file under torchrun; "
                           f"{'--no-python' if ns.no_python else '-m'} is not supported")
    n_script = len(ns.training_script_args) + 1
    launcher = argv[:len(argv) - n_script]
    if argv[len(launcher)] != ns.training_script:
        raise UsageError(f"cannot find the script in: torchrun {' '.join(argv)}")
    return Launch(ns.training_script, list(ns.training_script_args), launcher)
