import torch as T
from torch import save as dump

model = T.nn.Linear(4, 1)
opt = T.optim.SGD(model.parameters(), lr=0.1)


def checkpoint(m):
    T.save(m.state_dict(), "ckpt.pt")  # expect: checkpoint-io


for step in range(100):
    loss = model(T.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    dump(model.state_dict(), "model.pt")  # expect: checkpoint-io
    checkpoint(model)  # ok: the save inside checkpoint() is reported, at line 9
    model.save_pretrained("out")  # expect: checkpoint-io
