"""Fake MNIST for the pytorch/examples scripts that read torchvision.datasets.MNIST('../data')
(written for this corpus, not upstream).

Writes ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (and .gz copies), the idx
files torchvision reads. MNIST._check_exists() only looks for the uncompressed files (no checksum),
so `download=True` finds them and downloads nothing. Images: ten made-up 28x28 digit-like
templates (strokes on black) moved, thickened and noised per sample; labels 0-9 match the templates.
"""
import argparse
import gzip
import os
import struct

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--root", default="../data")
p.add_argument("--train", type=int, default=30000)
p.add_argument("--test", type=int, default=5000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
rng = np.random.default_rng(a.seed)

# ten templates: random polylines drawn on a 28x28 canvas
templates = np.zeros((10, 28, 28), np.float32)
for k in range(10):
    pts = rng.integers(6, 22, size=(rng.integers(3, 6), 2))
    for (y0, x0), (y1, x1) in zip(pts[:-1], pts[1:]):
        for t in np.linspace(0, 1, 40):
            y, x = int(round(y0 + (y1 - y0) * t)), int(round(x0 + (x1 - x0) * t))
            templates[k, y - 1:y + 2, x - 1:x + 2] = 1.0


def make(n):
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    imgs = templates[labels]
    shifts = rng.integers(-3, 4, size=(n, 2))
    out = np.empty((n, 28, 28), np.uint8)
    for i in range(n):
        im = np.roll(imgs[i], tuple(shifts[i]), axis=(0, 1))
        im = im * rng.uniform(0.6, 1.0) + (rng.random((28, 28)) < 0.02) * 0.5
        out[i] = np.clip(im * 255, 0, 255).astype(np.uint8)
    return out, labels


raw = os.path.join(a.root, "MNIST", "raw")
os.makedirs(raw, exist_ok=True)
for prefix, n in (("train", a.train), ("t10k", a.test)):
    imgs, labels = make(n)
    files = {
        f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes(),
        f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 2049, n) + labels.tobytes(),
    }
    for name, data in files.items():
        with open(os.path.join(raw, name), "wb") as f:
            f.write(data)
        with gzip.open(os.path.join(raw, name + ".gz"), "wb", compresslevel=1) as f:
            f.write(data)
print("wrote", raw)
