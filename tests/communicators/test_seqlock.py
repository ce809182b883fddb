"""The seqlock: readers across processes never keep a torn copy; a writer that died mid-write is
recovered by the next one. (SharedBuffer's and the shared weights' own torn-read tests run over it.)"""

from __future__ import annotations

import doctest
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from communicators import seqlock
from communicators.seqlock import SeqLock
from communicators.shared_memory import SharedArrays
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(60)
SIZE = 200_000  # large enough that a copy takes long and a writer overtakes it


@pytest.fixture
def arrays():
    shared = SharedArrays({"seq": ((1,), np.int64), "data": ((SIZE,), np.float64), "stop": ((1,), np.int64)},
                          tag="seqtest")
    yield shared
    shared.close()


def _rewrite_forever(shared: SharedArrays) -> None:
    lock, data, value = SeqLock(shared["seq"]), shared["data"], 0.0
    while not shared["stop"][0]:
        value += 1.0
        lock.write_begin(0)
        data[:] = value  # the slot is uniform when complete, mixed mid-write
        lock.write_end(0)
        time.sleep(0.0005)  # a pause: some copies fit between two writes, others overlap one


def test_a_reader_keeps_only_clean_copies_while_another_process_rewrites_the_slot(arrays):
    proc = multiprocessing.get_context("spawn").Process(target=_rewrite_forever, args=(arrays,), daemon=True)
    proc.start()
    lock, data = SeqLock(arrays["seq"]), arrays["data"]
    try:
        wait_for(lambda: data[0] > 0, timeout=20, what="the writer to start")
        clean = torn_seen = 0
        for _ in range(400):
            copy = data.copy()
            torn_seen += int(copy[0] != copy[-1])  # what a reader without the lock would keep
            ok, value = lock.try_read(0, data.copy)
            if ok:
                clean += 1
                assert value[0] == value[-1], "the seqlock passed a torn copy"
        assert clean > 10, f"only {clean} clean copies in 400 tries"
        assert torn_seen > 0, "no unguarded copy was torn: the writer never overtook the reader"
    finally:
        arrays["stop"][0] = 1
        proc.join(10)


def _begin_and_hang(shared: SharedArrays) -> None:
    SeqLock(shared["seq"]).write_begin(0)
    shared["data"][:10] = -1.0  # half a write
    signal.pause()


def test_a_writer_killed_mid_write_blocks_readers_until_the_next_write_recovers_the_slot(arrays):
    proc = multiprocessing.get_context("fork").Process(target=_begin_and_hang, args=(arrays,))
    proc.start()
    lock = SeqLock(arrays["seq"])
    wait_for(lambda: lock.writing(0), timeout=10, what="the writer to enter the slot")
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert lock.try_read(0, arrays["data"].copy) == (False, None), "a half-written slot was read as clean"
    lock.write_begin(0)
    arrays["data"][:] = 3.0
    lock.write_end(0)
    ok, value = lock.try_read(0, arrays["data"].copy)
    assert ok and not lock.writing(0) and np.all(value == 3.0)


def test_it_refuses_sequences_that_are_not_a_flat_int64_array():
    with pytest.raises(TypeError, match="1-D int64 array of sequence numbers, got float64"):
        SeqLock(np.zeros(2))


def test_docstring_example_runs():
    assert doctest.testmod(seqlock).failed == 0
