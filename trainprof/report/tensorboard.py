"""`trainprof tensorboard`: runs in TensorBoard's PyTorch Profiler plugin, on 127.0.0.1.

torch-tb-profiler 0.4.3 (its last release) drops every `user_annotation` event except
`ProfilerStep#` and collectives before it parses a trace. Current PyTorch records the
DataLoader's `enumerate(DataLoader)#...__next__` spans as user annotations, so the
plugin shows 0 DataLoader time on every run, although its parser further on handles
those spans. trainprof starts the plugin with that filter widened to keep them, in
this process and in the loader processes it forks; no trace is changed, and runs
opened by a plain `tensorboard` still show the upstream defect.
"""

from __future__ import annotations

import hashlib
import os
import socket

from ..capture import rundir
from ..errors import TrainprofError

_DATA = ("enumerate(DataLoader)#", "enumerate(DataPipe)#")


class TensorBoardError(TrainprofError):
    """No runs there, the plugin not installed, TensorBoard not starting: exit 1 (errors.py)."""


def _plugin():
    try:
        import tensorboard  # noqa: F401
        from torch_tb_profiler.profiler import trace
    except ImportError as e:
        from .extras import install_hint

        raise TensorBoardError(f"TensorBoard's PyTorch Profiler plugin is not installed ({e.name}): "
                               f"{install_hint()}") from None
    return trace


def patch_plugin() -> None:
    """Let the plugin see DataLoader spans (idempotent)."""
    # The plugin parses each trace in a child process: forked, it keeps this patch
    # (spawned, it would import the plugin afresh). Read when the plugin is imported.
    os.environ["TORCH_PROFILER_START_METHOD"] = "fork"
    trace = _plugin()
    if getattr(trace.create_trace_event, "_trainprof", False):
        return
    original = trace.create_trace_event

    def create_trace_event(event, is_pytorch_lightning):
        name = event.get("name") or ""
        if (event.get("cat") or "").lower() == "user_annotation" and name.startswith(_DATA):
            return trace.OperatorEvent(trace.EventTypes.USER_ANNOTATION, event)
        return original(event, is_pytorch_lightning)

    create_trace_event._trainprof = True
    trace.create_trace_event = create_trace_event
    _offline_charts()


def _offline_charts() -> None:
    """Serve the plugin's page with a stand-in for Google Charts after the real loader, used
    only where www.gstatic.com did not load (templates/gcharts_offline.js says what it does)."""
    import werkzeug
    from torch_tb_profiler import plugin

    from .html import _templates_dir

    cls = plugin.TorchProfilerPlugin
    if getattr(cls.static_file_route, "_trainprof", False):
        return
    original = cls.static_file_route.__wrapped__  # below werkzeug's WSGI wrapper: request -> response
    with open(os.path.join(_templates_dir(), "gcharts_offline.js"), encoding="utf-8") as f:
        shim = f.read()
    loader = '<script src="https://www.gstatic.com/charts/loader.js"></script>'

    @werkzeug.wrappers.Request.application
    def static_file_route(self, request):
        response = original(self, request)
        if os.path.basename(request.path) == "index.html" and response.status_code == 200:
            page = response.get_data(as_text=True)
            response.set_data(page.replace(loader, loader + "<script>" + shim + "</script>", 1))
        return response

    static_file_route._trainprof = True
    cls.static_file_route = static_file_route


def logdir_for(target: str | None) -> str:
    """TensorBoard's logdir: a run directory alone (through a link, so that it is the one
    run listed), or a directory of runs; default ./trainprof_runs."""
    target = target or "trainprof_runs"
    if not os.path.isdir(target):
        raise TensorBoardError(f"no such run directory or logdir: {target}")
    if rundir.find_traces(target):
        return _stage(os.path.abspath(target))
    if not any(rundir.find_traces(os.path.join(target, d)) for d in os.listdir(target)
               if os.path.isdir(os.path.join(target, d))):
        raise TensorBoardError(f"{target}: no runs here (run directories hold *.pt.trace.json[.gz])")
    return os.path.abspath(target)


def _stage(run: str) -> str:
    """A folder holding only a link to run: one per run directory, in the user's cache, reused
    by every launch -- a server killed by SIGKILL leaves nothing new behind."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    stage = os.path.join(base, "trainprof", "tensorboard", hashlib.sha256(run.encode()).hexdigest()[:16])
    os.makedirs(stage, mode=0o700, exist_ok=True)
    link = os.path.join(stage, os.path.basename(run))
    if not (os.path.islink(link) and os.readlink(link) == run):
        tmp = f"{link}.tmp{os.getpid()}"
        os.symlink(run, tmp)
        os.replace(tmp, link)  # over a stale entry, at once
    return stage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(target: str | None, port: int | None = None) -> str:
    """Start TensorBoard with the patched plugin in this process; returns its URL."""
    patch_plugin()
    from tensorboard import default, program

    from ..capture.reaper import kill_children_on_exit

    logdir = logdir_for(target)
    kill_children_on_exit()  # the plugin's loader processes end with this one, even on SIGKILL
    tb = program.TensorBoard(plugins=default.get_plugins())
    # --load_fast=false: no separate data server process (the profiler plugin reads its traces itself)
    tb.configure(argv=[None, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port or free_port()),
                       "--load_fast", "false"])
    try:
        url = tb.launch()
    except Exception as e:  # a port taken in between, a TensorBoard that will not start
        raise TensorBoardError(f"TensorBoard did not start: {e}") from None
    return url.rstrip("/") + "/#pytorch_profiler"
