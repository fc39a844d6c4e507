"""Fake input.txt for karpathy/minGPT projects/chargpt (written for this corpus, not upstream).

chargpt.py reads ./input.txt (tiny-shakespeare in the original). This writes made-up English-like
text (random words, capitalised lines), including every letter of its fixed prompt "O God, O God!".
"""
import argparse

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--chars", type=int, default=1_000_000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
vocab = ["".join(rng.choice(letters, rng.integers(1, 9))) for _ in range(3000)] + ["God", "O"]
parts, n = [], 0
while n < a.chars:
    line = " ".join(rng.choice(vocab, rng.integers(3, 12)))
    line = line[0].upper() + line[1:] + rng.choice([".", ",", "!", "?", ";", ":"]) + "\n"
    parts.append(line)
    n += len(line)
with open("input.txt", "w") as f:
    f.write("".join(parts)[: a.chars])
print("wrote input.txt")
