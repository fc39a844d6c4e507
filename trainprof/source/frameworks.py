"""Training loops that live in a framework (Lightning, the Hugging Face Trainer): the user's
methods it calls every step, and the framework's own knobs, where a fix is made.

Under `trainer.fit(model)` the loop is the framework's: the user's code that runs every step is
the hooks it calls (`training_step`, `compute_loss`, a callback's `on_train_batch_end`), found
here by the class they are defined on (a subclass of the framework's, by qualified name). Their
lines run every step as a loop body's do (SourceIndex.in_loop). A fix that is a setting of the
framework (mixed precision, how often to log) is made at its `Trainer(...)` /
`TrainingArguments(...)` call, not in the framework's loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

_LIGHTNING = ("lightning.", "pytorch_lightning.", "lightning_fabric.")
_HF = ("transformers.", "trl.")  # TRL's trainers and configs are the HF Trainer's subclasses

# base class (its last name; its qualified name starts with one of the framework's packages)
# -> the methods of a subclass that the framework calls every step (or micro-batch)
_STEP_HOOKS = {
    (_LIGHTNING, "LightningModule"): {
        "training_step", "on_train_batch_start", "on_train_batch_end", "on_before_backward",
        "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad", "optimizer_step",
        "optimizer_zero_grad", "backward", "configure_gradient_clipping", "transfer_batch_to_device",
        "on_before_batch_transfer", "on_after_batch_transfer", "forward"},
    (_LIGHTNING, "Callback"): {
        "on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
        "on_before_optimizer_step", "on_before_zero_grad"},
    (_HF, "Trainer"): {"compute_loss", "training_step", "_prepare_inputs"},
    (_HF, "Seq2SeqTrainer"): {"compute_loss", "training_step", "_prepare_inputs"},
    (_HF, "TrainerCallback"): {"on_step_begin", "on_substep_end", "on_pre_optimizer_step", "on_optimizer_step",
                               "on_step_end"},
}

# The construction that holds the framework's settings, and its knobs by what they set
_SETTINGS = {
    "lightning": ({"Trainer"}, {"precision": "precision", "log_every": "log_every_n_steps"}),
    "transformers": ({"TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig"},
                     {"precision": "bf16", "log_every": "logging_steps"}),
}
# Parsers that fill the settings from the command line (the HF examples' and TRL scripts' way)
_CLI = {"LightningCLI", "HfArgumentParser", "TrlParser"}


def _framework(qualname: str | None) -> str | None:
    q = qualname or ""
    if q.startswith(_LIGHTNING):
        return "lightning"
    if q.startswith(_HF):
        return "transformers"
    return None


def step_hooks(ix) -> dict[str, tuple[int, int]]:
    """`Class.method` -> (line, end line), for each method of the file that a framework calls
    every step (the class subclasses the framework's, as imported)."""
    out = {}
    for cls in ix.nodes(cst.ClassDef):
        hooks = set()
        for base in cls.bases:
            q = ix.qualnames.get(base.value) or ""
            for (pkgs, name), names in _STEP_HOOKS.items():
                if q.startswith(pkgs) and q.rsplit(".", 1)[-1] == name:
                    hooks |= names
        if not hooks:
            continue
        methods = {n.name.value: n for n in cls.body.body if isinstance(n, cst.FunctionDef)}
        todo = [m for m in hooks if m in methods]
        while todo:  # and the class's methods they call as self.name(...), as those run every step too
            name = todo.pop()
            node = methods[name]
            out[f"{cls.name.value}.{name}"] = (ix.line(node), ix.end_line(node))
            for c in ix.walk(node.body):
                f = c.func if isinstance(c, cst.Call) else None
                if (isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.value.value == "self"
                        and f.attr.value in methods and f"{cls.name.value}.{f.attr.value}" not in out):
                    todo.append(f.attr.value)
    return out


@dataclass(frozen=True)
class Settings:
    """A framework's settings call in the script (`Trainer(...)`, `TrainingArguments(...)`)."""

    framework: str  # "lightning" | "transformers"
    call: object  # its CallSite
    knobs: dict  # what it sets -> the keyword that sets it ("precision" -> "precision" / "bf16")

    def knob(self, what: str) -> str:
        return self.knobs[what]

    def given(self, what: str):
        """The knob's literal value in the call, ... where not a literal, None where not given."""
        return self.call.keywords.get(self.knobs[what])


def settings(ix) -> Settings | None:
    """The first settings call of a framework in the script, if any (LightningCLI,
    HfArgumentParser, TrlParser: the settings come from the command line)."""
    for c in ix.calls:
        fw = _framework(c.qualname)
        if fw and c.qualname.rsplit(".", 1)[-1] in _SETTINGS[fw][0] | _CLI:
            return Settings(fw, c, _SETTINGS[fw][1])
    return None


def train_loader(ix):
    """The DataLoader(...) a framework trains from: the one a `train_dataloader` method returns."""
    span = ix.functions.get("train_dataloader")
    for c in ix.calls if span else ():
        if span[0] <= c.line <= span[1] and (c.qualname or "").endswith("DataLoader"):
            return c
    return None


def uses_framework_loop(ix) -> bool:
    """Whether the steps run in a framework's loop: no training loop of the script's own, and a
    framework's step hooks or settings here."""
    return not ix.loops and bool(ix.hooks or ix.framework is not None)


def loop_settings(ix) -> Settings | None:
    """The framework's settings call, where the steps run in its loop (the fix sites of its knobs)."""
    return ix.framework if uses_framework_loop(ix) else None


def from_command_line(s: Settings) -> str | None:
    """The parser's name where the settings come from the command line (their values unknown here)."""
    name = s.call.qualname.rsplit(".", 1)[-1]
    return name if name in _CLI else None


def precision_advice(s: Settings) -> str:
    cli = from_command_line(s)
    if cli == "LightningCLI":
        return "`--trainer.precision=bf16-mixed` on the command line (LightningCLI)"
    if cli:
        return f"`--bf16 --tf32 True` on the command line ({cli}, line {s.call.line})"
    if s.framework == "lightning":
        return f'`Trainer(precision="bf16-mixed")` (line {s.call.line})'
    return f"`TrainingArguments(bf16=True, tf32=True)` (line {s.call.line})"


def logging_advice(s: Settings, every: int) -> str:
    cli = from_command_line(s)
    if cli == "LightningCLI":
        return f"`--trainer.log_every_n_steps={every}` on the command line (LightningCLI)"
    if cli:
        return f"`--logging_steps {every}` on the command line ({cli}, line {s.call.line})"
    return f"`{s.call.qualname.rsplit('.', 1)[-1]}({s.knob('log_every')}={every})` (line {s.call.line})"
