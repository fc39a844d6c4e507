"""What the static detectors may say about a value from the source alone, TorchFix-like: which
names hold models and where each is built, whether the code names a GPU at all, what a name is
bound to (one binding in its function or the module, or a parameter that every call site of
this file passes the same way), and which host->device copies in the training loop copy a
tensor built on the host. Each answers None (or False) where the source does not say.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from . import patterns as P
from .index import CallSite

_NOT_MODELS = {"Parameter", "Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
               "Identity", "Sequential_"}
_MODEL_FACTORIES = ("torchvision.models.", "timm.create_model", "timm.models.")
# Factories whose result follows the device of their tensor arguments: not known to be on the host.
_FOLLOWS = {"stack", "cat", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
            "randint_like"}
_LEGACY = {f"torch.{t}Tensor" for t in ("", "Float", "Double", "Half", "Long", "Int", "Short", "Byte", "Bool")}
_DEPTH = 4


def builds_model(index, node: cst.CSTNode) -> bool:
    """Whether an expression builds a model: a torch.nn module (not a loss), a module class of
    this file, a torchvision/timm factory (also `models.__dict__[arch]()`), `X.from_pretrained`."""
    own = P.module_classes(index)
    for c in index.walk(node):
        if not isinstance(c, cst.Call):
            continue
        q = index.qualname(c) or ""
        leaf = q.rsplit(".", 1)[-1]
        if q.startswith("torch.nn.") and not q.startswith(("torch.nn.functional.", "torch.nn.init.", "torch.nn.utils.")) \
                and leaf[:1].isupper() and leaf not in _NOT_MODELS and not leaf.endswith("Loss"):
            return True
        if q.startswith(_MODEL_FACTORIES) or (isinstance(c.func, cst.Attribute) and c.func.attr.value == "from_pretrained"):
            return True
        if isinstance(c.func, cst.Name) and c.func.value in own and not c.func.value.endswith("Loss"):
            return True
        if torchvision_model(index, c):
            return True
    return False


torchvision_model, torchvision_convnet, zipped = P.torchvision_model, P.torchvision_convnet, P.zipped


def dotted(node) -> str | None:
    """`x` or `self.x` (an attribute of a name): what the detectors follow as a variable."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
        return f"{node.value.value}.{node.attr.value}"
    return None


def _assigns(index) -> list[tuple[str, cst.Assign, cst.BaseExpression]]:
    """(name, assignment, the value it binds to the name): `x = v`, `self.x = v`, and each name of
    a tuple unpacked from a tuple of as many values (`netG, netD = G().cuda(), D().cuda()`)."""
    out = []
    for a in index.nodes(cst.Assign):
        if len(a.targets) != 1:
            continue
        for t, v in _pairs(a.targets[0].target, a.value):
            out.append((t, a, v))
    return out


def _pairs(target, value) -> list[tuple[str, cst.BaseExpression]]:
    if dotted(target) is not None:
        return [(dotted(target), value)]
    if isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List)) \
            and len(target.elements) == len(value.elements) \
            and not any(isinstance(e, cst.StarredElement) for e in (*target.elements, *value.elements)):
        return [p for t, v in zip(target.elements, value.elements) for p in _pairs(t.value, v.value)]
    return []


def param_owners(index, call: cst.Call) -> list[str]:
    """Names X whose parameters an optimizer call takes: `Opt(X.parameters())`, `list(X.parameters())
    + ...`, `params=X.named_parameters()`."""
    arg = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "params"),
               call.args[0].value if call.args and call.args[0].keyword is None else None)
    out: list[str] = []
    for n in index.walk(arg) if arg is not None else ():
        if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and dotted(n.func.value) \
                and n.func.attr.value in ("parameters", "named_parameters") and dotted(n.func.value) not in out:
            out.append(dotted(n.func.value))
    return out


def optimized(index) -> list[str]:
    """Names whose parameters a torch.optim optimizer takes, in order."""
    out: list[str] = []
    for c in index.calls:
        if (c.qualname or "").startswith("torch.optim."):
            out += [n for n in param_owners(index, c.node) if n not in out]
    return out


