"""The learner's replay journal: every batch comes back in order after a restart, a record cut short
by a kill is not read, and old segments go once newer ones hold the replay capacity."""
from __future__ import annotations

import os

import numpy as np

from sac.remote.journal import ReplayJournal


def batch(first: int, n: int) -> dict[str, np.ndarray]:
    return {"reward": np.arange(first, first + n, dtype=np.float32), "obs/x": np.ones((n, 3), np.uint8)}


def test_batches_written_before_a_restart_are_read_back_in_order(tmp_path):
    journal = ReplayJournal(str(tmp_path), keep_transitions=100)
    assert list(journal.read()) == []
    for first in range(0, 30, 10):
        journal.append("a", first, first + 10, batch(first, 10))
    journal.close()
    again = ReplayJournal(str(tmp_path), keep_transitions=100)
    records = list(again.read())
    assert [(actor, seq, step) for actor, seq, step, _ in records] == [("a", 0, 10), ("a", 10, 20), ("a", 20, 30)]
    assert np.concatenate([b["reward"] for *_, b in records]).tolist() == list(range(30))
    again.append("a", 30, 40, batch(30, 5))  # appends go to a new segment after a restart
    assert again.transitions == 35 and len(os.listdir(tmp_path)) == 2
    again.close()


def test_a_record_cut_short_by_a_kill_is_not_read(tmp_path):
    journal = ReplayJournal(str(tmp_path), keep_transitions=100)
    list(journal.read())
    journal.append("a", 0, 5, batch(0, 5))
    journal.append("a", 5, 10, batch(5, 5))
    journal.close()
    (segment,) = [os.path.join(tmp_path, name) for name in os.listdir(tmp_path)]
    with open(segment, "r+b") as f:
        f.truncate(os.path.getsize(segment) - 7)
    records = list(ReplayJournal(str(tmp_path), keep_transitions=100).read())
    assert [seq for _, seq, _, _ in records] == [0]


def test_old_segments_are_deleted_once_newer_ones_hold_the_capacity(tmp_path):
    journal = ReplayJournal(str(tmp_path), keep_transitions=25, segment_transitions=10)
    list(journal.read())
    for first in range(0, 100, 10):
        journal.append("a", first, first, batch(first, 10))
    assert 25 <= journal.transitions <= 40
    journal.close()
    seqs = [seq for _, seq, _, _ in ReplayJournal(str(tmp_path), keep_transitions=25).read()]
    assert seqs[-1] == 90 and seqs == list(range(seqs[0], 100, 10)) and len(seqs) * 10 >= 25
