"""Rules on the real H100 runs in sample_traces/ (captured with `trainprof analyze`)."""
import json
import os
import shutil

import pytest

from conftest import SAMPLES
from trainprof.engine import analyze
from trainprof.report.prepare import prepare

# sample -> (rule, line) pairs that must be found
EXPECTED = {
    "item_sync": [("item-sync", 24), ("item-sync", 25)],
    "excessive_logging": [("excessive-logging", 29), ("excessive-logging", 27), ("gpu-idle", 29)],
    "host_alloc": [("blocking-h2d", 19), ("host-alloc", 20), ("host-alloc", 21), ("host-alloc", 22)],
    "dataloader_stall": [("dataloader-stall", 35)],
    "fp32_transformer": [("fp32-compute", 20)],
    "conv_fp32": [("fp32-compute", 40), ("cudnn-benchmark", 15)],  # the training-loop line, where autocast goes
    "launch_bound_adam": [("unfused-optimizer", 14), ("no-compile", 13), ("launch-bound", 22)],  # launch-bound: compiling would help (at the model)
    "per_sample_loss": [("python-loop", 22)],
    "lstm_item": [("python-loop", 23), ("item-sync", 26)],
    "checkpoint_every_step": [("checkpoint-io", 27)],
    "histogram_logging": [("excessive-logging", 28), ("excessive-logging", 29)],
    "small_host_tensors": [("host-alloc", 19), ("host-alloc", 20), ("host-alloc", 21)],
    "pin_memory_workers": [("dataloader-stall", 40), ("blocking-h2d", 41)],
    "mask_loss": [("mask-index-sync", 25)],
    # 2 H200s: rank 1 sleeps 4 ms a micro-batch, 4 micro-batches a step, each all-reducing
    "ddp_accum": [("straggler-rank", 36), ("ddp-no-sync", 38), ("comm-exposed", 38)],
}
# Newer runs (run.json records the GPU memory): what they must find as well
EXPECTED["excessive_logging"].append(("memory-headroom", 21))  # 0.3 of 80 GiB while the GPU idles
# rule -> runs where it must stay silent
SILENT = {
    "launch-bound": {"fp32_transformer", "conv_fp32", "tuned", "mask_loss", "item_sync"},
    "memory-headroom": {"tuned", "mask_loss"},  # GPU busy most of the (unprofiled) step
    "item-sync": {"mask_loss"},  # the mask's syncs are mask-index-sync's, not reported twice
    "gpu-idle": {"tuned", "mask_loss"},
    "straggler-rank": {"ddp_accum.nostraggler"},
}
# Textbook fixes that gained nothing when measured on the H100 (bench/ESTIMATES.md):
# the estimate must say so, and must not rank them first.
NO_GAIN = {"lstm_item": "item-sync", "small_host_tensors": "host-alloc", "pin_memory_workers": "blocking-h2d",
           "item_sync": "item-sync"}
# the fixed version must not raise these
ABSENT_WHEN_FIXED = {
    "item_sync": {"item-sync"},
    "excessive_logging": {"excessive-logging"},
    "host_alloc": {"host-alloc", "blocking-h2d"},
    "ddp_accum": {"ddp-no-sync"},
}

_cache = {}


def run(name, only=None):
    key = (name, tuple(sorted(only or ())))
    if key not in _cache:
        _cache[key] = analyze(os.path.join(SAMPLES, name), only=set(only) if only else None)
    return _cache[key]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_findings_at_lines(name):
    a = run(name)
    found = {(f.rule, f.line) for f in a.findings}
    for exp in EXPECTED[name]:
        assert exp in found, f"{name}: {exp} not in {sorted(found)}"
    assert a.device.startswith("NVIDIA")
    assert not [r for r, why in a.skipped if "CUDA" in why]


@pytest.mark.parametrize("rule,name", sorted((r, n) for r, ns in SILENT.items() for n in ns))
def test_rule_silent_where_it_does_not_apply(rule, name):
    assert rule not in {f.rule for f in run(name).findings}


def test_tuned_gpu_run_has_nothing_above_info():
    a = run("tuned")
    assert a.device.startswith("NVIDIA") and not [(f.rule, f.severity) for f in a.findings if f.severity != "info"]


