import torch as T
from torch.utils.tensorboard import SummaryWriter as SW
from tqdm import trange


class Trainer:
  def __init__(self, model, data):
    self.model, self.data = model, data
    self.opt = T.optim.SGD(model.parameters(), lr=0.1)
    self.writer = SW()

  def fit(self, steps, rank=0):
    pbar = trange(steps)
    for it in pbar:
      x, y = self.data()
      loss = T.nn.functional.mse_loss(self.model(x), y)
      self.opt.zero_grad(); loss.backward(); self.opt.step()
      if rank == 0:
        self.writer.add_scalar("train/loss", loss, it)
        pbar.set_postfix(loss=float(loss))
      self.writer.add_scalars("lr", {"g0": self.opt.param_groups[0]["lr"]}, it); self.writer.flush()
    for step in trange(steps):
      loss = T.nn.functional.mse_loss(self.model(self.data()[0]), self.data()[1])
      loss.backward()
      self.opt.step()
      self.writer.add_scalar("loss", loss, step)