def moved_before(index, name: str, at: cst.CSTNode) -> bool:
    """Whether `name` is moved to a device (not literally the CPU) before node `at`: `name.to(dev)`,
    `name.cuda()`, `name = ....to(dev)`, or (a parameter) passed in so by every caller."""
    line = index.line(at)
    for c in index.calls:
        if c.line >= line or not moves_to_device(index, c):
            continue
        if c.receiver == name:
            return True
        a = next((x for x in index.ancestors(c.node) if isinstance(x, cst.Assign)), None)
        if a is not None and any(t == name and any(n is c.node for n in index.walk(v)) for t, v in
                                 (p for x in a.targets for p in _pairs(x.target, a.value))):
            return True
    read = next((n for n in index.walk(at) if isinstance(n, cst.Name) and n.value == name), None)
    value = binding(index, read) if read is not None else None
    return value is not None and any(moves_to_device(index, c) for c in index.calls if any(
        x is value for x in [c.node, *index.ancestors(c.node)]))


def models(index) -> dict[str, int]:
    """Model names -> the line of the first statement building it: names assigned from an
    expression that builds a model, and names whose parameters an optimizer takes (built by
    whatever their first assignment calls)."""
    out: dict[str, int] = {}
    assigns = _assigns(index)
    for name, a, v in assigns:
        if name not in out and builds_model(index, v):
            out[name] = index.line(a)
    for name in optimized(index):
        if name not in out:
            first = next((a for n, a, v in assigns if n == name and isinstance(v, cst.Call)), None)
            if first is not None:
                out[name] = index.line(first)
    return out


def model_calls(index, names) -> list[CallSite]:
    """Calls of a model by its name (`model(x)`, `net(x).squeeze()`) that run every step, in line order."""
    return [c for c in index.calls if dotted(c.node.func) in names and every_step(index, c.line)]


def gpu_named(index) -> bool:
    """Whether the code (not its comments) names a GPU: torch.cuda / torch.accelerator, a
    'cuda' device string, `.cuda()`, `.is_cuda`."""
    if any(q.startswith(("torch.cuda.", "torch.accelerator.", "torch.backends.cudnn")) for q in index.qualnames.values()):
        return True
    for s in index.nodes(cst.SimpleString):
        v = index.literal(s)
        if isinstance(v, str) and (v == "cuda" or v.startswith("cuda:")):
            return True
    return any(isinstance(a, cst.Attribute) and a.attr.value in ("cuda", "is_cuda") for a in index.nodes(cst.Attribute))


def every_step(index, line: int) -> bool:
    """Whether a line runs on every step: in a training loop (or a function it calls) and not
    in a block that runs every N steps."""
    return index.in_loop(line) and not P.throttled(index, line)


def _function(index, node) -> cst.FunctionDef | None:
    return next((a for a in index.ancestors(node) if isinstance(a, cst.FunctionDef)), None)


def binding(index, name: cst.Name | cst.Attribute, depth: int = 0) -> cst.BaseExpression | None:
    """What `name` holds where it is read: in its function (else the module), the nearest
    assignment before the read, or its one value if it is assigned only after (in a loop); for
    a parameter, what every call of its function in this file passes; for `self.x`, its one
    value in the class. None where that is not one value."""
    if depth > _DEPTH:
        return None
    if isinstance(name, cst.Attribute):
        key, cls = dotted(name), next((a for a in index.ancestors(name) if isinstance(a, cst.ClassDef)), None)
        vals = [v for n, a, v in _assigns(index) if n == key and cls is not None and any(x is cls for x in index.ancestors(a))]
        return _one(index, vals) if vals and key.startswith("self.") else None
    fn = _function(index, name)
    for scope in (fn, None) if fn is not None else (None,):
        binds = [(a, v) for n, a, v in _assigns(index) if n == name.value and _function(index, a) is scope
                 and not any(x is a for x in index.ancestors(name))]
        before = [v for a, v in binds if index.pos[a].start.line < index.pos[name].start.line]
        if before:
            return before[-1]
        if binds:
            return _one(index, [v for a, v in binds])
        params = [p.name.value for p in scope.params.params] if scope is not None else []
        if name.value in params:
            return _passed(index, scope, params.index(name.value), name.value, depth)
    return None


def value_of(index, expr, depth: int = 0):
    """What an expression is, as far as this file says: a name's or `self.x`'s binding, the one
    value a function of this file returns (`get_loader(ds)`, `self.make_loader()`); the
    expression itself otherwise, None where a name cannot be followed."""
    while depth <= _DEPTH:
        depth += 1
        if dotted(expr) is not None and (isinstance(expr, cst.Name) or dotted(expr).startswith("self.")):
            expr = binding(index, expr, depth)
        elif isinstance(expr, cst.Call) and (fn := _own_function(index, expr.func)) is not None:
            rets = [r.value for r in index.walk(fn.body) if isinstance(r, cst.Return) and r.value is not None]
            expr = _one(index, rets) if rets else None
        else:
            return expr
    return None


