"""Fake text corpus for pytorch/examples word_language_model (written for this corpus, not upstream).

Writes DIR/train.txt, DIR/valid.txt, DIR/test.txt: lines of space-separated made-up words drawn from
a Zipf-like distribution over a fixed vocabulary, the layout data.Corpus reads (one sentence a line).
"""
import argparse
import os

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--out", default="data/fake")
p.add_argument("--vocab", type=int, default=10000)
p.add_argument("--train-words", type=int, default=1_000_000)
p.add_argument("--eval-words", type=int, default=100_000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
words = set()
while len(words) < a.vocab:
    words.add("".join(rng.choice(letters, rng.integers(2, 10))))
words = np.array(sorted(words))
prob = 1.0 / np.arange(1, a.vocab + 1)
prob /= prob.sum()

os.makedirs(a.out, exist_ok=True)
for name, n in (("train.txt", a.train_words), ("valid.txt", a.eval_words), ("test.txt", a.eval_words)):
    ids = rng.choice(a.vocab, size=n, p=prob)
    toks = words[ids]
    lens = rng.integers(8, 30, size=n // 8 + 1)
    cuts = np.cumsum(lens)
    cuts = cuts[cuts < n]
    with open(os.path.join(a.out, name), "w") as f:
        for line in np.split(toks, cuts):
            f.write(" " + " ".join(line) + " \n")
print("wrote", a.out)
