from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

model = GPT2LMHeadModel(GPT2Config(n_layer=2))
args = TrainingArguments(output_dir="out", use_cpu=True)  # ok: trained on the CPU
Trainer(model=model, args=args).train()
