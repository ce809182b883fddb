"""What a training run prints: the seed's console lines, one message per event, and the initial
steps' progress, which never shares a line with anything else.

On a terminal the progress is a tqdm bar on stderr and lines are written above it; into a file or a
pipe there is no bar (its carriage returns would splice lines together), only a plain progress
line at every quarter.
"""
from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class Console:
    """The run's output (acting process).

    Args:
        out: where lines go (stdout by default).
        err: where messages about failures go (stderr by default).
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self._bar: tqdm | None = None
        self._plain: tuple[int, int] | None = None  # (total, next milestone) without a bar

    def line(self, text: str) -> None:
        """Prints one line (a console line, a "saved ..." message) on a line of its own."""
        if self._bar is not None:
            self._bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        """Prints a message about a failure to stderr, on a line of its own."""
        if self._bar is not None:
            self._bar.write(text, file=self.err)
        else:
            print(text, file=self.err, flush=True)

    def start_progress(self, total: int, done: int, what: str) -> None:
        """Shows progress towards ``total`` (a bar on a terminal, quarter lines otherwise)."""
        if done >= total:
            return
        if self.err.isatty():
            self._bar = tqdm(total=total, initial=done, desc=what, leave=False, file=self.err)
        else:
            self._plain = (total, done)
            self._what = what

    def progress(self, done: int) -> None:
        """Reports ``done`` steps; ends the progress once the total is reached."""
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if done >= self._bar.total:
                self.end_progress()
        elif self._plain is not None:
            total, last = self._plain
            quarter = max(1, total // 4)
            if done // quarter > last // quarter or done >= total:
                print(f"{self._what}: {done}/{total}", file=self.out, flush=True)
                self._plain = (total, done)
            if done >= total:
                self._plain = None

    def end_progress(self) -> None:
        """Removes the bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._plain = None
