"""`trainprof lint` on the slow examples: each one's known problem, found statically at
the line the example puts it (the expectations below are read off the examples)."""
import os

import pytest

from trainprof.lint import lint_file

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# example -> [(rule, line), ...]: what lint must find there (it may find more).
EXPECTED = {
    "checkpoint_every_step.py": [("checkpoint-io", 27)],
    "conv_fp32.py": [("fp32-compute", 40), ("cudnn-benchmark", 15)],
    "fp32_transformer.py": [("fp32-compute", 20)],
    "mask_loss.py": [("mask-index-sync", 25)],
    "ddp_accum.py": [("ddp-no-sync", 38), ("ddp-buckets", 29)],
    "dataloader_stall.py": [("dataloader-stall", 32), ("blocking-h2d", 36)],
    "excessive_logging.py": [("excessive-logging", 26), ("excessive-logging", 27), ("excessive-logging", 29)],
    "histogram_logging.py": [("excessive-logging", 28), ("excessive-logging", 29)],
    "host_alloc.py": [("host-alloc", 20), ("host-alloc", 21), ("host-alloc", 22)],
    "item_sync.py": [("item-sync", 24), ("item-sync", 25)],
    "launch_bound_adam.py": [("unfused-optimizer", 14)],
    "lstm_item.py": [("item-sync", 26)],
    "per_sample_loss.py": [("python-loop", 22)],
    "pin_memory_workers.py": [("dataloader-stall", 36), ("blocking-h2d", 41)],
    "small_host_tensors.py": [("host-alloc", 19), ("host-alloc", 20), ("host-alloc", 21)],
}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_lint_finds_the_examples_problem(example):
    found = {(f.rule, f.line) for f in lint_file(os.path.join(EXAMPLES, example)).findings}
    missing = [e for e in EXPECTED[example] if e not in found]
    assert not missing, f"{example}: not found {missing}; lint found {sorted(found)}"



def test_tuned_example_has_nothing_above_info_statically():
    found = lint_file(os.path.join(EXAMPLES, "tuned.py")).findings
    assert all(f.severity == "info" for f in found), [(f.rule, f.line, f.severity) for f in found]


def test_every_slow_example_is_in_the_table():
    slow = {f for f in os.listdir(EXAMPLES) if f.endswith(".py") and not f.endswith(".fixed.py") and f != "tuned.py"}
    assert slow == set(EXPECTED)
