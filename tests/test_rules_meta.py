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

    covered = {rule for exp in EXPECTED.values() for rule, _ in exp} | {rule for rule, *_ in CASES.values()}
    assert {r.id for r in all_rules()} <= covered
