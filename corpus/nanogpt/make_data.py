"""Fake character-level dataset for karpathy/nanoGPT (written for this corpus, not upstream).

Writes data/<dataset>/train.bin and val.bin (uint16 token ids, as prepare.py writes them) and
meta.pkl (vocab_size, stoi, itos), like data/shakespeare_char/prepare.py does for real text.
The text is made up: words of random letters with spaces, punctuation and newlines.
"""
import argparse
import os
import pickle

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--dataset", default="shakespeare_char")
p.add_argument("--train-chars", type=int, default=2_000_000)
p.add_argument("--val-chars", type=int, default=200_000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

chars = sorted(set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for i, ch in enumerate(chars)}
rng = np.random.default_rng(a.seed)
# mostly lower-case letters and spaces, as in English text
weights = np.array([8.0 if c.islower() else (12.0 if c == " " else (2.0 if c == "\n" else 0.3)) for c in chars])
weights /= weights.sum()

out = os.path.join("data", a.dataset)
os.makedirs(out, exist_ok=True)
for name, n in (("train.bin", a.train_chars), ("val.bin", a.val_chars)):
    rng.choice(len(chars), size=n, p=weights).astype(np.uint16).tofile(os.path.join(out, name))
with open(os.path.join(out, "meta.pkl"), "wb") as f:
    pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
print("wrote", out, "vocab", len(chars))
