"""Load a Kineto trace into one columnar model, and the measures derived from it."""

from .load import load_trace
from .model import Trace

__all__ = ["Trace", "load_trace"]
