"""Classifiers of calls, shared by the breakdown, the rules and the codemods."""

from __future__ import annotations

import libcst as cst

from .frameworks import train_loader
from .index import CallSite

# GPU->CPU transfers of a tensor's value.
SYNC_METHODS = {"item", "tolist", "cpu", "numpy"}
SYNC_BUILTINS = {"float", "int", "bool"}
# (a record serialized every step -- json.dump of metrics, a pickle -- is logging by its cost)
LOGGING_QUALNAMES = ("print", "logging.", "tqdm.", "wandb.log", "mlflow.log", "json.dump", "pickle.dump")
LOGGING_METHODS = {
    "info", "debug", "warning", "log", "add_scalar", "add_scalars", "add_histogram", "add_image",
    "add_text", "add_figure", "set_postfix", "set_description", "set_postfix_str", "write", "flush", "log_dict",
}
WRITER_HINTS = ("writer", "logger", "log", "tb", "pbar", "bar", "progress", "summary", "run", "wandb")
FACTORIES = {"tensor", "zeros", "ones", "full", "arange", "linspace", "randn", "rand", "randint",
             "empty", "eye", "from_numpy", "as_tensor", "zeros_like", "ones_like", "stack", "cat"}
TO_DEVICE_METHODS = {"to", "cuda"}


def is_logging(call: CallSite) -> bool:
    q = call.qualname or ""
    if q == "print" or any(q.startswith(p) for p in LOGGING_QUALNAMES[1:]):
        return True
    if call.method in LOGGING_METHODS and call.receiver:
        r = call.receiver.lower()
        if r == "self" and call.method in ("log", "log_dict"):  # a LightningModule's
            return True
        if call.method.startswith("add_") or any(h in r for h in WRITER_HINTS):
            return True
    return False


def logging_lines(index) -> set[int]:
    """Lines of the script that log, inside the training loop (every step)."""
    return {c.line for c in index.calls if is_logging(c) and index.in_loop(c.line)}


def loader_call(index) -> CallSite | None:
    """The DataLoader(...) construction in the script, if one is there (under a framework, the
    one its `train_dataloader` returns)."""
    fw = train_loader(index)
    if fw is not None:
        return fw
    for c in index.calls:
        if (c.qualname or "").endswith("DataLoader") or (c.qualname is None and c.text.startswith("DataLoader(")):
            return c
    return None


def is_sync(call: CallSite) -> bool:
    if call.method in SYNC_METHODS and call.receiver and not call.args:
        return True
    if call.qualname in SYNC_BUILTINS and len(call.args) == 1:
        return True
    return call.qualname == "torch.cuda.synchronize"


def is_factory(call: CallSite) -> bool:
    q = call.qualname or ""
    return q.startswith("torch.") and q.rsplit(".", 1)[-1] in FACTORIES


def is_to_device(call: CallSite) -> bool:
    return call.method in TO_DEVICE_METHODS and call.receiver is not None


def modulo(index, node: cst.If) -> cst.BinaryOperation | None:
    """The `a % N` in an `if`'s test (`if step % 100 == 0:`: a block that runs every N steps)."""
    return next((n for n in index.walk(node.test)
                 if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.Modulo)), None)


def throttled(index, line: int, _seen: tuple = ()) -> bool:
    """Whether `line` runs only every N steps: inside an `if` whose test takes a modulo
    (`if step % 100 == 0:`), or in a function of this file that the training loop calls only
    from such blocks (an evaluation or sampling helper)."""
    for node in index.nodes(cst.If):
        body = _statements(node.body)
        if body and index.line(body[0]) <= line <= index.end_line(body[-1]) and modulo(index, node) is not None:
            return True
    if any(lp.line <= line <= lp.end_line for lp in index.loops):
        return False
    fns = [f for f in index.nodes(cst.FunctionDef) if index.line(f) < line <= index.end_line(f)]
    name = fns[-1].name.value if fns else None  # the innermost (nodes come in source order)
    if name not in index.loop_functions or name in _seen:
        return False
    sites = [c for c in index.calls if isinstance(c.node.func, cst.Name) and c.node.func.value == name
             and index.in_loop(c.line)]
    return bool(sites) and all(throttled(index, c.line, _seen + (name,)) for c in sites)


