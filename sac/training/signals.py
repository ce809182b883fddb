"""Stop requests of a training run: Ctrl-C, SIGTERM and SIGHUP all mean "finish the step, stop the
arm, save, exit"; nothing interrupts a save.

SIGTERM is what ``kill``, ``timeout``, systemd and docker send; SIGHUP comes when the terminal goes
away. The first of any of them sets :attr:`StopSignals.requested`; the loop checks it after every
step. While a checkpoint is being written (:meth:`StopSignals.saving`) a signal only prints "saving,
please wait" (and, if it is the first, stops the run after the save). Outside a save, a second Ctrl-C raises KeyboardInterrupt: the escape hatch
for a run stuck in a step (the processes are still closed by the session's ``finally``).

Exit codes (documented in README): 128 + the signal's number after a signal-stopped run has saved
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""
from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Installs the run's handlers for SIGINT, SIGTERM and SIGHUP (main thread, acting process).

    Use as a context manager; the previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saving = 0
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """A stop was asked for."""
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the first signal's number (only meaningful once :attr:`requested`)."""
        return 128 + (self.signum or 0)

    @property
    def name(self) -> str:
        """The first signal's name, e.g. "SIGTERM" (Ctrl-C shows as SIGINT)."""
        return signal.Signals(self.signum).name if self.signum else ""

    def __enter__(self) -> StopSignals:
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Within this block, signals only say "saving, please wait"."""
        self._saving += 1
        try:
            yield
        finally:
            self._saving -= 1

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._saving:
            # os.write: print() from a signal handler can re-enter a buffered stream mid-write.
            os.write(2, b"saving, please wait\n")
            if self.signum is None:
                self.signum = signum  # the run stops once this save is done
            return
        if self.signum is None:
            self.signum = signum
            os.write(2, f"{signal.Signals(signum).name}: stopping after this step; the run is saved first\n".encode())
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