def _own_function(index, func) -> cst.FunctionDef | None:
    """The function of this file a call names: `f(...)`, or `self.m(...)` (a method of its class)."""
    name = func.value if isinstance(func, cst.Name) else func.attr.value if dotted(func) and dotted(func).startswith(
        "self.") else None
    fns = [f for f in index.nodes(cst.FunctionDef) if f.name.value == name]
    return fns[-1] if name is not None and fns else None


def _one(index, vals: list):
    return vals[0] if len({index.code(v) for v in vals}) == 1 else None


def _passed(index, fn: cst.FunctionDef, k: int, pname: str, depth: int):
    """The value every call of fn in this file passes as its parameter k (named pname)."""
    found = []
    for c in index.calls:
        if not (isinstance(c.node.func, cst.Name) and c.node.func.value == fn.name.value):
            continue
        args = c.node.args
        arg = next((a.value for a in args if a.keyword is not None and a.keyword.value == pname), None)
        pos = [a for a in args if a.keyword is None]
        if arg is None and k < len(pos) and not any(a.star for a in pos[:k + 1]):
            arg = pos[k].value
        if arg is None:
            return None
        found.append(binding(index, arg, depth + 1) if isinstance(arg, cst.Name) else arg)
    if not found or any(v is None for v in found):
        return None
    return found[0] if all(v is found[0] for v in found) else None


# -- tensors built on the host, copied to the device -----------------------------------------
@dataclass(frozen=True)
class HostCopy:
    copy: CallSite  # the .to(...) / .cuda() call
    factory: CallSite  # the torch factory that built the tensor on the host
    same: bool  # the factory is inside the copy's own expression (`torch.zeros(n).to(dev)`)
    per_step: bool  # the factory runs every step too (not once, before the loop)
    pinned: bool  # `.pin_memory()` on the way
    non_blocking: bool


def moves_to_device(index, c: CallSite) -> bool:
    """`.cuda(...)`, `.type_as(t)` (t's device), or `.to(...)` with a device that is not literally
    the CPU (not a dtype)."""
    if not c.receiver or c.method not in ("to", "cuda", "type_as"):
        return False
    if c.method in ("cuda", "type_as"):
        return True
    pos = [a for a in c.node.args if a.keyword is None]
    if pos and pos[0].star:
        return False  # `.to(*xs)`, `.to(**kw)`: unknown
    dev = pos[0].value if pos else next((a.value for a in c.node.args if a.keyword and a.keyword.value == "device"), None)
    if dev is None:
        return False  # .to(dtype=...), .to(memory_format=...)
    v = index.literal(dev)
    if v is not ...:
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.startswith("cuda"))
    if isinstance(dev, cst.Call):
        if index.qualname(dev) == "torch.device" and dev.args:
            v = index.literal(dev.args[0].value)
            return v is ... or (isinstance(v, str) and v.startswith("cuda"))
        return True  # torch.accelerator.current_accelerator(), x.get_device() ...
    q = index.qualname(dev) or ""
    return not (q.startswith("torch.") and q != "torch.device")  # torch.float16: a dtype


def host_factory(index, expr, site_of: dict, depth: int = 0) -> tuple[CallSite | None, bool]:
    """The torch factory (without a device, or on the CPU) that built the tensor expr is
    (through casts, views, indexing, a name's binding, a list of them, a for loop over one),
    and whether `.pin_memory()` is on the way."""
    pinned = False
    while depth <= _DEPTH:
        if isinstance(expr, cst.Call):
            c = site_of.get(expr)
            if c is not None and (P.is_factory(c) or c.qualname in _LEGACY):
                if c.qualname.rsplit(".", 1)[-1] in _FOLLOWS:  # stack, cat, zeros_like: where their tensors are
                    expr, depth = (c.args[0] if c.args else None), depth + 1
                    continue
                host = c.keywords.get("device", "cpu") in ("cpu", None)
                return (c if host else None), pinned or c.keywords.get("pin_memory") is True
            if not isinstance(expr.func, cst.Attribute):
                return None, pinned
            pinned = pinned or expr.func.attr.value == "pin_memory"
            expr = expr.func.value
        elif isinstance(expr, (cst.Attribute, cst.Subscript)):
            expr = expr.value
        elif isinstance(expr, cst.BinaryOperation):  # `torch.arange(n) + n`: where its tensor operand is
            expr = expr.right if isinstance(expr.left, (cst.Integer, cst.Float)) else expr.left
        elif isinstance(expr, cst.UnaryOperation):
            expr = expr.expression
        elif isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            expr = expr.elt
        elif isinstance(expr, cst.List) and expr.elements:
            expr = expr.elements[0].value
        elif isinstance(expr, cst.Name):
            loop = next((a for a in index.ancestors(expr) if isinstance(a, cst.For) and _binds(index, a.target, expr.value)
                         and any(x is a.body for x in index.ancestors(expr))), None)
            expr = loop.iter if loop is not None else binding(index, expr, depth)
            depth += 1
        else:
            break
    return None, pinned


