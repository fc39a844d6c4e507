"""Real third-party scripts inside a framework's loop, run unmodified under `trainprof analyze` on
the CPU (tests/real/: where each comes from). Lightning's examples/pytorch/basics/transformer.py
(a LightningModule's training_step under Trainer.fit) and TRL's trl/scripts/sft.py (SFTTrainer, a
transformers.Trainer, configured from the command line): the step's time lands on the user's lines
in them, findings point inside them, a framework's setting is advised at its call.

Only data and arguments are made up here: a text file, a GPT-2 built from a config (random
weights), a tokenizer trained on the spot. Nothing touches the network."""
import json
import os
import random
import shutil
import subprocess

import pytest
from conftest import ROOT, run_cli

from trainprof.source import frameworks as F
from trainprof.source import index_source
from trainprof.source import patterns as P

REAL = os.path.join(ROOT, "tests", "real")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _lines(path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def _json(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _source(name: str) -> dict:
    """tests/real/NAME/SOURCE: `key: value` lines (# comments)."""
    out = {}
    for ln in _lines(os.path.join(REAL, name, "SOURCE")):
        if ln.strip() and not ln.startswith("#"):
            k, v = ln.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def _line(path, text, nth=1):
    hits = [i for i, s in enumerate(_lines(path), 1) if text in s]
    return hits[nth - 1]


def _words(rng, n=200):
    return ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 6))) for _ in range(n)]


# -- Lightning: examples/pytorch/basics/transformer.py ---------------------------------------------

def _mirror(repo: str) -> str | None:
    base = os.environ.get("CORPUS_MIRRORS", "/work/.mirror")  # as corpus/get.py
    for d in (os.path.join(base, repo.replace("/", "+"), "repo"), os.path.join(base, repo.replace("/", "+"))):
        if os.path.exists(os.path.join(d, "HEAD")):
            return d
    return None


def _git_blob(g: str, commit: str, path: str, blob: str) -> bytes:
    got = subprocess.run(["git", "--git-dir", g, "rev-parse", f"{commit}:{path}"], capture_output=True,
                         text=True, check=False).stdout.strip()
    if got != blob:
        pytest.skip(f"the mirror's {commit[:10]}:{path} is {got or 'absent'}, not {blob[:10]}")
    return subprocess.run(["git", "--git-dir", g, "cat-file", "blob", blob], capture_output=True, check=True).stdout


def _lightning_script(dest) -> str:
    """The upstream script, byte for byte (with its LICENSE), copied into dest."""
    s = _source("lightning_transformer")
    g = _mirror(s["repo"])
    if g is None:
        pytest.skip(f"no local mirror of {s['repo']} (see tests/real/README.md)")
    path = os.path.join(str(dest), os.path.basename(s["path"]))
    with open(path, "wb") as f:
        f.write(_git_blob(g, s["commit"], s["path"], s["blob"]))
    with open(os.path.join(str(dest), "LICENSE"), "wb") as f:
        f.write(_git_blob(g, s["commit"], s["license_path"], s["license_blob"]))
    return path


def _wikitext(dest, tokens=400_000):
    """./data/wikitext-2.txt, which the demos' WikiText2 reads (it downloads nothing when the file is
    there): made-up words, enough for ~370 training batches an epoch after the script's split."""
    rng = random.Random(0)
    words = _words(rng)
    os.makedirs(os.path.join(str(dest), "data"), exist_ok=True)
    with open(os.path.join(str(dest), "data", "wikitext-2.txt"), "w", encoding="utf-8") as f:
        n = 0
        while n < tokens:
            k = rng.randint(10, 30)
            n += k + 1
            f.write(" ".join(rng.choice(words) for _ in range(k)) + "\n")


def test_lightning_example_indexes_its_training_step_and_trainer(tmp_path):
    path = _lightning_script(tmp_path)
    ix = index_source(path)
    assert ix.hooks == {"LanguageModel.training_step"}
    assert ix.in_loop(_line(path, 'self.log("train_loss"')) and not ix.in_loop(_line(path, "def validation_step"))
    assert F.uses_framework_loop(ix)
    s = F.settings(ix)
    assert s.framework == "lightning" and s.call.line == _line(path, "L.Trainer(")
    # the DataLoader it trains from: built in main() and passed to fit(), the first one there
    assert P.loader_call(ix).line == _line(path, "train_dataloader = DataLoader(")


