"""The one error type the CLI turns into a one-line message and a nonzero exit, and the exit
codes (README, Guarantees: one table, each row tested in tests/test_cli_conventions.py)."""

EXIT_USAGE = 1  # usage or input: the command line, a file refused; `lint`: findings at --fail-on
EXIT_RUN = 2  # a run of the user's script failed (analyze, trials, verify, apply --verify)
EXIT_TRACE = 3  # a trace or run directory that cannot be read
EXIT_BUG = 70  # a bug of ours (sysexits' EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


class TrainprofError(Exception):
    """A problem with the user's input or run, explained in one line."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.message = message
        # Extra lines shown under the message (e.g. the tail of a child's traceback).
        self.detail = detail


class UsageError(TrainprofError):
    """The command line itself is wrong (an unknown option or command, a missing script, a
    bad value): the same code as any input trainprof refuses, with a pointer to --help."""

    exit_code = EXIT_USAGE


class CaptureError(TrainprofError):
    exit_code = EXIT_RUN


class Interrupted(CaptureError):
    """Ctrl-C during a run: the script was stopped; the message says what the run directory holds."""

    exit_code = EXIT_INTERRUPTED


class TraceError(TrainprofError):
    exit_code = EXIT_TRACE
