"""Configuration and suppressions, read as ruff reads its own.

`[tool.trainprof]` in the nearest pyproject.toml that has the table (searched upward from the
linted file's folder, else the working directory):

    [tool.trainprof]
    select = ["item-sync", "excessive-logging"]   # default: every rule
    ignore = ["no-compile"]
    [tool.trainprof.excessive-logging]            # a rule's options (Rule.options declares them)
    every = 50

The command line goes over the file, as ruff's does: `--select` starts afresh (the file's
select and ignore both give way), `--ignore` adds to the ignores in force; a rule both selected
and ignored at one level is ignored. `# noqa` on a line suppresses every
finding there, `# noqa: item-sync, host-alloc` those rules only (ids or aliases).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

from .errors import TrainprofError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<ids>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*))?", re.IGNORECASE)
_KEYS = {"select", "ignore"}


@dataclass(frozen=True)
class Config:
    select: frozenset[str] | None = None  # None: every rule
    ignore: frozenset[str] = frozenset()
    options: dict = field(default_factory=dict)  # rule id -> {option: value}
    path: str | None = None  # the pyproject.toml read, if one was

    def rules(self, cli_select: set[str] | None = None, cli_ignore: set[str] | None = None) -> set[str] | None:
        """The rule ids to run (None: all), the command line over the file."""
        from .rule import all_rules

        chosen = cli_select if cli_select else self.select
        ignore = (set() if cli_select else set(self.ignore)) | set(cli_ignore or ())
        if chosen is None and not ignore:
            return None
        return {r.id for r in all_rules() if (chosen is None or r.id in chosen) and r.id not in ignore}


def find(start: str) -> str | None:
    """The nearest pyproject.toml with a [tool.trainprof] table, from start's folder upward."""
    d = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start) or ".")
    while True:
        p = os.path.join(d, "pyproject.toml")
        if os.path.isfile(p):
            try:
                with open(p, "rb") as f:
                    if "trainprof" in (tomllib.load(f).get("tool") or {}):
                        return p
            except OSError:
                pass
            except tomllib.TOMLDecodeError:  # ours if it names our table: load() says what is wrong
                if "tool.trainprof" in open(p, encoding="utf-8", errors="replace").read():
                    return p
        up = os.path.dirname(d)
        if up == d:
            return None
        d = up


def load(path: str | None) -> Config:
    """[tool.trainprof] of path (None: the defaults); an unknown key, rule or option is an input error."""
    if path is None:
        return Config()
    from .rule import all_rules

    try:
        with open(path, "rb") as f:
            table = (tomllib.load(f).get("tool") or {}).get("trainprof") or {}
    except OSError as e:
        raise TrainprofError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise TrainprofError(f"{path}: not valid TOML: {e}") from None
    rules = {r.id: r for r in all_rules()}
    alias = {a: r.id for r in rules.values() for a in r.aliases}

    def ids(key: str) -> frozenset[str]:
        v = table[key]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise TrainprofError(f"{path}: [tool.trainprof] {key} must be a list of rule ids")
        bad = [x for x in v if x not in rules and x not in alias]
        if bad:
            raise TrainprofError(f"{path}: [tool.trainprof] {key}: unknown rule {bad[0]!r} (`trainprof rules` lists them)")
        return frozenset(alias.get(x, x) for x in v)

    options = {}
    for key, v in table.items():
        if key in _KEYS:
            continue
        rule = rules.get(alias.get(key, key))
        if rule is None or not isinstance(v, dict):
            raise TrainprofError(f"{path}: [tool.trainprof] unknown key {key!r} (select, ignore, or a rule's table)")
        for opt, val in v.items():
            kind = rule.options.get(opt)
            if kind is None:
                known = ", ".join(sorted(rule.options)) or "none"
                raise TrainprofError(f"{path}: [tool.trainprof.{key}] unknown option {opt!r} (its options: {known})")
            if type(val) is not kind[0] or not kind[1](val):
                raise TrainprofError(f"{path}: [tool.trainprof.{key}] {opt} = {val!r}: {kind[2]}")
        options[rule.id] = dict(v)
    return Config(ids("select") if "select" in table else None,
                  ids("ignore") if "ignore" in table else frozenset(), options, path)


def noqa(line_text: str) -> set[str] | None:
    """The rule ids a line's `# noqa` suppresses: None where it has none, an empty set for all."""
    m = _NOQA.search(line_text)
    if m is None:
        return None
    return {x.strip().lower() for x in m.group("ids").split(",")} if m.group("ids") else set()


def suppressed(line_text: str, rule) -> bool:
    ids = noqa(line_text)
    return ids is not None and (not ids or rule.id in ids or bool(ids & set(rule.aliases)))
