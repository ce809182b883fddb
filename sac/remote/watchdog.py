"""Our own watchdog on the remote learner, in the acting process: Ray's cannot be relied on here.

A frozen learner (SIGSTOP, a hung GPU driver, a cut network) is declared dead by Ray only after
about a minute, and a lost head terminates the bridge a minute later, so the robot side counts
itself how long it has been since learning last showed progress: new weights, or an answer from
the learner that it is waiting (for transitions, or for env steps under the update cap) and so
owes no new weights. Past ``warn_after_s`` it prints one warning; past ``stop_after_s`` it raises
:class:`~sac.errors.LearnerError`, and the session stops the arm, saves and prints the resume
command. Progress after a warning prints one line that learning is back.
"""
from __future__ import annotations

import sys
from typing import TextIO

from sac.errors import LearnerError


class LearnerWatchdog:
    """Warns, then stops, when the learner shows no progress (acting process).

    Args:
        name: the learner's name, for messages.
        warn_after_s: seconds without progress before the warning.
        stop_after_s: seconds without progress before the run stops.
        out: where the warning goes (stderr).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> dog = LearnerWatchdog("lab", warn_after_s=3, stop_after_s=30, out=out)
        >>> dog.check(4.0, "the learner does not answer")
        >>> out.getvalue().split(";")[0]
        "warning: no new weights from the learner 'lab' for 4.0 s (the learner does not answer)"
        >>> dog.check(31.0, "the learner does not answer")
        Traceback (most recent call last):
        ...
        sac.errors.LearnerError: no new weights from the learner 'lab' for 31.0 s (the learner does not answer); the watchdog stops the run at 30 s
    """

    def __init__(self, name: str, warn_after_s: float, stop_after_s: float, out: TextIO | None = None) -> None:
        self.name, self.warn_after_s, self.stop_after_s = name, warn_after_s, stop_after_s
        self.out = out or sys.stderr
        self.warned = False
        self.warnings = 0
        """Warnings given so far."""

    def check(self, stale_s: float, cause: str) -> None:
        """Judges ``stale_s`` seconds without progress; ``cause`` says what the robot side knows.

        Raises:
            LearnerError: ``stale_s`` reached ``stop_after_s``.
        """
        if stale_s >= self.stop_after_s:
            raise LearnerError(f"no new weights from the learner {self.name!r} for {stale_s:.1f} s ({cause}); the "
                               f"watchdog stops the run at {self.stop_after_s:g} s")
        if stale_s >= self.warn_after_s and not self.warned:
            self.warned = True
            self.warnings += 1
            print(f"warning: no new weights from the learner {self.name!r} for {stale_s:.1f} s ({cause}); the arm "
                  f"keeps acting with its last weights, and the run stops (saved) at {self.stop_after_s:g} s",
                  file=self.out, flush=True)
        elif stale_s < self.warn_after_s and self.warned:
            self.warned = False
            print(f"the learner {self.name!r} shows progress again", file=self.out, flush=True)
