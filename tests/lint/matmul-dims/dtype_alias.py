import torch as T

head = T.nn.Linear(768, 50257)  # expect
x = T.randn(4, 768, device="cuda", dtype=T.float16)
