"""A ring buffer of numpy slots in POSIX shared memory, safe across fork, spawn and forkserver.

Each slot holds one array of a fixed shape and dtype (a (120, 160, 3) uint8 frame stays uint8),
the monotonic time it was captured, and its write index. Readers never see a half-written slot:
every slot is guarded by the project's seqlock (communicators/seqlock.py), so a reader copies the
slot and retries if a writer was inside it. Writers serialise on one lock and take
their index from a shared counter, so indices are right with several writer processes.

The reading and writing names are SenseAct's (``write``, ``read``, ``read_update``, ``updated``);
its constructor and window semantics live in ``communicators.senseact.SharedBuffer``, a subclass.
Unlike SenseAct's buffer, this one keeps working when the child was started with spawn or
forkserver (the segment is attached by name, not inherited as a numpy view), and "updated" is
tracked per reader, not in one global flag.

Memory ordering: see communicators/seqlock.py (x86-64's in-order stores).

Waiting for news: every write wakes the readers sleeping in :func:`wait_for_update` on the
buffer's write counter (a futex, communicators/futex.py), so a reader of several buffers sleeps
until one is written instead of polling them; where the system has no futex_waitv it polls.

Example:
    >>> import numpy as np
    >>> buf = SharedBuffer(shape=(3,), dtype=np.float64, buffer_len=4)
    >>> buf.updated()
    False
    >>> buf.write(np.array([1.0, 2.0, 3.0]), timestamp=10.0)
    >>> data, ts, idx = buf.read_update()
    >>> data.tolist(), ts.tolist(), idx.tolist()
    ([[1.0, 2.0, 3.0]], [10.0], [0])
    >>> buf.close()
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import secrets
import time
from collections.abc import Sequence
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from communicators import futex
from communicators.errors import SharedBufferError
from communicators.seqlock import SeqLock

#: Every segment this project creates starts with this, so leaks are easy to find in /dev/shm.
SEGMENT_PREFIX = "rtrl_"
_HEADER_BYTES = 64  # write counter, padded to a cache line
_MAX_READ_RETRIES = 100_000
# A writer preempted mid-write on a loaded machine holds its slot for tens of ms; only one gone
# this long is taken as stuck. Readers spin briefly, then sleep so the writer gets a CPU.
_STUCK_WRITER_S = 2.0
_SPINS_BEFORE_SLEEP = 1000
_segment_counter = itertools.count()
_WRITER_LOCK_TIMEOUT_S = 2.0


def _aligned(nbytes: int, alignment: int = 64) -> int:
    return (nbytes + alignment - 1) // alignment * alignment


class SharedBuffer:
    """Ring buffer of ``buffer_len`` array slots in shared memory.

    Construct it in the parent, pass it to child processes (as a ``Process`` argument or
    attribute), and write or read it from any of them. The creating process owns the segment and
    unlinks it in :meth:`close`; the multiprocessing resource tracker unlinks it if the owner dies
    without closing.

    Args:
        shape: the shape of one slot, e.g. ``(120, 160, 3)``; ``()`` for one record of a
            structured dtype.
        dtype: the numpy dtype of one slot. Structured dtypes work too.
        buffer_len: number of slots; a reader can ask for a window of at most this many.

    Raises:
        SharedBufferError: the arguments name no valid slot layout.
    """

    DEFAULT_BUFFER_LEN = 2

    def __init__(self, shape: tuple[int, ...] | int, dtype: Any = np.float64,
                 buffer_len: int = DEFAULT_BUFFER_LEN) -> None:
        if shape is None:
            raise SharedBufferError("SharedBuffer needs shape= (e.g. shape=(7,)); SenseAct's array_len= form "
                                    "is communicators.senseact.SharedBuffer")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if any(s <= 0 for s in shape):
            raise SharedBufferError(f"slot shape {shape} has a non-positive dimension")
        if not isinstance(buffer_len, (int, np.integer)) or buffer_len < 1:
            raise SharedBufferError(f"buffer_len={buffer_len!r} must be a positive integer")
        self.shape = shape
        self.dtype = np.dtype(dtype if dtype is not None else np.float64)
        self.buffer_len = int(buffer_len)
        self.array_len = int(np.prod(shape))
        # A lock from the spawn context pickles into children of every start method.
        self._lock = multiprocessing.get_context("spawn").Lock()
        name = f"{SEGMENT_PREFIX}{os.getpid()}_{next(_segment_counter)}_{secrets.token_hex(4)}"
        self._shm = shared_memory.SharedMemory(name=name, create=True, size=self._segment_size())
        self._owner_pid = os.getpid()
        self._attach_views()
        self._seq[:] = 0
        self._index[:] = -1
        self._timestamp[:] = np.nan
        self._counter[0] = 0
        self._last_seen = 0

    # ----- layout -----

    def _slot_bytes(self) -> int:
        return _aligned(self.dtype.itemsize * self.array_len)

    def _segment_size(self) -> int:
        per_slot_meta = 3 * 8 * self.buffer_len  # seq, index, timestamp
        return _HEADER_BYTES + _aligned(per_slot_meta) + self._slot_bytes() * self.buffer_len

    def _attach_views(self) -> None:
        buf = self._shm.buf
        n = self.buffer_len
        self._counter = np.ndarray((1,), np.int64, buf, 0)
        # The counter's low 32 bits (little-endian) are the futex word readers wait on.
        self._counter_address = self._counter.ctypes.data
        meta = _HEADER_BYTES
        self._seq = np.ndarray((n,), np.int64, buf, meta)
        self._seqlock = SeqLock(self._seq)
        self._index = np.ndarray((n,), np.int64, buf, meta + 8 * n)
        self._timestamp = np.ndarray((n,), np.float64, buf, meta + 16 * n)
        data_offset = _HEADER_BYTES + _aligned(3 * 8 * n)
        slot_bytes = self._slot_bytes()
        self._data = np.ndarray(
            (n, *self.shape), self.dtype, buf, data_offset,
            strides=(slot_bytes, *np.empty(self.shape, self.dtype).strides),
        )

    # ----- pickling: children attach by name -----

    def __getstate__(self) -> dict:
        if self._shm is None:
            raise SharedBufferError("cannot pass a closed SharedBuffer to another process")
        return {
            "name": self._shm.name, "shape": self.shape, "dtype": self.dtype, "buffer_len": self.buffer_len,
            "lock": self._lock, "owner_pid": self._owner_pid,
        }

    def __setstate__(self, state: dict) -> None:
        self.shape, self.dtype, self.buffer_len = state["shape"], state["dtype"], state["buffer_len"]
        self.array_len = int(np.prod(self.shape))
        self._lock, self._owner_pid = state["lock"], state["owner_pid"]
        # Children share the parent's resource tracker, so attaching registers nothing new.
        self._shm = shared_memory.SharedMemory(name=state["name"])
        self._attach_views()
        self._last_seen = int(self._counter[0])

    # ----- writing -----

    def write(self, data: Any, timestamp: float | None = None) -> None:
        """Writes one slot.

        Args:
            data: array-like of the slot's shape (a flat array of the same size is accepted).
            timestamp: when the data was captured, in ``time.monotonic()`` seconds; now if None.

        Raises:
            SharedBufferError: the data does not fit the slot.
        """
        if timestamp is None:
            timestamp = time.monotonic()
        # Cast before taking the lock: nothing inside the seqlock may fail and leave a slot odd.
        try:
            data = np.asarray(data, dtype=self.dtype)
        except (TypeError, ValueError) as err:
            raise SharedBufferError(f"data cannot be stored as {self.dtype}: {err}") from err
        if data.shape != self.shape:
            if data.size != self.array_len:
                raise SharedBufferError(f"data of shape {data.shape} does not fit a slot of shape {self.shape}")
            data = data.reshape(self.shape)
        # A timeout, because a writer process killed inside write() never releases the lock.
        if not self._lock.acquire(timeout=_WRITER_LOCK_TIMEOUT_S):
            raise SharedBufferError(f"{self!r}: another writer held the write lock for {_WRITER_LOCK_TIMEOUT_S} s; "
                                    "did a writer process die in the middle of a write?")
        count = None
        try:
            count = int(self._counter[0])
            self._store(count, data, timestamp)
        except KeyboardInterrupt:
            # Ctrl-C lands between any two bytecodes: one inside the store would leave the slot
            # odd, unreadable by every reader for good. The store is idempotent: finish it.
            if count is not None:
                self._store(count, data, timestamp)
            raise
        finally:
            self._lock.release()
        futex.wake(self._counter_address)  # after the counter changed: no reader misses the write

    def _store(self, count: int, data: np.ndarray, timestamp: float) -> None:
        slot = count % self.buffer_len
        self._seqlock.write_begin(slot)  # readers of this slot retry until write_end
        self._data[slot, ...] = data
        self._timestamp[slot] = timestamp
        self._index[slot] = count
        self._seqlock.write_end(slot)
        self._counter[0] = count + 1

    # ----- reading -----

    @property
    def num_writes(self) -> int:
        """How many slots were ever written; 0 means the buffer holds no data yet."""
        return int(self._counter[0])

    def _read_slot(self, slot: int, out: np.ndarray) -> tuple[float, int]:
        def copy() -> tuple[float, int]:
            np.copyto(out, self._data[slot, ...])
            return float(self._timestamp[slot]), int(self._index[slot])

        give_up = None
        for attempt in itertools.count():
            clean, stamp_index = self._seqlock.try_read(slot, copy)
            if clean:
                return stamp_index
            if attempt >= _SPINS_BEFORE_SLEEP:
                now = time.monotonic()
                give_up = now + _STUCK_WRITER_S if give_up is None else give_up
                if now > give_up:
                    raise SharedBufferError(f"a writer held a slot for over {_STUCK_WRITER_S} s; "
                                            "is a writer process stuck mid-write?")
                time.sleep(20e-6)

    def read(self, window_len: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reads the newest ``window_len`` slots, oldest first, without marking them as seen.

        Slots never written yet come back with index -1 and timestamp NaN (their data is zeros
        and must not be used).

        Returns:
            ``(data_window (window_len, *shape), timestamp_window (window_len,),
            index_window (window_len,))``.
        """
        if not 1 <= window_len <= self.buffer_len:
            raise SharedBufferError(f"window_len={window_len} must be between 1 and buffer_len={self.buffer_len}")
        for _ in range(_MAX_READ_RETRIES):
            newest = int(self._counter[0]) - 1
            if newest >= window_len - 1:  # the common case: every slot of the window is written
                data = np.empty((window_len, *self.shape), self.dtype)
                timestamps, indices = np.empty(window_len), np.empty(window_len, np.int64)
            else:
                data = np.zeros((window_len, *self.shape), self.dtype)
                timestamps, indices = np.full(window_len, np.nan), np.full(window_len, -1, np.int64)
            consistent = True
            for i in range(window_len):
                wanted = newest - (window_len - 1 - i)
                if wanted < 0:
                    continue
                timestamps[i], indices[i] = self._read_slot(wanted % self.buffer_len, data[i, ...])
                # A newer write overtook this slot while we read the window: start again.
                consistent &= indices[i] == wanted or (window_len == 1 and indices[i] > wanted)
            if consistent:
                return data, timestamps, indices
        raise SharedBufferError("writers overtake the reader continuously; use a larger buffer_len")

    def read_update(self, window_len: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`read`, and marks everything up to the newest slot as seen by this reader."""
        data, timestamps, indices = self.read(window_len)
        self._last_seen = max(self._last_seen, int(indices[-1]) + 1)
        return data, timestamps, indices

    def latest(self) -> tuple[np.ndarray, float, int]:
        """Returns the newest ``(data, timestamp, index)``.

        Raises:
            SharedBufferError: nothing was ever written.
        """
        data, timestamps, indices = self.read(1)
        if indices[0] < 0:
            raise SharedBufferError("the buffer has never been written: no reading exists yet")
        return data[0], float(timestamps[0]), int(indices[0])

    def updated(self) -> bool:
        """True if a slot was written since this reader's last :meth:`read_update`."""
        return int(self._counter[0]) > self._last_seen

    # ----- life cycle -----

    def close(self) -> None:
        """Detaches; the owning process also unlinks the segment. Safe to call twice."""
        shm, self._shm = getattr(self, "_shm", None), None
        if shm is None:
            return
        # Views must go before the mapping can close.
        self._counter = self._seq = self._seqlock = self._index = self._timestamp = self._data = None
        try:
            shm.close()  # raises BufferError while someone still holds a view; unlink regardless
        finally:
            if os.getpid() == self._owner_pid:
                try:
                    shm.unlink()
                except FileNotFoundError:
                    pass

    @property
    def closed(self) -> bool:
        return getattr(self, "_shm", None) is None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"SharedBuffer(shape={self.shape}, dtype={self.dtype}, buffer_len={self.buffer_len})"


def wait_for_update(buffers: Sequence[SharedBuffer], timeout: float, poll_s: float = 0.0001) -> bool:
    """Sleeps until one of ``buffers`` is written after this reader's last :meth:`~SharedBuffer.read_update`
    of it, or ``timeout`` seconds pass; returns at once if one already was.

    The writers wake the reader (a futex on each buffer's write counter), so it neither polls nor
    wakes late. Where the system has no ``futex_waitv`` (not Linux 5.16+), or for more than
    ``futex.MAX_WORDS`` buffers, it polls every ``poll_s`` seconds instead.

    Returns:
        True if a buffer may have news (look with :meth:`~SharedBuffer.updated`), False after the
        timeout.
    """
    if any(buf.updated() for buf in buffers):
        return True
    if futex.available() and len(buffers) <= futex.MAX_WORDS:
        # The value this reader last saw: a write since then makes the kernel return at once.
        return futex.wait_any([(buf._counter_address, buf._last_seen) for buf in buffers], timeout)
    deadline = time.monotonic() + timeout
    while not any(buf.updated() for buf in buffers):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(poll_s, left))
    return True
