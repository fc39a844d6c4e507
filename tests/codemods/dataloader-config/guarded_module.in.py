# fixture: lines=13 workers=3
import torch as T
from tqdm import tqdm

ds = T.utils.data.TensorDataset(T.randn(512, 16), T.randint(0, 4, (512,)))
model = T.nn.Linear(16, 4)
opt = T.optim.Adam(model.parameters())

if __name__ == "__main__":
    device = "cpu"  # no GPU here: no pinned memory
    loader = T.utils.data.DataLoader(ds, batch_size=32, num_workers=0)
    for epoch in range(3):
        for x, y in tqdm(loader):
            x = x.to(device)
            loss = T.nn.functional.cross_entropy(model(x), y.to(device))
            loss.backward()
            opt.step()
            opt.zero_grad()
