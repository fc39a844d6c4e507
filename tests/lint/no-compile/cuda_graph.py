import torch

model = torch.nn.Linear(4, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
g = torch.cuda.CUDAGraph()  # ok: a CUDA graph
for step in range(100):  # ok: replays a CUDA graph
    g.replay()
    opt.step()
