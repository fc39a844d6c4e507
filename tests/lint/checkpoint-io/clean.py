import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [torch.randn(8, 4) for _ in range(10)]
for epoch in range(3):
    for step, x in enumerate(data):
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 500 == 0:
            torch.save(model.state_dict(), f"step{step}.pt")  # ok: every 500 steps
    torch.save(model.state_dict(), f"epoch{epoch}.pt")  # ok: once per epoch
torch.save(model.state_dict(), "final.pt")  # ok: after training
