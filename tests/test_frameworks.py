"""Training loops inside a framework (source/frameworks.py): the user's hooks that Lightning and
the Hugging Face Trainer call every step count as the step's code, findings point at the user's
lines inside them, and a fix that is a framework setting points at that setting."""
import json
import os

import pytest
from conftest import SCRIPTS, run_cli

from trainprof.lint import lint_file
from trainprof.source import frameworks as F
from trainprof.source import index_source
from trainprof.source import patterns as P

LIGHTNING = os.path.join(SCRIPTS, "lightning_module.py")
HF = os.path.join(SCRIPTS, "hf_trainer.py")


def _line(path, text, nth=1):
    hits = [i for i, s in enumerate(open(path), 1) if text in s]
    return hits[nth - 1]


def test_lightning_hooks_and_the_methods_they_call_run_every_step():
    ix = index_source(LIGHTNING)
    assert {"Net.training_step", "Net._shared", "Net.forward"} <= ix.hooks
    assert not {"Net.validation_step", "Net.configure_optimizers", "Net.train_dataloader"} & ix.hooks
    assert ix.in_loop(_line(LIGHTNING, ".mean().item()")) and not ix.in_loop(_line(LIGHTNING, "torch.optim.SGD"))
    assert F.uses_framework_loop(ix)
    # the loader a framework trains from: train_dataloader's, not the validation one
    assert P.loader_call(ix).line == _line(LIGHTNING, "DataLoader(Slow(), batch_size=32)")
    s = F.settings(ix)
    assert s.framework == "lightning" and s.call.line == _line(LIGHTNING, "L.Trainer(")
    assert 'precision="bf16-mixed"' in F.precision_advice(s)


def test_hf_trainer_subclass_compute_loss_runs_every_step():
    ix = index_source(HF)
    assert ix.hooks == {"LossTrainer.compute_loss"}
    assert ix.in_loop(_line(HF, "out.loss.item()"))
    s = F.settings(ix)
    assert s.framework == "transformers" and s.given("log_every") == 50
    assert "TrainingArguments(bf16=True" in F.precision_advice(s)
    assert "logging_steps=100" in F.logging_advice(s, 100)


def test_a_class_named_like_a_framework_base_is_not_one(tmp_path):
    p = tmp_path / "own.py"
    p.write_text("import torch\n\n\nclass LightningModule:\n    pass\n\n\nclass Net(LightningModule):\n"
                 "    def training_step(self, x):\n        return x.sum().item()  # ok: not Lightning's\n")
    ix = index_source(str(p))
    assert not ix.hooks and not ix.in_loop(10)
    assert not lint_file(str(p)).findings


def test_lint_finds_syncs_in_hooks_and_leaves_self_log_to_the_framework():
    for path, sync in ((LIGHTNING, ".mean().item()"), (HF, "out.loss.item()")):
        found = {(f.rule, f.line) for f in lint_file(path).findings}
        assert ("item-sync", _line(path, sync)) in found, (path, found)
        assert not any(r == "excessive-logging" for r, _ in found), (path, found)


@pytest.mark.slow
def test_lightning_run_points_at_the_dataloader_it_returns_and_its_dataset_lines(tmp_path):
    pytest.importorskip("lightning")
    run = tmp_path / "run"
    p = run_cli("analyze", "--run-dir", str(run), "-q", LIGHTNING, "--steps", "3000", cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    a = json.load(open(run / "analysis.json"))
    loader = next(f for f in a["findings"] if f["rule"] == "dataloader-stall")
    assert loader["line"] == _line(LIGHTNING, "DataLoader(Slow(), batch_size=32)")
    # the time is in the Dataset's loop, inside __getitem__
    hot = {h["line"] for h in loader["hot_lines"][:2]}
    assert hot & {_line(LIGHTNING, "for k in range(64)"), _line(LIGHTNING, "x[k] = torch.rand")}, loader["hot_lines"]
    d = run_cli("apply", str(run), "--fix", "dataloader-stall", "--dry-run", "--root", SCRIPTS, cwd=str(tmp_path))
    assert d.returncode == 0, d.stderr
    assert "+        return DataLoader(Slow(), batch_size=32, num_workers=" in d.stdout, d.stdout


@pytest.mark.slow
def test_hf_trainer_run_attributes_time_to_compute_loss(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from trainprof.engine import analyze

    run = tmp_path / "run"
    p = run_cli("analyze", "--run-dir", str(run), "-q", HF, "--steps", "3000", "--out", str(tmp_path / "o"),
                cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    r = analyze(str(run), script=HF).run
    fwd = r.line_time(r.script, _line(HF, "out = model(**inputs)"))[1]
    assert fwd > 0.1 * r.step_us, (fwd, r.step_us)  # the forward, inside the Trainer's loop, is the user's line


def test_self_log_dict_is_logging_a_framework_paces(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import lightning as L\nimport torch\n\n\nclass Net(L.LightningModule):\n"
                 "    def training_step(self, batch, batch_idx):\n        loss = batch.sum()\n"
                 "        self.log_dict({'loss': loss, 'n': batch_idx})\n        return loss\n\n\n"
                 "L.Trainer(max_epochs=1).fit(Net())\n")
    ix = index_source(str(p))
    assert P.logging_lines(ix) == {8}  # measured in a run as logging, its cost at that line
    # statically, the framework writes its values every log_every_n_steps: nothing to say
    assert not any(f.rule == "excessive-logging" for f in lint_file(str(p)).findings)


@pytest.mark.parametrize("parser, module", [("HfArgumentParser", "transformers"), ("TrlParser", "trl")])
def test_settings_parsed_from_the_command_line_are_advised_there(tmp_path, parser, module):
    # the HF examples' and TRL scripts' way: TrainingArguments filled from the command line
    p = tmp_path / "train.py"
    p.write_text(f"from transformers import Trainer, TrainingArguments\nfrom {module} import {parser}\n\n"
                 f"(args,) = {parser}((TrainingArguments,)).parse_args_into_dataclasses()\n"
                 "Trainer(model=None, args=args).train()\n")
    ix = index_source(str(p))
    s = F.settings(ix)
    assert s is not None and F.from_command_line(s) == parser and s.call.line == 4
    assert F.precision_advice(s).startswith("`--bf16") and f"({parser}, line 4)" in F.precision_advice(s)
    assert F.logging_advice(s, 50).startswith("`--logging_steps 50` on the command line")
    # statically, its precision is whatever the command line says: lint is silent
    assert not any(f.rule == "fp32-compute" for f in lint_file(str(p)).findings)
