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
        loss_value = loss.item()
        print("loss", loss_value,
              "scaled", loss_value * 100)   # odd layout kept
        if loss_value > 1e3:
            raise RuntimeError("diverged")
