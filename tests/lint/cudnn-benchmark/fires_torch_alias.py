import torch as T

T.backends.cudnn.enabled = True  # ok: enabled, not the benchmark flag
net = T.nn.Conv3d(1, 8, 3)  # expect: cudnn-benchmark
