"""Fake BSDS300 for pytorch/examples super_resolution (written for this corpus, not upstream).

data.download_bsd300() downloads only when dataset/BSDS300/images does not exist, so this writes
dataset/BSDS300/images/{train,test}/N.jpg first: smooth random colour images (a coarse random grid
upsampled, plus ellipses), 321x481 like the real photographs (main.py centre-crops 256).
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

p = argparse.ArgumentParser()
p.add_argument("--out", default="dataset/BSDS300/images")
p.add_argument("--train", type=int, default=400)
p.add_argument("--test", type=int, default=50)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
rng = np.random.default_rng(a.seed)
W, H = 481, 321

for split, n in (("train", a.train), ("test", a.test)):
    os.makedirs(os.path.join(a.out, split), exist_ok=True)
    for i in range(n):
        grid = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        im = Image.fromarray(grid).resize((W, H), Image.BICUBIC)
        d = ImageDraw.Draw(im)
        for _ in range(8):
            x0, y0 = rng.integers(0, W), rng.integers(0, H)
            r = int(rng.integers(10, 80))
            d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        im.save(os.path.join(a.out, split, f"{i}.jpg"), quality=85)
print("wrote", a.out)
