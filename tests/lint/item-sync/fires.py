import torch
import torch as T

model = torch.nn.Linear(4, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
losses = []
for step in range(100):
    loss = model(torch.randn(8, 4, device="cuda")).pow(2).mean()
    losses.append(loss.item())  # expect: item-sync
    print(float(loss.sum()))  # expect: item-sync
    T.cuda.synchronize()  # expect: item-sync
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % 100 == 0:
        print(loss.item())  # ok: throttled
print(sum(losses))
