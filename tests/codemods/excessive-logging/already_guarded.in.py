import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(8, 4), torch.randn(8, 1)

for step in range(100):
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    if (step + 1) % 10 == 0:
        print(f"step {step} loss {loss.item():.3f}")
    if step % 50 == 0: print("checkpoint soon")
    if step % 25 == 0 and step > 0:
        for name, p in model.named_parameters():
            print(name, p.norm())