def _binds(index, target, name: str) -> bool:
    return any(isinstance(n, cst.Name) and n.value == name for n in index.walk(target))


def host_copies(index) -> list[HostCopy]:
    """Every host->device copy that runs each step of a tensor built on the host (not in a
    branch taken on the CPU only)."""
    out, site_of = [], {c.node: c for c in index.calls}
    for c in index.calls:
        if not moves_to_device(index, c) or not every_step(index, c.line) or cpu_branch(index, c.node):
            continue
        f, pinned = host_factory(index, c.node.func.value, site_of)
        if f is None:
            continue
        same = any(n is f.node for n in index.walk(c.node))
        out.append(HostCopy(c, f, same, every_step(index, f.line), pinned,
                            c.keywords.get("non_blocking", False) is not False))
    return out


def cpu_branch(index, node) -> bool:
    """Whether node runs only on the CPU path: in the else of an `if` that tests for a GPU
    (`if device_type == 'cuda':`, `if torch.cuda.is_available():`), or under one testing for the CPU."""
    for a in index.ancestors(node):
        if not isinstance(a, cst.If):
            continue
        says = _device_test(index, a.test)
        inside_else = a.orelse is not None and any(x is a.orelse for x in index.ancestors(node))
        if (says == "cuda" and inside_else) or (says == "cpu" and not inside_else):
            return True
    return False


def _device_test(index, test) -> str | None:
    for n in index.walk(test):
        q = index.qualname(n) if isinstance(n, (cst.Name, cst.Attribute)) else None
        if q in ("torch.cuda.is_available", "torch.accelerator.is_available"):
            return "cuda"
        if isinstance(n, cst.SimpleString) and index.literal(n) in ("cuda", "cpu"):
            negated = any(isinstance(o.operator, (cst.NotEqual, cst.IsNot, cst.NotIn))
                          for o in (test.comparisons if isinstance(test, cst.Comparison) else ()))
            v = index.literal(n)
            return ({"cuda": "cpu", "cpu": "cuda"}[v]) if negated else v
    return None


# -- names that hold tensors -----------------------------------------------------------------
_NOT_TENSOR_METHODS = {"item", "tolist", "size", "dim", "numel", "data_ptr", "element_size", "stride", "is_contiguous",
                       "numpy", "cpu", "get_device", "nelement"}
_NOT_TENSOR_FUNCS = {"device", "no_grad", "enable_grad", "inference_mode", "autocast", "manual_seed", "save", "load",
                     "compile", "is_tensor", "numel", "get_default_dtype", "set_grad_enabled", "get_num_threads",
                     "is_grad_enabled", "initial_seed", "seed", "is_floating_point", "is_complex"}


def tensor_names(index) -> set[str]:
    """Names that hold a tensor in the training loop's code: what `.backward()` is called on,
    and names assigned there from a model or loss module, a torch function, or a tensor's method."""
    mods = set(models(index)) | {n for n, a, v in _assigns(index) if isinstance(v, cst.Call)
                                 and (index.qualname(v) or "").startswith("torch.nn.")}
    out = {c.receiver for c in index.calls if c.method == "backward" and c.receiver and c.receiver.isidentifier()}
    steps = [a for a in index.nodes(cst.Assign) if index.in_loop(index.line(a)) and isinstance(a.value, cst.Call)]
    for _ in range(2):  # a method of a tensor assigned the pass before
        for a in steps:
            if _tensor_call(index, a.value, mods, out):
                out |= {n.value for t in a.targets for n in index.walk(t.target) if isinstance(n, cst.Name)}
    return out


def _tensor_call(index, call: cst.Call, mods: set, tensors: set) -> bool:
    f = call.func
    if isinstance(f, cst.Name) and f.value in mods:
        return True
    q = index.qualname(call) or ""
    if q.startswith("torch.nn.functional.") or (q.count(".") == 1 and q.startswith("torch.")
                                                 and q[6:] not in _NOT_TENSOR_FUNCS and q[6:7].islower()):
        return True
    while isinstance(f, cst.Attribute) and f.attr.value not in _NOT_TENSOR_METHODS:
        v = f.value
        if isinstance(v, cst.Name):
            return v.value in tensors
        f = v.func if isinstance(v, cst.Call) else None
    return False
