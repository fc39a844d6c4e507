"""Which code is the user's: what the line recorder follows and the analysis points into.

The script's folder and everything below it, plus any module the run imports whose file lies
outside the standard library and the installed packages (a package of the user's beside the
script, or one on PYTHONPATH) -- unless the user names the roots (`--source-root DIR`): then
those folders alone. Installed code (site-packages, a virtual environment inside the project,
the standard library, trainprof itself) is never the user's.
"""

from __future__ import annotations

import os
import site
import sysconfig

_PACKAGE_DIRS = ("site-packages", "dist-packages")


def _library_prefixes() -> tuple[str, ...]:
    paths = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.add(os.path.realpath(p))
    try:
        paths.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # a virtualenv's old site.py
        pass
    user = getattr(site, "getusersitepackages", lambda: None)()
    if user:
        paths.add(os.path.realpath(user))
    paths.add(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))  # trainprof
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in paths))


class Roots:
    def __init__(self, roots: list[str], anywhere: bool):
        """roots: folders whose code is the user's; anywhere: also code outside every root that
        is not installed (the default, without --source-root)."""
        self.roots = tuple(os.path.realpath(r).rstrip(os.sep) + os.sep for r in roots)
        self.anywhere = anywhere
        self.library = _library_prefixes()

    def is_user(self, path: str) -> bool:
        """path: a code object's file, resolved (realpath)."""
        if not path.endswith(".py") or not os.path.isabs(path):
            return False  # <frozen ...>, <string>, a notebook cell, an extension module
        parts = path.split(os.sep)
        if any(d in parts for d in _PACKAGE_DIRS) or path.startswith(self.library):
            return False
        if path.startswith(self.roots):
            return True
        return self.anywhere


def default_roots(script: str, source_roots: list[str] | None) -> dict:
    """The capture's configuration of roots: the named ones alone, or the script's folder and
    any code not installed."""
    if source_roots:
        return {"roots": [os.path.abspath(r) for r in source_roots], "anywhere": False}
    return {"roots": [os.path.dirname(os.path.abspath(script))], "anywhere": True}
