"""Where a script's forwards run under autocast: `with torch.autocast(...):` blocks (or a name
bound to one), and the model calls of a training loop left outside them while another forward
of the same function runs inside one -- AMP used for part of the step."""

from __future__ import annotations

import re

import libcst as cst

from . import values as V

AUTOCAST = re.compile(r"torch\.(?:cuda\.amp\.|cpu\.amp\.|amp\.(?:autocast_mode\.)?)?autocast$")
_REDUCED = re.compile(r"bfloat16|float16|half")


def autocasts(index, w: cst.With) -> bool:
    """`with torch.autocast(...):`, or `with ctx:` where ctx is bound to one (`nullcontext() if
    cpu else torch.amp.autocast(...)`)."""
    for item in w.items:
        v = V.value_of(index, item.item) if V.dotted(item.item) else item.item
        if v is not None and any(isinstance(n, cst.Call) and AUTOCAST.match(index.qualname(n) or "")
                                 for n in index.walk(v)):
            return True
    return False


def withs(index, node) -> list:
    """The `with` blocks around node, in its own function."""
    out = []
    for a in index.ancestors(node):
        if isinstance(a, (cst.FunctionDef, cst.ClassDef)):
            break
        if isinstance(a, cst.With):
            out.append(a)
    return out


def _scope(index, node):
    return next((a for a in index.ancestors(node) if isinstance(a, cst.FunctionDef)), None)


def outside_autocast(index, calls) -> list:
    """(call, a call under autocast in its function) for each model call of `calls` (every step)
    outside any `with` block, in a function that runs another forward under autocast. A model
    cast to bf16/fp16 itself (`m.half()`, `m = Net().cuda().half()`), or run under any `with`
    (`no_grad`, autocast disabled), is left alone."""
    covered = [c for c in calls if any(autocasts(index, w) for w in withs(index, c.node))]
    casts = [c for c in index.calls if c.method in ("half", "bfloat16") or (c.method == "to" and _REDUCED.search(c.text))]
    cast = {c.receiver for c in casts} | {
        V.dotted(t.target) for c in casts for a in index.ancestors(c.node) if isinstance(a, cst.Assign) for t in a.targets}
    out, seen = [], set()
    for c in calls:
        amp = next((k for k in covered if _scope(index, k.node) is _scope(index, c.node)), None)
        if amp is None or withs(index, c.node) or V.dotted(c.node.func) in cast or c.line in seen:
            continue
        seen.add(c.line)
        out.append((c, amp))
    return out