def test_mask_sync_estimate_counts_the_masking_ops_not_just_the_wait():
    f = next(f for f in run("mask_loss").findings if f.rule == "mask-index-sync")
    ev = {e.label: e.value for e in f.evidence}
    assert ev["syncs per step"] == 2
    # the wait itself is tiny; the ops that hold it are not, and the estimate counts them
    assert ev["CPU time of the data-dependent ops per step"] > 3 * ev["CPU blocked per step"]
    assert f.estimate.saving_ms > 2 * ev["CPU blocked per step"]
    assert run("mask_loss").findings[0].rule == "mask-index-sync"


def test_launch_bound_points_at_the_lines_that_launch_and_bounds_by_gpu_time():
    a = run("launch_bound_adam")
    f = next(f for f in a.findings if f.rule == "launch-bound")
    ev = {e.label: e.value for e in f.evidence}
    assert ev["kernels per step"] > 500 and ev["median kernel time"] < 5
    assert ev["CPU time in launching operators per step"] > 3 * ev["GPU busy per step"]
    assert f.estimate.bound  # overlaps the optimizer finding: not in the combined estimate
    assert 1.2 < f.estimate.speedup < a.unprofiled_ms / ev["GPU busy per step"]


def _with_memory(tmp_path, name, **mem):
    import json
    import shutil

    d = tmp_path / name
    shutil.copytree(os.path.join(SAMPLES, name), d)
    run_json = d / "run.json"
    doc = json.loads(run_json.read_text())
    doc["memory"] = mem
    run_json.write_text(json.dumps(doc))
    return analyze(str(d), only={"memory-headroom"})


def test_memory_headroom_near_capacity_and_silent_when_gpu_bound(tmp_path):
    gib = 1024 ** 3
    a = _with_memory(tmp_path, "launch_bound_adam", peak_reserved=76 * gib, peak_allocated=70 * gib, total=80 * gib,
                     alloc_retries=3)
    (f,) = a.findings
    assert "near capacity" in f.title and f.severity == "medium" and "3 allocation retries" in f.message
    a = _with_memory(tmp_path, "fp32_transformer", peak_reserved=2 * gib, peak_allocated=gib, total=80 * gib)
    assert not a.findings  # far below capacity, but the GPU is busy: a larger batch gains little
    a = _with_memory(tmp_path, "per_sample_loss", peak_reserved=2 * gib, peak_allocated=gib, total=80 * gib)
    (f,) = a.findings
    assert "larger batch" in f.title and "8x larger" in f.message and f.severity == "info"
    old = analyze(os.path.join(SAMPLES, "conv_fp32"), only={"memory-headroom"})
    assert not old.findings and any(r == "memory-headroom" and "memory record" in why for r, why in old.skipped)


@pytest.mark.parametrize("name", sorted(ABSENT_WHEN_FIXED))
def test_fixed_version_is_clean(name):
    a = run(name + ".fixed")
    assert not {f.rule for f in a.findings} & ABSENT_WHEN_FIXED[name]


def test_adjacent_item_calls_are_told_apart():
    a = run("item_sync")
    items = {f.line: f for f in a.findings if f.rule == "item-sync"}
    assert set(items) == {24, 25}
    # line 24 waits for the whole forward; line 25 finds the GPU already done
    blocked = {ln: dict((e.label, e.value) for e in f.evidence)["CPU blocked per step"] for ln, f in items.items()}
    assert blocked[24] > 100 * blocked[25]


def test_item_sync_in_gpu_bound_loop_gains_little():
    # Measured on the H100 (bench/steptime.py, steady state): 62.6 -> 60.2 ms (1.04x) once the .item() calls go.
    a = run("item_sync")
    assert prepare(a).breakdown["gpu_busy"] > 0.9
    assert run("item_sync", only={"item-sync"}).combined.speedup < 1.1
    assert all(f.estimate.speedup < 1.1 for f in a.findings if f.rule == "item-sync")
    assert any("gains ~0" in f.message for f in a.findings)


def test_ranking_puts_the_real_cost_first():
    assert (run("excessive_logging").findings[0].rule, run("excessive_logging").findings[0].line) == ("excessive-logging", 29)
    assert run("host_alloc").findings[0].rule == "blocking-h2d"
    assert run("dataloader_stall").findings[0].rule == "dataloader-stall"


