"""Word-level LSTM language model; the device comes from --device."""
import argparse
import math

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda")
parser.add_argument("--bptt", type=int, default=35)
parser.add_argument("--batch", type=int, default=20)
parser.add_argument("--nhid", type=int, default=1024)
parser.add_argument("--log-interval", type=int, default=200)
args = parser.parse_args()

ntokens = 33278
corpus = torch.randint(0, ntokens, (2_000_000,))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous().to(args.device)


train_data = batchify(corpus, args.batch)  # ok: once, before training


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=0.2)
        self.decoder = nn.Linear(nhid, ntoken)

    def forward(self, inp, hidden):
        out, hidden = self.rnn(self.encoder(inp), hidden)
        return self.decoder(out), hidden


model = RNNModel(ntokens, 1024, args.nhid, 2).to(args.device)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=20.0)


def train(epoch):
    model.train()
    total_loss = 0.0
    hidden = (torch.zeros(2, args.batch, args.nhid, device=args.device),  # ok: on the device
              torch.zeros(2, args.batch, args.nhid, device=args.device))
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        seq_len = min(args.bptt, len(train_data) - 1 - i)
        data, targets = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)
        optimizer.zero_grad()
        output, hidden = model(data, hidden)  # expect: fp32-compute
        loss = criterion(output.view(-1, ntokens), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        total_loss += loss.item()  # expect: item-sync
        if batch % args.log_interval == 0 and batch > 0:
            cur = total_loss / args.log_interval
            print(f"| epoch {epoch} | batch {batch} | loss {cur:.2f} | ppl {math.exp(cur):.1f}")  # ok
            total_loss = 0.0


for epoch in range(1, 41):
    train(epoch)
