"""The one error type the CLI turns into a one-line message and a nonzero exit."""


class TrainprofError(Exception):
    """A problem with the user's input or run, explained in one line."""

    exit_code = 1

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.message = message
        # Extra lines shown under the message (e.g. the tail of a child's traceback).
        self.detail = detail


class CaptureError(TrainprofError):
    exit_code = 2


class Interrupted(CaptureError):
    """Ctrl-C during a run: the script was stopped; the message says what the run directory holds."""

    exit_code = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


class TraceError(TrainprofError):
    exit_code = 3
