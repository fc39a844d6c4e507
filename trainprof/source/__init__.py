"""Index of the user's script (one libcst parse): the training loop and the calls inside it."""

from .index import CallSite, SourceIndex, index_source
from .loops import Loop

__all__ = ["CallSite", "Loop", "SourceIndex", "index_source"]
