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


EPOCHS = '''\
import torch

def train(model, loader, opt):
    for step, x in enumerate(loader):
        loss = model(x).sum()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            sample(model)

def evaluate(model, loader):
    return [model(x).sum().item() for x in loader]

def sample(model):
    return model(torch.zeros(1, 4)).tolist()

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    train(model, [torch.ones(2, 4)], opt)
    print(evaluate(model, [torch.ones(2, 4)]))
'''


def test_an_epoch_loop_calling_the_training_function_is_not_a_training_loop(tmp_path):
    p = tmp_path / "train.py"
    p.write_text(EPOCHS)
    ix = index_source(str(p))
    assert [lp.line for lp in ix.loops] == [4]  # train()'s loop; not `for epoch` (line 19), which calls it
    assert not ix.in_loop(12) and not ix.in_loop(21)  # evaluate() and the epoch's print run once an epoch
    assert ix.in_loop(15)  # sample(), called from the step loop ...
    assert P.throttled(ix, 15) and not P.throttled(ix, 5)  # ... only every 100 steps


def test_values_bindings_models_and_host_copies(tmp_path):
    from trainprof.source import values as V

    p = tmp_path / "train.py"
    p.write_text(
        "import numpy as np\nimport torch\nfrom mynets import Net\n\n"
        "def train(net, loader, device):\n"
        "    for x in loader:\n"
        "        w = torch.from_numpy(np.ones(4))\n"
        "        w = w.to(device)\n"
        "        loss = net(x.to(device)).sum() * w.sum()\n"
        "        loss.backward()\n\n"
        "def main():\n"
        "    loader = torch.utils.data.DataLoader(range(8))\n"
        "    net = Net().cuda()\n"
        "    opt = torch.optim.Adam(net.parameters())\n"
        "    train(net, loader, 'cuda')\n")
    ix = index_source(str(p))
    loader = next(n for n in ix.nodes(__import__("libcst").Name) if n.value == "loader" and ix.line(n) == 6)
    assert ix.code(V.binding(ix, loader)) == "torch.utils.data.DataLoader(range(8))"  # through train()'s one caller
    assert V.models(ix) == {"net": 14}  # its parameters go to an optimizer
    assert [c.line for c in V.model_calls(ix, {"net"})] == [9]
    assert V.gpu_named(ix) and V.tensor_names(ix) >= {"loss", "w"}
    copies = V.host_copies(ix)
    assert [(h.copy.line, h.factory.line, h.same, h.per_step) for h in copies] == [(8, 7, False, True)]
