"""How to install an optional part of trainprof (the TensorBoard plugin), said in a form that
works for how this trainprof was installed: `pip install 'trainprof[tensorboard]'` only holds
for a trainprof from a package index; a clone installed with `pip install -e .` needs its own
folder named, and a checkout run from its folder (or a wheel, a VCS URL) the packages themselves."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import sys
from urllib.parse import unquote, urlparse

# pyproject.toml's [project.optional-dependencies] tensorboard (tests/test_cli_conventions.py
# keeps the two equal): named where the extra cannot be (a checkout on the path, a wheel, a VCS URL)
TENSORBOARD = ("torch-tb-profiler==0.4.3", "pandas>=1.5")
_HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout or site-packages


def _pip() -> str:
    """`python -m pip` where `python` on PATH is this interpreter, else this interpreter's path."""
    on_path = shutil.which("python")
    same = on_path and os.path.realpath(on_path) == os.path.realpath(sys.executable)
    return f"{'python' if same else shlex.quote(sys.executable)} -m pip install"


def _dist():
    """trainprof's installed metadata (which may describe another copy than the one running)."""
    try:
        return importlib.metadata.distribution("trainprof")
    except importlib.metadata.PackageNotFoundError:
        return None


def _editable_dir(d) -> str | None:
    """The folder of an editable (`pip install -e DIR`) install, if it is the code running now."""
    try:
        info = json.loads(d.read_text("direct_url.json") or "null")
    except (ValueError, OSError):
        return None
    if not isinstance(info, dict) or not (info.get("dir_info") or {}).get("editable"):
        return None
    url = urlparse(info.get("url") or "")
    folder = unquote(url.path) if url.scheme == "file" else None
    if folder and os.path.realpath(folder) == os.path.realpath(_HERE):
        return folder
    return None


def _from_index(d) -> bool:
    """Installed from a package index (no direct URL), and it is the code running now."""
    if d.read_text("direct_url.json") is not None:
        return False
    try:
        where = os.path.realpath(str(d.locate_file("trainprof")))
    except (TypeError, OSError):
        return False
    return where == os.path.realpath(os.path.join(_HERE, "trainprof"))


def install_hint(missing_only: bool = False) -> str | None:
    """The command that installs the TensorBoard plugin here (missing_only: None where it is
    installed already)."""
    if missing_only and importlib.util.find_spec("torch_tb_profiler") is not None:
        return None
    d = _dist()
    if d is not None and (folder := _editable_dir(d)):
        return f"{_pip()} -e {shlex.quote(folder + '[tensorboard]')}"
    if d is not None and _from_index(d):
        return f"{_pip()} 'trainprof[tensorboard]'"
    return f"{_pip()} " + " ".join(shlex.quote(p) for p in TENSORBOARD)