@pytest.mark.slow
def test_lightning_example_run_puts_the_step_on_training_step_and_fit(tmp_path):
    pytest.importorskip("lightning")
    path = _lightning_script(tmp_path)
    _wikitext(tmp_path)
    run = tmp_path / "run"
    p = run_cli("analyze", "--run-dir", str(run), "-q", path, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    a = _json(run / "analysis.json")
    name = os.path.basename(path)
    share = {(x["path"], x["line"]): x["share"] for x in a["lines"]}
    fwd, fit = (name, _line(path, "output = self.model(input, target)")), (name, _line(path, "trainer.fit("))
    # the forward is the user's line inside training_step; backward and the optimizer run in
    # Lightning's loop, under the script's trainer.fit(...) line
    assert share.get(fwd, 0) > 0.1 and share.get(fit, 0) > 0.1, a["lines"]
    step = range(_line(path, "def training_step"), _line(path, "return loss") + 1)
    assert all(k == fit or (k[0] == name and k[1] in step) for k in share), a["lines"]
    # self.log every step: measured on its line, paced by the Trainer's setting, at that call
    log = next(f for f in a["findings"] if f["rule"] == "excessive-logging")
    assert (log["path"], log["line"]) == (name, _line(path, 'self.log("train_loss"'))
    assert "Trainer(log_every_n_steps=" in log["fix"]["summary"], log["fix"]
    assert f"(line {_line(path, 'L.Trainer(')})" in log["fix"]["summary"], log["fix"]
    n_lines = len(_lines(path))
    assert all(f["path"] == name and 1 <= f["line"] <= n_lines for f in a["findings"]), a["findings"]


# -- Hugging Face: TRL's trl/scripts/sft.py ---------------------------------------------------------

def _trl_script(dest) -> str:
    pytest.importorskip("transformers")
    pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    s = _source("trl_sft")
    src = os.path.join(os.path.dirname(os.path.dirname(trl.__file__)), s["path"])
    if not os.path.isfile(src):
        pytest.skip(f"trl {trl.__version__} has no {s['path']}")
    return shutil.copy(src, os.path.join(str(dest), os.path.basename(s["path"])))


def _tiny_model_and_text(dest) -> tuple[str, str]:
    """A folder with a GPT-2 of two small layers (random weights, from a config) and a byte-level
    BPE tokenizer trained here; a folder with train.jsonl of made-up text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    rng = random.Random(0)
    words = _words(rng, 300)
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 60))) for _ in range(2000)]
    data, model = os.path.join(str(dest), "data"), os.path.join(str(dest), "model")
    os.makedirs(data)
    with open(os.path.join(data, "train.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": ln}) + "\n" for ln in lines)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|endoftext|>", "<pad>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", pad_token="<pad>")
    tok.save_pretrained(model)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=64, n_layer=2, n_head=2,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(model)
    return model, data


def test_trl_sft_has_no_step_code_of_its_own(tmp_path):
    path = _trl_script(tmp_path)
    ix = index_source(path)
    # SFTTrainer is used, not subclassed; its settings come from the command line (TrlParser)
    assert not ix.hooks and not ix.loops and not ix.in_loop(_line(path, "trainer.train("))


@pytest.mark.slow
def test_trl_sft_run_puts_the_step_on_its_trainer_train_line(tmp_path):
    path = _trl_script(tmp_path)
    model, data = _tiny_model_and_text(tmp_path)
    run = tmp_path / "run"
    p = run_cli("analyze", "--run-dir", str(run), "-q", path, "--model_name_or_path", model, "--dataset_name", data,
                "--output_dir", str(tmp_path / "out"), "--max_steps", "5000", "--per_device_train_batch_size", "4",
                "--max_length", "64", "--report_to", "none", "--save_strategy", "no", "--use_cpu",
                "--logging_steps", "10", cwd=str(tmp_path), env=dict(OFFLINE, HF_HOME=str(tmp_path / "hf_home")))
    assert p.returncode == 0, p.stderr
    a = _json(run / "analysis.json")
    # No line of the script runs inside a step: all of it is in SFTTrainer, under main()'s
    # trainer.train(...), which holds the whole step (not "no line attribution")
    name = os.path.basename(path)
    assert [(x["path"], x["line"], x["share"]) for x in a["lines"]] == [(name, _line(path, "trainer.train("), 1.0)]
    assert a["lines"][0]["ms"] > 0
    assert not any("line attribution" in s["reason"] for s in a["skipped"]), a["skipped"]
    n_lines = len(_lines(path))
    assert all(f["path"] == name and 1 <= f["line"] <= n_lines for f in a["findings"]), a["findings"]
