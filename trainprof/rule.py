"""What a rule is, and where the rules are found (every module of trainprof.rules that
defines RULE: adding a rule is adding a file)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from .finding import Finding
from .source import SourceIndex

if TYPE_CHECKING:
    from .run import Run

CATEGORIES = ("sync", "copy", "memory", "logging", "data", "gpu", "compute", "io", "distributed")


@dataclass(frozen=True)
class Rule:
    id: str  # kebab-case, named for the pattern it flags
    title: str
    category: str
    detect: Callable[["Run"], Iterable[Finding]]
    doc: str  # What it does / Why it is slow / Example / Use instead / When not to fix
    needs: tuple[str, ...] = ()  # "trace", "cuda", "lines", "source", "memory", "ranks"
    codemods: tuple = ()  # trainprof.fix.codemod.Codemod: the fixes `trainprof apply` can make
    # Static detection (`trainprof lint`, no run): (SourceIndex) -> findings, unmeasured.
    lint: Callable[[SourceIndex], Iterable[Finding]] | None = None
    # Narrower ids this rule covers (`--select` and `trainprof rules` take them too)
    aliases: tuple[str, ...] = ()
    # What [tool.trainprof.<id>] may set (config.py): option -> (type, check, what it must be);
    # the lint reads the values as index.options.get(id, {})
    options: dict = field(default_factory=dict)

    @property
    def fix_safety(self) -> str | None:
        """safe / unsafe (the least safe of its codemods) / None: advice only."""
        kinds = {c.safety for c in self.codemods}
        return "unsafe" if "unsafe" in kinds else "safe" if kinds else None


def static_detect(lint: Callable[[SourceIndex], Iterable[Finding]]) -> Callable[["Run"], Iterable[Finding]]:
    """The detector of a rule that reads only the source: its static findings, in an
    analysis too (unmeasured, so they rank after every measured one)."""
    from dataclasses import replace

    def detect(run: "Run") -> Iterable[Finding]:
        if run.index is None:
            return
        for f in lint(run.index):
            yield replace(f, path=run.relpath())

    detect.static = True  # nothing measured: engine._cheap does not compare it with its lint
    return detect


def _rules_package():
    """trainprof.rules: installed from rules/, or -- in a source checkout that was
    never installed -- loaded from rules/ beside the trainprof package."""
    try:
        return importlib.import_module("trainprof.rules")
    except ImportError:
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rules")
        spec = importlib.util.spec_from_file_location(
            "trainprof.rules", os.path.join(here, "__init__.py"), submodule_search_locations=[here])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["trainprof.rules"] = mod
        spec.loader.exec_module(mod)
        return mod


def all_rules() -> list[Rule]:
    """Every module in trainprof.rules that defines RULE, in id order."""
    _rules_pkg = _rules_package()
    found = []
    for m in pkgutil.iter_modules(_rules_pkg.__path__):
        if m.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{_rules_pkg.__name__}.{m.name}")
        rule = getattr(mod, "RULE", None)
        if not isinstance(rule, Rule):
            # not skipped: a rule that forgot RULE (or a file half written) would vanish from every report
            raise RuntimeError(f"{getattr(mod, '__file__', m.name)} defines no RULE (helpers of the rules "
                               "package are named _like_this)")
        found.append(rule)
    return sorted(found, key=lambda r: r.id)


def rule_for(name: str) -> Rule | None:
    """The rule with this id or alias."""
    for r in all_rules():
        if name == r.id or name in r.aliases:
            return r
    return None
