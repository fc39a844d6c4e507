"""No process outlives trainprof: the script's escaped descendants are found and ended.

Killing the script's process group misses what left it: a daemon that double-forked and
called setsid is in a session of its own and, once its parent exits, a child of init --
out of reach. Made a child subreaper (Linux PR_SET_CHILD_SUBREAPER), trainprof adopts every
orphan below it instead, so at the end of a capture each process descended from trainprof
that was not its child before is killed and reaped. Servers trainprof starts (TensorBoard's
loaders) get a parent-death signal: they end with it even when it is killed by SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, arg: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def become_subreaper() -> bool:
    """Orphans below this process are re-parented to it (not to init); False where unsupported."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """In a child: SIGKILL when the parent dies (and at once if it already has)."""
    parent = os.getppid()
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != parent:
        os._exit(1)


def kill_children_on_exit() -> None:
    """Every process forked from here on (TensorBoard's loaders) dies with this one."""
    os.register_at_fork(after_in_child=die_with_parent)


def _parents() -> dict[int, int]:
    """pid -> ppid of every process (from /proc; empty where there is none)."""
    out = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; it ends at the last ')'
        out[int(name)] = int(stat[stat.rfind(b")") + 2:].split()[1])
    return out


def children() -> set[int]:
    me = os.getpid()
    return {p for p, pp in _parents().items() if pp == me}


def descendants(keep: set[int]) -> set[int]:
    """Every process below this one, but for the subtrees of `keep` (children it had before)."""
    parents = _parents()
    below: dict[int, list[int]] = {}
    for p, pp in parents.items():
        below.setdefault(pp, []).append(p)
    out, todo = set(), [p for p in below.get(os.getpid(), []) if p not in keep]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(below.get(p, []))
    return out


def end_escaped(keep: set[int], patience: float = 3.0) -> list[int]:
    """SIGKILL every descendant outside `keep`'s subtrees, reap those re-parented here, and go
    on until none is left (a dying parent hands its children to this subreaper) or patience
    runs out; the pids killed."""
    killed: list[int] = []
    end = time.monotonic() + patience
    while True:
        found = descendants(keep)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        _reap(keep)
        if not found or time.monotonic() > end:
            return killed
        time.sleep(0.05)


def _reap(keep: set[int]) -> None:
    for pid in children() - keep:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
