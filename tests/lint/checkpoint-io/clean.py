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
            torch.save(model.state_dict(), f"step{step}.pt")
    torch.save(model.state_dict(), f"epoch{epoch}.pt")  # once per epoch
torch.save(model.state_dict(), "final.pt")
