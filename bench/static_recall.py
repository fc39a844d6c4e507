"""Static recall: `trainprof lint` against the known static problems of a labelled corpus.

    python bench/static_recall.py            # print the figures
    python bench/static_recall.py --write    # and write them into bench/STATIC_RECALL.md

The labels: the examples' table in tests/test_lint_examples.py (EXPECTED, read from its text),
plus bench/static_labels.json ({path, line, rule, code, why}: the third-party scripts of corpus/,
put in place by `python corpus/get.py`, and extra problems of the examples). A label is found
when lint reports its rule on its line of its file, at any severity. Also counted: findings
above info that no label names (precision-ish: some are real problems left unlabelled as too
small to matter, some are wrong), and examples/tuned.py, where nothing may be above info.
A labelled file that is absent (corpus/ not fetched) is skipped and named.

Also scored, apart: bench/heldin/, scripts written for a generalization check before the
detectors were tuned on them, each problem marked on its line with `# expect: rule` (the
fixtures' convention); the figure and its unmarked findings above info go in a block of their own.
"""

from __future__ import annotations

import ast
import datetime
import json
import os
import platform
import re
import sys
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = os.path.join(ROOT, "bench", "static_labels.json")
EXAMPLES_TEST = os.path.join(ROOT, "tests", "test_lint_examples.py")
REPORT = os.path.join(ROOT, "bench", "STATIC_RECALL.md")
TUNED = "examples/tuned.py"
GOAL = 0.85  # issue 23: recall on our own labelled corpus
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def example_labels() -> list[dict]:
    """The EXPECTED table of tests/test_lint_examples.py, as labels (its text, not imported)."""
    with open(EXAMPLES_TEST, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    table = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "EXPECTED" for t in n.targets))
    return [{"path": f"examples/{name}", "line": line, "rule": rule, "why": "tests/test_lint_examples.py"}
            for name, items in table.items() for rule, line in items]


def labels() -> list[dict]:
    with open(LABELS, encoding="utf-8") as f:
        return example_labels() + json.load(f)


