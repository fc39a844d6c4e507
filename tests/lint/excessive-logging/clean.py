import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
writer = SummaryWriter()
data = [torch.randn(8, 4) for _ in range(10)]
for epoch in range(3):
    for step, x in enumerate(tqdm(data)):  # ok: tqdm in the loop header: no log call
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item()}")  # ok: throttled
            writer.add_histogram("w", model.weight, step)  # ok: throttled
    print(f"epoch {epoch} done")  # ok: once per epoch
    writer.add_scalar("epoch", epoch, epoch)  # ok: once per epoch
print("finished")  # ok: after training
writer.close()