def test_large_wins_are_estimated_large():
    # Measured on the H100: excessive_logging 167 -> 1.4 ms, dataloader_stall 48.5 -> 7.2 ms, host_alloc 9.2 -> 4.8 ms.
    assert run("excessive_logging").combined.speedup > 5
    assert run("dataloader_stall").combined.speedup > 3
    assert 1.3 < run("host_alloc", only={"blocking-h2d", "host-alloc"}).combined.speedup < 2.5


def test_fixed_loader_stalls_far_less():
    before = next(f for f in run("dataloader_stall").findings if f.rule == "dataloader-stall")
    after = [f for f in run("dataloader_stall.fixed").findings if f.rule == "dataloader-stall"]
    assert all(f.saving_ms < 0.1 * before.saving_ms for f in after)


def test_replay_reproduces_the_trace_and_calibrates():
    a = run("host_alloc", only={"blocking-h2d", "host-alloc"})  # fixes that leave the GPU's work alone
    assert a.combined.base_ms == pytest.approx(a.unprofiled_ms, rel=0.02)
    assert a.combined.new_ms < a.combined.base_ms
    # Fixes replayed together do at least as well as the best alone (they can do more:
    # a sync left in place absorbs the wait another fix removes), never below the GPU's own time.
    best = max(f.saving_ms for f in a.findings if f.estimate and not f.estimate.bound)
    assert a.combined.base_ms - a.combined.new_ms >= best - 1e-6
    assert a.combined.new_ms >= prepare(a).breakdown["gpu_busy"] * a.profiled_ms * 0.5


@pytest.mark.parametrize("name", sorted(NO_GAIN))
def test_textbook_fixes_that_gain_nothing_say_so(name):
    a = run(name)
    own = [f for f in a.findings if f.rule == NO_GAIN[name]]
    assert own and all(f.estimate.speedup < 1.1 for f in own)
    assert a.findings[0].rule != NO_GAIN[name]
    assert all("gains ~0" in f.message for f in own if f.estimate.speedup < 1.01)


def test_bf16_estimate_scales_the_fp32_kernels():
    # Measured on the H100: 104 -> 28.5 ms with bf16 autocast (3.6x); before the fix the
    # CPU ran ~2 steps ahead, blocked in launches on a full GPU queue.
    a = run("fp32_transformer", only={"fp32-compute"})
    f = a.findings[0]
    assert "Tensor-Core" in f.message and 2.0 < f.estimate.speedup < 6.0
    conv = run("conv_fp32", only={"fp32-compute"}).findings[0]
    assert "channels_last" in conv.fix.summary and "transposes" in conv.message


def test_recurrence_gives_only_an_upper_bound():
    f = next(f for f in run("lstm_item").findings if f.rule == "python-loop")
    assert f.estimate.bound and dict((e.label, e.value) for e in f.evidence)["recurrence"] != "none"


def test_fused_optimizer_and_vectorized_loop_gain():
    # Measured on the H100: launch_bound_adam 17.8 -> 10.1 ms (1.75x), per_sample_loss 41.7 -> 0.89 ms (47x).
    assert 1.3 < run("launch_bound_adam", only={"unfused-optimizer"}).combined.speedup < 3
    assert run("per_sample_loss", only={"python-loop"}).combined.speedup > 5


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_times_in_messages_are_unprofiled(name):
    """A line's time in a finding is in the step's own (unprofiled) terms: never more than the
    unprofiled step it is a share of, and its share is of that step (profiled time: its own evidence)."""
    a = run(name)
    base = a.run.base_step_us / 1000
    for f in a.findings:
        ev = {e.label: e.value for e in f.evidence}
        for label in ("time per step at this line", "time per step in the loop", "optimizer step time"):
            if label in ev:
                assert ev[label] <= 1.05 * base, (f.rule, f.line, ev[label], base)
                assert f"{label}, profiled" in ev, (f.rule, ev)
                if "share of the step" in ev:
                    assert abs(ev["share of the step"] - 100 * ev[label] / base) < 0.5, (f.rule, f.line, ev)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_what_lint_suspects_and_the_run_found_cheap_is_said(name):
    """Each line a measured rule's lint flags, where that rule found nothing in the run, is listed
    as measured and cheap -- not dropped without a word."""
    from trainprof.engine import all_rules

    a = run(name)
    found = {f.rule for f in a.findings}
    cheap = {(r, ln) for r, _, ln, _ in a.cheap}
    for rule in all_rules():
        if rule.lint is None or getattr(rule.detect, "static", False) or rule.id in found or \
                rule.id in {r for r, _ in a.skipped}:
            continue
        for f in rule.lint(a.run.index):
            if a.run.ran(f.line) is not False:
                assert (rule.id, f.line) in cheap, (rule.id, f.line, a.cheap)
    assert not {r for r, _ in cheap} & found


