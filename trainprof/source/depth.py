"""How deeply a source nests, measured before any parser sees it.

libcst's parser and the visitors over its tree recurse once per level: `1 + 1 + ...` of a few
hundred terms ends in RecursionError, 20,000 `not`s in MemoryError, and 10,000 nested brackets
crash its native parser (a segfault takes the process with it). The tokenizer does not recurse,
so the depth is estimated from tokens first, and a source nested past MAX_NESTING is refused
with a plain error. A source deeper than SUSPECT but within the limit is parsed once in a
forked child first, so that a crash of the parser on a form this estimate misjudges costs a
one-line error, not trainprof.
"""

from __future__ import annotations

import faulthandler
import io
import os
import signal
import tokenize

MAX_NESTING = 200  # levels; the parser and our visitors reach ~300 (at Python's default limit)
SUSPECT = 50  # deeper than any ordinary training script: parse in a child first

# Each of these nests the tree one level more within a chain (`a + b + c`, `not not x`, `a.b.c`).
_CHAIN_WORDS = {"not", "and", "or", "lambda", "if", "else", "await", "in", "is"}
_TRAILER_AFTER = {tokenize.NAME, tokenize.NUMBER, tokenize.STRING}


def nesting(text: str) -> tuple[int, int]:
    """(an upper estimate of the tree's depth, the line where it is deepest). Per bracket
    level, the operators chained since the last comma count one level each; brackets, calls
    and subscripts (`f()()`, `a[0][0]`) and indentation add theirs."""
    chain = [0]  # per open bracket: operators chained at that level since its last separator
    indent = deepest = where = 0
    prev = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            t, s = tok.type, tok.string
            if t == tokenize.INDENT:
                indent += 1
            elif t == tokenize.DEDENT:
                indent -= 1
            elif t == tokenize.NEWLINE:
                chain = [0]
            elif t == tokenize.OP and s in "([{":
                if s != "{" and prev is not None and (prev.type in _TRAILER_AFTER or prev.string in (")", "]", "}")):
                    chain[-1] += 1  # a call or subscript of what precedes: one level more
                chain.append(0)
            elif t == tokenize.OP and s in ")]}":
                if len(chain) > 1:
                    chain.pop()
            elif t == tokenize.OP and s in (",", ";"):
                chain[-1] = 0
            elif t == tokenize.OP or (t == tokenize.NAME and s in _CHAIN_WORDS):
                chain[-1] += 1
            depth = indent + len(chain) + sum(chain)
            if depth > deepest:
                deepest, where = depth, tok.start[0]
            prev = tok
    except (tokenize.TokenError, SyntaxError):  # the parser will say what is wrong
        pass
    return deepest, where


def parser_survives(parse, text: str) -> str | None:
    """None if parse(text) returns or raises in a forked child; else how the child died (a
    crash of a native parser). Where fork is not available, None."""
    if not hasattr(os, "fork"):
        return None
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's runs here, and it leaves by _exit only
        code = 1
        try:
            faulthandler.disable()  # a crash here is the expected answer, not news for stderr
            parse(text)
            code = 0
        except BaseException:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return signal.Signals(sig).name
        except ValueError:
            return f"signal {sig}"
    return None
