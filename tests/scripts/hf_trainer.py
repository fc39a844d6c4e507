"""A Hugging Face Trainer subclass with its own compute_loss (a .item() every step), a GPT-2
built from a config (no downloaded weights), a map-style Dataset of random tokens."""
import argparse

import torch
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100000)
p.add_argument("--out", default="hf_out")
args = p.parse_args()


class Tokens(Dataset):
    def __len__(self):
        return 1_000_000

    def __getitem__(self, i):
        ids = torch.randint(0, 256, (32,), generator=torch.Generator().manual_seed(i))
        return {"input_ids": ids, "labels": ids}


class LossTrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(**inputs)
        self.last_loss = out.loss.item()
        return (out.loss, out) if return_outputs else out.loss


model = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=32, n_embd=32, n_layer=1, n_head=2))
targs = TrainingArguments(output_dir=args.out, per_device_train_batch_size=8, max_steps=args.steps, logging_steps=50,
                          report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
LossTrainer(model=model, args=targs, train_dataset=Tokens()).train()
