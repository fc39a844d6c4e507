import os
import re

from trainprof.engine import all_rules

SECTIONS = ("## What it does", "## Why it is slow", "## Example", "## Use instead", "## When not to fix")


def test_ids_unique_and_kebab_case():
    ids = [r.id for r in all_rules()]
    assert len(ids) == len(set(ids)) >= 6
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)


def test_every_rule_documents_its_sections():
    for r in all_rules():
        for s in SECTIONS:
            assert s in r.doc, f"{r.id} lacks {s!r}"


def test_every_rule_has_fixtures():
    from test_rules_cpu import CASES
    from test_rules_gpu_samples import EXPECTED

    traced = {rule for exp in EXPECTED.values() for rule, _ in exp} | {rule for rule, *_ in CASES.values()}
    here = os.path.dirname(__file__)
    for r in all_rules():
        if r.id in traced or os.path.isfile(os.path.join(here, f"test_{r.id.replace('-', '_')}.py")):
            continue  # (a rule with a test file of its own runs a script of its own end to end there)
        # A rule that reads only the source is tested by its lint fixtures (test_lint.py
        # checks they exist both ways); one that reads the trace needs a trace fixture.
        assert r.lint is not None and "trace" not in r.needs, f"{r.id}: no trace fixture"
        assert os.path.isdir(os.path.join(os.path.dirname(__file__), "lint", r.id)), f"{r.id}: no fixture"
