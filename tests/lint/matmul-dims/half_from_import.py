from torch import nn  # no near-miss: its one line of layers fires
from torch.nn import Linear

model = nn.Sequential(Linear(300, 512), nn.ReLU(), Linear(512, 100)).cuda().half()  # expect: matmul-dims
