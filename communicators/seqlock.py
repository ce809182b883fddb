"""The seqlock: readers copy a slot of shared memory without a lock and keep only a clean copy.

Each slot has a sequence number, odd while a writer is inside the slot. A reader notes the number,
copies the slot, and keeps the copy only if the number was even and has not moved, so it never
keeps a half-written slot and never makes the writer wait. One writer per slot at a time (callers
serialise writers themselves, or have only one).

A writer that dies inside a slot leaves its number odd; the next writer steps to the next odd
number, so "even" still means "complete" after it (a restarted learner republishing weights).

Memory ordering: this relies on stores becoming visible in program order, as they do on x86-64
(total store order). On weakly ordered CPUs (ARM, e.g. Jetson) a reader could in principle keep a
torn copy; they would need explicit fences, which numpy cannot issue.

Used by :class:`~communicators.shared_buffer.SharedBuffer` (one sequence per ring slot) and by
``sac.weights.VersionedArray`` (one per half of a double buffer).

Example:
    >>> import numpy as np
    >>> sequences, data = np.zeros(1, np.int64), np.zeros(3)
    >>> lock = SeqLock(sequences)
    >>> lock.write_begin(0); data[:] = 7.0; lock.write_end(0)
    >>> lock.try_read(0, data.copy)
    (True, array([7., 7., 7.]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


class SeqLock:
    """Sequence numbers of slots, kept in an int64 array that lives in shared memory.

    Args:
        sequences: one int64 per slot, a view into shared memory (all zero when new).
    """

    def __init__(self, sequences: np.ndarray) -> None:
        if sequences.dtype != np.int64 or sequences.ndim != 1:
            raise TypeError(f"SeqLock needs a 1-D int64 array of sequence numbers, got {sequences.dtype} "
                            f"{sequences.shape}")
        self._seq = sequences

    def write_begin(self, slot: int) -> None:
        """Marks ``slot`` as being written (odd): readers of it retry until :meth:`write_end`."""
        sequence = int(self._seq[slot])
        self._seq[slot] = sequence + 1 + sequence % 2  # already odd: a writer died inside

    def write_end(self, slot: int) -> None:
        """Marks ``slot`` as complete (even)."""
        self._seq[slot] += 1

    def writing(self, slot: int) -> bool:
        """True while a writer is inside ``slot`` (or died there)."""
        return bool(int(self._seq[slot]) & 1)

    def try_read(self, slot: int, copy: Callable[[], T]) -> tuple[bool, T | None]:
        """One attempt at a clean copy of ``slot``.

        Args:
            slot: which slot.
            copy: copies the slot out of shared memory and returns the copy.

        Returns:
            ``(True, copy)`` if no writer touched the slot during the copy, else ``(False, None)``;
            the caller decides how often to retry and how long to wait.
        """
        before = int(self._seq[slot])
        if before & 1:
            return False, None
        value = copy()
        if int(self._seq[slot]) != before:
            return False, None
        return True, value
