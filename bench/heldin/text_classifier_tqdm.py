"""Sentence classification with a small Transformer encoder, fp16 AMP and a tqdm bar."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

VOCAB, DIM, CLASSES, MAXLEN = 30000, 256, 4, 128
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, DIM, padding_idx=0)
        layer = nn.TransformerEncoderLayer(DIM, 4, 4 * DIM, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 4)
        self.out = nn.Linear(DIM, CLASSES)

    def forward(self, ids):
        pad = ids == 0
        h = self.enc(self.emb(ids), src_key_padding_mask=pad)
        return self.out(h.mean(1))


ds = TensorDataset(torch.randint(1, VOCAB, (50_000, MAXLEN)), torch.randint(0, CLASSES, (50_000,)))
loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=4, pin_memory=True)
model = Classifier().to(device)
opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)  # expect: unfused-optimizer
scaler = torch.cuda.amp.GradScaler()
crit = nn.CrossEntropyLoss()

for epoch in range(3):
    pbar = tqdm(loader, desc=f"epoch {epoch}")
    correct = total = 0
    for ids, y in pbar:
        ids, y = ids.to(device, non_blocking=True), y.to(device, non_blocking=True)  # ok: pinned
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            logits = model(ids)  # ok: under fp16 autocast
            loss = crit(logits, y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        correct += (logits.argmax(-1) == y).sum().item()  # expect: item-sync
        total += y.numel()
        pbar.set_postfix(loss=loss.item(), acc=correct / total)  # expect: item-sync, excessive-logging
