"""`nn.DataParallel` instead of `DistributedDataParallel`.

## What it does
Flags a model wrapped in `torch.nn.DataParallel`.

## Why it is slow
DataParallel is one process driving every GPU from Python threads. Each step it
copies the model's weights from GPU 0 to every other GPU, splits the batch,
gathers all the outputs back onto GPU 0 and reduces the gradients there: GPU 0
does more work and holds more memory than the others, and the threads contend
for the GIL. DistributedDataParallel runs one process per GPU, keeps a replica
on each, and overlaps an all-reduce of the gradients with the backward pass.
PyTorch's own documentation recommends DDP even on a single machine.

## Example
```python
model = nn.DataParallel(Net().cuda())
```

## Use instead
```python
# launched with: torchrun --nproc-per-node 8 train.py   (or trainprof analyze --nproc-per-node 8 train.py)
dist.init_process_group("nccl")
local_rank = int(os.environ["LOCAL_RANK"])
torch.cuda.set_device(local_rank)
model = DistributedDataParallel(Net().cuda(), device_ids=[local_rank])
loader = DataLoader(ds, batch_size=per_gpu_batch, sampler=DistributedSampler(ds))
```

## When not to fix
A quick experiment on a machine with one GPU: DataParallel over one device
does nothing, and neither would DDP. The switch changes how the script is
launched and how the data is sharded, so it is advice, never an automatic edit.
"""

from __future__ import annotations

from trainprof.finding import Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P

ID = "dataparallel"
TITLE = "nn.DataParallel instead of DistributedDataParallel"


def lint(index):
    """Static: a model wrapped in nn.DataParallel."""
    for c in index.calls:
        if c.qualname in P.DATA_PARALLEL:
            yield Finding(
                rule=ID, title=TITLE, path=index.path, line=c.line, end_line=c.end_line, severity="medium",
                message=f"`{c.text[:60]}`: DataParallel drives every GPU from one Python process, copies the "
                        "weights from GPU 0 to the others every step and gathers the outputs back onto it; "
                        "DistributedDataParallel (one process per GPU, the gradient all-reduce overlapped "
                        "with the backward) is faster (static: a suggestion, not measured).",
                fix=Fix(ID, None, "one process per GPU with DistributedDataParallel, launched by torchrun "
                                  "(or trainprof analyze --nproc-per-node N), with a DistributedSampler"),
            )


RULE = Rule(ID, TITLE, "distributed", static_detect(lint), __doc__, needs=("source",), lint=lint)
