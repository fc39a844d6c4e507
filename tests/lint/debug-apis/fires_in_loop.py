import torch  # no near-miss: its one debugging switch fires

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    with torch.autograd.detect_anomaly(check_nan=False):  # expect: debug-apis
        loss = model(torch.randn(8, 4)).pow(2).mean()
        loss.backward()
    opt.step()
    opt.zero_grad()