def periodic_blocks(index) -> list[int]:
    """Lines of the `if` blocks inside a training loop whose test takes a modulo (work every N steps)."""
    return [index.line(n) for n in index.nodes(cst.If) if index.in_loop(index.line(n)) and modulo(index, n) is not None]


def _statements(block) -> list:
    return list(block.body) if isinstance(block, (cst.IndentedBlock, cst.SimpleStatementSuite)) else []


# torch.nn convolution modules (their leaf names)
CONV_LAYERS = {f"{k}{d}d" for k in ("Conv", "ConvTranspose", "LazyConv", "LazyConvTranspose") for d in (1, 2, 3)}


def torchvision_model(index, call: cst.Call) -> bool:
    """`torchvision.models.resnet50(...)`, `models.__dict__[arch](...)`: convnets (ViTs too: a conv stem)."""
    f = call.func.value if isinstance(call.func, cst.Subscript) else call
    return (index.qualname(f) or "").startswith("torchvision.models")


# torchvision's vision transformers: one convolution (the patch embedding), the rest matmuls
_TRANSFORMERS = ("vit_", "swin_", "swin3d_", "mvit_")


def torchvision_convnet(index, call: cst.Call) -> bool:
    """A torchvision model that is a convnet: not one of its vision transformers (`vit_b_16`,
    `swin_t`), whose only convolution is the patch embedding's."""
    if not torchvision_model(index, call) or isinstance(call.func, cst.Subscript):
        return torchvision_model(index, call)  # models.__dict__[arch](): could be any
    return not (index.qualname(call) or "").rsplit(".", 1)[-1].startswith(_TRANSFORMERS)


def is_conv_layer(qualname: str | None) -> bool:
    return bool(qualname) and qualname.startswith("torch.nn.") and qualname.rsplit(".", 1)[-1] in CONV_LAYERS


def module_classes(index) -> set[str]:
    """Classes of this file that derive from torch.nn.Module (directly or through another)."""
    classes = index.nodes(cst.ClassDef)
    found: set[str] = set()
    for _ in range(len(classes) + 1):
        for c in classes:
            for b in c.bases:
                q = index.qualname(b.value) or ""
                if q.startswith("torch.nn.") or (isinstance(b.value, cst.Name) and b.value.value in found):
                    found.add(c.name.value)
    return found



DDP = {"torch.nn.parallel.DistributedDataParallel", "torch.nn.parallel.distributed.DistributedDataParallel"}
DATA_PARALLEL = {"torch.nn.DataParallel", "torch.nn.parallel.DataParallel",
                 "torch.nn.parallel.data_parallel.DataParallel"}


def ddp_calls(index) -> list:
    """The calls that wrap a model in DistributedDataParallel (seen through imports and aliases)."""
    return [c for c in index.calls if c.qualname in DDP]


def function_body(index, line: int) -> tuple[int, int] | None:
    """(first, last) line of the body of the innermost function holding `line`; None at module
    level. The `def` line itself runs when the module does; only the body says the call did."""
    best = None
    for fn in index.nodes(cst.FunctionDef):
        body = fn.body.body
        if not body:
            continue
        a, b = index.line(body[0]), index.end_line(fn)
        if a <= line <= b and (best is None or a >= best[0]):
            best = (a, b)
    return best


def zipped(index, it, target) -> list:
    """`for (x, y), (u,) in zip(a, b)`: the (iterable, target) pairs, when zip's plain arguments
    and the target's elements match one to one; [] otherwise."""
    args = [a for a in it.args if a.keyword is None] if isinstance(it, cst.Call) and index.qualname(it) == "zip" else []
    if not args or len(args) != len(it.args) or any(a.star for a in args) or not isinstance(
            target, (cst.Tuple, cst.List)) or len(target.elements) != len(args) \
            or any(isinstance(e, cst.StarredElement) for e in target.elements):
        return []
    return [(a.value, e.value) for a, e in zip(args, target.elements)]
