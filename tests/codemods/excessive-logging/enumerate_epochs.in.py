# fixture: lines=15,25,30,31,33,37,38,39,42 every=50
import logging

import torch
import wandb
from torch.utils.data import DataLoader, TensorDataset

log = logging.getLogger(__name__)


def train(model, opt, epochs=3):
    loader = DataLoader(TensorDataset(torch.randn(256, 4), torch.randn(256, 1)), batch_size=8)
    for epoch in range(epochs):
        total = 0.0
        print(f"epoch {epoch} starts")
        for i, (x, y) in enumerate(loader):
            x, y = x.cuda(), y.cuda()
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)

            # progress, with the step's loss
            print(
                f"epoch {epoch} step {i}",
                # the loss itself forces a sync
                f"loss {loss:.4f}",
            )
            log.info("lr %s", opt.param_groups[0]["lr"])  # the logger
            wandb.log({"loss": loss,
                       "step": i})
            logging.debug("step %d done " \
                          "(debug)", i)
            scale = loss.detach() * 2

            logging.info("scaled %s", scale)
        print(f"epoch {epoch}: mean loss {total / (i + 1):.4f}")
    print("done")


print("module loaded")
