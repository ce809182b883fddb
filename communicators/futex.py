"""Sleeping until a word in shared memory changes, woken by a writer in any process (Linux futexes).

A reader that waits for news from several shared buffers would otherwise poll them: on the
2-core machine the env's polling loop woke every 0.1 ms to look, ~6000 times a second, and spent
a sixth of a core on it. With these calls the writer wakes it (``wake`` after changing the word,
~1.5 us) and the reader sleeps in the kernel until one of its words changes (``wait_any``, the
``futex_waitv`` system call of Linux 5.16+) or a timeout passes.

The words are 32-bit, in a shared (not private) mapping, e.g. the low half of a shared buffer's
write counter (little-endian). The kernel compares each word with the value the reader last saw
before it sleeps, so a write between the reader's last look and its sleep is never missed.

Where the calls do not exist (another OS, an older kernel, another CPU architecture),
:func:`available` is False and callers poll instead.
"""
from __future__ import annotations

import ctypes
import errno
import platform
import sys
import time
from collections.abc import Sequence

# System call numbers (x86-64 and arm64 share futex_waitv's; futex differs).
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine())
_SYS_FUTEX_WAITV = 449
_FUTEX_WAKE = 1  # shared, not FUTEX_PRIVATE_FLAG: the waiters are in other processes
_FUTEX2_SIZE_U32 = 0x02
_WAKE_ALL = 0x7FFFFFFF
MAX_WORDS = 128
"""The most words one ``wait_any`` may watch (the kernel's limit)."""


class _Waitv(ctypes.Structure):
    _fields_ = [("val", ctypes.c_uint64), ("uaddr", ctypes.c_uint64), ("flags", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_syscall():
    if not sys.platform.startswith("linux") or _SYS_FUTEX is None:
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    call.restype = ctypes.c_long
    return call


_syscall = _load_syscall()
_available: bool | None = None  # probed at the first call


def available() -> bool:
    """Whether this system has ``futex_waitv`` (probed once, with a wait that returns at once)."""
    global _available
    if _available is None:
        _available = False
        if _syscall is not None:
            word = ctypes.c_uint32(1)
            waiter = (_Waitv * 1)(_Waitv(0, ctypes.addressof(word), _FUTEX2_SIZE_U32, 0))
            result = _syscall(_SYS_FUTEX_WAITV, waiter, 1, 0, None, 0)  # 0 != 1: EAGAIN at once
            _available = result == -1 and ctypes.get_errno() == errno.EAGAIN
    return _available


def wake(address: int) -> None:
    """Wakes every process waiting on the 32-bit word at ``address``; nothing where unavailable.

    Call it after changing the word. Costs one system call (~1.5 us) even when nobody waits.
    """
    if _syscall is not None and _available is not False:
        _syscall(_SYS_FUTEX, ctypes.c_void_p(address), _FUTEX_WAKE, _WAKE_ALL, None, None, 0)


def wait_any(words: Sequence[tuple[int, int]], timeout: float) -> bool:
    """Sleeps until one of the words differs from the value given for it, or ``timeout`` s pass.

    Args:
        words: ``(address, value)`` pairs: the 32-bit word at ``address`` and the value the
            caller last saw there; at most :data:`MAX_WORDS`.
        timeout: seconds.

    Returns:
        True if a word changed (or already differed, or a signal interrupted the wait: callers
        look again in any case), False after the timeout.

    Raises:
        OSError: the system has no ``futex_waitv`` (check :func:`available` first), or an address
            is not readable.
        ValueError: more than :data:`MAX_WORDS` words.
    """
    if len(words) > MAX_WORDS:
        raise ValueError(f"wait_any watches at most {MAX_WORDS} words, got {len(words)}")
    if not available():
        raise OSError(errno.ENOSYS, "futex_waitv is not available on this system")
    waiters = (_Waitv * len(words))(*(_Waitv(value & 0xFFFFFFFF, address, _FUTEX2_SIZE_U32, 0)
                                      for address, value in words))
    deadline = time.clock_gettime(time.CLOCK_MONOTONIC) + max(timeout, 0.0)
    seconds = int(deadline)
    until = _Timespec(seconds, int((deadline - seconds) * 1e9))
    result = _syscall(_SYS_FUTEX_WAITV, waiters, len(words), 0, ctypes.byref(until), time.CLOCK_MONOTONIC)
    if result >= 0:
        return True
    code = ctypes.get_errno()
    if code == errno.ETIMEDOUT:
        return False
    if code in (errno.EAGAIN, errno.EINTR):
        return True
    raise OSError(code, f"futex_waitv failed: {errno.errorcode.get(code, code)}")
