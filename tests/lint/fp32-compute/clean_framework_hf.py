from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

model = GPT2LMHeadModel(GPT2Config(n_layer=2))
args = TrainingArguments(output_dir="out", bf16=True)  # ok: bf16 set
Trainer(model=model, args=args).train()
