import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.Adam(model.parameters())
for epoch in range(2):
    for x in torch.randn(5, 3, 4):
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()

        # log it
        print("loss", loss.item(),
              "scaled", loss.item() * 100)   # odd layout kept
        if loss.item() > 1e3:
            raise RuntimeError("diverged")
