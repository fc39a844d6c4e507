"""Fake names file for karpathy/makemore (written for this corpus, not upstream).

makemore.py reads one word a line (names.txt upstream, 32k names). This writes made-up
name-like words built from syllables.
"""
import argparse

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--out", default="fake_names.txt")
p.add_argument("--count", type=int, default=32000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
onsets = ["", "b", "br", "c", "ch", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "sh", "t", "v", "w", "z"]
vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ie", "y"]
codas = ["", "", "n", "l", "r", "s", "th", "x"]
with open(a.out, "w") as f:
    for _ in range(a.count):
        k = rng.integers(1, 4)
        f.write("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(k)) + "\n")
print("wrote", a.out)
