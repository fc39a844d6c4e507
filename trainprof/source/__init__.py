"""Index of the user's script: the training loop and the calls inside it."""

from .index import CallSite, SourceIndex, index_source

__all__ = ["CallSite", "SourceIndex", "index_source"]
