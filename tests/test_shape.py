"""The shape of the code, as CONTRIBUTING.md describes it: small modules and classes, a typed
Finding, and stages that import only the stages before them (the trace path from the CLI to
the report moves forward, never back up a layer)."""
import ast
import dataclasses
import glob
import os
import typing

import pytest

from conftest import ROOT

MAX_LINES = 400
MAX_MEMBERS = 20  # methods and properties of one class
SOURCES = sorted(glob.glob(os.path.join(ROOT, "trainprof", "**", "*.py"), recursive=True)
                 + glob.glob(os.path.join(ROOT, "rules", "*.py")))


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_modules_are_small(path):
    with open(path, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    assert n <= MAX_LINES, f"{_rel(path)}: {n} lines (split it by job)"


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_classes_are_small(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            members = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            assert len(members) <= MAX_MEMBERS, f"{_rel(path)}: class {node.name} has {len(members)} methods"


def test_finding_has_no_untyped_field():
    from trainprof.finding import Estimate, Evidence, Finding, Fix

    for cls in (Finding, Fix, Estimate, Evidence):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            t = hints[f.name]
            assert t is not object and t is not typing.Any, f"{cls.__name__}.{f.name} is untyped ({t})"
            assert "object" not in repr(t) and "Any" not in repr(t), f"{cls.__name__}.{f.name}: {t!r}"


# Stages in the order data moves through them: a module may import its own stage and those
# before it, never one after it. The longest name that matches decides: estimate/'s model
# (savings, timelines, replay, calibration) comes before the Run, its estimates.py (savings
# into estimates) after the rules; fix.codemod is what rules build codemods with, the rest of
# fix/ runs after the analysis.
STAGES = [
    ("trainprof.errors", "trainprof.files", "trainprof.__init__"),
    ("trainprof.trace", "trainprof.source", "trainprof.capture"),
    ("trainprof.estimate",),
    ("trainprof.finding",),
    ("trainprof.run", "trainprof.fix.codemod", "trainprof.fix.workers_safe"),
    ("trainprof.rule", "trainprof.rules", "trainprof.config"),
    ("trainprof.estimate.estimates",),
    ("trainprof.engine", "trainprof.checked", "trainprof.readable"),
    ("trainprof.fix",),
    ("trainprof.report",),
    ("trainprof.lint",),
    ("trainprof.cli", "trainprof.cli_options", "trainprof.cli_group", "trainprof.cli_apply", "trainprof.__main__"),
]


def _stage(module: str) -> int | None:
    best = None
    for k, names in enumerate(STAGES):
        for name in names:
            if module == name or module.startswith(name + "."):
                if best is None or len(name) > best[1]:
                    best = (k, len(name))
    return best[0] if best else None


def _module_name(path: str) -> str:
    rel = _rel(path)[:-3].replace(os.sep, ".")
    rel = rel.replace("rules.", "trainprof.rules.", 1) if rel.startswith("rules.") else rel
    return rel.removesuffix(".__init__") if rel != "trainprof.__init__" else rel


def _imports(path: str, module: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    pkg = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append(name)
            out += [f"{name}.{a.name}" for a in node.names]  # `from . import jsonout`
    return [m for m in out if m.startswith("trainprof")]


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_stages_import_only_what_came_before(path):
    module = _module_name(path)
    mine = _stage(module)
    assert mine is not None, f"{module}: not in any stage of STAGES"
    for imp in _imports(path, module):
        theirs = _stage(imp)
        if theirs is None:
            continue
        assert theirs <= mine, f"{module} (stage {mine}) imports {imp} (stage {theirs}): a later stage"
