import torch

model = torch.nn.Linear(8, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
rows = [[0.0] * 8 for _ in range(16)]
for step in range(100):
    labels = torch.LongTensor([step % 4] * 16).cuda()  # expect: host-alloc
    x = torch.stack([torch.tensor(r) for r in rows]).cuda()  # expect: host-alloc
    on_gpu = torch.cuda.FloatTensor(16, 4).zero_()  # ok: a CUDA tensor type: built on the GPU
    mixed = torch.cat([model.weight, model.weight]).cuda()  # ok: the parameters are on the GPU already
    loss = torch.nn.functional.cross_entropy(model(x) + on_gpu + mixed.sum(), labels)
    loss.backward()
    opt.step()
    opt.zero_grad()


def training_step(model, batch):  # a hand-rolled step: batches already on the GPU
    imgs, _ = batch
    z = torch.randn(imgs.shape[0], 8)  # expect: host-alloc
    z = z.type_as(imgs)
    valid = torch.ones(imgs.size(0), 4, device=imgs.device)  # ok: built where the batch is
    return model(z) * valid


for batch in [(torch.randn(16, 8, device="cuda"), None)] * 10:
    training_step(model, batch).sum().backward()
    opt.step()
