"""Run the user's unmodified script under torch.profiler in a child process."""

from .runner import CaptureOptions, capture

__all__ = ["CaptureOptions", "capture"]
