from trainprof.source import index_source
from trainprof.source import patterns as P

SRC = '''\
import torch as T
from torch.utils.tensorboard import SummaryWriter
import logging

def log(v):
    logging.info("loss %s", v)

w = SummaryWriter()
for epoch in range(3):
    for x in range(10):
        loss = T.ones(2).sum()
        v = loss.item()
        T.cuda.synchronize()
        log(v)
        w.add_scalar("l", loss, x)
        loss.backward()
    print("epoch done")
'''


def test_loop_and_qualified_names(tmp_path):
    p = tmp_path / "train.py"
    p.write_text(SRC)
    ix = index_source(str(p))
    assert [(lp.line, lp.end_line) for lp in ix.loops] == [(10, 16)]  # the step loop, not the epoch loop
    assert ix.in_loop(12) and not ix.in_loop(17)
    assert ix.in_loop(6)  # inside log(), called from the loop
    sync = [c for c in ix.calls if c.qualname == "torch.cuda.synchronize"]
    assert [c.line for c in sync] == [13]  # seen through `import torch as T`
    assert {c.line for c in ix.calls if P.is_sync(c)} == {12, 13}
    assert {c.line for c in ix.calls if P.is_logging(c)} == {6, 15, 17}


def test_parse_error_is_one_line(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text("for x in :\n  pass\n")
    import pytest

    from trainprof.errors import TrainprofError

    with pytest.raises(TrainprofError, match=r"bad.py:1: cannot parse"):
        index_source(str(p))
