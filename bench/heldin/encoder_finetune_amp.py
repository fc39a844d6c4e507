"""Fine-tuning a hand-written Transformer encoder under bf16 autocast, logging every 50 steps."""
import torch
import torch.nn as nn
import torch.nn.functional as F

D, H, L, T, V = 768, 12, 6, 256, 32000


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Parameter(torch.zeros(1, T, D))
        self.blocks = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, 4 * D, batch_first=True, norm_first=True), L)
        self.head = nn.Linear(D, 2)

    def forward(self, ids, attn_mask):
        h = self.blocks(self.tok(ids) + self.pos, src_key_padding_mask=attn_mask == 0)
        return self.head(h[:, 0])


model = Encoder().cuda()
model = torch.compile(model)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, fused=True)
input_ids = torch.randint(0, V, (100_000, T))
labels = torch.randint(0, 2, (100_000,))
batch_size = 32

for step in range(3000):
    idx = torch.randint(0, len(input_ids), (batch_size,))
    ids = input_ids[idx].cuda(non_blocking=True)  # expect: blocking-h2d
    y = labels[idx].cuda(non_blocking=True)  # expect: blocking-h2d
    attn_mask = torch.ones(batch_size, T).cuda()  # expect: host-alloc
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(ids, attn_mask)
        loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    acc = (logits.argmax(-1) == y).float().mean().item()  # expect: item-sync
    msg = f"step {step} loss {loss.item():.4f} acc {acc:.3f}"  # expect: item-sync
    if step % 50 == 0:
        print(msg)  # ok
