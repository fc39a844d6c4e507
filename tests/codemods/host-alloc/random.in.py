import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(4, 4).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
torch.manual_seed(0)
for step in range(10):
    noise = torch.randn(8, 4).to(device)  # the CPU generator's numbers
    drop = torch.rand(8, 4).to(device) > 0.1
    perm = torch.randperm(8).to(device)
    labels = torch.randint(0, 4, (8,)).cuda()
    jitter = torch.normal(0.0, 1.0, size=(8, 4)).to(device)
    loss = (model(noise[perm] * drop + jitter)[torch.arange(8), labels]).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