def score(only_present: bool = True) -> dict:
    """Lint every labelled file (and tuned.py); what was found, missed and found unlabelled."""
    from trainprof.lint import SEVERITIES, lint_file

    labs = labels()
    paths = sorted({lb["path"] for lb in labs} | {TUNED})
    absent = [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
    found: dict[str, list] = {}
    for p in paths:
        if p not in absent:
            found[p] = lint_file(os.path.join(ROOT, p)).findings
    labs = [lb for lb in labs if lb["path"] not in absent]
    have = {(p, f.rule, f.line) for p, fs in found.items() for f in fs}
    named = {(lb["path"], lb["rule"], lb["line"]) for lb in labs}
    hit = [lb for lb in labs if (lb["path"], lb["rule"], lb["line"]) in have]
    miss = [lb for lb in labs if (lb["path"], lb["rule"], lb["line"]) not in have]
    above = SEVERITIES.index("info")
    extra = [(p, f) for p, fs in found.items() for f in fs if p != TUNED
             and SEVERITIES.index(f.severity) > above and (p, f.rule, f.line) not in named]
    tuned = [f for f in found.get(TUNED, []) if SEVERITIES.index(f.severity) > above]
    return {"labels": labs, "hit": hit, "miss": miss, "extra": extra, "tuned": tuned, "absent": absent,
            "files": len(found)}


def _per_rule(s: dict) -> list[tuple[str, int, int, int]]:
    rules = sorted({lb["rule"] for lb in s["labels"]} | {f.rule for _, f in s["extra"]})
    out = []
    for r in rules:
        n = sum(lb["rule"] == r for lb in s["labels"])
        k = sum(lb["rule"] == r for lb in s["hit"])
        out.append((r, k, n, sum(f.rule == r for _, f in s["extra"])))
    return out


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n else "-"


def render(s: dict) -> str:
    n, k = len(s["labels"]), len(s["hit"])
    ex = [lb for lb in s["labels"] if lb["path"].startswith("examples/")]
    ex_k = sum(lb in s["hit"] for lb in ex)
    lines = [
        f"Recall: **{k}/{n} ({_pct(k, n)})** of the labelled problems found at their line "
        f"(goal {GOAL:.0%}: {'met' if n and k / n >= GOAL else 'NOT met'}); examples {ex_k}/{len(ex)}, "
        f"corpus/ {k - ex_k}/{n - len(ex)}. {s['files']} files linted.",
        "",
        f"tuned.py: {len(s['tuned'])} finding(s) above info"
        + (": " + ", ".join(f"{f.rule}:{f.line} {f.severity}" for f in s["tuned"]) if s["tuned"] else "."),
        "",
        "| rule | found | labelled | recall | unlabelled findings above info |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r} | {k_} | {n_} | {_pct(k_, n_)} | {x} |" for r, k_, n_, x in _per_rule(s)]
    if s["miss"]:
        lines += ["", "Missed:", ""]
        lines += [f"- `{lb['path']}:{lb['line']}` {lb['rule']}: {lb['why']}" for lb in s["miss"]]
    if s["extra"]:
        lines += ["", f"Unlabelled findings above info ({len(s['extra'])}):", ""]
        lines += [f"- `{p}:{f.line}` {f.rule} [{f.severity}]" for p, f in s["extra"]]
    if s["absent"]:
        lines += ["", "Absent (labels skipped; `python corpus/get.py` puts them in place): "
                  + ", ".join(s["absent"])]
    return "\n".join(lines)


# -- the held-in set: scripts written for this check, their problems marked in the code -------
HELDIN = os.path.join(ROOT, "bench", "heldin")
HELDIN_BEGIN, HELDIN_END = "<!-- heldin:begin -->", "<!-- heldin:end -->"
_EXPECT_MARK = re.compile(r"#\s*expect:\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*$")


def heldin_labels() -> list[dict]:
    """bench/heldin/*.py's `# expect: rule[, rule]` marks (tests/test_lint.py's convention), as labels."""
    out = []
    for name in sorted(os.listdir(HELDIN)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(HELDIN, name)
        with open(path, encoding="utf-8") as f:
            toks = [t for t in tokenize.generate_tokens(f.readline) if t.type == tokenize.COMMENT]
        for t in toks:
            if m := _EXPECT_MARK.match(t.string.strip()):
                out += [{"path": os.path.relpath(path, ROOT), "line": t.start[0], "rule": r.strip(), "why": "# expect"}
                        for r in m.group(1).split(",")]
    return out


def score_heldin() -> dict:
    """The held-in set scored as the corpus is: labels found at their line (any severity), findings
    above info that no mark names."""
    from trainprof.lint import SEVERITIES, lint_file

    labs = heldin_labels()
    files = sorted(os.path.relpath(os.path.join(HELDIN, n), ROOT) for n in os.listdir(HELDIN) if n.endswith(".py"))
    found = {p: lint_file(os.path.join(ROOT, p)).findings for p in files}
    have = {(p, f.rule, f.line) for p, fs in found.items() for f in fs}
    named = {(lb["path"], lb["rule"], lb["line"]) for lb in labs}
    above = SEVERITIES.index("info")
    return {"labels": labs, "hit": [lb for lb in labs if (lb["path"], lb["rule"], lb["line"]) in have],
            "miss": [lb for lb in labs if (lb["path"], lb["rule"], lb["line"]) not in have],
            "extra": [(p, f) for p, fs in found.items() for f in fs if SEVERITIES.index(f.severity) > above
                      and (p, f.rule, f.line) not in named], "files": len(files)}


def render_heldin(s: dict) -> str:
    n, k = len(s["labels"]), len(s["hit"])
    lines = [(f"Held-in set (bench/heldin/, {s['files']} scripts): **{k}/{n} ({_pct(k, n)})** of the marked problems "
              f"found at their line; {len(s['extra'])} unmarked finding(s) above info.")]
    if s["miss"]:
        lines += ["", "Missed:", ""] + [f"- `{lb['path']}:{lb['line']}` {lb['rule']}" for lb in s["miss"]]
    if s["extra"]:
        lines += ["", "Unmarked findings above info:", ""] + [f"- `{p}:{f.line}` {f.rule} [{f.severity}]"
                                                              for p, f in s["extra"]]
    return "\n".join(lines)


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (f"{platform.node() or 'this machine'} ({cpu}, {os.cpu_count()} cores), Python {platform.python_version()}, "
            f"torch {torch.__version__}, libcst {_version('libcst')}")


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def write(text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace a results block of STATIC_RECALL.md (the notes around it are kept; a block not
    there yet is added at the end)."""
    block = f"{begin}\nMeasured {datetime.date.today().isoformat()} on {_machine()}.\n\n{text}\n{end}"
    doc = open(REPORT, encoding="utf-8").read() if os.path.exists(REPORT) else f"# Static recall\n\n{BEGIN}\n{END}\n"
    if begin not in doc:
        doc = doc.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    a, b = doc.index(begin), doc.index(end) + len(end)
    with open(REPORT, "w", encoding="utf-8") as f:
        f.write(doc[:a] + block + doc[b:])


def main(argv: list[str]) -> int:
    sys.path.insert(0, ROOT)
    s = score()
    text = render(s)
    held = render_heldin(score_heldin())
    print(text + "\n\n" + held)
    if "--write" in argv:
        write(text)
        write(held, HELDIN_BEGIN, HELDIN_END)
        print(f"\nwritten to {os.path.relpath(REPORT, ROOT)}")
    n = len(s["labels"])
    return 0 if n and len(s["hit"]) / n >= GOAL and not s["tuned"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
