import torch

device = "cuda"
model = torch.nn.Linear(4, 4).to(device).half()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    a = torch.tensor([0.1, 0.2, 0.3, 0.4]).to(device, torch.float16)  # float32 first, then half: not the same as half directly
    b = torch.ones(4).to(device=device, dtype=torch.half)
    c = torch.zeros(4).to(torch.float16)
    d = torch.zeros(4).to(device, copy=True)
    loss = model((a + b + c + d)[None]).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
