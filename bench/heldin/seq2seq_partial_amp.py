"""GRU seq2seq translation: the encoder runs under autocast, the decoder loop does not."""
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, BOS = 0, 1
SRC_V, TGT_V, HID = 16000, 16000, 1024
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(SRC_V, HID, padding_idx=PAD)
        self.rnn = nn.GRU(HID, HID, batch_first=True)

    def forward(self, src):
        return self.rnn(self.emb(src))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(TGT_V, HID, padding_idx=PAD)
        self.cell = nn.GRUCell(HID, HID)
        self.out = nn.Linear(HID, TGT_V)

    def forward(self, tok, h):
        h = self.cell(self.emb(tok), h)
        return self.out(h), h


enc, dec = Encoder().to(device), Decoder().to(device)
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.Adam(params, lr=1e-3, fused=True)
src_all = torch.randint(2, SRC_V, (20_000, 40), device=device)
tgt_all = torch.randint(2, TGT_V, (20_000, 30), device=device)

for step in range(10_000):
    idx = torch.randint(0, 20_000, (64,), device=device)
    src, tgt = src_all[idx], tgt_all[idx]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, h = enc(src)
    h = h[0].float()
    tok = torch.full((64,), BOS, device=device)  # ok: on the device
    loss = 0.0
    for t in range(tgt.size(1)):  # expect: python-loop
        logits, h = dec(tok, h)  # expect: fp32-compute
        loss = loss + F.cross_entropy(logits, tgt[:, t], ignore_index=PAD)
        teacher = random.random() < 0.5  # ok: a Python number
        tok = tgt[:, t] if teacher else logits.argmax(-1)
    n_tokens = (tgt != PAD).sum().item()  # expect: item-sync
    loss = loss / tgt.size(1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.3f} tokens {n_tokens}")  # ok
