import time

import torch

while True:
    time.sleep(0.05)
