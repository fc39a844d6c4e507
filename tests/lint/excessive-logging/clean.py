import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
writer = SummaryWriter()
data = [torch.randn(8, 4) for _ in range(10)]
for epoch in range(3):
    for step, x in enumerate(tqdm(data)):
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item()}")
            writer.add_histogram("w", model.weight, step)
    print(f"epoch {epoch} done")
    writer.add_scalar("epoch", epoch, epoch)
print("finished")
writer.close()
