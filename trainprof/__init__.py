"""trainprof: profiling-driven bottleneck analysis for PyTorch training."""

__version__ = "0.1.0"
