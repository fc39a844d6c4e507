import torch as T
from torch import nn

device = "cuda" if T.cuda.is_available() else "cpu"
dim, chunks = 4, 3
model = nn.Linear(dim, dim).to(device)
opt = T.optim.SGD(model.parameters(), lr=0.1)
x = T.randn(chunks, 2, dim, device=device)


# train
for epoch in range(2):
    for step in range(5):
        # class weights, constant
        weights = T.tensor([0.1, 0.2, 0.3, 0.4], device=device)

        bias = T.ones(dim).to(device)  # built on the host, copied
        scale = T.full((1, dim), 0.5 * dim, dtype=T.float32).cuda()
        grid = T.linspace(0, 1, dim, device=device)
        loss = 0
        for xc in x:
            loss = loss + (model(xc) * weights * scale + bias + grid).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    offsets = T.arange(epoch + 1, device=device)  # depends on the epoch: stays in the epoch loop
    print(offsets.sum().item())
