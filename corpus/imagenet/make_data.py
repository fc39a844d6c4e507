"""Fake ImageNet-style tree for pytorch/examples imagenet/main.py (written for this corpus, not upstream).

Writes OUT/train/<class>/img_N.jpg and OUT/val/<class>/img_N.jpg: smooth random colour images
(a coarse random grid upsampled, plus a few ellipses), the ImageFolder layout main.py reads from
DIR/train and DIR/val. The images are small (main.py's RandomResizedCrop/Resize scale them to 224).
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

p = argparse.ArgumentParser()
p.add_argument("--out", default="data/fake_imagenet")
p.add_argument("--classes", type=int, default=10)
p.add_argument("--train-per-class", type=int, default=500)
p.add_argument("--val-per-class", type=int, default=20)
p.add_argument("--size", type=int, default=80)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
rng = np.random.default_rng(a.seed)


def image():
    grid = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    im = Image.fromarray(grid).resize((a.size, a.size), Image.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = rng.integers(0, a.size, 2)
        r = int(rng.integers(a.size // 10, a.size // 3))
        d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


for split, n in (("train", a.train_per_class), ("val", a.val_per_class)):
    for c in range(a.classes):
        folder = os.path.join(a.out, split, f"n{c:08d}")
        os.makedirs(folder, exist_ok=True)
        for i in range(n):
            image().save(os.path.join(folder, f"img_{i}.JPEG"), quality=85)
print("wrote", a.out)