def test_a_near_total_fix_says_its_speedup_is_rough():
    # the histogram logging takes ~95% of the step: what is left decides the speedup
    a = analyze(os.path.join(SAMPLES, "excessive_logging"))
    top = a.findings[0]
    assert top.rule == "excessive-logging" and top.estimate.speedup > 10
    assert top.estimate.confidence == "medium" and "`--trials` measures it" in top.estimate.basis
    # a fix that leaves most of the step says nothing of the kind
    small = [f for f in a.findings if f.estimate and not f.estimate.bound and f.estimate.speedup < 2]
    assert small and all("rough" not in f.estimate.basis for f in small)


def _with_trials(tmp_path, trials):
    run = tmp_path / "host_alloc"
    shutil.copytree(os.path.join(SAMPLES, "host_alloc"), run)
    sha = json.load(open(run / "run.json"))["script_sha256"]
    (run / "trials.json").write_text(json.dumps({"script_sha256": sha, "findings": [
        {"rule": r, "path": "host_alloc.py", "line": ln,
         "trial": {"speedup": sp, "low": lo, "high": hi, "rounds": 2, "steps": 40, "params": {}, "change": "x"}}
        for r, ln, sp, lo, hi in trials]}))
    return analyze(str(run))


def test_a_trial_whose_rounds_disagree_counts_at_its_least(tmp_path):
    # host-alloc at line 20 (estimated ~1.01x) "measured" 4x, its rounds 0.97x and 7.4x apart: the
    # machine's load, not the fix -- it counts at its least (0.97x: gains nothing), and says why
    a = _with_trials(tmp_path, [("host-alloc", 20, 4.0, 0.97, 7.4)])
    f = next(f for f in a.findings if f.rule == "host-alloc" and f.line == 20)
    assert not f.trial.agrees and f.trial.counted == 0.97 and "the rounds disagree" in f.trial.text
    assert a.findings[0].rule == "blocking-h2d"
    # rounds that agree rank it by what they measured
    a = _with_trials(tmp_path / "b", [("host-alloc", 20, 4.0, 3.6, 4.4)])
    assert (a.findings[0].rule, a.findings[0].line) == ("host-alloc", 20) and a.findings[0].trial.agrees


def test_the_script_a_run_ran_is_read_from_where_it_ran_when_its_hash_matches(tmp_path):
    # a run directory kept apart from the project (`--run-dir /elsewhere`): `trainprof report RUN`
    # reads the script where run.json says it ran, since it is the very file (its sha256)
    run, project = tmp_path / "runs" / "r", tmp_path / "project"
    shutil.copytree(os.path.join(SAMPLES, "host_alloc"), run)
    project.mkdir()
    shutil.move(str(run / "host_alloc.py"), project / "host_alloc.py")
    info = json.load(open(run / "run.json"))
    (run / "run.json").write_text(json.dumps(dict(info, script=str(project / "host_alloc.py"))))
    a = analyze(str(run))
    assert a.may_read(str(project / "host_alloc.py")) and a.source is not None
    assert not any("not read" in n for n in a.notes)
    # another file at that path (edited since, or one a foreign run.json names) is not read
    with open(project / "host_alloc.py", "a") as f:
        f.write("# edited\n")
    a = analyze(str(run))
    assert not a.may_read(str(project / "host_alloc.py")) and a.source is None
    assert any("was not read" in n for n in a.notes)
    # rounds far apart that all gain much: ranked by the least of them, still first
    a = _with_trials(tmp_path / "c", [("host-alloc", 20, 5.7, 4.4, 7.4)])
    assert (a.findings[0].rule, a.findings[0].line) == ("host-alloc", 20) and not a.findings[0].trial.agrees
