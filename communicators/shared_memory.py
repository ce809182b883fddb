"""Named numpy arrays carved out of one POSIX shared-memory segment, usable across processes.

Pass a :class:`SharedArrays` to a child process (fork, spawn or forkserver) as an argument: it
pickles as the segment's name and layout, and the child attaches by name. The creating process
owns the segment: it unlinks it in :meth:`SharedArrays.close`, at interpreter exit if close was
never called, and multiprocessing's resource tracker unlinks it if the owner is killed. A private
segment (``private=True``) is unlinked as soon as it is mapped: it lives exactly as long as its
process, however that process ends, and cannot be passed to another one.
"""
from __future__ import annotations

import itertools
import os
import secrets
import weakref
from multiprocessing import shared_memory
from typing import Any

import numpy as np

#: Same prefix as communicators/shared_buffer.py, so one /dev/shm scan finds every leak.
SEGMENT_PREFIX = "rtrl_"
_ALIGN = 64  # cache line: counters written by one process don't share a line with others' data
_counter = itertools.count()

Spec = dict[str, tuple[tuple[int, ...], Any]]


def _layout(specs: Spec) -> tuple[dict[str, int], int]:
    offsets, offset = {}, 0
    for name, (shape, dtype) in specs.items():
        offsets[name] = offset
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        offset += (nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
    return offsets, max(offset, _ALIGN)


def _release(shm: shared_memory.SharedMemory, owner_pid: int) -> None:
    # Unlink first: it only needs the name, and succeeds even while numpy views pin the mapping.
    if os.getpid() == owner_pid:
        try:
            shm.unlink()
        except FileNotFoundError:
            pass
    try:
        shm.close()
    except BufferError:
        pass  # a view is still alive somewhere; the mapping goes with the process


class SharedArrays:
    """A dict of numpy arrays in one shared-memory segment.

    Args:
        specs: ``{name: (shape, dtype)}``; arrays are zero-filled.
        tag: short label put into the segment name (shows in ``ls /dev/shm``).
        private: only this process (its threads) uses the arrays: the name is removed at once, so
            nothing is left in /dev/shm even if the process is killed with no one to clean up.

    Example:
        >>> arrays = SharedArrays({"counter": ((2,), np.int64)}, tag="doc")
        >>> arrays["counter"][:] = 7
        >>> int(arrays["counter"].sum())
        14
        >>> arrays.close()
    """

    def __init__(self, specs: Spec, tag: str = "arrays", private: bool = False):
        self._specs = {k: (tuple(int(s) for s in shape), np.dtype(dt)) for k, (shape, dt) in specs.items()}
        _, self.nbytes = _layout(self._specs)
        name = f"{SEGMENT_PREFIX}{tag}_{os.getpid()}_{next(_counter)}_{secrets.token_hex(3)}"
        self._shm = shared_memory.SharedMemory(name=name, create=True, size=self.nbytes)
        self._owner_pid = os.getpid()
        self._finalizer = weakref.finalize(self, _release, self._shm, self._owner_pid)
        self.private = private
        if private:
            self._shm.unlink()
        self._attach()

    def _attach(self) -> None:
        offsets, _ = _layout(self._specs)
        self._arrays = {name: np.ndarray(shape, dtype, self._shm.buf, offsets[name])
                        for name, (shape, dtype) in self._specs.items()}

    @property
    def name(self) -> str:
        """Segment name (without the leading slash of /dev/shm)."""
        return self._shm.name

    def __getitem__(self, key: str) -> np.ndarray:
        if self._arrays is None:
            raise ValueError(f"shared arrays {self.name!r} are closed")
        return self._arrays[key]

    def __getstate__(self) -> dict:
        if self._arrays is None:
            raise ValueError("cannot pass closed SharedArrays to another process")
        if self.private:
            raise ValueError(f"shared arrays {self.name!r} are private to process {self._owner_pid}; "
                             "create them with private=False to pass them to another process")
        return {"name": self._shm.name, "specs": self._specs, "owner_pid": self._owner_pid}

    def __setstate__(self, state: dict) -> None:
        self._specs, self._owner_pid, self.private = state["specs"], state["owner_pid"], False
        # Children share the parent's resource tracker, so attaching registers nothing new.
        self._shm = shared_memory.SharedMemory(name=state["name"])
        _, self.nbytes = _layout(self._specs)
        self._finalizer = weakref.finalize(self, _release, self._shm, self._owner_pid)
        self._attach()

    def close(self) -> None:
        """Detaches; the owner also unlinks the segment. Idempotent.

        The mapping is released, so drop every array taken from ``[]`` first: numpy views do not
        pin the mapping, and touching one after close crashes the process.
        """
        self._arrays = None
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive
