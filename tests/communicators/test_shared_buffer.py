"""SharedBuffer: cross-process use under every start method, SenseAct semantics, torn reads, cleanup;
a reader sleeping in wait_for_update is woken by a write in another process."""

from __future__ import annotations

import doctest
import multiprocessing
import pickle
import re
import signal
import threading
import time

import numpy as np
import pytest

from communicators import SharedBuffer, SharedBufferError, futex, shared_buffer
from communicators.shared_buffer import wait_for_update
from tests.support import buffer_workers
from tests.support.processes import Script, own_segments, segments_of, wait_until
from tests.support.toy_communicators import FRAME_SHAPE

pytestmark = pytest.mark.timeout(60)

START_METHODS = [pytest.param(m, id=m) for m in ("fork", "spawn", "forkserver")]


@pytest.fixture
def buffers():
    """Collects the buffers a test makes and closes them afterwards, even when it fails."""
    made: list[SharedBuffer] = []

    def make(*args, **kwargs) -> SharedBuffer:
        made.append(SharedBuffer(*args, **kwargs))
        return made[-1]

    yield make
    for buf in made:
        buf.close()


# ----- across processes -----

@pytest.mark.parametrize("method", START_METHODS)
def test_child_writes_and_parent_reads_and_vice_versa(method, buffers):
    ctx = multiprocessing.get_context(method)
    frames = buffers(shape=FRAME_SHAPE, dtype=np.uint8, buffer_len=4)
    vector = buffers(shape=(3,), dtype="d", buffer_len=4)
    command = buffers(shape=(2,), dtype=np.float32, buffer_len=2)
    parent_conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=buffer_workers.write_frames_and_read_command,
                        args=(frames, vector, command, child_conn), daemon=True)
    child.start()
    try:
        assert parent_conn.poll(20.0), "child never reported its writes"
        assert parent_conn.recv() == "written"
        # The parent sees the child's writes: uint8 frames, unflattened, oldest first.
        data, ts, idx = frames.read(3)
        assert data.dtype == np.uint8 and data.shape == (3, *FRAME_SHAPE)
        assert [int(np.unique(d)[0]) for d in data] == [1, 2, 3] and all(np.unique(d).size == 1 for d in data)
        assert ts.tolist() == [101.0, 102.0, 103.0] and idx.tolist() == [0, 1, 2]
        vec, _, _ = vector.read_update(2)
        assert vec.tolist() == [[2.0, 4.0, 6.0], [3.0, 6.0, 9.0]]
        # The child sees a write the parent makes after it started (a live mapping, not a copy).
        command.write(np.array([0.5, -1.5], np.float32), timestamp=7.0)
        assert parent_conn.poll(20.0), "child never saw the parent's command"
        cdata, cts, cidx = parent_conn.recv()
        assert cdata.dtype == np.float32 and cdata.tolist() == [[0.5, -1.5]]
        assert cts.tolist() == [7.0] and cidx.tolist() == [0]
    finally:
        child.join(10)
    assert child.exitcode == 0


def test_two_readers_do_not_hide_data_from_each_other(buffers):
    buf = buffers(shape=(2,), dtype=np.float64)
    ctx = multiprocessing.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=buffer_workers.read_update_once, args=(buf, child_conn), daemon=True)
    child.start()
    buf.write([1.0, 2.0])
    assert parent_conn.poll(20.0)
    child_index, child_updated_after = parent_conn.recv()
    child.join(10)
    assert (child_index, child_updated_after) == (0, False)
    assert buf.updated(), "the child's read_update hid the new data from the parent"
    buf.read_update()
    assert not buf.updated()


def test_indices_are_right_with_two_writer_processes(buffers):
    n = 1500
    buf = buffers(shape=(2,), dtype=np.float64, buffer_len=2 * n)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    writers = [ctx.Process(target=buffer_workers.write_numbered, args=(buf, w, n, start), daemon=True) for w in (0, 1)]
    for w in writers:
        w.start()
    start.set()
    for w in writers:
        w.join(30)
    assert [w.exitcode for w in writers] == [0, 0]
    assert buf.num_writes == 2 * n
    data, _, idx = buf.read(2 * n)
    assert idx.tolist() == list(range(2 * n))
    for writer_id in (0, 1):
        own = data[data[:, 0] == writer_id, 1]
        assert own.tolist() == list(range(n)), f"writer {writer_id}'s slots are missing or out of order"


def test_reader_never_sees_a_half_written_slot(buffers):
    # 512 KiB slots take long enough to copy that an unprotected read would tear often.
    buf = buffers(shape=(256, 256), dtype=np.int64, buffer_len=2)
    seconds = 2.5
    writer = multiprocessing.get_context("fork").Process(
        target=buffer_workers.write_uniform_patterns, args=(buf, seconds), daemon=True)
    writer.start()
    assert wait_until(lambda: buf.num_writes > 0, 10.0)
    reads, seen = 0, set()
    while writer.is_alive():
        data, ts, idx = buf.read()
        slot = data[0]
        first = slot.flat[0]
        assert (slot == first).all(), f"torn read at index {idx[0]}: values {np.unique(slot)[:5]}..."
        assert first == idx[0] and ts[0] == float(idx[0]), "slot, index and timestamp disagree"
        reads += 1
        seen.add(int(idx[0]))
    writer.join(10)
    assert writer.exitcode == 0
    # The check means something only if reads raced with many writes.
    assert reads > 100 and len(seen) > 50, f"only {reads} reads of {len(seen)} distinct writes"


# ----- reading semantics (SenseAct's own constructor and windows: tests/communicators/test_senseact_communicator.py) -----

def test_updated_is_set_by_a_write_and_cleared_by_read_update_only(buffers):
    buf = buffers(shape=(4,), dtype="d", buffer_len=3)
    assert buf.dtype == np.float64 and buf.shape == (4,) and buf.array_len == 4
    assert not buf.updated()
    buf.write([1, 2, 3, 4], timestamp=1.0)
    assert buf.updated()
    data, ts, idx = buf.read()
    assert data.tolist() == [[1, 2, 3, 4]] and ts.tolist() == [1.0] and idx.tolist() == [0]
    assert buf.updated(), "read() must not mark data as seen"
    buf.read_update()
    assert not buf.updated()


def test_windows_are_oldest_first_and_wrap_around(buffers):
    buf = buffers(shape=(2,), dtype=np.float32, buffer_len=3)
    for k in range(5):
        buf.write([k, -k], timestamp=10.0 + k)
    data, ts, idx = buf.read_update(3)
    assert idx.tolist() == [2, 3, 4] and ts.tolist() == [12.0, 13.0, 14.0]
    assert data.dtype == np.float32 and data[:, 0].tolist() == [2, 3, 4]
    assert buf.read(1)[2].tolist() == [4]
    assert buf.latest()[2] == 4 and buf.num_writes == 5


def test_never_written_slots_are_distinguishable_from_data(buffers):
    buf = buffers(shape=(3,), dtype=np.float64, buffer_len=3)
    data, ts, idx = buf.read(2)
    assert idx.tolist() == [-1, -1] and np.isnan(ts).all() and buf.num_writes == 0
    with pytest.raises(SharedBufferError, match="never been written"):
        buf.latest()
    buf.write([0.0, 0.0, 0.0], timestamp=5.0)
    _, ts, idx = buf.read(3)
    assert idx.tolist() == [-1, -1, 0] and np.isnan(ts[:2]).all() and ts[2] == 5.0


def test_docstring_example_runs():
    assert doctest.testmod(shared_buffer).failed == 0


def test_flat_data_of_the_right_size_is_reshaped_into_the_slot(buffers):
    buf = buffers(shape=(2, 3), dtype=np.int16)
    buf.write(np.arange(6))
    data, _, _ = buf.latest()
    assert data.shape == (2, 3) and data.dtype == np.int16 and data.tolist() == [[0, 1, 2], [3, 4, 5]]


# ----- bad input -----

@pytest.mark.parametrize("kwargs, match", [
    ({"shape": (3,), "buffer_len": 0}, "buffer_len=0 must be a positive integer"),
    ({"shape": (3,), "buffer_len": -2}, "buffer_len=-2 must be a positive integer"),
    ({"shape": (3,), "buffer_len": 2.5}, "buffer_len=2.5 must be a positive integer"),
    ({"shape": (3, 0)}, "non-positive dimension"),
    ({"shape": None}, "needs shape="),
], ids=["buffer_len-zero", "buffer_len-negative", "buffer_len-float", "zero-dimension", "no-shape"])
def test_bad_constructor_arguments_raise_naming_the_problem(kwargs, match):
    before = own_segments()
    with pytest.raises(SharedBufferError, match=re.escape(match)):
        SharedBuffer(**kwargs)
    assert own_segments() == before, "a rejected buffer left a segment"


def test_bad_writes_and_reads_raise_naming_the_problem(buffers):
    buf = buffers(shape=(2, 3), dtype=np.float64, buffer_len=2)
    with pytest.raises(SharedBufferError, match=re.escape("data of shape (4,) does not fit a slot of shape (2, 3)")):
        buf.write(np.zeros(4))
    assert buf.num_writes == 0, "a rejected write was counted"
    with pytest.raises(SharedBufferError, match=re.escape("window_len=3 must be between 1 and buffer_len=2")):
        buf.read(3)
    with pytest.raises(SharedBufferError, match=re.escape("window_len=0 must be between 1 and buffer_len=2")):
        buf.read_update(0)
    buf.close()
    with pytest.raises(SharedBufferError, match="closed SharedBuffer"):
        pickle.dumps(buf)


# ----- cleanup -----

def test_close_unlinks_the_segment_and_is_idempotent():
    before = own_segments()
    buf = SharedBuffer(shape=(4,), dtype=np.float64)
    created = own_segments() - before
    assert len(created) == 1
    buf.close()
    buf.close()
    assert buf.closed and not (own_segments() & created)


ENDINGS = {
    "sigkill": "time.sleep(60)",  # the test kills it
    "exception": "raise RuntimeError('owner fails')",
    "os_exit": "os._exit(3)",
}


@pytest.mark.parametrize("ending", list(ENDINGS), ids=list(ENDINGS))
def test_segment_is_unlinked_when_the_owning_process_ends_without_closing(ending):
    code = (
        "import os, sys, time\nimport numpy as np\nfrom communicators import SharedBuffer\n"
        "buf = SharedBuffer(shape=(4,), dtype=np.float64)\nbuf.write(np.arange(4.0))\n"
        "print('ready', flush=True)\n"
        "time.sleep(0.3)\n" + ENDINGS[ending] + "\n"
    )
    with Script(code) as script:
        assert script.read_line() == "ready"
        created = segments_of({script.pid})
        assert len(created) == 1, f"expected the owner's segment in /dev/shm, found {created}"
        if ending == "sigkill":
            script.kill()
        script.proc.wait(20)
        assert wait_until(lambda: not segments_of({script.pid}), 10.0), \
            f"segments left after the owner ended ({ending}): {segments_of({script.pid})}"


def test_data_that_cannot_be_stored_is_refused_and_leaves_the_buffer_readable():
    buf = SharedBuffer(shape=(3,), dtype=np.float64, buffer_len=2)
    try:
        buf.write(np.array([1.0, 2.0, 3.0]))
        with pytest.raises(SharedBufferError, match="cannot be stored as float64"):
            buf.write(np.array(["a", "b", "c"]))
        data, _, index = buf.latest()
        assert data.tolist() == [1.0, 2.0, 3.0] and index == 0
        buf.write(np.array([4.0, 5.0, 6.0]))
        assert buf.latest()[0].tolist() == [4.0, 5.0, 6.0]
    finally:
        buf.close()



def test_ctrl_c_during_writes_never_leaves_a_slot_unreadable(buffers):
    # Real SIGINTs at random moments while the main thread writes 4 MB slots: Python raises the
    # interrupt at the first bytecode after the copy, inside the seqlock, most of the times. The
    # next write would repair the slot; a program's last write, interrupted, has no next.
    buf = buffers(shape=(1024, 1024), dtype=np.float32, buffer_len=2)
    armed, done = threading.Event(), threading.Event()

    def interrupter() -> None:  # one SIGINT per arming, so none lands outside the writing loop
        rng = np.random.default_rng(0)
        while armed.wait(5) and not done.is_set():
            time.sleep(rng.uniform(0.0, 0.004))
            armed.clear()
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    buf.write(np.zeros((1024, 1024), np.float32))
    # Python's own Ctrl-C handler, whatever an earlier test or library left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=interrupter, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            try:
                armed.set()
                while True:
                    buf.write(np.full((1024, 1024), buf.num_writes, np.float32))
            except KeyboardInterrupt:
                pass
            stuck = [slot for slot in range(buf.buffer_len) if buf._seqlock.writing(slot)]
            assert not stuck, f"slot {stuck} left mid-write by the interrupted write {buf.num_writes}"
            data, _, index = buf.latest()
            assert data[0, 0] == data[-1, -1] == index == buf.num_writes - 1
    finally:
        done.set()
        armed.set()
        thread.join()
        signal.signal(signal.SIGINT, previous)

# ----- waiting for news -----

@pytest.mark.skipif(not futex.available(), reason="needs futex_waitv (Linux 5.16+)")
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_write_in_another_process_wakes_a_reader_waiting_on_several_buffers(method, buffers):
    ctx = multiprocessing.get_context(method)
    first, second = buffers(shape=(3,), buffer_len=2), buffers(shape=(2,), buffer_len=2)
    parent_conn, child_conn = ctx.Pipe()
    # A poll interval of 30 s: only a wake-up by the write can end the wait soon.
    child = ctx.Process(target=buffer_workers.wait_for_update_and_report,
                        args=([first, second], 60.0, 30.0, child_conn), daemon=True)
    child.start()
    try:
        assert parent_conn.poll(30.0) and parent_conn.recv() == "waiting"
        second.write(np.array([1.0, 2.0]))
        assert parent_conn.poll(20.0), "the reader was not woken by the write"
        result, waited, updated = parent_conn.recv()
        assert result is True and updated == [False, True]
        assert waited < 10.0
    finally:
        child.join(10)
    assert child.exitcode == 0


def test_waiting_returns_at_once_on_unread_news_and_false_after_the_timeout(buffers):
    buf = buffers(shape=(1,), buffer_len=2)
    start = time.monotonic()
    assert wait_for_update([buf], 0.2) is False
    assert time.monotonic() - start >= 0.19
    buf.write(np.array([1.0]))
    start = time.monotonic()
    assert wait_for_update([buf], 30.0, poll_s=30.0) is True and time.monotonic() - start < 5.0
    buf.read_update()
    assert wait_for_update([buf], 0.05) is False  # read: no news any more


def test_without_futex_waitv_a_reader_polls_and_still_sees_the_write(buffers, monkeypatch):
    # The fallback where the kernel has no futex_waitv (not Linux, older than 5.16).
    monkeypatch.setattr(futex, "_available", False)
    buf = buffers(shape=(1,), buffer_len=2)
    assert wait_for_update([buf], 0.1, poll_s=0.01) is False
    writer = threading.Timer(0.2, lambda: buf.write(np.array([2.0])))
    writer.start()
    try:
        assert wait_for_update([buf], 20.0, poll_s=0.01) is True and buf.updated()
    finally:
        writer.join()


def test_more_words_than_the_kernel_takes_are_refused():
    with pytest.raises(ValueError, match="at most 128 words, got 129"):
        futex.wait_any([(0, 0)] * 129, 0.1)
