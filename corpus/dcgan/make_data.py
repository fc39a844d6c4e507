"""Fake image folder for pytorch/examples dcgan `--dataset folder` (written for this corpus, not upstream).

Writes OUT/<class>/img_N.jpg: smooth random colour images (a coarse random grid upsampled, plus a
few ellipses), the layout torchvision.datasets.ImageFolder reads.
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

p = argparse.ArgumentParser()
p.add_argument("--out", default="data/images")
p.add_argument("--count", type=int, default=4000)
p.add_argument("--classes", type=int, default=1)
p.add_argument("--size", type=int, default=64)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
rng = np.random.default_rng(a.seed)

for c in range(a.classes):
    os.makedirs(os.path.join(a.out, f"class{c:03d}"), exist_ok=True)
for i in range(a.count):
    grid = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    im = Image.fromarray(grid).resize((a.size, a.size), Image.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = rng.integers(0, a.size, 2)
        r = int(rng.integers(a.size // 10, a.size // 3))
        d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    im.save(os.path.join(a.out, f"class{i % a.classes:03d}", f"img_{i}.jpg"), quality=85)
print("wrote", a.count, "images to", a.out)
