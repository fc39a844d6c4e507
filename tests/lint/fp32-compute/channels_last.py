import torch
import torchvision

device = torch.device("cuda")
criterion = torch.nn.CrossEntropyLoss()  # ok: a loss, not the model
model = torchvision.models.resnet50().to(device)  # expect: fp32-compute
opt = torch.optim.SGD(model.parameters(), lr=0.1, fused=True)
for step in range(100):
    x = torch.randn(64, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (64,), device=device)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        loss = criterion(model(x), y)  # ok: under bf16 autocast: the layout is what is left
    opt.zero_grad()
    loss.backward()
    opt.step()
