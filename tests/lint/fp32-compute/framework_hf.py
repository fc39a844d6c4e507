from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

model = GPT2LMHeadModel(GPT2Config(n_layer=2))  # ok: the fix is the arguments' precision
args = TrainingArguments(output_dir="out", per_device_train_batch_size=8)  # expect: fp32-compute
Trainer(model=model, args=args).train()
