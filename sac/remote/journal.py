"""The learner's replay journal: every batch of transitions it stored, appended to its own disk.

A batch is acknowledged to the robot side only after it is in the journal (written and fsynced),
so a learner killed at any moment loses no acknowledged transition: its restart reads the journal
back into a new replay buffer, and the robot side sends again what was not acknowledged. The
journal is a series of segment files (``segment_<n>.bin``), each a run of records: a header
(payload bytes, transitions) and a pickled ``(actor_id, first_seq, env_step, batch)``. A record
cut short by a kill mid-write ends its segment's reading; appends always go to a new segment after
a restart. Segments older than the replay buffer's capacity are deleted as new ones fill.
"""
from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterator
import numpy as np

_HEADER = struct.Struct("<QI")  # payload bytes, transitions
Record = tuple[str, int, int, dict[str, np.ndarray]]


class ReplayJournal:
    """Append-only transitions on disk (learner process).

    Args:
        directory: the journal's directory (created).
        keep_transitions: keep at least this many of the newest transitions (the replay capacity).
        segment_transitions: start a new segment file after this many transitions.
    """

    def __init__(self, directory: str, keep_transitions: int, segment_transitions: int = 1000) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.keep, self.segment_transitions = int(keep_transitions), int(segment_transitions)
        self._segments: list[tuple[str, int]] = []  # (path, transitions), oldest first
        self._file = None

    def _paths(self) -> list[str]:
        names = sorted(n for n in os.listdir(self.directory) if n.startswith("segment_") and n.endswith(".bin"))
        return [os.path.join(self.directory, n) for n in names]

    def read(self) -> Iterator[Record]:
        """Every complete record, oldest first (call once, before the first :meth:`append`)."""
        self._segments = []
        for path in self._paths():
            count = 0
            with open(path, "rb") as f:
                while True:
                    header = f.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break
                    size, n = _HEADER.unpack(header)
                    payload = f.read(size)
                    if len(payload) < size:
                        break  # cut short by a kill mid-write: the rest of this segment was never acknowledged
                    count += n
                    yield pickle.loads(payload)
            self._segments.append((path, count))

    def append(self, actor_id: str, first_seq: int, env_step: int, batch: dict[str, np.ndarray]) -> None:
        """Writes one batch durably (fsynced) before returning."""
        n = len(batch["reward"])
        if self._file is None or self._segments[-1][1] >= self.segment_transitions:
            self._roll()
        payload = pickle.dumps((actor_id, int(first_seq), int(env_step), batch), protocol=5)
        self._file.write(_HEADER.pack(len(payload), n) + payload)
        self._file.flush()
        os.fsync(self._file.fileno())
        path, count = self._segments[-1]
        self._segments[-1] = (path, count + n)

    def _roll(self) -> None:
        if self._file is not None:
            self._file.close()
        last = self._paths()[-1] if self._paths() else None
        number = int(os.path.basename(last)[8:-4]) + 1 if last else 1
        path = os.path.join(self.directory, f"segment_{number:08d}.bin")
        self._file = open(path, "ab")
        self._segments.append((path, 0))
        self._prune()

    def _prune(self) -> None:
        # Drop the oldest segment while the newer ones still hold ``keep`` transitions.
        while len(self._segments) > 1 and sum(n for _, n in self._segments[1:]) >= self.keep:
            path, _ = self._segments.pop(0)
            os.remove(path)

    @property
    def transitions(self) -> int:
        """Transitions in the kept segments."""
        return sum(n for _, n in self._segments)

    def close(self) -> None:
        """Closes the open segment. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None
