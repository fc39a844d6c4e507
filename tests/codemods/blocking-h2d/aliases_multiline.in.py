import torch as T
from torch.utils.data import DataLoader as DL
from tqdm import tqdm

model = T.nn.Linear(4, 2).cuda()
opt = T.optim.Adam(model.parameters())
loader = DL(
    T.utils.data.TensorDataset(T.randn(32, 4), T.randn(32, 2)),
    batch_size=8,
    drop_last=True,
)
for batch in tqdm(loader):
    inputs = batch[0].cuda()
    target = batch[1].to(
        device=T.device("cuda"),  # keyword form
    )
    loss = (model(inputs) - target).pow(2).mean()
    loss.backward()
    opt.step()
